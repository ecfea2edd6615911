package main

import (
	"context"
	"fmt"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/recordauth"
	"github.com/cordonhq/cordon/internal/testkit"
	"github.com/cordonhq/cordon/registry"
)

func TestApplyIdempotent(t *testing.T) {
	s := NewState()
	ev := func(status string, credits int) Deposit {
		return Deposit{ID: "eth/mainnet/0xa/native", Status: status, Account: "u1", Asset: "native", Amount: "100", Credits: credits}
	}
	for _, step := range []struct {
		d       Deposit
		changed bool
		balance string
	}{
		{ev("pending", 0), false, ""},
		{ev("credited", 1), true, "100"},
		{ev("credited", 1), false, "100"}, // replay
		{ev("pending", 0), false, "100"},  // an old event read again
		{ev("reverted", 1), true, "0"},
		{ev("reverted", 1), false, "0"},
		{ev("credited", 1), false, "0"}, // the first credit, replayed after its revert
		{ev("pending", 1), false, "0"},
		{ev("credited", 2), true, "100"}, // mined again and credited
		{ev("credited", 2), false, "100"},
	} {
		changed, err := s.Apply(step.d)
		require.NoError(t, err)
		require.Equal(t, step.changed, changed, "%+v", step.d)
		require.Equal(t, step.balance, s.Balances["u1"]["native"], "%+v", step.d)
	}
	// After compaction a ledger may see only a deposit's newest event.
	c := NewState()
	changed, err := c.Apply(ev("credited", 3))
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, "100", c.Balances["u1"]["native"])
	changed, err = c.Apply(ev("reverted", 2))
	require.NoError(t, err)
	require.False(t, changed, "older than the credit applied")
	r := NewState()
	changed, err = r.Apply(ev("reverted", 2))
	require.NoError(t, err)
	require.False(t, changed, "never booked: nothing to take back")
	require.Equal(t, "", r.Balances["u1"]["native"])
	_, err = NewState().Apply(Deposit{ID: "x", Status: "credited", Credits: 1, Amount: "-5"})
	require.ErrorContains(t, err, "not a non-negative integer")
}

// TestLedgerEndToEnd runs the crediting service on a stream with a reorg
// deeper than the policy, and this ledger on its output, the ledger
// stopped and restarted (and once started over from its last save with
// the offsets lost): the balances are the canonical credited deposits,
// each once.
func TestLedgerEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers, prod := pipetest.Producer(t)
	reg := registry.NewIndex()
	for i := range 3 {
		reg.Put(&registry.Entry{Chain: chain.ETH, Network: "t", Address: fmt.Sprintf("0x%040x", i+1), Account: fmt.Sprint("u", i), Asset: "*",
			Kind: registry.KindDeposit})
	}
	seq := uint64(0)
	var canon []*chain.Block
	block := func(h int, branch string, deposits []int) chain.Update {
		b := &chain.Block{Header: chain.Header{Chain: chain.ETH, Network: "t", Height: uint64(h), Hash: fmt.Sprintf("0x%s%d", branch, h)}}
		for _, d := range deposits {
			b.Transfers = append(b.Transfers, chain.Transfer{V: 1, Chain: chain.ETH, Network: "t", Asset: chain.AssetNative,
				Standard: chain.StandardNative, TxHash: fmt.Sprintf("0x%064x", d), From: "0x00000000000000000000000000000000000000ff",
				To: fmt.Sprintf("0x%040x", d%3+1), Amount: chain.AmountFromUint64(uint64(1000 + d)), BlockHash: b.Hash, BlockHeight: uint64(h)})
		}
		seq++
		canon = append(canon[:h], b)
		return pipetest.Added(seq, b)
	}
	var ups []chain.Update
	for h := range 20 {
		ups = append(ups, block(h, "a", []int{h}))
	}
	for h := 19; h >= 14; h-- { // six blocks removed: deposits 14..19 were credited (3 confirmations)
		seq++
		ups = append(ups, chain.Update{Event: chain.BlockEvent{V: 1, Type: chain.BlockRemoved, Seq: seq, Header: canon[h].Header}})
	}
	canon = canon[:14]
	for h := 14; h < 24; h++ { // deposits 15 and 17 mined again, the others gone
		ds := []int{100 + h}
		if h == 15 || h == 17 {
			ds = append(ds, h)
		}
		ups = append(ups, block(h, "b", ds))
	}
	want := map[string]*big.Int{}
	for _, b := range canon[:len(canon)-2] { // 3 confirmations
		for _, tr := range b.Transfers {
			amt, _ := new(big.Int).SetString(tr.Amount.String(), 10)
			acct := fmt.Sprint("u", (amt.Int64()-1000)%3)
			if want[acct] == nil {
				want[acct] = new(big.Int)
			}
			want[acct].Add(want[acct], amt)
		}
	}

	svc, err := credit.NewService(credit.ServiceConfig{Kafka: kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, Topics: kafka.DefaultTopics(), CreateTopics: true},
		Policy: func(chain.Chain, string) credit.Policy { return credit.Policy{Confirmations: 3} }, Registry: reg})
	require.NoError(t, err)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(sctx) }()
	defer func() {
		stop()
		require.NoError(t, <-done)
	}()

	path := filepath.Join(t.TempDir(), "ledger.json")
	signer, _ := kafkatest.Keys().Signer(recordauth.Credit)
	keys, err := ParseKeys(signer.Public())
	require.NoError(t, err)
	runFor := func(d time.Duration) {
		lctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		require.NoError(t, Run(lctx, brokers, "cordon.deposits", path, keys, t.Logf))
	}
	// Someone who can write to the deposits topic, but is not crediting,
	// credits an account of theirs: the ledger refuses the record.
	testkit.Kcat(t, brokers, "cordon.deposits", "eth/t/0xforged/native",
		`{"v":1,"id":"eth/t/0xforged/native","status":"credited","account":"mallory","asset":"native","amount":"1000000","credits":1}`,
		false, "cordon-type=deposit")
	for i := 0; i < len(ups); i += 7 {
		require.NoError(t, prod.Publish(ctx, ups[i:min(i+7, len(ups))]))
		runFor(300 * time.Millisecond)
	}
	// The offsets lost (a restored backup, a reset): everything is read
	// again, and the credits counts keep the balances right.
	st, err := Load(path)
	require.NoError(t, err)
	st.Offsets = map[int32]int64{}
	require.NoError(t, st.Save(path))
	deadline := time.Now().Add(30 * time.Second)
	for {
		runFor(500 * time.Millisecond)
		st, err = Load(path)
		require.NoError(t, err)
		got := map[string]*big.Int{}
		for a, m := range st.Balances {
			got[a], _ = new(big.Int).SetString(m["native"], 10)
		}
		require.NotContains(t, got, "mallory", "a forged deposit record was credited")
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		require.True(t, time.Now().Before(deadline), "balances %v, want %v", got, want)
	}
	require.Equal(t, 4, st.Deposits[credit.DepositID(chain.ETH, "t", fmt.Sprintf("0x%064x", 15), "native")].Version, "credited, reverted, credited again")
	gone := st.Deposits[credit.DepositID(chain.ETH, "t", fmt.Sprintf("0x%064x", 16), "native")]
	require.Equal(t, 3, gone.Version, "credited, then reverted")
	require.False(t, gone.Booked)
}

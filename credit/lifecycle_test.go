package credit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/params"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/registry"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

// TestLifecycleDevnet drives every lifecycle edge on a real EVM chain
// through the whole path (devnet → watcher → Kafka → crediting service →
// cordon.deposits): confirmation tiers, dust, unknown and failed
// transactions, a token waiting for the finalized block, a flagged sender
// held and released by an operator through the decisions topic, a review
// hold rejected, a decision on a deposit that is not held refused, a
// deposit in a block replaced by a reorg, and a reorg deeper than the
// policy reverting a credit.
func TestLifecycleDevnet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dev, err := devnet.Start(devnet.Config{Seed: "lifecycle"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = dev.Close() })
	tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{Seed: 5}, nil)
	require.NoError(t, err)
	src, err := eth.NewSource(ctx, eth.Config{Network: pipetest.ETHNetwork, ChainID: devnet.ChainID,
		Endpoints: []eth.EndpointConfig{{Name: "devnet", URL: config.SecretValue(dev.HTTPURL())}}}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	brokers, prod, _ := pipetest.Stream(t, ctx, chain.ETH, pipetest.ETHNetwork, src, 0)

	acct := dev.Accounts()
	user := func(i int) common.Address { return acct[10+i] }
	lower := func(a common.Address) string { return strings.ToLower(a.Hex()) }
	reg := registry.NewIndex()
	for i := range 5 {
		reg.Put(&registry.Entry{Chain: chain.ETH, Network: pipetest.ETHNetwork, Address: lower(user(i)), Account: fmt.Sprint("u", i), Asset: "*",
			Kind: registry.KindDeposit})
	}
	// The Reverter contract as a deposit address: the failing payment to
	// it must not be a deposit.
	reg.Put(&registry.Entry{Chain: chain.ETH, Network: pipetest.ETHNetwork, Address: lower(tr.Reverter), Account: "contract", Asset: "*",
		Kind: registry.KindDeposit})
	x := intel.NewIndex()
	thief := intel.Indicator{Chain: chain.ETH, Value: lower(acct[3]), Source: "partner-x", Feed: "csv:partner-x", Category: intel.CategoryHack, Confidence: 90,
		ValidFrom: time.Unix(0, 0)}
	require.NoError(t, thief.Validate())
	x.Put(&thief)

	token := lower(tr.Token)
	policy := func(c chain.Chain, asset string) credit.Policy {
		if asset == token {
			return credit.Policy{Confirmations: 2, Finalized: true}
		}
		return credit.Policy{Confirmations: 3, Tiers: []credit.Tier{{Min: big.NewInt(params.Ether), Confirmations: 5}},
			Dust: big.NewInt(1000), Review: new(big.Int).Mul(big.NewInt(50), big.NewInt(params.Ether))}
	}
	svc, err := credit.NewService(credit.ServiceConfig{Kafka: kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, Topics: kafka.DefaultTopics(), CreateTopics: true}, Policy: policy,
		Registry: reg, Tokens: credit.Tokens{chain.ETH: {token: true}}, Screen: x.Hits, Operators: []string{"ann", "bob", "eve"}})
	require.NoError(t, err)
	stop := runService(ctx, svc)
	defer func() { require.NoError(t, stop()) }()

	id := func(h common.Hash, index string) string {
		return credit.DepositID(chain.ETH, pipetest.ETHNetwork, strings.ToLower(h.Hex()), index)
	}
	must := func(h common.Hash, err error) common.Hash {
		t.Helper()
		require.NoError(t, err)
		return h
	}
	// history waits until cond holds over the committed events, by
	// deposit id in order.
	history := func(what string, cond func(map[string][]credit.DepositEvent) bool) map[string][]credit.DepositEvent {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			by := map[string][]credit.DepositEvent{}
			for _, ev := range committed(t, ctx, brokers) {
				by[ev.ID] = append(by[ev.ID], ev)
			}
			if cond(by) {
				return by
			}
			require.True(t, time.Now().Before(deadline), "waiting for %s: %v", what, statusesOf(by))
			time.Sleep(200 * time.Millisecond)
		}
	}
	last := func(by map[string][]credit.DepositEvent, id string) credit.DepositEvent {
		if evs := by[id]; len(evs) > 0 {
			return evs[len(evs)-1]
		}
		return credit.DepositEvent{}
	}

	// One block with every kind of deposit.
	small := must(tr.Pay(ctx, 0, user(0), big.NewInt(params.Ether/10)))
	big2 := must(tr.Pay(ctx, 0, user(1), big.NewInt(2*params.Ether)))
	dust := must(tr.Pay(ctx, 0, user(2), big.NewInt(500)))
	tok := must(tr.PayToken(ctx, 1, user(0), big.NewInt(1_000_000)))
	nft := must(tr.MintNFT(ctx, 1, user(1)))
	failed := must(tr.PayFailing(ctx, 2, user(2), big.NewInt(params.Ether)))
	flagged := must(tr.Pay(ctx, 3, user(3), big.NewInt(params.GWei)))
	whale := must(tr.Pay(ctx, 4, user(4), new(big.Int).Mul(big.NewInt(60), big.NewInt(params.Ether))))
	blockA := dev.Commit()
	heightA := dev.Head().Number.Uint64()
	for range 4 {
		dev.Commit()
	}
	by := history("the first block's deposits", func(by map[string][]credit.DepositEvent) bool {
		return last(by, id(big2, "native")).Status == credit.StatusCredited
	})
	steps := func(id string) []string {
		var s []string
		for _, ev := range by[id] {
			s = append(s, fmt.Sprintf("%s@%d/%d", ev.Status, ev.Confirmations, ev.Required))
		}
		return s
	}
	require.Equal(t, []string{"pending@1/3", "credited@3/3"}, steps(id(small, "native")))
	require.Equal(t, []string{"pending@1/5", "credited@5/5"}, steps(id(big2, "native")), "the 1 ETH tier asks 5")
	require.Equal(t, []string{"dust@1/3"}, steps(id(dust, "native")))
	require.Equal(t, credit.StatusUnknown, last(by, id(nft, "1")).Status, "an NFT is not a credited token: %v", statusesOf(by))
	for k := range by {
		require.NotContains(t, k, strings.ToLower(failed.Hex()), "a failed transaction is no deposit")
	}
	tev := by[id(tok, "0")]
	require.Len(t, tev, 1, "deep enough but not final: still pending")
	require.Equal(t, credit.StatusPending, tev[0].Status)
	require.False(t, *tev[0].Finalized)
	require.Equal(t, token, tev[0].Asset)
	held := last(by, id(flagged, "native"))
	require.Equal(t, credit.StatusHeld, held.Status)
	require.Len(t, held.Indicators, 1)
	require.Equal(t, credit.Hit{Address: lower(acct[3]), Indicator: intel.KeyOf(&thief).String(), Category: "hack", Source: "partner-x", Confidence: 90}, held.Indicators[0])
	require.Equal(t, []string{"amount at or above the review threshold"}, last(by, id(whale, "native")).Reasons)
	require.Equal(t, strings.ToLower(blockA.Hex()), held.BlockHash)
	require.Equal(t, heightA, held.BlockNumber)

	// Operators decide, through the decisions topic.
	for _, d := range []credit.Decision{
		{ID: "d-1", Deposit: id(flagged, "native"), Action: credit.ActionRelease, Operator: "ann", Reason: "partner-x withdrew the report",
			Content: held.Content},
		{ID: "d-2", Deposit: id(whale, "native"), Action: credit.ActionReject, Operator: "bob", Reason: "source of funds not shown",
			Content: last(by, id(whale, "native")).Content},
		{ID: "d-3", Deposit: id(small, "native"), Action: credit.ActionRelease, Operator: "eve", Reason: "not held"},
	} {
		require.NoError(t, credit.PublishDecision(ctx, prod, d))
	}
	by = history("the decisions", func(by map[string][]credit.DepositEvent) bool {
		return last(by, id(flagged, "native")).Status == credit.StatusCredited && last(by, id(whale, "native")).Status == credit.StatusRejected
	})
	fl := by[id(flagged, "native")]
	require.Equal(t, []string{credit.StatusHeld, credit.StatusReleased, credit.StatusCredited}, []string{fl[0].Status, fl[1].Status, fl[2].Status})
	require.Equal(t, "ann", fl[2].Decision.Operator)
	require.Equal(t, "partner-x withdrew the report", fl[2].Decision.Reason)
	require.Equal(t, "bob", last(by, id(whale, "native")).Decision.Operator)

	// A deposit in a block that a reorg replaces: dropped, then mined
	// again, pending and credited from its new block.
	again := must(tr.Pay(ctx, 0, user(0), big.NewInt(params.Ether/5)))
	first := dev.Commit()
	history("the deposit before the reorg", func(by map[string][]credit.DepositEvent) bool { return len(by[id(again, "native")]) > 0 })
	require.NoError(t, dev.Reorg(1))
	second := dev.Commit()
	require.NotEqual(t, first, second)
	for range 2 {
		dev.Commit()
	}
	by = history("the re-mined deposit", func(by map[string][]credit.DepositEvent) bool {
		return last(by, id(again, "native")).Status == credit.StatusCredited
	})
	ag := by[id(again, "native")]
	require.Equal(t, []string{"pending", "dropped", "pending", "credited"}, statusSeq(ag))
	require.Equal(t, strings.ToLower(first.Hex()), ag[0].BlockHash)
	require.Equal(t, strings.ToLower(second.Hex()), ag[3].BlockHash)
	require.Equal(t, 1, ag[3].Credits)

	// A reorg deeper than the policy takes the credit back (reverted, and
	// an alert), then the re-mined deposit is credited a second time.
	require.NoError(t, dev.Reorg(3))
	for range 5 {
		dev.Commit()
	}
	by = history("the deep reorg", func(by map[string][]credit.DepositEvent) bool {
		evs := by[id(again, "native")]
		return len(evs) > 0 && evs[len(evs)-1].Credits == 2
	})
	ag = by[id(again, "native")]
	require.Equal(t, []string{"pending", "dropped", "pending", "credited", "reverted", "pending", "credited"}, statusSeq(ag))

	// The token waits for the finalized block (the devnet finalizes every
	// 32 blocks).
	for dev.Head().Number.Uint64() < 34 {
		dev.Commit()
	}
	by = history("the finalized token deposit", func(by map[string][]credit.DepositEvent) bool {
		return last(by, id(tok, "0")).Status == credit.StatusCredited
	})
	final := last(by, id(tok, "0"))
	require.True(t, *final.Finalized)
	// It was credited by the first block event whose finalized height
	// reached its block, not before.
	tip := final.BlockNumber + final.Confirmations - 1
	var stamped []chain.BlockEvent // added blocks deep enough for the deposit, up to the crediting one
	for _, ev := range blockEvents(t, ctx, brokers) {
		if ev.Type == chain.BlockAdded && ev.Height > heightA && ev.Height <= tip {
			stamped = append(stamped, ev)
		}
	}
	require.NotEmpty(t, stamped)
	require.GreaterOrEqual(t, stamped[len(stamped)-1].Finalized, heightA, "the crediting block says the deposit's block is final")
	for _, ev := range stamped[:len(stamped)-1] {
		require.Less(t, ev.Finalized, heightA, "block %d said the deposit was final, yet nothing was credited", ev.Height)
	}
	require.Greater(t, final.Confirmations, uint64(2), "it waited past its depth")

	alerts := alertsOf(t, ctx, brokers)
	require.Contains(t, alerts, "deposit_reverted/"+id(again, "native")+"/1")
	require.Contains(t, alerts, "deposit_decision_refused/d-3")
	require.Equal(t, "critical", alerts["deposit_reverted/"+id(again, "native")+"/1"].Severity)

	// Every credited event is the next credit of its deposit.
	for k, evs := range by {
		n := 0
		for _, ev := range evs {
			if ev.Status == credit.StatusCredited {
				n++
				require.Equal(t, n, ev.Credits, k)
			}
		}
	}
}

func statusSeq(evs []credit.DepositEvent) []string {
	var s []string
	for _, ev := range evs {
		s = append(s, ev.Status)
	}
	return s
}

func statusesOf(by map[string][]credit.DepositEvent) map[string][]string {
	out := map[string][]string{}
	for k, evs := range by {
		out[k] = statusSeq(evs)
	}
	return out
}

// blockEvents reads the committed block events in order (one partition
// per stream).
func blockEvents(t testing.TB, ctx context.Context, brokers []string) []chain.BlockEvent {
	var out []chain.BlockEvent
	for _, r := range readRecords(t, ctx, brokers, "cordon.blocks") {
		var ev chain.BlockEvent
		require.NoError(t, json.Unmarshal(r.Value, &ev))
		out = append(out, ev)
	}
	return out
}

// readRecords reads a topic's committed records (as of the call).
func readRecords(t testing.TB, ctx context.Context, brokers []string, topic string) []*kafka.Record {
	var out []*kafka.Record
	require.NoError(t, kafka.ReadLog(ctx, kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers}, topic, kafka.LogOptions{ClientID: "test"}, func(r *kafka.Record) error {
		out = append(out, r)
		return nil
	}))
	return out
}

// alertsOf reads the committed alerts by id.
func alertsOf(t testing.TB, ctx context.Context, brokers []string) map[string]chain.Alert {
	out := map[string]chain.Alert{}
	for _, r := range readRecords(t, ctx, brokers, "cordon.alerts") {
		var a chain.Alert
		require.NoError(t, json.Unmarshal(r.Value, &a))
		out[a.ID] = a
	}
	return out
}

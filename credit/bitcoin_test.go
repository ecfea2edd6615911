package credit_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/registry"
)

// TestServiceBitcoin credits Bitcoin deposits on a real btcd chain,
// confirmed with the node (its outputs read back from it),
// (regtest: wallet payments spending earlier payments, a reorg of 1 and
// one of 5 blocks — deeper than the policy) through the whole path: btcd →
// watcher → Kafka → crediting service, senders resolved from the
// service's recent blocks and ClickHouse. The credited deposits equal an
// oracle computed from the node's final chain with rpcclient and
// txscript: outputs paying registered addresses at least 3 blocks deep,
// whose spent outputs all lie in the watched range (else "sender
// unknown") and none of which pays a listed address.
func TestServiceBitcoin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	node, wallet, pipe := pipetest.BTC(t, ctx, 53)
	const start = 100 // pipetest.BTC watches from height 100
	addrs := wallet.Addresses()
	reg := registry.NewIndex()
	for i, a := range addrs {
		reg.Put(&registry.Entry{Chain: chain.BTC, Network: "regtest", Address: a, Account: fmt.Sprint("u", i), Asset: "*", Kind: registry.KindDeposit})
	}
	// Every fourth wallet address is listed.
	x := intel.NewIndex()
	listed := map[string]bool{}
	for i := 3; i < len(addrs); i += 4 {
		in := intel.Indicator{Chain: chain.BTC, Network: "regtest", Value: addrs[i], Source: "partner-x", Feed: "csv:partner-x", Category: intel.CategoryRansomware,
			ValidFrom: time.Unix(0, 0)}
		require.NoError(t, in.Validate())
		x.Put(&in)
		listed[addrs[i]] = true
	}
	svc, err := credit.NewService(credit.ServiceConfig{Kafka: kafka.Config{Auth: kafkatest.Keys(), Brokers: pipe.Brokers, Topics: kafka.DefaultTopics(), CreateTopics: true},
		Policy: func(chain.Chain, string) credit.Policy { return credit.Policy{Confirmations: 3} }, Registry: reg,
		Resolver: credit.ClickHouseResolver{Store: pipe.Store}, Screen: x.Hits,
		// Every deposit is confirmed with the node, as cordon run does it.
		Nodes: credit.Sources{"btc/regtest": pipe.Source.(credit.Source)}})
	require.NoError(t, err)
	stop := runService(ctx, svc)
	defer func() { require.NoError(t, stop()) }()

	for i := range 12 {
		switch i {
		case 5:
			require.NoError(t, wallet.Reorg(1))
		case 9:
			// The branch the deep reorg removes must have reached the
			// stream and crediting first, or there is nothing to take back
			// (on a loaded machine the watcher could otherwise see the new
			// branch only).
			best, err := node.Client().GetBestBlockHash()
			require.NoError(t, err)
			pipe.WaitLoaded(t, ctx, best.String())
			time.Sleep(2 * time.Second)
			require.NoError(t, wallet.Reorg(5))
		default:
			require.NoError(t, wallet.Step(3))
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err = wallet.Mine(3)
	require.NoError(t, err)

	// The oracle, from the node's final chain.
	tip, err := wallet.Height()
	require.NoError(t, err)
	owner := map[wire.OutPoint]struct {
		addr   string
		height int64
	}{}
	registered := map[string]bool{}
	for _, a := range addrs {
		registered[a] = true
	}
	var want, wantHeld []string
	for h := int64(1); h <= tip; h++ {
		bh, err := node.Client().GetBlockHash(h)
		require.NoError(t, err)
		b, err := node.Client().GetBlock(bh)
		require.NoError(t, err)
		for ti, tx := range b.Transactions {
			txid := tx.TxHash()
			for vout, o := range tx.TxOut {
				_, as, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, &chaincfg.RegressionNetParams)
				if err != nil || len(as) != 1 {
					continue
				}
				a := as[0].EncodeAddress()
				owner[wire.OutPoint{Hash: txid, Index: uint32(vout)}] = struct {
					addr   string
					height int64
				}{a, h}
				if h < start || ti == 0 || !registered[a] {
					continue
				}
				ok := true
				for _, in := range tx.TxIn {
					o, known := owner[in.PreviousOutPoint]
					if !known || o.height < start || listed[o.addr] {
						ok = false
					}
				}
				id := credit.DepositID(chain.BTC, "regtest", txid.String(), credit.VoutIndex(uint32(vout)))
				if !ok {
					wantHeld = append(wantHeld, id)
				} else if tip-h+1 >= 3 {
					want = append(want, id)
				}
			}
		}
	}
	slices.Sort(want)
	require.NotEmpty(t, want)
	require.NotEmpty(t, wantHeld)

	var got []string
	var latest map[string]credit.DepositEvent
	deadline := time.Now().Add(2 * time.Minute)
	for {
		latest = map[string]credit.DepositEvent{}
		for _, ev := range committed(t, ctx, pipe.Brokers) {
			latest[ev.ID] = ev
		}
		got = got[:0]
		for id, ev := range latest {
			if ev.Status == credit.StatusCredited {
				got = append(got, id)
			}
		}
		slices.Sort(got)
		if slices.Equal(want, got) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	require.Equal(t, want, got)
	reasons := map[string]int{}
	for _, id := range wantHeld {
		ev := latest[id]
		require.Equal(t, credit.StatusHeld, ev.Status, id)
		for _, r := range ev.Reasons {
			if strings.Contains(r, "sender unknown") {
				reasons["unknown"]++
			}
			if strings.Contains(r, "matches csv:partner-x/indicator--") && strings.Contains(r, "ransomware") {
				reasons["listed"]++
			}
		}
	}
	require.Positive(t, reasons["unknown"], "spends of outputs before the watched range")
	require.Positive(t, reasons["listed"], "spends of the listed address's outputs")
	reverted, disputed := 0, 0
	for _, ev := range committed(t, ctx, pipe.Brokers) {
		if ev.Status == credit.StatusHeld && len(ev.Reasons) > 0 && strings.Contains(ev.Reasons[len(ev.Reasons)-1], "the nodes do not confirm block") {
			disputed++ // the node had left the block before the stream did
		}
		if ev.Status != credit.StatusReverted {
			continue
		}
		reverted++
		h, err := chainhash.NewHashFromStr(ev.BlockHash)
		require.NoError(t, err)
		if bv, err := node.Client().GetBlockVerbose(h); err == nil {
			require.Negative(t, bv.Confirmations, "a reverted deposit's block is off the chain")
		}
	}
	// The 5-block reorg, deeper than the policy, took credits back — or,
	// when the node had already left the old branch as those deposits
	// reached their depth, the nodes' check held them before any credit.
	require.Positive(t, reverted+disputed, "the 5-block reorg took credits back, or the nodes stopped them")
	t.Logf("tip %d: %d credited, %d held (%v), %d reverted", tip, len(got), len(wantHeld), reasons, reverted)
}

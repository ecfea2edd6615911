package risk_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/clickhouse/chserver"
	"github.com/cordonhq/cordon/ingest/clickhouse/chtest"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/signer/risk"
)

func hash(tag string, n int) string { return fmt.Sprintf("0x%s%0*x", tag, 64-len(tag), n) }

func ethBlock(height uint64, h, parent string, transfers ...[2]string) *chain.Block {
	b := &chain.Block{Header: chain.Header{Chain: chain.ETH, Network: "cpt", Height: height, Hash: h, ParentHash: parent, Time: 1_700_000_000 + int64(height)*12}}
	for i, tr := range transfers {
		li := uint32(i)
		t := chain.Transfer{V: chain.SchemaVersion, Chain: chain.ETH, Network: "cpt", Asset: chain.AssetNative, Standard: chain.StandardNative,
			TxHash: hash("7", int(height)*100+i), TxIndex: uint32(i), From: tr[0], To: tr[1], Amount: chain.AmountFromUint64(1000),
			BlockHeight: height, BlockHash: h, BlockTime: b.Time}
		if i%2 == 1 { // a token transfer
			t.Asset, t.Standard, t.LogIndex = "0xdac17f958d2ee523a2206206994597c13d831ec7", chain.StandardERC20, &li
		}
		b.Transfers = append(b.Transfers, t)
	}
	return b
}

func btcOut(b *chain.Block, tx string, vout uint32, address string) {
	a := address
	b.Outputs = append(b.Outputs, chain.Output{V: chain.SchemaVersion, Chain: chain.BTC, Network: "regtest", TxHash: tx, Vout: vout, Address: &a,
		ScriptType: "witness_v0_keyhash", Amount: chain.AmountFromUint64(50_000), BlockHeight: b.Height, BlockHash: b.Hash, BlockTime: b.Time})
}

func btcSpend(b *chain.Block, tx string, vin uint32, prevTx string, prevVout uint32) {
	b.Spends = append(b.Spends, chain.Spend{V: chain.SchemaVersion, Chain: chain.BTC, Network: "regtest", TxHash: tx, Vin: vin, PrevTxHash: prevTx,
		PrevVout: prevVout, BlockHeight: b.Height, BlockHash: b.Hash, BlockTime: b.Time})
}

func btcBlock(height uint64, h, parent string) *chain.Block {
	return &chain.Block{Header: chain.Header{Chain: chain.BTC, Network: "regtest", Height: height, Hash: h, ParentHash: parent, Time: 1_700_000_000 + int64(height)*600}}
}

func removed(seq uint64, b *chain.Block) chain.Update {
	return chain.Update{Event: chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockRemoved, Seq: seq, Header: b.Header}}
}

// TestClickHouseCounterparties publishes blocks as a watcher does, loads
// them with the loader into a real ClickHouse, and reads the
// destination's counterparties: canonical rows only, most recent first;
// then the server goes away and the finding says so.
func TestClickHouseCounterparties(t *testing.T) {
	chtest.Need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	brokers, prod := pipetest.Producer(t)

	// Ethereum: D received from X and Z and paid Y in block 1; W paid it
	// in block 2a, which a reorg removed; V paid it in block 2b.
	D, X, Y, Z, W, V := addr(0xd), addr(0x1), addr(0x2), addr(0x3), addr(0x4), addr(0x5)
	e1 := ethBlock(1, hash("e", 1), hash("e", 0), [2]string{X, D}, [2]string{D, Y}, [2]string{Z, D}, [2]string{X, Y})
	e2a := ethBlock(2, hash("a", 2), e1.Hash, [2]string{W, D})
	e2b := ethBlock(2, hash("b", 2), e1.Hash, [2]string{V, D}, [2]string{D, D})
	// Bitcoin: P funded tx A; tx B spent it, paying bd (and change to P);
	// tx C spent bd's coin, paying E. Q funded tx G, which paid bd too;
	// the spend of G's coin to R was in block 13a, removed.
	const bd, P, Q, E, R = "bcrt1qdest", "bcrt1qpayer", "bcrt1qqueue", "bcrt1qeast", "bcrt1qreorged"
	b10 := btcBlock(10, hash("c", 10), hash("c", 9))
	btcOut(b10, hash("0a", 1), 0, P)
	btcOut(b10, hash("0f", 1), 0, Q)
	b11 := btcBlock(11, hash("c", 11), b10.Hash)
	btcSpend(b11, hash("0b", 1), 0, hash("0a", 1), 0)
	btcOut(b11, hash("0b", 1), 0, bd)
	btcOut(b11, hash("0b", 1), 1, P)
	btcSpend(b11, hash("06", 1), 0, hash("0f", 1), 0)
	btcOut(b11, hash("06", 1), 0, bd)
	b12 := btcBlock(12, hash("c", 12), b11.Hash)
	btcSpend(b12, hash("0c", 1), 0, hash("0b", 1), 0)
	btcOut(b12, hash("0c", 1), 0, E)
	b13a := btcBlock(13, hash("d", 13), b12.Hash)
	btcSpend(b13a, hash("0e", 1), 0, hash("06", 1), 0)
	btcOut(b13a, hash("0e", 1), 0, R)

	require.NoError(t, prod.Publish(ctx, []chain.Update{pipetest.Added(1, e1), pipetest.Added(2, e2a), removed(3, e2a), pipetest.Added(4, e2b),
		pipetest.Added(1, b10), pipetest.Added(2, b11), pipetest.Added(3, b12), pipetest.Added(4, b13a), removed(5, b13a)}))

	srv := chtest.Server(t)
	store, err := clickhouse.Open(ctx, clickhouse.Config{Addrs: []string{srv.Addr()}, Database: "cordon"})
	require.NoError(t, err)
	defer store.Close()
	require.NoError(t, store.Migrate(ctx, clickhouse.Schema))
	tp := prod.Topics()
	consumer, err := kafka.NewConsumer(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers}, "risk-test",
		[]string{tp.Blocks, tp.Transactions, tp.Transfers, tp.Outputs, tp.Spends})
	require.NoError(t, err)
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = clickhouse.NewLoader(clickhouse.LoaderConfig{Linger: 20 * time.Millisecond, CheckAfter: 100 * time.Millisecond}, store, consumer, nil, nil).Run(lctx)
		_ = consumer.Close()
	}()
	defer func() { stop(); <-done }()
	require.Eventually(t, func() bool {
		var n uint64
		require.NoError(t, store.QueryRow(ctx, `SELECT count() FROM blocks`).Scan(&n))
		return n == 9
	}, time.Minute, 50*time.Millisecond, "the loader did not load every block event")

	cp := risk.NewClickHouse(store)
	got, err := cp.Counterparties(ctx, chain.ETH, "cpt", D, 10)
	require.NoError(t, err)
	require.Equal(t, []string{V, X, Y, Z}, got, "most recent first, canonical only, not itself")
	got, err = cp.Counterparties(ctx, chain.ETH, "cpt", D, 2)
	require.NoError(t, err)
	require.Equal(t, []string{V, X}, got)
	got, err = cp.Counterparties(ctx, chain.ETH, "cpt", Y, 10)
	require.NoError(t, err)
	require.Equal(t, []string{X, D}, got, "same height: by address")
	got, err = cp.Counterparties(ctx, chain.ETH, "other", D, 10)
	require.NoError(t, err)
	require.Empty(t, got, "another network")

	got, err = cp.Counterparties(ctx, chain.BTC, "regtest", bd, 10)
	require.NoError(t, err)
	require.Equal(t, []string{E, P, Q}, got, "whom it paid (E), who paid it (P, Q); not R, paid in a removed block")
	got, err = cp.Counterparties(ctx, chain.BTC, "regtest", P, 10)
	require.NoError(t, err)
	require.Equal(t, []string{bd}, got, "P paid bd; its change is itself")

	// Through the risk layer, screening each counterparty.
	cfg := quiet()
	bad := chain.Hit{Address: V, Indicator: "ofac/9", Category: "sanctions", Source: "OFAC", Confidence: 100}
	r := newRisk(t, cfg, risk.Deps{Screener: screen{V: {bad}, W: {bad}}, Counterparties: cp})
	onCpt := func(dest string) risk.Query { q := query("a", 1, "1", dest); q.Network = "cpt"; return q }
	res := assess(t, r, onCpt(D), t0)
	f := find(res, "flagged_counterparty")
	require.Len(t, f, 1, "%v", res.Findings)
	require.Equal(t, V, f[0].Details["counterparty"])
	require.False(t, res.Has(risk.CounterpartiesUnknown))

	// The server goes away: a lookup not in the cache is unknown, never
	// clean.
	stop()
	<-done
	srv.Stop()
	_, err = cp.Counterparties(ctx, chain.ETH, "cpt", Y, 10)
	require.Error(t, err)
	res = assess(t, r, onCpt(Y), t0)
	require.True(t, res.Has(risk.CounterpartiesUnknown), "%v", res.Findings)
	res = assess(t, r, onCpt(D), t0)
	require.Len(t, find(res, "flagged_counterparty"), 1, "the cached answer still screens")
}

// TestClickHouseUnreachable: a store whose server never answers again
// within the timeout.
func TestClickHouseUnreachable(t *testing.T) {
	chtest.Need(t)
	ctx := context.Background()
	srv, err := chserver.Start(ctx, chserver.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	store, err := clickhouse.Open(ctx, clickhouse.Config{Addrs: []string{srv.Addr()}, Database: "cordon"})
	require.NoError(t, err)
	defer store.Close()
	require.NoError(t, store.Migrate(ctx, clickhouse.Schema))
	srv.Kill()
	cfg := quiet()
	cfg.Counterparties.Timeout = 300 * time.Millisecond
	r := newRisk(t, cfg, risk.Deps{Counterparties: risk.NewClickHouse(store)})
	start := time.Now()
	res := assess(t, r, query("a", 1, "1", addr(1)), t0)
	require.True(t, res.Has(risk.CounterpartiesUnknown), "%v", res.Findings)
	require.Less(t, time.Since(start), 10*time.Second)
}

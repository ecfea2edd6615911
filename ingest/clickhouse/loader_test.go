package clickhouse_test

import (
	"context"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/clickhouse/chserver"
	"github.com/cordonhq/cordon/ingest/clickhouse/chtest"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/btc/btcnode"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
	"github.com/cordonhq/cordon/watchers/follow"
)

// TestLoaderCanonicalAfterReorgs runs the whole path on real services: a
// btcd node with payments and reorgs, the watcher into Kafka, the loader
// into ClickHouse 18.16. The canonical views must hold exactly the node's
// chain: its blocks, and each of its outputs and spends once; rows of the
// removed blocks stay in the tables and out of the views.
func TestLoaderCanonicalAfterReorgs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	node, wallet, brokers, prod, f := watchedChain(t, ctx, 3)

	srv := chtest.Server(t)
	store := open(t, srv.Addr(), "cordon")
	require.NoError(t, store.Migrate(ctx, clickhouse.Schema))
	consumer, err := kafka.NewConsumer(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers}, "clickhouse-loader", []string{
		prod.Topics().Blocks, prod.Topics().Transactions, prod.Topics().Outputs, prod.Topics().Spends})
	require.NoError(t, err)
	defer consumer.Close()
	loader := clickhouse.NewLoader(clickhouse.LoaderConfig{Linger: 50 * time.Millisecond}, store, consumer, nil, nil)
	lctx, stopLoader := context.WithCancel(ctx)
	defer stopLoader()
	go func() { _ = loader.Run(lctx) }()

	for round := 1; round <= 9; round++ {
		require.NoError(t, wallet.Step(3))
		if round%3 == 0 {
			waitPublished(t, f, node)
			require.NoError(t, wallet.Reorg(round/3))
		}
	}
	checkViews(t, ctx, store, node, 100)
}

// checkViews waits until the views show the node's blocks up to its tip,
// then compares them with the node's chain from height from.
func checkViews(t testing.TB, ctx context.Context, store *clickhouse.Store, node *btcnode.Node, from int64) {
	t.Helper()
	tip, err := node.Client().GetBlockCount()
	require.NoError(t, err)
	tipHash, err := node.Client().GetBlockHash(tip)
	require.NoError(t, err)
	q := func(query string, args ...any) uint64 {
		var n uint64
		require.NoError(t, store.QueryRow(ctx, query, args...).Scan(&n))
		return n
	}
	// A block shows once all its rows are in, which may come after a
	// later block's: wait for the tip and for as many blocks as the range.
	deadline := time.Now().Add(90 * time.Second)
	for q(`SELECT count() FROM canonical_blocks WHERE hash = ?`, tipHash.String()) == 0 ||
		q(`SELECT count() FROM canonical_blocks WHERE chain = 'btc' AND network = 'regtest' AND height >= ?`, from) < uint64(tip-from+1) {
		require.True(t, time.Now().Before(deadline), "the loader did not bring the node's blocks %d-%d into ClickHouse", from, tip)
		time.Sleep(100 * time.Millisecond)
	}

	// Canonical blocks: exactly the node's chain from height 100.
	want := map[uint64]string{}
	wantOut, wantSpend := map[string]bool{}, map[string]bool{}
	outVal := map[string]uint64{} // amount of every output of the range, from the node
	for h := from; h <= tip; h++ {
		hash, err := node.Client().GetBlockHash(h)
		require.NoError(t, err)
		want[uint64(h)] = hash.String()
		blk, err := node.Client().GetBlock(hash)
		require.NoError(t, err)
		for i, tx := range blk.Transactions {
			for v, o := range tx.TxOut {
				k := fmt.Sprintf("%s/%d", tx.TxHash(), v)
				wantOut[k] = true
				outVal[k] = uint64(o.Value)
			}
			if i > 0 {
				for _, in := range tx.TxIn {
					wantSpend[fmt.Sprintf("%s/%d", in.PreviousOutPoint.Hash, in.PreviousOutPoint.Index)] = true
				}
			}
		}
	}
	got := map[uint64]string{}
	rows, err := store.Query(ctx, `SELECT height, hash FROM canonical_blocks WHERE chain = 'btc' AND network = 'regtest'`)
	require.NoError(t, err)
	for rows.Next() {
		var h uint64
		var hash string
		require.NoError(t, rows.Scan(&h, &hash))
		_, dup := got[h]
		require.False(t, dup, "two canonical blocks at height %d", h)
		got[h] = hash
	}
	require.NoError(t, rows.Close())
	require.Equal(t, want, got)

	keys := func(query string) map[string]bool {
		out := map[string]bool{}
		rows, err := store.Query(ctx, query)
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var k string
			var n uint64
			require.NoError(t, rows.Scan(&k, &n))
			require.Equal(t, uint64(1), n, "%s appears %d times", k, n)
			out[k] = true
		}
		return out
	}
	require.Equal(t, wantOut, keys(`SELECT concat(tx_hash, '/', toString(vout)) AS k, count() FROM canonical_outputs GROUP BY k`))
	require.Equal(t, wantSpend, keys(`SELECT concat(prev_tx_hash, '/', toString(prev_vout)) AS k, count() FROM canonical_spends GROUP BY k`))
	checkInputs(t, ctx, store, outVal)
	// The removed blocks' rows are in the table, not in the view.
	require.Greater(t, q(`SELECT count() FROM outputs FINAL`), q(`SELECT count() FROM canonical_outputs`))
	require.Positive(t, q(`SELECT count() FROM blocks FINAL WHERE removed = 1`))
}

// TestLoaderSurvivesOutagesAndKills stops ClickHouse for a few seconds in
// the middle of the ingest and kills the loader at random points twice:
// afterwards the views hold the node's chain with nothing lost and nothing
// twice.
func TestLoaderSurvivesOutagesAndKills(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	node, wallet, brokers, prod, f := watchedChain(t, ctx, 4)

	chtest.Need(t)
	dir := t.TempDir()
	srv, err := chserver.Start(ctx, chserver.Config{Dir: dir})
	require.NoError(t, err)
	metrics := clickhouse.NewLoaderMetrics(nil)
	store := open(t, srv.Addr(), "cordon")
	require.NoError(t, store.Migrate(ctx, clickhouse.Schema))
	topics := []string{prod.Topics().Blocks, prod.Topics().Transactions, prod.Topics().Outputs, prod.Topics().Spends}
	startLoader := func() context.CancelFunc {
		consumer, err := kafka.NewConsumer(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers}, "loader", topics)
		require.NoError(t, err)
		lctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = clickhouse.NewLoader(clickhouse.LoaderConfig{Linger: 20 * time.Millisecond, BatchRecords: 7, RetryMax: time.Second},
				store, consumer, metrics, nil).Run(lctx)
			_ = consumer.Close()
		}()
		return func() { stop(); <-done }
	}
	stop := startLoader()
	for round := 1; round <= 12; round++ {
		require.NoError(t, wallet.Step(3))
		switch round {
		case 3: // ClickHouse goes away for a while, then comes back on the same data
			srv.Stop()
			time.Sleep(3 * time.Second)
			srv, err = chserver.Start(ctx, chserver.Config{Dir: dir, TCPPort: portOf(t, srv.Addr())})
			require.NoError(t, err)
		case 5, 9: // the loader is killed mid-stream and restarted
			time.Sleep(time.Duration(round*17%40) * time.Millisecond)
			stop()
			stop = startLoader()
		case 7: // a reorg of blocks the watcher has published
			waitPublished(t, f, node)
			require.NoError(t, wallet.Reorg(2))
		}
	}
	defer func() { stop(); srv.Stop() }()
	checkViews(t, ctx, store, node, 100)
	require.Positive(t, testutil.ToFloat64(metrics.InsertErrors()), "the outage never failed an insert")
}

func portOf(t testing.TB, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

// waitPublished waits until the watcher has published the node's tip.
func waitPublished(t testing.TB, f *follow.Follower, node *btcnode.Node) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tip, err := node.Client().GetBestBlockHash()
		require.NoError(t, err)
		if f.Status().Hash == tip.String() {
			return
		}
		require.True(t, time.Now().Before(deadline), "the watcher did not reach the node's tip")
		time.Sleep(20 * time.Millisecond)
	}
}

// checkInputs: every canonical input whose spent output is in the loaded
// range (outVal, from the node) carries that output's amount, and no other
// input is marked resolved.
func checkInputs(t testing.TB, ctx context.Context, store *clickhouse.Store, outVal map[string]uint64) {
	t.Helper()
	rows, err := store.Query(ctx, `SELECT prev_tx_hash, prev_vout, amount, prev_found FROM canonical_inputs`)
	require.NoError(t, err)
	defer rows.Close()
	resolved := 0
	for rows.Next() {
		var prevTx string
		var vout uint32
		var amount uint64
		var found uint8
		require.NoError(t, rows.Scan(&prevTx, &vout, &amount, &found))
		want, inRange := outVal[fmt.Sprintf("%s/%d", prevTx, vout)]
		require.Equal(t, inRange, found == 1, "input spending %s:%d", prevTx, vout)
		if inRange {
			require.Equal(t, want, amount, "input spending %s:%d", prevTx, vout)
			resolved++
		}
	}
	require.NoError(t, rows.Err())
	require.Positive(t, resolved, "no input was resolved to an output")
}

// watchedChain starts a btcd regtest node with a funded wallet, a broker,
// and a watcher publishing the node's chain from height 100.
func watchedChain(t testing.TB, ctx context.Context, seed uint64) (*btcnode.Node, *btcnode.Wallet, []string, *kafka.Producer, *follow.Follower) {
	t.Helper()
	node, wallet, src := pipetest.BTCNode(t, seed)
	brokers, prod, f := pipetest.Stream(t, ctx, chain.BTC, "regtest", src, 100)
	return node, wallet, brokers, prod, f
}

// TestLoaderEthereumCanonical: an Ethereum devnet with random traffic
// (payments, tokens, NFTs, failing calls, contract creations) and reorgs,
// through the watcher and Kafka into ClickHouse. The canonical views hold
// exactly the node's chain: its blocks, each block's transactions, and
// each transfer the stream carries for the canonical blocks, once.
func TestLoaderEthereumCanonical(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dev, pipe := pipetest.ETH(t, ctx, 17)
	traffic, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{TxPerBlock: 10, Seed: 17}, nil)
	require.NoError(t, err)
	for round := 1; round <= 24; round++ {
		require.NoError(t, traffic.Step(ctx, 10))
		if round%6 == 0 {
			pipe.WaitLoaded(t, ctx, dev.Head().Hash().Hex())
			require.NoError(t, traffic.Reorg(ctx, 1+round/12))
		}
	}
	tip := dev.Head()
	pipe.WaitLoaded(t, ctx, tip.Hash().Hex())

	strs := func(query string, args ...any) []string {
		rows, err := pipe.Store.Query(ctx, query, args...)
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out = append(out, s)
		}
		require.NoError(t, rows.Err())
		return out
	}
	// Blocks and transactions: the node's, height by height.
	var wantBlocks, wantTxs []string
	for h := uint64(0); h <= tip.Number.Uint64(); h++ {
		b, err := dev.Client().BlockByNumber(ctx, new(big.Int).SetUint64(h))
		require.NoError(t, err)
		wantBlocks = append(wantBlocks, fmt.Sprintf("%d %s", h, strings.ToLower(b.Hash().Hex())))
		for _, tx := range b.Transactions() {
			wantTxs = append(wantTxs, fmt.Sprintf("%d %s", h, strings.ToLower(tx.Hash().Hex())))
		}
	}
	require.Equal(t, wantBlocks, strs(`SELECT concat(toString(height), ' ', hash) FROM canonical_blocks WHERE chain = 'eth' ORDER BY height`))
	require.Equal(t, wantTxs, strs(`SELECT concat(toString(block_number), ' ', hash) FROM canonical_transactions ORDER BY block_number, tx_index`))

	// Transfers: what a consumer applying the stream holds for the
	// canonical blocks, each once.
	st, _, err := pipe.Producer.ReadStream(ctx, chain.ETH, pipetest.ETHNetwork)
	require.NoError(t, err)
	canon := map[string]bool{}
	for _, h := range st.Chain {
		canon[h.Hash] = true
	}
	want := map[string]bool{}
	require.NoError(t, pipe.Producer.ReadParts(ctx, pipe.Producer.Topics().Transfers, func(p kafka.Part) error {
		trs, err := kafka.Items[chain.Transfer](p)
		require.NoError(t, err)
		for _, tr := range trs {
			if canon[tr.BlockHash] {
				want[fmt.Sprintf("%s/%s/%s", tr.Key(), tr.From+">"+tr.To, tr.Amount)] = true
			}
		}
		return nil
	}))
	got := strs(`SELECT concat('eth/devnet/', block_hash, '/', tx_hash, '/', if(log_index < 0, 'native', toString(log_index)),
		'/', from_address, '>', to_address, '/', amount) FROM canonical_transfers`)
	require.Len(t, got, len(want), "each canonical transfer once")
	for _, k := range got {
		require.True(t, want[k], "unexpected row %s", k)
	}
	require.Greater(t, len(want), 100)
	var removed uint64
	require.NoError(t, pipe.Store.QueryRow(ctx, `SELECT count() FROM blocks FINAL WHERE chain = 'eth' AND removed = 1`).Scan(&removed))
	require.Positive(t, removed, "the reorgs removed blocks")
}

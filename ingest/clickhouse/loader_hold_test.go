package clickhouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/clickhouse/chtest"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
)

// TestLoaderHoldsEventsUntilRowsAreIn: a block's event reaches a loader
// that has none of its rows (they are in other partitions, loaded by
// another instance of the group, or not at all yet). The block must not
// show in the canonical views, and the event's offset must not be
// committed: the loader is stopped while holding it, the rows are loaded
// by a loader of another group, and a new loader of the first group gets
// the event again and inserts it once ClickHouse holds every row.
func TestLoaderHoldsEventsUntilRowsAreIn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers, prod := pipetest.Producer(t)
	hdr := chain.Header{Chain: chain.ETH, Network: "hold", Height: 1, Hash: "0x" + fmt.Sprintf("%064x", 7), ParentHash: "0x" + fmt.Sprintf("%064x", 6), Time: 1_700_000_000}
	blk := &chain.Block{Header: hdr}
	for i := range 50 {
		li := uint32(i)
		blk.Transfers = append(blk.Transfers, chain.Transfer{V: chain.SchemaVersion, Chain: chain.ETH, Network: "hold", Asset: chain.AssetNative,
			Standard: chain.StandardNative, TxHash: fmt.Sprintf("0x%064x", 1000+i), LogIndex: &li, From: fmt.Sprintf("0x%040x", i), To: fmt.Sprintf("0x%040x", i+1),
			Amount: chain.AmountFromUint64(uint64(i + 1)), BlockHeight: 1, BlockHash: hdr.Hash, BlockTime: hdr.Time})
	}
	ev := chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockAdded, Seq: 1, Header: hdr, TransferCount: len(blk.Transfers)}
	require.NoError(t, prod.Publish(ctx, []chain.Update{{Event: ev, Block: blk}}))

	srv := chtest.Server(t)
	store := open(t, srv.Addr(), "cordon")
	require.NoError(t, store.Migrate(ctx, clickhouse.Schema))
	tp := prod.Topics()
	run := func(group string, topics []string, metrics *clickhouse.LoaderMetrics) func() {
		consumer, err := kafka.NewConsumer(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers}, group, topics)
		require.NoError(t, err)
		lctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = clickhouse.NewLoader(clickhouse.LoaderConfig{Linger: 20 * time.Millisecond, CheckAfter: 100 * time.Millisecond}, store, consumer, metrics, nil).Run(lctx)
			_ = consumer.Close()
		}()
		return func() { stop(); <-done }
	}
	canonical := func() (blocks, transfers uint64) {
		require.NoError(t, store.QueryRow(ctx, `SELECT count() FROM canonical_blocks WHERE network = 'hold'`).Scan(&blocks))
		require.NoError(t, store.QueryRow(ctx, `SELECT count() FROM canonical_transfers WHERE network = 'hold'`).Scan(&transfers))
		return blocks, transfers
	}

	// The events' loader sees the event and none of its rows: it holds it.
	m1 := clickhouse.NewLoaderMetrics(nil)
	stop := run("events", []string{tp.Blocks}, m1)
	require.Eventually(t, func() bool { return testutil.ToFloat64(m1.Held()) == 1 }, 30*time.Second, 50*time.Millisecond)
	time.Sleep(time.Second)
	b, _ := canonical()
	require.Zero(t, b, "the block is shown before its rows are in")
	stop()

	// Another group loads the rows; the block still is not canonical.
	stopParts := run("parts", []string{tp.Transactions, tp.Transfers}, clickhouse.NewLoaderMetrics(nil))
	defer stopParts()
	require.Eventually(t, func() bool {
		var n uint64
		require.NoError(t, store.QueryRow(ctx, `SELECT count() FROM transfers WHERE network = 'hold'`).Scan(&n))
		return n == 50
	}, 30*time.Second, 50*time.Millisecond)
	b, _ = canonical()
	require.Zero(t, b)

	// A new loader of the first group gets the uncommitted event again and
	// inserts it: the rows are all in ClickHouse.
	m2 := clickhouse.NewLoaderMetrics(nil)
	stop = run("events", []string{tp.Blocks}, m2)
	defer stop()
	require.Eventually(t, func() bool { b, tr := canonical(); return b == 1 && tr == 50 }, 30*time.Second, 50*time.Millisecond,
		"the held event was lost or never released")
	require.Eventually(t, func() bool { return testutil.ToFloat64(m2.Held()) == 0 }, 10*time.Second, 50*time.Millisecond)
}

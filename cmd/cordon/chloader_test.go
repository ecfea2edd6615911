package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/clickhouse/chtest"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/intel"
)

// TestIndicatorCopyKeepsEveryFeed: the ClickHouse copy of cordon.intel
// under issue 13 §3's attack — a partner CSV whose rows carry OFAC
// indicators' ids on the same addresses, revoked, imported after OFAC's
// list. Every OFAC address stays in active_indicators (what analysts and
// the retro-hunt read), beside the partner's own rows.
func TestIndicatorCopyKeepsEveryFeed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kc := kafka.Config{Auth: kafkatest.Keys(), Brokers: kafkatest.Brokers(t), CreateTopics: true}
	tp, err := intel.OpenTopic(kc)
	require.NoError(t, err)
	require.NoError(t, tp.Ensure(ctx))
	srv := chtest.Server(t)
	store, err := clickhouse.Open(ctx, clickhouse.Config{Addrs: []string{srv.Addr()}, Database: "cordon"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	require.NoError(t, store.Migrate(ctx, clickhouse.Schema))

	b, err := os.ReadFile(filepath.Join("..", "..", "intel", "testdata", "ofac", "sanctioned_addresses_XBT.txt"))
	require.NoError(t, err)
	at := time.Now().UTC().Truncate(time.Second)
	ofac, err := intel.ParseOFACList(b, "ofac:XBT", "XBT", at)
	require.NoError(t, err)
	_, err = intel.Import(ctx, tp, ofac, intel.ImportOptions{Now: at})
	require.NoError(t, err)
	var csv strings.Builder
	csv.WriteString("id,address,chain,category,revoked\n")
	for _, in := range ofac.Indicators {
		fmt.Fprintf(&csv, "%s,%s,btc,other,true\n", in.ID, in.Value)
	}
	partner, err := intel.ParseCSV([]byte(csv.String()), "csv:partner", "partner-x", "", at)
	require.NoError(t, err)
	_, err = intel.Import(ctx, tp, partner, intel.ImportOptions{Now: at.Add(time.Minute)})
	require.NoError(t, err)

	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- copyIndicators(cctx, tp, store, "test-loader-intel", slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { stop(); <-done })
	count := func(q string) int {
		var n uint64
		require.NoError(t, store.QueryRow(ctx, q).Scan(&n))
		return int(n)
	}
	want := len(ofac.Indicators)
	require.Eventually(t, func() bool {
		return count(`SELECT count() FROM indicators WHERE feed = 'csv:partner'`) == want
	}, time.Minute, 50*time.Millisecond, "the partner's rows reach ClickHouse")
	require.Equal(t, want, count(`SELECT count() FROM active_indicators WHERE source = 'ofac' AND category = 'sanctions'`),
		"every OFAC address is still listed")
	require.Equal(t, want, count(`SELECT uniqExact(value) FROM active_indicators WHERE source = 'ofac'`))
	require.Zero(t, count(`SELECT count() FROM active_indicators WHERE feed = 'csv:partner'`), "the partner's own rows are revoked")
}

// TestIndicatorCopyMigration: rows copied before indicators were keyed
// by feed (bare ids) leave the indicators table with migration 6, as
// cordon no longer matches their records; rows keyed feed/id stay.
func TestIndicatorCopyMigration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := chtest.Server(t)
	store, err := clickhouse.Open(ctx, clickhouse.Config{Addrs: []string{srv.Addr()}, Database: "cordon"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	var before []clickhouse.Migration
	for _, m := range clickhouse.Schema {
		if m.Version < 6 {
			before = append(before, m)
		}
	}
	require.NoError(t, store.Migrate(ctx, before))
	const id = "indicator--479dacd3-a772-5d96-a52b-d2f8603cca51"
	for _, rowID := range []string{id, "ofac:XBT/" + id} {
		require.NoError(t, store.Exec(ctx, `INSERT INTO indicators (id, kind, chain, network, value, category, source, confidence, tlp,
			valid_from, valid_until, revoked, created, modified, feed, feed_version, description, refs)
			SELECT ?, 'address', 'btc', 'mainnet', '123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX', 'sanctions', 'ofac', 100, 'clear',
			toDateTime(0), toDateTime(0), 0, now(), now(), 'ofac:XBT', 'v1', '', '[]'`, rowID))
	}
	require.NoError(t, store.Migrate(ctx, clickhouse.Schema))
	require.NoError(t, store.Migrate(ctx, clickhouse.Schema), "idempotent")
	ids := func() []string {
		rows, err := store.Query(ctx, `SELECT id FROM active_indicators ORDER BY id`)
		require.NoError(t, err)
		defer func() { _ = rows.Close() }()
		var out []string
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out = append(out, s)
		}
		return out
	}
	// ClickHouse 18.16 runs the DELETE as an asynchronous mutation.
	require.Eventually(t, func() bool { return len(ids()) == 1 }, time.Minute, 50*time.Millisecond)
	require.Equal(t, []string{"ofac:XBT/" + id}, ids())
}

package trace_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/forensics/trace"
	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/clickhouse/chtest"
	"github.com/cordonhq/cordon/internal/chain"
)

// benchAddr is the SQL of the 0x address of account x (40 hex digits).
func benchAddr(x string) string {
	return fmt.Sprintf("concat('0x', lower(hex(cityHash64(%[1]s))), lower(hex(cityHash64(%[1]s, 1))), substring(lower(hex(cityHash64(%[1]s, 2))), 1, 8))", x)
}

// BenchmarkTrace traces 3 hops forward and backward over CORDON_BENCH_TRANSFERS
// transfers (default 10,000,000) among 1,000,000 addresses in 100-transfer
// blocks, generated inside ClickHouse and copied by the schema's views
// like loaded rows. Each start address sends about 10 transfers; a trace
// reads about 1,000 edges at its third hop.
func BenchmarkTrace(b *testing.B) {
	n := 10_000_000
	if v, err := strconv.Atoi(os.Getenv("CORDON_BENCH_TRANSFERS")); err == nil && v > 0 {
		n = v
	}
	const accounts, perBlock = 1_000_000, 100
	ctx := context.Background()
	srv := chtest.Server(b)
	store, err := clickhouse.Open(ctx, clickhouse.Config{Addrs: []string{srv.Addr()}, Database: "cordon"})
	require.NoError(b, err)
	defer store.Close()
	require.NoError(b, store.Migrate(ctx, clickhouse.Schema))
	start := time.Now()
	require.NoError(b, store.Exec(ctx, fmt.Sprintf(`INSERT INTO blocks (chain, network, height, hash, parent_hash, time, seq, removed,
		tx_count, transfer_count, output_count, spend_count, miner, base_fee)
		SELECT 'eth', 'bench', number, concat('0xb', lower(hex(number))), concat('0xb', lower(hex(toUInt64(number - 1)))),
			toDateTime(1600000000 + number * 12), number + 1, 0, %[1]d, %[1]d, 0, 0, '', ''
		FROM numbers(%[2]d)`, perBlock, n/perBlock)))
	require.NoError(b, store.Exec(ctx, fmt.Sprintf(`INSERT INTO transfers (chain, network, block_number, block_hash, block_time, tx_hash,
		tx_index, log_index, asset, standard, from_address, to_address, amount, token_id)
		SELECT 'eth', 'bench', intDiv(number, %[1]d), concat('0xb', lower(hex(intDiv(number, %[1]d)))),
			toDateTime(1600000000 + intDiv(number, %[1]d) * 12), concat('0x', lower(hex(cityHash64(number, 7))), lower(hex(cityHash64(number, 8)))),
			number %% %[1]d, -1, 'native', 'native', %[2]s, %[3]s, toString(cityHash64(number, 9) %% 1000000000000000000), ''
		FROM numbers(%[4]d)`, perBlock, benchAddr(fmt.Sprintf("number %% %d", accounts)), benchAddr(fmt.Sprintf("cityHash64(number) %% %d", accounts)), n)))
	var rows uint64
	require.NoError(b, store.QueryRow(ctx, `SELECT count() FROM transfers_by_to`).Scan(&rows))
	b.Logf("%d transfers generated and copied in %s", rows, time.Since(start).Round(time.Second))
	// Let background merges settle before measuring.
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		var merges uint64
		require.NoError(b, store.QueryRow(ctx, `SELECT count() FROM system.merges`).Scan(&merges))
		if merges == 0 {
			break
		}
	}

	var starts []string
	rs, err := store.Query(ctx, `SELECT `+benchAddr("toUInt64(number * 7919)")+` FROM numbers(20)`)
	require.NoError(b, err)
	for rs.Next() {
		var a string
		require.NoError(b, rs.Scan(&a))
		starts = append(starts, a)
	}
	rs.Close()
	for _, backward := range []bool{false, true} {
		var times []time.Duration
		edges := 0
		for _, a := range starts {
			t0 := time.Now()
			res, err := trace.Run(ctx, store, trace.Options{Chain: chain.ETH, Network: "bench", From: []string{a}, Hops: 3, Backward: backward})
			require.NoError(b, err)
			times = append(times, time.Since(t0))
			edges += len(res.Edges)
		}
		require.Positive(b, edges)
		slices.Sort(times)
		dir := "forward"
		if backward {
			dir = "backward"
		}
		b.Logf("3 hops %s from %d addresses over %d transfers: median %s, p90 %s, max %s; %d edges per trace on average",
			dir, len(starts), rows, times[len(times)/2].Round(time.Millisecond), times[len(times)*9/10].Round(time.Millisecond),
			times[len(times)-1].Round(time.Millisecond), edges/len(starts))
		b.ReportMetric(times[len(times)/2].Seconds(), dir+"-median-s")
		b.ReportMetric(times[len(times)-1].Seconds(), dir+"-max-s")
	}
}

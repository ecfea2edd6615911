package clickhouse_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/clickhouse/chtest"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/testkit"
)

func TestMain(m *testing.M) {
	if testkit.ChildMode() == "kafka" {
		kafkatest.Serve()
		return
	}
	os.Exit(m.Run())
}

// BenchmarkLoadTransfers measures the loader (Kafka → ClickHouse, native
// protocol) against the limit: clickhouse-client inserting the same rows
// as TSV into the same server, into an identically migrated database.
// The broker runs in a helper process; CORDON_BENCH_ROWS transfers
// (default 2,000,000) in blocks of 2,000 are published once. Rounds
// alternate (client, loader) three times; medians are reported.
// CORDON_BENCH_NO_COPY=1 drops the view that copies transfers into
// transfers_by_to, to measure one table.
func BenchmarkLoadTransfers(b *testing.B) {
	n := 2_000_000
	if v, err := strconv.Atoi(os.Getenv("CORDON_BENCH_ROWS")); err == nil && v > 0 {
		n = v
	}
	const perBlock = 2000
	client, err := exec.LookPath("clickhouse-client")
	if err != nil {
		b.Skip("clickhouse-client not installed")
	}
	ctx := context.Background()
	_, f := testkit.SpawnChild(b, "kafka")
	brokers := strings.Split(f[0], ",")
	srv := chtest.Server(b)
	prod, err := kafka.New(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true, Partitions: 1}, nil, nil)
	require.NoError(b, err)
	defer prod.Close()
	require.NoError(b, prod.EnsureTopics(ctx))

	// The same rows for both: published as the watcher does, and as TSV.
	tsvPath := filepath.Join(b.TempDir(), "transfers.tsv")
	tsvFile, err := os.Create(tsvPath)
	require.NoError(b, err)
	tsv := bufio.NewWriterSize(tsvFile, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	hex40 := func() string { return fmt.Sprintf("0x%016x%016x%08x", rng.Uint64(), rng.Uint64(), rng.Uint32()) }
	hex64 := func() string {
		return fmt.Sprintf("0x%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64())
	}
	addrs := make([]string, 100_000)
	for i := range addrs {
		addrs[i] = hex40()
	}
	token := hex40()
	blocks := n / perBlock
	parent := hex64()
	for h := range blocks {
		bt := int64(1_700_000_000 + h*12)
		hdr := chain.Header{Chain: chain.ETH, Network: "bench", Height: uint64(h + 1), Hash: hex64(), ParentHash: parent, Time: bt}
		parent = hdr.Hash
		blk := &chain.Block{Header: hdr, Transfers: make([]chain.Transfer, perBlock)}
		for i := range blk.Transfers {
			li := uint32(i)
			tr := chain.Transfer{V: chain.SchemaVersion, Chain: chain.ETH, Network: "bench", Asset: token, Standard: chain.StandardERC20,
				TxHash: hex64(), TxIndex: uint32(i / 2), LogIndex: &li, From: addrs[rng.IntN(len(addrs))], To: addrs[rng.IntN(len(addrs))],
				Amount: chain.AmountFromUint64(rng.Uint64N(1e18)), BlockHeight: hdr.Height, BlockHash: hdr.Hash, BlockTime: bt}
			blk.Transfers[i] = tr
			fmt.Fprintf(tsv, "eth\tbench\t%d\t%s\t%s\t%s\t%d\t%d\t%s\terc20\t%s\t%s\t%s\t\n", tr.BlockHeight, tr.BlockHash,
				time.Unix(bt, 0).Format("2006-01-02 15:04:05"), tr.TxHash, tr.TxIndex, li, tr.Asset, tr.From, tr.To, tr.Amount.String())
		}
		ev := chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockAdded, Seq: uint64(h + 1), Header: hdr, TransferCount: perBlock}
		require.NoError(b, prod.Publish(ctx, []chain.Update{{Event: ev, Block: blk}}))
	}
	require.NoError(b, tsv.Flush())
	require.NoError(b, tsvFile.Close())
	rows := blocks * perBlock
	b.Logf("%d transfers in %d blocks published; TSV %d MiB", rows, blocks, fileMiB(tsvPath))

	_, port, _ := strings.Cut(srv.Addr(), ":")
	migrated := func(db string) *clickhouse.Store {
		s, err := clickhouse.Open(ctx, clickhouse.Config{Addrs: []string{srv.Addr()}, Database: db})
		require.NoError(b, err)
		require.NoError(b, s.Migrate(ctx, clickhouse.Schema))
		if os.Getenv("CORDON_BENCH_NO_COPY") != "" {
			// Without the receiver-ordered copy: what one table costs.
			require.NoError(b, s.Exec(ctx, "DROP TABLE transfers_by_to_mv"))
		}
		return s
	}
	count := func(s *clickhouse.Store) uint64 {
		var c uint64
		require.NoError(b, s.QueryRow(ctx, `SELECT count() FROM transfers`).Scan(&c))
		return c
	}
	var loaderT, clientT []time.Duration
	for round := range 3 {
		// The limit: clickhouse-client piping the TSV in.
		cdb := fmt.Sprint("client", round)
		cs := migrated(cdb)
		in, err := os.Open(tsvPath)
		require.NoError(b, err)
		cmd := exec.Command(client, "--host", "127.0.0.1", "--port", port, "-d", cdb, "--query", //nolint:noctx,gosec // benchmark
			"INSERT INTO transfers (chain, network, block_number, block_hash, block_time, tx_hash, tx_index, log_index, asset, standard, from_address, to_address, amount, token_id) FORMAT TabSeparated")
		cmd.Stdin = in
		srvCPU := testkit.CPUSeconds(srv.Pid())
		start := time.Now()
		out, err := cmd.CombinedOutput()
		clientT = append(clientT, time.Since(start))
		clientSrvCPU := testkit.CPUSeconds(srv.Pid()) - srvCPU
		_ = in.Close()
		require.NoError(b, err, string(out))
		require.Equal(b, uint64(rows), count(cs))
		_ = cs.Close()

		// The loader, from the start of the topics.
		ldb := fmt.Sprint("loader", round)
		ls := migrated(ldb)
		tp := prod.Topics()
		consumer, err := kafka.NewConsumer(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers}, "bench-"+ldb, []string{tp.Blocks, tp.Transfers})
		require.NoError(b, err)
		metrics := clickhouse.NewLoaderMetrics(nil)
		loader := clickhouse.NewLoader(clickhouse.LoaderConfig{BatchRecords: 5000, Linger: 50 * time.Millisecond}, ls, consumer, metrics, nil)
		lctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		srvCPU, ownCPU := testkit.CPUSeconds(srv.Pid()), testkit.CPUSeconds(0)
		start = time.Now()
		go func() { done <- loader.Run(lctx) }()
		for metrics.Rows() < uint64(rows+blocks) {
			time.Sleep(5 * time.Millisecond)
		}
		loaderT = append(loaderT, time.Since(start))
		loaderSrvCPU, loaderCPU := testkit.CPUSeconds(srv.Pid())-srvCPU, testkit.CPUSeconds(0)-ownCPU
		stop()
		<-done
		_ = consumer.Close()
		require.Equal(b, uint64(rows), count(ls))
		_ = ls.Close()
		b.Logf("round %d: clickhouse-client %s (%.0f rows/s; server %.1f CPU-s), loader %s (%.0f rows/s; server %.1f CPU-s, loader %.1f CPU-s)",
			round+1, clientT[round].Round(time.Millisecond), float64(rows)/clientT[round].Seconds(), clientSrvCPU,
			loaderT[round].Round(time.Millisecond), float64(rows)/loaderT[round].Seconds(), loaderSrvCPU, loaderCPU)
	}
	lm, cm := medianDur(loaderT), medianDur(clientT)
	b.ReportMetric(float64(rows)/lm.Seconds(), "loader-rows/s")
	b.ReportMetric(float64(rows)/cm.Seconds(), "client-rows/s")
	b.ReportMetric(cm.Seconds()/lm.Seconds(), "ratio")
}

func fileMiB(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size() >> 20
}

func medianDur(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

package btc_test

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/testkit"
	"github.com/cordonhq/cordon/watchers/btc"
	"github.com/cordonhq/cordon/watchers/btc/btcnode"
	"github.com/cordonhq/cordon/watchers/btc/btctest"
	"github.com/cordonhq/cordon/watchers/follow"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkBackfill measures a backfill from a local btcd into Kafka
// against the ceiling: fetching the same raw blocks (getblockhash +
// getblock verbosity 0, hex decoded) with the same parallelism and doing
// nothing with them. The chain has CORDON_BENCH_BLOCKS blocks (default
// 300) of CORDON_BENCH_TXS transactions (default 100) of up to two inputs
// paying CORDON_BENCH_OUTS addresses (default 3) plus change. Rounds alternate (raw, backfill) three times; medians are
// reported. The Kafka broker (kfake) runs in this process, so its work
// counts against the backfill.
func BenchmarkBackfill(b *testing.B) {
	blocks := envInt("CORDON_BENCH_BLOCKS", 300)
	txs := envInt("CORDON_BENCH_TXS", 100)
	outs := envInt("CORDON_BENCH_OUTS", 3)
	parallel := envInt("CORDON_BENCH_PARALLEL", 8)
	addr, err := btcnode.MiningAddress("simnet", "bench")
	if err != nil {
		b.Fatal(err)
	}
	node := btctest.Node(b, "simnet", addr)
	w, err := btcnode.NewWallet(node, "simnet", "bench", 1)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Bootstrap(); err != nil {
		b.Fatal(err)
	}
	start, _ := w.Height()
	built := time.Now()
	for range blocks {
		for range txs {
			if _, err := w.Pay(2, outs); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Mine(1); err != nil {
			b.Fatal(err)
		}
	}
	tip, _ := w.Height()
	b.Logf("chain: blocks %d-%d with %d txs of up to 2 inputs and %d payments + change each, built in %s", start+1, tip, txs, outs, time.Since(built).Round(time.Second))
	eps := []btc.EndpointConfig{{Name: "btcd", URL: config.SecretValue(node.URL), User: node.User(), Password: config.SecretValue(node.Password())}}
	if os.Getenv("CORDON_BENCH_QUORUM") != "" {
		// Three endpoints (the node behind three names), the default
		// quorum of two: every block is agreed before it is fetched.
		for _, name := range []string{"btcd-b", "btcd-c"} {
			ep := eps[0]
			ep.Name = name
			eps = append(eps, ep)
		}
	}
	src, err := btc.NewSource(btc.Config{Network: "simnet", Clients: parallel + 2, Endpoints: eps}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	from, to := uint64(start+1), uint64(tip)

	var raws, nulls, fulls []time.Duration
	var outputs int
	b.ResetTimer()
	if path := os.Getenv("CORDON_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	for round := range 3 {
		c0, n0 := testkit.CPUSeconds(0), testkit.CPUSeconds(node.Pid())
		raws = append(raws, rawFetch(b, src, from, to, parallel))
		c1, n1 := testkit.CPUSeconds(0), testkit.CPUSeconds(node.Pid())
		nulls = append(nulls, follow1(b, src, &nullSink{}, from, to, parallel))
		c2, n2 := testkit.CPUSeconds(0), testkit.CPUSeconds(node.Pid())
		d, n := backfill(b, src, from, to, parallel)
		c3, n3 := testkit.CPUSeconds(0), testkit.CPUSeconds(node.Pid())
		fulls = append(fulls, d)
		outputs = n
		b.Logf("round %d: raw fetch %v (CPU-s: watcher %.2f, btcd %.2f); no kafka %v (watcher %.2f, btcd %.2f); "+
			"backfill %v (watcher %.2f, btcd %.2f, broker %.2f)", round, raws[round].Round(time.Millisecond), c1-c0, n1-n0,
			nulls[round].Round(time.Millisecond), c2-c1, n2-n1, d.Round(time.Millisecond), c3-c2, n3-n2, lastKafkaCPU)
	}
	b.StopTimer()
	raw, null, full := median(raws), median(nulls), median(fulls)
	n := float64(to - from + 1)
	b.ReportMetric(n/raw.Seconds(), "raw-blocks/s")
	b.ReportMetric(n/full.Seconds(), "backfill-blocks/s")
	b.ReportMetric(float64(outputs)/full.Seconds(), "outputs/s")
	b.ReportMetric(raw.Seconds()/null.Seconds(), "ratio-no-kafka")
	b.ReportMetric(raw.Seconds()/full.Seconds(), "ratio")
}

func rawFetch(b *testing.B, src *btc.Source, from, to uint64, parallel int) time.Duration {
	ctx := context.Background()
	var next atomic.Uint64
	next.Store(from)
	var wg sync.WaitGroup
	var failed atomic.Value
	started := time.Now()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := next.Add(1) - 1; h <= to; h = next.Add(1) - 1 {
				if _, err := src.RawBlockAt(ctx, h); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	return time.Since(started)
}

// backfill runs a Follower from an empty stream on a fresh broker until it
// has published height to, and returns the time and the outputs published.
func backfill(b *testing.B, src *btc.Source, from, to uint64, parallel int) (time.Duration, int) {
	brokers, stop := spawnKafka(b)
	defer func() { lastKafkaCPU = testkit.CPUSeconds(kafkaPid); stop() }()
	prod, err := kafka.New(kafka.Config{Brokers: brokers, CreateTopics: true, Partitions: 3,
		Compression: envOr("CORDON_BENCH_COMPRESSION", "lz4")}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	if err := prod.EnsureTopics(context.Background()); err != nil {
		b.Fatal(err)
	}
	cs := &countingSink{Producer: prod}
	return follow1(b, src, cs, from, to, parallel), cs.outputs
}

// follow1 runs a Follower into sink from from until it has published to.
func follow1(b *testing.B, src *btc.Source, sink follow.Sink, from, to uint64, parallel int) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := follow.New(follow.Config{Chain: chain.BTC, Network: "simnet", StartHeight: follow.StartAt(from), Parallel: parallel,
		BatchBlocks: envInt("CORDON_BENCH_BATCH_BLOCKS", 8), PollInterval: 10 * time.Millisecond}, src, sink, nil, nil, nil, nil)
	started := time.Now()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	for {
		if st := f.Status(); st.Height >= to && st.Blocks > 0 {
			d := time.Since(started)
			cancel()
			<-done
			return d
		}
		select {
		case err := <-done:
			b.Fatal(fmt.Errorf("follower stopped: %w", err))
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// nullSink accepts everything: the watcher without Kafka.
type nullSink struct{}

func (nullSink) Publish(context.Context, []chain.Update) error { return nil }
func (nullSink) Checkpoint(context.Context, chain.Chain, string, int) (chain.Checkpoint, error) {
	return chain.Checkpoint{NextSeq: 1}, nil
}

// countingSink counts the outputs published.
type countingSink struct {
	*kafka.Producer
	outputs int
}

func (c *countingSink) Publish(ctx context.Context, u []chain.Update) error {
	for _, x := range u {
		if x.Block != nil {
			c.outputs += len(x.Block.Outputs)
		}
	}
	return c.Producer.Publish(ctx, u)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func TestMain(m *testing.M) {
	if testkit.ChildMode() == "kafka" {
		kafkatest.Serve()
		return
	}
	os.Exit(m.Run())
}

// spawnKafka starts a broker in a helper process; kafkaPid is its pid.
func spawnKafka(b *testing.B) ([]string, func()) {
	pid, f := testkit.SpawnChild(b, "kafka")
	kafkaPid = pid
	return strings.Split(f[0], ","), func() {}
}

// kafkaPid is the pid of the last broker helper started; lastKafkaCPU is
// the CPU time the last backfill's broker used.
var (
	kafkaPid     int
	lastKafkaCPU float64
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

package eth_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/testkit"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
	"github.com/cordonhq/cordon/watchers/follow"
)

// benchBlocks is the length of the backfill benchmark's chain
// (CORDON_BENCH_BLOCKS, default 2000).
func benchBlocks() int {
	if n, err := strconv.Atoi(os.Getenv("CORDON_BENCH_BLOCKS")); err == nil && n > 0 {
		return n
	}
	return 2000
}

// fetchOnly fetches every block (with its transactions) and its receipts
// over plain HTTP JSON-RPC with the same parallelism, reads each reply in
// full and discards it: the node-side ceiling of a backfill, with no
// decoding at all on this side.
func fetchOnly(b *testing.B, url string, from, to uint64, parallel int) time.Duration {
	// Same transport settings as the watcher: no gzip from a local node.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: parallel, DisableCompression: true}}
	post := func(method, params string) error {
		body := `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":` + params + `}`
		resp, err := client.Post(url, "application/json", strings.NewReader(body)) //nolint:noctx // benchmark
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil && (resp.StatusCode != http.StatusOK || n < 30) {
			err = fmt.Errorf("%s: HTTP %d, %d bytes", method, resp.StatusCode, n)
		}
		return err
	}
	var next atomic.Uint64
	next.Store(from)
	var wg sync.WaitGroup
	start := time.Now()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				h := next.Add(1) - 1
				if h > to {
					return
				}
				num := `"` + hexutil.EncodeUint64(h) + `"`
				if err := post("eth_getBlockByNumber", "["+num+",true]"); err != nil {
					b.Error(err)
					return
				}
				if err := post("eth_getBlockReceipts", "["+num+"]"); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// timedSink measures the time spent in Publish.
type timedSink struct {
	*kafka.Producer
	calls, events atomic.Int64
	busy          atomic.Int64 // nanoseconds
}

func (s *timedSink) Publish(ctx context.Context, us []chain.Update) error {
	start := time.Now()
	err := s.Producer.Publish(ctx, us)
	s.busy.Add(int64(time.Since(start)))
	s.calls.Add(1)
	s.events.Add(int64(len(us)))
	return err
}

// infra is a devnet (with a chain of n blocks of traffic) and a Kafka
// broker, each in a child process, so that the benchmark process holds
// only the watcher: its heap is the watcher's, the broker's growing log
// does not slow the node, and both compete for the CPU as services on the
// same machine would.
type infra struct {
	devPID, kafkaPID int
	rpcURL           string
	brokers          []string
	head             uint64
	txs              int64
}

func TestMain(m *testing.M) {
	switch mode := testkit.ChildMode(); mode {
	case "":
		os.Exit(m.Run())
	case "kafka":
		kafkatest.Serve()
	default:
		serveDevnet(mode)
	}
}

// serveDevnet is a helper process: a devnet of n blocks of traffic. It
// prints one READY line and serves until its standard input closes.
func serveDevnet(mode string) {
	n, _ := strconv.Atoi(mode)
	ctx := context.Background()
	dev, err := devnet.Start(devnet.Config{Seed: "bench"})
	if err != nil {
		fmt.Println("ERR", err)
		return
	}
	defer dev.Close()
	tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{Seed: 1}, nil)
	if err != nil {
		fmt.Println("ERR", err)
		return
	}
	for dev.Head().Number.Uint64() < uint64(n) {
		if err := tr.Step(ctx, 20); err != nil {
			fmt.Println("ERR", err)
			return
		}
	}
	testkit.Ready(dev.HTTPURL(), dev.Head().Number.Uint64(), tr.Stats.Txs.Load())
	testkit.WaitStdin()
}

func startInfra(b *testing.B, blocks int) *infra {
	devPID, dev := testkit.SpawnChild(b, strconv.Itoa(blocks))
	kafkaPID, k := testkit.SpawnChild(b, "kafka")
	in := &infra{devPID: devPID, kafkaPID: kafkaPID, rpcURL: dev[0], brokers: strings.Split(k[0], ",")}
	in.head, _ = strconv.ParseUint(dev[1], 10, 64)
	in.txs, _ = strconv.ParseInt(dev[2], 10, 64)
	return in
}

// BenchmarkBackfill compares a full watcher backfill (fetch, decode,
// verify, normalize, publish to Kafka with acknowledgements) with merely
// fetching the same blocks and receipts over the same JSON-RPC, and samples
// the watcher's heap during the backfill. The node and the broker run in a
// child process.
func BenchmarkBackfill(b *testing.B) {
	const parallel = 8
	// The collector target cordon's main sets (cmd/cordon/main.go).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	in := startInfra(b, benchBlocks())
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("CORDON_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	b.ResetTimer()
	for b.Loop() {
		// Alternate fetch-only and watcher passes and compare medians, so
		// that a slow spell of this shared machine does not favour either.
		var fetch, watch []time.Duration
		var last backfillRun
		for r := range rounds {
			nodeCPU0 := testkit.CPUSeconds(in.devPID)
			fetch = append(fetch, fetchOnly(b, in.rpcURL, 0, in.head, parallel))
			nodeCPUFetch := testkit.CPUSeconds(in.devPID) - nodeCPU0
			last = runBackfill(b, in, fmt.Sprintf("bench%d", r), parallel)
			last.nodeCPUFetch = nodeCPUFetch
			watch = append(watch, last.dur)
			fmt.Fprintf(os.Stderr, "round %d: %d blocks (%d tx): fetch-only %s, watcher %s; cpu-s fetch-only node %.2f; watcher pass node %.2f kafka %.2f watcher %.2f\n",
				r, in.head+1, in.txs, fetch[r].Round(time.Millisecond), last.dur.Round(time.Millisecond),
				nodeCPUFetch, last.cpuNode, last.cpuKafka, last.cpuWatcher)
		}
		fetchRate := float64(in.head+1) / median(fetch).Seconds()
		watchRate := float64(in.head+1) / median(watch).Seconds()
		b.ReportMetric(fetchRate, "fetch-blocks/s")
		b.ReportMetric(watchRate, "watcher-blocks/s")
		b.ReportMetric(watchRate/fetchRate, "ratio")
		b.ReportMetric(float64(in.txs)/median(watch).Seconds(), "watcher-tx/s")
		heap := last.heap
		if len(heap) >= 10 {
			q := func(p float64) uint64 { return heap[int(p*float64(len(heap)-1))] }
			sorted := append([]uint64(nil), heap...)
			sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
			b.ReportMetric(float64(q(0.1))/(1<<20), "heap-MiB@10%")
			b.ReportMetric(float64(q(0.5))/(1<<20), "heap-MiB@50%")
			b.ReportMetric(float64(q(1))/(1<<20), "heap-MiB@100%")
			b.ReportMetric(float64(sorted[len(sorted)-1])/(1<<20), "heap-MiB-max")
		}
		b.ReportMetric(last.blocksPerPublish, "blocks/publish")
		b.ReportMetric(last.nodeCPUFetch, "node-cpu-s/fetch-only")
		b.ReportMetric(last.cpuNode, "node-cpu-s/watcher")
		b.ReportMetric(last.cpuKafka, "kafka-cpu-s/watcher")
		b.ReportMetric(last.cpuWatcher, "watcher-cpu-s")
	}
}

type backfillRun struct {
	dur                                         time.Duration
	heap                                        []uint64
	blocksPerPublish                            float64
	nodeCPUFetch, cpuNode, cpuKafka, cpuWatcher float64
}

// runBackfill runs one watcher over the whole chain into a fresh stream.
func runBackfill(b *testing.B, in *infra, network string, parallel int) backfillRun {
	ctx := context.Background()
	prod, err := kafka.New(kafka.Config{Brokers: in.brokers, CreateTopics: true, Partitions: 3, Linger: benchLinger()}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	if err := prod.EnsureTopics(ctx); err != nil {
		b.Fatal(err)
	}
	eps := []eth.EndpointConfig{{Name: "dev", URL: config.SecretValue(in.rpcURL)}}
	if os.Getenv("CORDON_BENCH_QUORUM") != "" {
		// Three endpoints (the node behind three names), the default
		// quorum of two: every block is agreed before it is fetched.
		eps = append(eps, eth.EndpointConfig{Name: "dev-b", URL: config.SecretValue(in.rpcURL)},
			eth.EndpointConfig{Name: "dev-c", URL: config.SecretValue(in.rpcURL)})
	}
	src, err := eth.NewSource(ctx, eth.Config{Network: network, ChainID: devnet.ChainID, Endpoints: eps}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	sink := &timedSink{Producer: prod}
	f := follow.New(follow.Config{Chain: chain.ETH, Network: network, Parallel: parallel, PollInterval: 10 * time.Millisecond},
		src, sink, nil, nil, nil, nil)
	var out backfillRun
	var ms runtime.MemStats
	cpu0 := [3]float64{testkit.CPUSeconds(in.devPID), testkit.CPUSeconds(in.kafkaPID), testkit.CPUSeconds(0)}
	start := time.Now()
	go func() { _ = f.Run(runCtx) }()
	for f.Status().Height < in.head || !f.Status().Loaded {
		time.Sleep(20 * time.Millisecond)
		runtime.ReadMemStats(&ms)
		out.heap = append(out.heap, ms.HeapInuse)
	}
	out.dur = time.Since(start)
	out.cpuNode, out.cpuKafka, out.cpuWatcher = testkit.CPUSeconds(in.devPID)-cpu0[0], testkit.CPUSeconds(in.kafkaPID)-cpu0[1], testkit.CPUSeconds(0)-cpu0[2]
	out.blocksPerPublish = float64(sink.events.Load()) / float64(sink.calls.Load())
	return out
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// benchLinger is kafka.linger for the benchmark (CORDON_BENCH_LINGER,
// default: the producer's default).
func benchLinger() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("CORDON_BENCH_LINGER"))
	return d
}

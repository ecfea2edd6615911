package eth_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
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

// fetchOnly fetches every block and its receipts over JSON-RPC with the
// same parallelism and discards them: the node-side ceiling of a backfill.
func fetchOnly(b *testing.B, url string, from, to uint64, parallel int) time.Duration {
	c, err := rpc.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
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
				var blk json.RawMessage
				if err := c.Call(&blk, "eth_getBlockByNumber", hexutil.EncodeUint64(h), true); err != nil {
					b.Error(err)
					return
				}
				var hdr struct {
					Hash string `json:"hash"`
				}
				if err := json.Unmarshal(blk, &hdr); err != nil {
					b.Error(err)
					return
				}
				var rcs json.RawMessage
				if err := c.Call(&rcs, "eth_getBlockReceipts", hdr.Hash); err != nil {
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
// broker running in a child process, so that the benchmark process holds
// only the watcher: its heap is the watcher's, and the node competes for
// the CPU as a real node on the same machine would.
type infra struct {
	cmd     *exec.Cmd
	rpcURL  string
	brokers []string
	head    uint64
	txs     int64
}

const infraEnv = "CORDON_BENCH_INFRA_BLOCKS"

func TestMain(m *testing.M) {
	if n := os.Getenv(infraEnv); n != "" {
		serveInfra(n)
		return
	}
	os.Exit(m.Run())
}

// serveInfra is the child process: it prints one line describing the
// services and serves until its standard input closes.
func serveInfra(blocks string) {
	n, _ := strconv.Atoi(blocks)
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
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		fmt.Println("ERR", err)
		return
	}
	defer cluster.Close()
	fmt.Println("READY", dev.HTTPURL(), strings.Join(cluster.ListenAddrs(), ","), dev.Head().Number.Uint64(), tr.Stats.Txs.Load())
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func startInfra(b *testing.B, blocks int) *infra {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", infraEnv, blocks))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(line)
	if len(f) != 5 || f[0] != "READY" {
		b.Fatalf("infra: %s", line)
	}
	in := &infra{cmd: cmd, rpcURL: f[1], brokers: strings.Split(f[2], ",")}
	in.head, _ = strconv.ParseUint(f[3], 10, 64)
	in.txs, _ = strconv.ParseInt(f[4], 10, 64)
	return in
}

// BenchmarkBackfill compares a full watcher backfill (fetch, decode,
// verify, normalize, publish to Kafka with acknowledgements) with merely
// fetching the same blocks and receipts over the same JSON-RPC, and samples
// the watcher's heap during the backfill. The node and the broker run in a
// child process.
func BenchmarkBackfill(b *testing.B) {
	const parallel = 8
	ctx := context.Background()
	in := startInfra(b, benchBlocks())
	head, txs := in.head, in.txs
	b.ResetTimer()
	for b.Loop() {
		fetchBefore := fetchOnly(b, in.rpcURL, 0, head, parallel)

		prod, err := kafka.New(kafka.Config{Brokers: in.brokers, CreateTopics: true, Partitions: 3}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := prod.EnsureTopics(ctx); err != nil {
			b.Fatal(err)
		}
		src, err := eth.NewSource(ctx, eth.Config{Network: network, ChainID: devnet.ChainID, VerifyHeaderHash: true,
			Endpoints: []eth.EndpointConfig{{Name: "dev", URL: in.rpcURL}}}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		sink := &timedSink{Producer: prod}
		f := follow.New(follow.Config{Chain: chain.ETH, Network: network, Parallel: parallel, PollInterval: 10 * time.Millisecond},
			src, sink, nil, nil, nil, nil)
		var heap []uint64
		var ms runtime.MemStats
		start := time.Now()
		go func() { _ = f.Run(runCtx) }()
		for f.Status().Height < head {
			time.Sleep(20 * time.Millisecond)
			runtime.ReadMemStats(&ms)
			heap = append(heap, ms.HeapInuse)
		}
		watchDur := time.Since(start)
		cancel()
		src.Close()
		_ = prod.Close()
		// Fetch again after the watcher and use the mean, so that a slow
		// spell of this shared machine does not favour either side.
		fetchAfter := fetchOnly(b, in.rpcURL, 0, head, parallel)
		fetchDur := (fetchBefore + fetchAfter) / 2
		fetchRate := float64(head+1) / fetchDur.Seconds()
		watchRate := float64(head+1) / watchDur.Seconds()
		b.ReportMetric(fetchRate, "fetch-blocks/s")
		b.ReportMetric(watchRate, "watcher-blocks/s")
		b.ReportMetric(watchRate/fetchRate, "ratio")
		b.ReportMetric(float64(txs)/watchDur.Seconds(), "watcher-tx/s")
		if len(heap) >= 10 {
			q := func(p float64) uint64 { return heap[int(p*float64(len(heap)-1))] }
			sorted := append([]uint64(nil), heap...)
			sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
			b.ReportMetric(float64(q(0.1))/(1<<20), "heap-MiB@10%")
			b.ReportMetric(float64(q(0.5))/(1<<20), "heap-MiB@50%")
			b.ReportMetric(float64(q(1))/(1<<20), "heap-MiB@100%")
			b.ReportMetric(float64(sorted[len(sorted)-1])/(1<<20), "heap-MiB-max")
		}
		b.ReportMetric(float64(sink.events.Load())/float64(sink.calls.Load()), "blocks/publish")
		b.ReportMetric(float64(sink.busy.Load())/float64(watchDur), "publish-busy")
		fmt.Fprintf(os.Stderr, "backfill of %d blocks (%d tx): fetch-only %s before and %s after, watcher %s; %d publishes, busy %s\n", head+1, txs,
			fetchBefore.Round(time.Millisecond), fetchAfter.Round(time.Millisecond), watchDur.Round(time.Millisecond), sink.calls.Load(),
			time.Duration(sink.busy.Load()).Round(time.Millisecond))
	}
}

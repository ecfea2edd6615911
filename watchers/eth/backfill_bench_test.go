package eth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
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

// BenchmarkBackfill compares a full watcher backfill (fetch, decode,
// verify, normalize, publish to Kafka with acknowledgements) with merely
// fetching the same blocks and receipts over the same JSON-RPC, and samples
// the heap during the backfill.
func BenchmarkBackfill(b *testing.B) {
	const parallel = 8
	n := benchBlocks()
	ctx := context.Background()
	dev, err := devnet.Start(devnet.Config{Seed: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{Seed: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for dev.Head().Number.Uint64() < uint64(n) {
		if err := tr.Step(ctx, 20); err != nil {
			b.Fatal(err)
		}
	}
	head := dev.Head().Number.Uint64()
	txs := tr.Stats.Txs.Load()
	b.ResetTimer()
	for b.Loop() {
		fetchDur := fetchOnly(b, dev.HTTPURL(), 0, head, parallel)

		prod, err := kafka.New(kafka.Config{Brokers: testkit.Kafka(b), CreateTopics: true, Partitions: 3}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := prod.EnsureTopics(ctx); err != nil {
			b.Fatal(err)
		}
		src, err := eth.NewSource(ctx, eth.Config{Network: network, ChainID: devnet.ChainID, VerifyHeaderHash: true,
			Endpoints: []eth.EndpointConfig{{Name: "dev", URL: dev.HTTPURL()}}}, nil, nil)
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
		fmt.Fprintf(os.Stderr, "backfill of %d blocks (%d tx): fetch-only %s, watcher %s; %d publishes, busy %s\n", head+1, txs,
			fetchDur.Round(time.Millisecond), watchDur.Round(time.Millisecond), sink.calls.Load(), time.Duration(sink.busy.Load()).Round(time.Millisecond))
	}
}

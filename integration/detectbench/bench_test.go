package detectbench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/detect/live"
	"github.com/cordonhq/cordon/detect/rules"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/registry"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// kinds is the registry as cmd wires it (cmd/cordon's registryKinds).
type kinds struct{ idx *registry.Index }

func (k kinds) Kind(c chain.Chain, network, addr string) (string, bool) {
	e, ok := k.idx.Lookup(c, network, addr)
	return e.Kind, ok
}

func addr(prefix byte, i int) string { return fmt.Sprintf("0x%02x%038x", prefix, i) }

// world is a registry of nDeposit deposit addresses and nHot hot wallets
// and an indicator index flagging nFlagged addresses.
func world(b testing.TB, nDeposit, nHot, nFlagged int) (*registry.Index, *intel.Index) {
	reg := registry.NewIndex()
	for i := range nDeposit {
		reg.Put(&registry.Entry{Chain: chain.ETH, Network: "mainnet", Address: addr(0xd0, i), Account: "acct-" + strconv.Itoa(i/4), Asset: "*",
			Kind: registry.KindDeposit})
	}
	for i := range nHot {
		reg.Put(&registry.Entry{Chain: chain.ETH, Network: "mainnet", Address: addr(0xa0, i), Kind: registry.KindHot})
	}
	idx := intel.NewIndex()
	t0 := time.Unix(1_600_000_000, 0)
	for i := range nFlagged {
		idx.Put(&intel.Indicator{ID: fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", i, i), Kind: intel.KindAddress, Chain: chain.ETH, Network: "mainnet", Value: addr(0xee, i),
			Source: "bench", Feed: "bench", Category: intel.CategoryHack, Confidence: 90, TLP: intel.TLPGreen, ValidFrom: t0, Created: t0, Modified: t0})
	}
	require.Equal(b, nDeposit+nHot, reg.Len())
	require.NotEmpty(b, idx.Hits(chain.ETH, "mainnet", addr(0xee, 0)), "the flagged addresses match")
	return reg, idx
}

func block(h uint64, xs [][2]string, amount func(i int) uint64) chain.Update {
	b := &chain.Block{Header: chain.Header{Chain: chain.ETH, Network: "mainnet", Height: h, Hash: fmt.Sprintf("0x%064x", h),
		ParentHash: fmt.Sprintf("0x%064x", h-1), Time: int64(1_700_000_000 + 12*h)}}
	b.Transfers = make([]chain.Transfer, len(xs))
	b.Transactions = make([]chain.Transaction, len(xs))
	for i, x := range xs {
		b.Transfers[i] = chain.Transfer{V: 1, Chain: chain.ETH, Network: "mainnet", Asset: chain.AssetNative, Standard: chain.StandardNative,
			TxHash: fmt.Sprintf("0x%056x%08x", h, i), TxIndex: uint32(i), From: x[0], To: x[1],
			Amount: chain.AmountFromUint64(amount(i)), BlockHash: b.Hash, BlockHeight: h, BlockTime: b.Time}
		b.Transactions[i] = chain.Transaction{V: 1, Chain: chain.ETH, Network: "mainnet", Hash: b.Transfers[i].TxHash, Index: uint32(i),
			From: x[0], To: x[1], Value: b.Transfers[i].Amount}
	}
	return chain.Update{Event: chain.BlockEvent{V: 1, Type: chain.BlockAdded, Seq: h, Header: b.Header, TxCount: len(xs), TransferCount: len(xs)}, Block: b}
}

func kafkaConfig(brokers []string) kafka.Config {
	return kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true, Partitions: 3, PartBytes: 1 << 20, Topics: kafka.DefaultTopics()}
}

// BenchmarkDetectLatency measures, block by block, the time from the
// watcher's publish of a block (a producer like the watcher's, kfake in
// process) to Kafka's acknowledgement of the transaction holding the
// alert it raises (the service's Committed hook runs after the commit).
// Each block has a hot wallet paying a flagged address among 50 other
// transfers. CORDON_BENCH_BLOCKS sets the number of blocks (default 400).
func BenchmarkDetectLatency(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n := envInt("CORDON_BENCH_BLOCKS", 400)
	reg, idx := world(b, 100_000, 4, 1000)
	kc := kafkaConfig(kafkatest.Brokers(b))
	prod, err := kafka.New(kc, nil, nil)
	require.NoError(b, err)
	defer prod.Close()
	require.NoError(b, prod.EnsureTopics(ctx))

	var mu sync.Mutex
	seen := map[string]chan struct{}{}
	waiter := func(hash string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if seen[hash] == nil {
			seen[hash] = make(chan struct{})
		}
		return seen[hash]
	}
	svc, err := live.NewService(live.ServiceConfig{Kafka: kc, Rules: rules.Config{}, Registry: kinds{reg}, Screener: idx,
		Committed: func(as []chain.Alert) {
			for _, a := range as {
				if a.Rule == "flagged_contact" {
					ch := waiter(a.BlockHash)
					select {
					case <-ch:
					default:
						close(ch)
					}
				}
			}
		}})
	require.NoError(b, err)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(sctx) }()

	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for h := 1; h <= n; h++ {
		xs := make([][2]string, 0, 51)
		for i := range 50 {
			xs = append(xs, [2]string{addr(0xcc, h*100+i), addr(0xd0, (h*7919+i)%100_000)})
		}
		xs = append(xs, [2]string{addr(0xa0, h%4), addr(0xee, h%1000)})
		u := block(uint64(h), xs, func(i int) uint64 { return 1_000_000 + uint64(i) })
		ch := waiter(u.Block.Hash)
		start := time.Now()
		require.NoError(b, prod.Publish(ctx, []chain.Update{u}))
		select {
		case <-ch:
		case err := <-done:
			b.Fatalf("service stopped: %v", err)
		case <-ctx.Done():
			b.Fatalf("no alert for block %d", h)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	stop()
	require.NoError(b, <-done)
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.Logf("%d blocks, one alert each: p50 %s p90 %s p99 %s max %s", n, q(0.5), q(0.9), q(0.99), lat[len(lat)-1])
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(q(0.5).Microseconds())/1000, "p50-ms")
}

// BenchmarkDetectThroughput measures the rules over a backfill already in
// Kafka against the producer that wrote it, in one run: the same blocks
// published by a producer like the watcher's (its rate is a ceiling on
// the watcher's backfill, which also fetches and normalizes), then
// detection from its start (restore included) to the last block's
// commit. 10,000,000 registered deposit addresses (CORDON_BENCH_ADDRESSES),
// 100 hot wallets, 100,000 flagged addresses; CORDON_BENCH_TRANSFERS
// transfers (default 500,000) in blocks of 2,000: half deposits to
// registered addresses, a quarter hot-wallet outflows, a quarter between
// unregistered addresses, one in a thousand touching a flagged address.
func BenchmarkDetectThroughput(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	nAddr := envInt("CORDON_BENCH_ADDRESSES", 10_000_000)
	nTr := envInt("CORDON_BENCH_TRANSFERS", 500_000)
	const perBlock = 2000
	reg, idx := world(b, nAddr, 100, 100_000)
	kc := kafkaConfig(kafkatest.Brokers(b))
	prod, err := kafka.New(kc, nil, nil)
	require.NoError(b, err)
	defer prod.Close()
	require.NoError(b, prod.EnsureTopics(ctx))
	blocks := nTr / perBlock
	var us []chain.Update
	for h := 1; h <= blocks; h++ {
		xs := make([][2]string, perBlock)
		for i := range xs {
			k := h*perBlock + i
			switch {
			case i%1000 == 7:
				xs[i] = [2]string{addr(0xee, k%100_000), addr(0xd0, (k*7919)%nAddr)}
			case i%4 < 2:
				xs[i] = [2]string{addr(0xcc, k), addr(0xd0, (k*7919)%nAddr)}
			case i%4 == 2:
				xs[i] = [2]string{addr(0xa0, k%100), addr(0xcc, k)}
			default:
				xs[i] = [2]string{addr(0xcc, k), addr(0xbb, k)}
			}
		}
		us = append(us, block(uint64(h), xs, func(i int) uint64 { return 1_000_000_000 + uint64(i%97)*1_000_000 }))
	}
	pubStart := time.Now()
	for i := 0; i < len(us); i += 10 {
		require.NoError(b, prod.Publish(ctx, us[i:min(i+10, len(us))]))
	}
	pubTook := time.Since(pubStart)

	svc, err := live.NewService(live.ServiceConfig{Kafka: kc, Rules: rules.Config{}, Registry: kinds{reg}, Screener: idx})
	require.NoError(b, err)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for svc.Stats().Blocks < blocks && ctx.Err() == nil {
			time.Sleep(2 * time.Millisecond)
		}
	}()
	b.ResetTimer()
	start := time.Now()
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(sctx) }()
	select {
	case <-finished:
	case err := <-done:
		b.Fatalf("service stopped: %v", err)
	case <-ctx.Done():
		b.Fatal("timed out")
	}
	took := time.Since(start)
	b.StopTimer()
	stop()
	require.NoError(b, <-done)
	rate, pubRate := float64(blocks*perBlock)/took.Seconds(), float64(blocks*perBlock)/pubTook.Seconds()
	b.Logf("%d registered addresses; %d transfers in %d blocks: published in %s (%.0f transfers/s), detected in %s (%.0f transfers/s, %d alerts): ratio %.2f",
		nAddr, blocks*perBlock, blocks, pubTook.Round(time.Millisecond), pubRate, took.Round(time.Millisecond), rate, svc.Stats().Alerts, rate/pubRate)
	b.ReportMetric(rate, "transfers/s")
	b.ReportMetric(rate/pubRate, "ratio")
}

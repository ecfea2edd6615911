package credit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/registry"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchBlock is block h of a synthetic Ethereum stream: n native
// transfers, each paying addrs(i).
func benchBlock(h uint64, seq uint64, n int, to func(i int) string) chain.Update {
	b := &chain.Block{Header: chain.Header{Chain: chain.ETH, Network: "mainnet", Height: h, Hash: fmt.Sprintf("0x%064x", h),
		ParentHash: fmt.Sprintf("0x%064x", h-1), Time: int64(h)}}
	b.Transfers = make([]chain.Transfer, n)
	b.Transactions = make([]chain.Transaction, n)
	for i := range b.Transfers {
		b.Transfers[i] = chain.Transfer{V: 1, Chain: chain.ETH, Network: "mainnet", Asset: chain.AssetNative, Standard: chain.StandardNative,
			TxHash: fmt.Sprintf("0x%056x%08x", h, i), TxIndex: uint32(i), From: "0x00000000000000000000000000000000000000ff", To: to(i),
			Amount: chain.AmountFromUint64(1_000_000_000 + uint64(i)), BlockHash: b.Hash, BlockHeight: h, BlockTime: int64(h)}
		b.Transactions[i] = chain.Transaction{V: 1, Chain: chain.ETH, Network: "mainnet", Hash: b.Transfers[i].TxHash, Index: uint32(i),
			From: b.Transfers[i].From, To: b.Transfers[i].To, Value: b.Transfers[i].Amount}
	}
	return chain.Update{Event: chain.BlockEvent{V: 1, Type: chain.BlockAdded, Seq: seq, Header: b.Header, TxCount: n, TransferCount: n}, Block: b}
}

func benchPolicy(chain.Chain, string) credit.Policy { return credit.Policy{Confirmations: 3} }

// BenchmarkCreditLatency measures, block by block, the time from the
// watcher's publish of the block that brings a deposit to its policy depth
// to Kafka's acknowledgement of the transaction holding its credited
// event (kfake, in process; a producer like the watcher's). Each block
// pays one registered address; policy 3 confirmations.
// CORDON_BENCH_BLOCKS sets the number of blocks (default 400).
// "stream" credits on the block stream alone; "nodes" also confirms each
// deposit with three endpoints (quorum 2) answering in process from the
// published chain — the cost of the check itself, without the network
// (cmd/cordon's BenchmarkConfirmDevnet measures the endpoints' side).
func BenchmarkCreditLatency(b *testing.B) {
	b.Run("stream", func(b *testing.B) { creditLatency(b, false) })
	b.Run("nodes", func(b *testing.B) { creditLatency(b, true) })
}

// memNodes are three endpoints that agree on the blocks published.
type memNodes struct {
	mu     sync.Mutex
	blocks map[uint64]*chain.Block
	tip    uint64
}

func (m *memNodes) add(b *chain.Block) {
	m.mu.Lock()
	m.blocks[b.Height], m.tip = b, max(m.tip, b.Height)
	m.mu.Unlock()
}

func (m *memNodes) HashesAt(_ context.Context, _ chain.Chain, _ string, h uint64) ([]credit.NodeReport, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.blocks[h]
	if b == nil {
		return nil, 2, fmt.Errorf("no block %d", h)
	}
	return []credit.NodeReport{{Endpoint: "a", Hash: b.Hash}, {Endpoint: "b", Hash: b.Hash}, {Endpoint: "c", Hash: b.Hash}}, 2, nil
}

func (m *memNodes) BlockAt(_ context.Context, _ chain.Chain, _ string, h uint64) (*chain.Block, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.blocks[h]; b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("no block %d", h)
}

func (m *memNodes) Tip(context.Context, chain.Chain, string) (uint64, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tip, 0, nil
}

func creditLatency(b *testing.B, withNodes bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	blocks := envInt("CORDON_BENCH_BLOCKS", 400)
	brokers := kafkatest.Brokers(b)
	prod, err := kafka.New(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true, Partitions: 3}, nil, nil)
	require.NoError(b, err)
	defer prod.Close()
	require.NoError(b, prod.EnsureTopics(ctx))
	reg := registry.NewIndex()
	for i := range 1000 {
		reg.Put(&registry.Entry{Chain: chain.ETH, Network: "mainnet", Address: fmt.Sprintf("0x%040x", i), Account: "u", Asset: "*", Kind: registry.KindDeposit})
	}
	var mu sync.Mutex
	acked := map[string]time.Time{}
	arrived := make(chan struct{}, 1)
	mem := &memNodes{blocks: map[uint64]*chain.Block{}}
	var nodes credit.Nodes
	if withNodes {
		nodes = mem
	}
	svc, err := credit.NewService(credit.ServiceConfig{Kafka: kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, Topics: kafka.DefaultTopics(), CreateTopics: true}, Policy: benchPolicy,
		Registry: reg, Nodes: nodes, Committed: func(evs []credit.DepositEvent) {
			now := time.Now()
			mu.Lock()
			for _, ev := range evs {
				if ev.Status == credit.StatusCredited {
					acked[ev.TxHash] = now
				}
			}
			mu.Unlock()
			select {
			case arrived <- struct{}{}:
			default:
			}
		}})
	require.NoError(b, err)
	stop := runService(ctx, svc)
	defer func() { require.NoError(b, stop()) }()

	var lat []time.Duration
	b.ResetTimer()
	for h := uint64(1); h <= uint64(blocks); h++ {
		u := benchBlock(h, h, 1, func(int) string { return fmt.Sprintf("0x%040x", h%1000) })
		mem.add(u.Block)
		start := time.Now()
		require.NoError(b, prod.Publish(ctx, []chain.Update{u}))
		if h < 3 {
			continue
		}
		// Block h is the third confirmation of the deposit in block h-2.
		want := fmt.Sprintf("0x%056x%08x", h-2, 0)
		deadline := time.After(30 * time.Second)
		for {
			mu.Lock()
			at, ok := acked[want]
			mu.Unlock()
			if ok {
				lat = append(lat, at.Sub(start))
				break
			}
			select {
			case <-arrived:
			case <-time.After(time.Millisecond):
			case <-deadline:
				b.Fatalf("block %d: the deposit of block %d was not credited", h, h-2)
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	b.Logf("%d credits: publish of the confirming block → credited event acknowledged: p50 %s, p90 %s, p99 %s, max %s",
		len(lat), q(0.5), q(0.9), q(0.99), lat[len(lat)-1])
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(q(0.5).Microseconds())/1000, "p50-ms")
}

// BenchmarkCreditThroughput measures matched transfers per second through
// the crediting stage: CORDON_BENCH_ADDRESSES registered addresses
// (default 10,000,000), CORDON_BENCH_TRANSFERS transfers (default
// 500,000) in blocks of 2,000, every one paying a registered address, all
// in Kafka before the service starts; the clock runs from the service's
// start (restore included) to the last block's events acknowledged. Every
// transfer gives two events (pending, then credited).
func BenchmarkCreditThroughput(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	nAddr := envInt("CORDON_BENCH_ADDRESSES", 10_000_000)
	nTr := envInt("CORDON_BENCH_TRANSFERS", 500_000)
	const perBlock = 2000
	brokers := kafkatest.Brokers(b)
	prod, err := kafka.New(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true, Partitions: 3, PartBytes: 1 << 20}, nil, nil)
	require.NoError(b, err)
	defer prod.Close()
	require.NoError(b, prod.EnsureTopics(ctx))
	reg := registry.NewIndex()
	addr := func(i int) string { return fmt.Sprintf("0x%040x", i) }
	for i := range nAddr {
		reg.Put(&registry.Entry{Chain: chain.ETH, Network: "mainnet", Address: addr(i), Account: "acct-" + strconv.Itoa(i/4), Asset: "*",
			Kind: registry.KindDeposit})
	}
	blocks := nTr / perBlock
	for h := 1; h <= blocks+3; h += 10 {
		var us []chain.Update
		for k := h; k < h+10 && k <= blocks+3; k++ {
			n := perBlock
			if k > blocks {
				n = 0 // three empty blocks confirm the last deposits
			}
			us = append(us, benchBlock(uint64(k), uint64(k), n, func(i int) string { return addr((k*perBlock + i*7919) % nAddr) }))
		}
		require.NoError(b, prod.Publish(ctx, us))
	}
	var mu sync.Mutex
	events, credited := 0, 0
	finished := make(chan struct{})
	svc, err := credit.NewService(credit.ServiceConfig{Kafka: kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, Topics: kafka.DefaultTopics(), CreateTopics: true}, Policy: benchPolicy,
		Registry: reg, Committed: func(evs []credit.DepositEvent) {
			mu.Lock()
			defer mu.Unlock()
			events += len(evs)
			for _, ev := range evs {
				if ev.Status == credit.StatusCredited {
					credited++
				}
			}
			if credited == blocks*perBlock {
				close(finished)
			}
		}})
	require.NoError(b, err)
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
	rate := float64(blocks*perBlock) / took.Seconds()
	b.Logf("%d registered addresses; %d matched transfers in %d blocks credited in %s: %.0f matched transfers/s (%d deposit events)",
		nAddr, blocks*perBlock, blocks, took.Round(time.Millisecond), rate, events)
	b.ReportMetric(rate, "transfers/s")
}

// BenchmarkCreditRestore measures a start (what a failover costs): the
// service's state topic holds CORDON_BENCH_DEPOSITS kept deposits (default
// 1,000,000; two events each, pending then credited, as before
// compaction); the clock runs from Run to the end of the restore (fencing
// transaction, reading to the markers, rebuilding the engine).
func BenchmarkCreditRestore(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	n := envInt("CORDON_BENCH_DEPOSITS", 1_000_000)
	brokers := kafkatest.Brokers(b)
	prod, err := kafka.New(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true, Partitions: 3}, nil, nil)
	require.NoError(b, err)
	defer prod.Close()
	require.NoError(b, prod.EnsureTopics(ctx))
	recs := make([]kafka.KeyValue, 0, 20_000)
	flush := func() {
		require.NoError(b, prod.PublishKeyed(ctx, "cordon.credit-state", "deposit", recs))
		recs = recs[:0]
	}
	for i := range n {
		for _, st := range []string{credit.StatusPending, credit.StatusCredited} {
			ev := credit.DepositEvent{V: 1, ID: credit.DepositID(chain.ETH, "mainnet", fmt.Sprintf("0x%064x", i), "native"), Status: st,
				Chain: chain.ETH, Network: "mainnet", TxHash: fmt.Sprintf("0x%064x", i), Index: "native", Address: fmt.Sprintf("0x%040x", i),
				Account: "acct-" + strconv.Itoa(i/4), Asset: "native", Amount: "1000000000000000000", BlockHash: fmt.Sprintf("0x%064x", i/100),
				BlockNumber: uint64(i / 100), Confirmations: 12, Required: 12}
			if st == credit.StatusCredited {
				ev.Credits = 1
			}
			v, err := json.Marshal(&ev)
			require.NoError(b, err)
			recs = append(recs, kafka.KeyValue{Key: ev.ID, Value: v})
			if len(recs) == cap(recs) {
				flush()
			}
		}
	}
	flush()
	restored := make(chan time.Duration, 1)
	var records int
	svc, err := credit.NewService(credit.ServiceConfig{Kafka: kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, Topics: kafka.DefaultTopics(), CreateTopics: true}, Policy: benchPolicy,
		Registry: registry.NewIndex(), Retain: 10_000, Restored: func(r int, took time.Duration) { records = r; restored <- took }})
	require.NoError(b, err)
	b.ResetTimer()
	stop := runService(ctx, svc)
	took := <-restored
	b.StopTimer()
	require.NoError(b, stop())
	b.Logf("restore of %d deposits (%d records) in %s: %.0f records/s", n, records, took.Round(time.Millisecond), float64(records)/took.Seconds())
	b.ReportMetric(took.Seconds(), "restore-s")
}

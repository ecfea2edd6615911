package eth_test

import (
	"context"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
	"github.com/cordonhq/cordon/watchers/follow"
)

// ackSink records when Kafka acknowledged each block's records and event.
type ackSink struct {
	*kafka.Producer
	mu   sync.Mutex
	acks map[string]time.Time
}

func (s *ackSink) Publish(ctx context.Context, us []chain.Update) error {
	if err := s.Producer.Publish(ctx, us); err != nil {
		return err
	}
	now := time.Now()
	s.mu.Lock()
	for _, u := range us {
		if u.Event.Type == chain.BlockAdded {
			s.acks[u.Event.Hash] = now
		}
	}
	s.mu.Unlock()
	return nil
}

// BenchmarkHeadLatency measures, for blocks made one at a time on the
// devnet with transactions in them, the time from the node having the
// block (Commit returned) to Kafka acknowledging its block_added event and
// all its records. The watcher learns of new heads from its WebSocket
// subscription; polling is set to one second so it cannot help.
func BenchmarkHeadLatency(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dev, err := devnet.Start(devnet.Config{Seed: "latency"})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{Seed: 3}, nil)
	if err != nil {
		b.Fatal(err)
	}
	prod, err := kafka.New(kafka.Config{Brokers: kafkatest.Brokers(b), CreateTopics: true, Partitions: 3}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	if err := prod.EnsureTopics(ctx); err != nil {
		b.Fatal(err)
	}
	eps := []eth.EndpointConfig{{Name: "ws", URL: config.SecretValue(dev.WSURL())}, {Name: "http", URL: config.SecretValue(dev.HTTPURL())}}
	if os.Getenv("CORDON_BENCH_QUORUM") != "" {
		// Three endpoints (the node behind three names), the default
		// quorum of two: every block is agreed before it is fetched.
		eps = append(eps, eth.EndpointConfig{Name: "http-b", URL: config.SecretValue(dev.HTTPURL())})
	}
	src, err := eth.NewSource(ctx, eth.Config{Network: network, ChainID: devnet.ChainID, Endpoints: eps}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	sink := &ackSink{Producer: prod, acks: map[string]time.Time{}}
	f := follow.New(follow.Config{Chain: chain.ETH, Network: network, PollInterval: time.Second}, src, sink, src.Wake(ctx), nil, nil, nil)
	go func() { _ = f.Run(ctx) }()
	for f.Status().Height < dev.Head().Number.Uint64() {
		time.Sleep(10 * time.Millisecond)
	}

	const blocks = 300
	made := map[string]time.Time{}
	b.ResetTimer()
	for b.Loop() {
		for range blocks {
			if err := tr.SendRandom(ctx, 20); err != nil {
				b.Fatal(err)
			}
			hash := dev.Commit()
			made[strings.ToLower(hash.Hex())] = time.Now()
			time.Sleep(50 * time.Millisecond)
		}
	}
	b.StopTimer()
	time.Sleep(time.Second)
	var lat []time.Duration
	sink.mu.Lock()
	for h, t0 := range made {
		if t1, ok := sink.acks[h]; ok {
			lat = append(lat, t1.Sub(t0))
		}
	}
	sink.mu.Unlock()
	if len(lat) < len(made)*9/10 {
		b.Fatalf("only %d of %d blocks acknowledged", len(lat), len(made))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(float64(len(lat)), "blocks")
}

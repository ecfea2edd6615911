package eth_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/watchers/follow"
)

func topicContent(t testing.TB, p *kafka.Producer) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, topic := range []string{p.Topics().Blocks, p.Topics().Transactions, p.Topics().Transfers} {
		require.NoError(t, p.ReadAll(context.Background(), topic, func(r kafka.Record) error {
			k := topic + "|" + string(r.Key)
			if prev, ok := out[k]; ok {
				require.Equal(t, prev, string(r.Value), "one key, two different records: %s", k)
			}
			out[k] = string(r.Value)
			return nil
		}))
	}
	return out
}

// TestKillMidBackfill stops the watcher at random points of a backfill,
// including in the middle of Kafka writes, and restarts it each time. The
// topics must end with the same records (deduplicated by key) as one
// uninterrupted run into a second cluster.
func TestKillMidBackfill(t *testing.T) {
	h := newHarness(t, 21)
	ctx := context.Background()
	for range 120 {
		require.NoError(t, h.traffic.Step(ctx, 6))
	}
	head := h.dev.Head().Number.Uint64()
	cfg := follow.Config{Parallel: 8, BatchBlocks: 7}

	rng := rand.New(rand.NewPCG(21, 21))
	for kills := 0; ; kills++ {
		runCtx, cancel := context.WithCancel(ctx)
		f := h.follower(cfg, nil)
		done := make(chan error, 1)
		go func() { done <- f.Run(runCtx) }()
		if kills == 6 {
			waitPublished(t, h, 60*time.Second)
			cancel()
			<-done
			break
		}
		// Kill at a random height, while the next batches are in flight.
		target := uint64(kills*15 + 5 + rng.IntN(10))
		deadline := time.Now().Add(30 * time.Second)
		for f.Status().Height < target && time.Now().Before(deadline) {
			time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
		}
		cancel()
		<-done
		t.Logf("killed at height %d", f.Status().Height)
		require.GreaterOrEqual(t, f.Status().Height, target)
		require.Less(t, f.Status().Height, head, "the backfill finished before the kill; make it longer")
	}
	interrupted := topicContent(t, h.prod)

	// The same range, uninterrupted, into a fresh cluster.
	other, err := kafka.New(kafka.Config{Brokers: kafkatest.Brokers(t), CreateTopics: true, Partitions: 3}, nil, nil)
	require.NoError(t, err)
	defer other.Close()
	require.NoError(t, other.EnsureTopics(ctx))
	h.prod = other
	runCtx, cancel := context.WithCancel(ctx)
	f := h.follower(cfg, nil)
	go func() { _ = f.Run(runCtx) }()
	waitPublished(t, h, 60*time.Second)
	cancel()
	uninterrupted := topicContent(t, other)
	require.Equal(t, len(uninterrupted), len(interrupted))
	require.Equal(t, uninterrupted, interrupted)
}

// TestReorgWhileDown reorganizes the chain while the watcher is stopped:
// on restart the first block it fetches no longer extends its tip.
func TestReorgWhileDown(t *testing.T) {
	h := newHarness(t, 22)
	ctx := context.Background()
	for range 20 {
		require.NoError(t, h.traffic.Step(ctx, 5))
	}
	run := func() {
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		f := h.follower(follow.Config{Parallel: 4}, nil)
		go func() { _ = f.Run(runCtx) }()
		waitPublished(t, h, 30*time.Second)
	}
	run()
	require.NoError(t, h.traffic.Reorg(ctx, 4))
	for range 5 {
		require.NoError(t, h.traffic.Step(ctx, 5))
	}
	run()
	c := consume(t, h.prod)
	require.Equal(t, 4, c.removed)
	checkCanonical(t, h, c)
}

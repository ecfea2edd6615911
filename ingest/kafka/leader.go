package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// LeaderConfig configures Lead.
type LeaderConfig struct {
	Kafka Config
	// Group is the consumer group the instances join; Topic a
	// one-partition topic whose partition makes its holder the leader.
	Group, Topic string
	// Retry is the pause before fn runs again after it failed while this
	// instance still leads (default 5s).
	Retry time.Duration
	Log   *slog.Logger
}

// Lead runs fn only while this instance leads, until ctx ends. Every
// instance joins a Kafka consumer group on a one-partition topic; the
// member the group gives that partition leads. When a rebalance takes the
// partition away, fn's context is cancelled and Lead waits for fn to
// return before the group may hand it on, so a clean handover never has
// two leaders. A leader cut off from Kafka (its session expired) may still
// run for a moment while another starts: fn must be fenced on its own
// (the crediting service's transactional id fences it, so it cannot
// commit). Standbys just wait —
// they never take over by fencing a live leader.
func Lead(ctx context.Context, cfg LeaderConfig, fn func(context.Context) error) error {
	if cfg.Retry <= 0 {
		cfg.Retry = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := Ensure(ctx, cfg.Kafka, cfg.Topic); err != nil {
		return fmt.Errorf("leader: %w", err)
	}
	opts, err := franzOpts(cfg.Kafka, "-leader")
	if err != nil {
		return fmt.Errorf("leader: %w", err)
	}

	var (
		mu      sync.Mutex
		stop    context.CancelFunc // cancels the running fn
		stopped chan struct{}      // closed when it returned
	)
	lctx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	start := func() {
		mu.Lock()
		defer mu.Unlock()
		if stop != nil {
			return
		}
		runCtx, cancel := context.WithCancel(lctx) // #nosec G118 -- kept in stop, called by resign
		done := make(chan struct{})
		stop, stopped = cancel, done
		cfg.Log.Info("this instance leads", "group", cfg.Group)
		go func() {
			defer close(done)
			for runCtx.Err() == nil {
				err := fn(runCtx)
				if runCtx.Err() != nil {
					return
				}
				cfg.Log.Warn("stopped while leading; restarting", "err", err, "retry_in", cfg.Retry)
				select {
				case <-runCtx.Done():
				case <-time.After(cfg.Retry):
				}
			}
		}()
	}
	resign := func(why string) {
		mu.Lock()
		cancel, done := stop, stopped
		stop, stopped = nil, nil
		mu.Unlock()
		if cancel == nil {
			return
		}
		cfg.Log.Info("leadership "+why+"; stopping", "topic", cfg.Topic)
		cancel()
		<-done
	}
	holds := func(m map[string][]int32) bool {
		for _, p := range m[cfg.Topic] {
			if p == 0 {
				return true
			}
		}
		return false
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumerGroup(cfg.Group), kgo.ConsumeTopics(cfg.Topic), kgo.DisableAutoCommit(),
		kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if holds(m) {
				start()
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if holds(m) {
				resign("revoked")
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if holds(m) {
				resign("lost")
			}
		}))...)
	if err != nil {
		return err
	}
	defer func() {
		resign("given up")
		cl.Close() // leaves the group: a standby takes over at once
	}()
	for {
		// Polling keeps the membership; the topic carries no records.
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			cfg.Log.Warn("leader: group error", "err", errs[0].Err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

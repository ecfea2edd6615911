package kafka_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
)

// TestLeadOneAtATime: three instances contend; exactly one runs at a
// time, and when the leader stops (its process ends) another takes over.
func TestLeadOneAtATime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := kafkatest.Brokers(t)
	cfg := kafka.LeaderConfig{Kafka: kafka.Config{Brokers: brokers, CreateTopics: true}, Group: "cordon-credit-leader", Topic: kafka.DefaultTopics().CreditLeader(),
		Retry: 50 * time.Millisecond}
	var running, most atomic.Int32
	current := atomic.Int32{} // the instance running now, -1 none
	current.Store(-1)
	var mu sync.Mutex
	leads := map[int]int{} // instance → times it started leading
	fn := func(i int) func(context.Context) error {
		return func(ctx context.Context) error {
			n := running.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			current.Store(int32(i))
			mu.Lock()
			leads[i]++
			mu.Unlock()
			<-ctx.Done()
			current.CompareAndSwap(int32(i), -1)
			running.Add(-1)
			return nil
		}
	}
	stops := make([]context.CancelFunc, 3)
	dones := make([]chan error, 3)
	for i := range 3 {
		ictx, stop := context.WithCancel(ctx)
		stops[i], dones[i] = stop, make(chan error, 1)
		go func() { dones[i] <- kafka.Lead(ictx, cfg, fn(i)) }()
	}
	leader := func() int {
		deadline := time.Now().Add(60 * time.Second)
		for {
			if c := current.Load(); c >= 0 {
				return int(c)
			}
			require.True(t, time.Now().Before(deadline), "no leader")
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Stop the leader twice: each time another instance takes over.
	for range 2 {
		time.Sleep(500 * time.Millisecond)
		l := leader()
		stops[l]()
		require.NoError(t, <-dones[l])
		stops[l] = nil
	}
	last := leader()
	require.NotNil(t, stops[last], "a stopped instance cannot lead")
	stops[last]()
	require.NoError(t, <-dones[last])
	require.Equal(t, int32(1), most.Load(), "never two leaders at once")
	require.Len(t, leads, 3, "each instance led in turn: %v", leads)
}

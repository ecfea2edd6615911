package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
)

func removals(network string, from, n int) []chain.Update {
	var us []chain.Update
	for i := 0; i < n; i++ {
		h := chain.Header{Chain: chain.ETH, Network: network, Height: uint64(from + i), Hash: fmt.Sprintf("%s-%d", network, from+i)}
		us = append(us, chain.Update{Event: chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockRemoved, Seq: uint64(from + i), Header: h}})
	}
	return us
}

// TestConcurrentPublishKeepsPrefix: two streams share the one blocks
// partition and publish at once; the broker refuses the first produce
// request of the blocks topic. Whatever each Publish stored is a prefix of
// its events: kafka-go put both callers' events into one batch and the rest
// of one chunk into the next, so a refused batch and a stored one left a
// gap (seqs 2, 3, 4 stored without 1) until the producer serialized event
// writes.
func TestConcurrentPublishKeepsPrefix(t *testing.T) {
	p, cluster := startProducer(t, kafka.Config{Partitions: 1, BatchSize: 4, Linger: 300 * time.Millisecond, MaxAttempts: 1})
	var refused atomic.Bool
	var arm atomic.Bool
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		if !arm.Load() || refused.Load() {
			return nil, nil, false
		}
		for _, tp := range pr.Topics {
			if tp.Topic == p.Topics().Blocks {
				refused.Store(true)
				resp := pr.ResponseKind().(*kmsg.ProduceResponse)
				for _, t := range pr.Topics {
					rt := kmsg.NewProduceResponseTopic()
					rt.Topic = t.Topic
					for _, pp := range t.Partitions {
						rp := kmsg.NewProduceResponseTopicPartition()
						rp.Partition, rp.ErrorCode = pp.Partition, 87
						rt.Partitions = append(rt.Partitions, rp)
					}
					resp.Topics = append(resp.Topics, rt)
				}
				return resp, nil, true
			}
		}
		return nil, nil, false
	})
	ctx := context.Background()
	// warm up metadata
	require.NoError(t, p.Publish(ctx, removals("warm", 1, 1)))
	arm.Store(true)
	var wg sync.WaitGroup
	var errB, errA error
	wg.Add(2)
	go func() { defer wg.Done(); errB = p.Publish(ctx, removals("b", 1, 3)) }()
	time.Sleep(50 * time.Millisecond)
	go func() { defer wg.Done(); errA = p.Publish(ctx, removals("a", 1, 4)) }()
	wg.Wait()
	require.True(t, refused.Load(), "the fault never fired")
	require.True(t, errA != nil || errB != nil, "a refused request fails its Publish")
	for _, network := range []string{"a", "b"} {
		got, err := streamEvents(p)(ctx, chain.ETH, network)
		require.NoError(t, err)
		for i, e := range got {
			require.Equal(t, uint64(i+1), e.Seq, "stream %s: stored %d events, not a prefix", network, len(got))
		}
		cp, err := p.Checkpoint(ctx, chain.ETH, network, 8)
		require.NoError(t, err)
		require.Equal(t, uint64(len(got)+1), cp.NextSeq, "stream %s", network)
	}
}

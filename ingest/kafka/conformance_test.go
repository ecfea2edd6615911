package kafka_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/follow/followtest"
)

// TestSinkConformanceKafka runs the follow.Sink suite against the Kafka
// producer on kfake: once as configured in production (every Publish one
// produce batch per partition), and once writing one record per produce
// request while the broker refuses the blocks topic's records after the
// first n of a Publish, so a Publish fails with a prefix of its events
// stored.
func TestSinkConformanceKafka(t *testing.T) {
	t.Run("Batched", func(t *testing.T) {
		followtest.Sink(t, func(t *testing.T) followtest.SinkUnderTest {
			p, _ := startProducer(t, kafka.Config{Partitions: 3})
			return followtest.SinkUnderTest{Sink: p, Events: streamEvents(p)}
		})
	})
	t.Run("FailingBroker", func(t *testing.T) {
		followtest.Sink(t, func(t *testing.T) followtest.SinkUnderTest {
			p, cluster := startProducer(t, kafka.Config{Partitions: 3, BatchSize: 1})
			r := &refuser{topic: p.Topics().Blocks}
			cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				cluster.KeepControl()
				return r.control(req)
			})
			return followtest.SinkUnderTest{Sink: &refusedProducer{Producer: p, r: r}, FailAfter: r.failAfter, Events: streamEvents(p)}
		})
	})
}

func startProducer(t testing.TB, cfg kafka.Config) (*kafka.Producer, *kfake.Cluster) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	cfg.Brokers, cfg.CreateTopics = cluster.ListenAddrs(), true
	p, err := kafka.New(cfg, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.EnsureTopics(ctx))
	return p, cluster
}

// streamEvents reads back the block events of one stream from its
// partition of the blocks topic, repeats included.
func streamEvents(p *kafka.Producer) func(context.Context, chain.Chain, string) ([]chain.BlockEvent, error) {
	return func(ctx context.Context, c chain.Chain, network string) ([]chain.BlockEvent, error) {
		part, ok, err := p.BlocksPartition(ctx, c, network)
		if err != nil || !ok {
			return nil, err
		}
		first, end, err := p.Offsets(ctx, p.Topics().Blocks, part)
		if err != nil {
			return nil, err
		}
		var out []chain.BlockEvent
		err = p.ReadRange(ctx, p.Topics().Blocks, part, first, end, func(r kafka.Record) error {
			var ev chain.BlockEvent
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				return fmt.Errorf("offset %d: %w", r.Offset, err)
			}
			if ev.Stream() == chain.StreamKey(c, network) {
				out = append(out, ev)
			}
			return nil
		})
		return out, err
	}
}

// refuser is a broker-side fault: during a Publish it lets the first allow
// records of the blocks topic through, refuses the next produce request
// with a non-retriable error, and takes every later one. A producer that
// sent a stream's later events before the earlier ones were acknowledged
// (kafka-go does, when one Publish's events need several batches) would
// leave a gap in the stream's sequence numbers, which the Sink contract
// does not allow; the producer writes them in acknowledged chunks.
type refuser struct {
	topic string

	mu      sync.Mutex
	armed   bool // FailAfter was called and no Publish failed since
	n       int
	active  bool // a Publish is running with the fault armed
	allow   int
	tripped bool
}

func (r *refuser) failAfter(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.armed, r.n = true, n
}

func (r *refuser) begin() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active, r.allow, r.tripped = r.armed, r.n, false
}

func (r *refuser) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tripped {
		r.armed = false
	}
	r.active, r.tripped = false, false
}

// errInvalidRecord is Kafka's INVALID_RECORD, which producers do not retry.
const errInvalidRecord = 87

func (r *refuser) control(req kmsg.Request) (kmsg.Response, error, bool) { //nolint:revive // kfake's control signature
	pr, ok := req.(*kmsg.ProduceRequest)
	if !ok {
		return nil, nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.active {
		return nil, nil, false
	}
	n := 0
	for _, t := range pr.Topics {
		if t.Topic != r.topic {
			continue
		}
		for _, p := range t.Partitions {
			n += countRecords(p.Records)
		}
	}
	if n == 0 || r.tripped || n <= r.allow {
		// Once one request was refused, the later ones go through: the
		// producer must not have sent them (a gap in the stream).
		r.allow -= n
		return nil, nil, false
	}
	r.tripped = true
	resp, _ := pr.ResponseKind().(*kmsg.ProduceResponse)
	for _, t := range pr.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, errInvalidRecord
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil, true
}

// countRecords counts the records of the record batches in b.
func countRecords(b []byte) int {
	n := 0
	for len(b) >= 12 {
		size := 12 + int(int32(binary.BigEndian.Uint32(b[8:12])))
		if size > len(b) {
			break
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b[:size]); err == nil {
			n += int(rb.NumRecords)
		}
		b = b[size:]
	}
	return n
}

// refusedProducer brackets each Publish so the refuser knows which
// records belong to it.
type refusedProducer struct {
	*kafka.Producer
	r *refuser
}

func (p *refusedProducer) Publish(ctx context.Context, us []chain.Update) error {
	p.r.begin()
	defer p.r.end()
	return p.Producer.Publish(ctx, us)
}

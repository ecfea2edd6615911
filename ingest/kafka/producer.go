package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	json "github.com/segmentio/encoding/json"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/cordonhq/cordon/internal/chain"
)

// Record header names.
const (
	HeaderSchema = "cordon-schema"
	HeaderType   = "cordon-type"
)

// Producer writes the chain event stream. It implements follow.Sink and
// follow.Alerter.
type Producer struct {
	cfg Config
	// events serializes the block-event writes of concurrent Publish
	// calls: kafka-go adds every caller's records to a partition's open
	// batch, so two streams sharing a blocks partition could otherwise
	// split one chunk over two batches (see Publish).
	events  sync.Mutex
	w       *kafkago.Writer
	client  *kafkago.Client
	log     *slog.Logger
	metrics *Metrics
}

// New returns a Producer for cfg. It does not contact the brokers until the
// first call.
func New(cfg Config, metrics *Metrics, log *slog.Logger) (*Producer, error) {
	cfg.fill()
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka: no brokers configured")
	}
	tr, err := cfg.transport()
	if err != nil {
		return nil, err
	}
	comp, err := cfg.compression()
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	addr := kafkago.TCP(cfg.Brokers...)
	p := &Producer{cfg: cfg, log: log, metrics: metrics, client: &kafkago.Client{Addr: addr, Transport: tr, Timeout: cfg.WriteTimeout}}
	p.w = &kafkago.Writer{
		Addr:         addr,
		Balancer:     &streamBalancer{blocks: cfg.Topics.Blocks},
		MaxAttempts:  cfg.MaxAttempts,
		BatchSize:    cfg.BatchSize,
		BatchBytes:   1 << 20,
		BatchTimeout: cfg.Linger,
		WriteTimeout: cfg.WriteTimeout,
		RequiredAcks: kafkago.RequireAll,
		Compression:  comp,
		Transport:    tr,
	}
	return p, nil
}

// Topics returns the configured topic names.
func (p *Producer) Topics() Topics { return p.cfg.Topics }

// Close flushes and closes the writer.
func (p *Producer) Close() error { return p.w.Close() }

// streamBalancer keeps each chain stream of the blocks topic in one
// partition and spreads every other record by its key.
type streamBalancer struct {
	blocks string
	murmur kafkago.Murmur2Balancer
}

func (b *streamBalancer) Balance(msg kafkago.Message, partitions ...int) int {
	if msg.Topic == b.blocks {
		return streamPartition(msg.Key, partitions)
	}
	return b.murmur.Balance(msg, partitions...)
}

// streamPartition hashes the "chain/network" prefix of a block event key.
func streamPartition(key []byte, partitions []int) int {
	k := string(key)
	if i := strings.LastIndexByte(k, '/'); i > 0 {
		k = k[:i]
	}
	return kafkago.Murmur2Balancer{}.Balance(kafkago.Message{Key: []byte(k)}, partitions...)
}

// EnsureTopics makes sure every topic cordon uses exists (see Ensure:
// created when kafka.create_topics allows it, else only checked).
func (p *Producer) EnsureTopics(ctx context.Context) error { return Ensure(ctx, p.cfg) }

// Publish writes the contents of added blocks (transactions, transfers,
// outputs, spends) as part records, then the block events, and returns
// once Kafka acknowledged all of them.
func (p *Producer) Publish(ctx context.Context, updates []chain.Update) error {
	start := time.Now()
	var data []kafkago.Message
	events := make([]kafkago.Message, 0, len(updates))
	for i := range updates {
		u := &updates[i]
		if b := u.Block; b != nil {
			for _, k := range []struct {
				topic, kind string
				n           int
				enc         itemAppender
			}{
				{p.cfg.Topics.Transactions, KindTransaction, len(b.Transactions), marshalItem(b.Transactions)},
				{p.cfg.Topics.Transfers, KindTransfer, len(b.Transfers), marshalItem(b.Transfers)},
				{p.cfg.Topics.Outputs, KindOutput, len(b.Outputs), marshalItem(b.Outputs)},
				{p.cfg.Topics.Spends, KindSpend, len(b.Spends), marshalItem(b.Spends)},
			} {
				msgs, err := p.parts(k.topic, k.kind, b.Header, k.n, k.enc)
				if err != nil {
					return err
				}
				data = append(data, msgs...)
			}
		}
		m, err := p.message(p.cfg.Topics.Blocks, string(u.Event.Type), u.Event.Key(), &u.Event)
		if err != nil {
			return err
		}
		events = append(events, m)
	}
	if len(data) > 0 {
		if err := p.write(ctx, data); err != nil {
			return fmt.Errorf("write %d block records: %w", len(data), err)
		}
	}
	// A stream's events share one partition. kafka-go splits what does
	// not fit one batch into several and keeps sending the later ones
	// after one failed, which would leave a gap in the stream; so events
	// go in chunks that each fit one batch (appended whole or not at
	// all), each acknowledged before the next, and no other Publish adds
	// events meanwhile: what is stored after an error is always a prefix.
	p.events.Lock()
	defer p.events.Unlock()
	for len(events) > 0 {
		n, size := 0, 0
		for n < len(events) && n < p.cfg.BatchSize && (n == 0 || size+len(events[n].Value)+len(events[n].Key) < eventChunkBytes) {
			size += len(events[n].Value) + len(events[n].Key)
			n++
		}
		if err := p.write(ctx, events[:n]); err != nil {
			return fmt.Errorf("write %d block events: %w", n, err)
		}
		events = events[n:]
	}
	p.metrics.publish.Observe(time.Since(start).Seconds())
	return nil
}

// eventChunkBytes keeps a chunk of block events well inside one batch
// (the writer's BatchBytes is 1 MiB, headers and framing included).
const eventChunkBytes = 512 << 10

func (p *Producer) write(ctx context.Context, msgs []kafkago.Message) error {
	err := p.w.WriteMessages(ctx, msgs...)
	if err != nil {
		p.metrics.errors.Inc()
		return err
	}
	for i := range msgs {
		p.metrics.messages.WithLabelValues(msgs[i].Topic).Inc()
		p.metrics.bytes.WithLabelValues(msgs[i].Topic).Add(float64(len(msgs[i].Value)))
	}
	return nil
}

// marshalJSON is the reflection-based encoder of records without a
// hand-written one.
var marshalJSON = json.Marshal

// jsonAppender is implemented by the records written in bulk (Bitcoin
// outputs and spends): a hand-written encoder that skips reflection.
type jsonAppender interface {
	AppendJSON(dst []byte) []byte
}

// recordHeaders are the headers of each record type, built once: every
// record of a type shares the same (read-only) slice.
var recordHeaders = func() map[string][]kafkago.Header {
	h := map[string][]kafkago.Header{}
	for _, typ := range []string{KindTransaction + "_part", KindTransfer + "_part", KindOutput + "_part", KindSpend + "_part",
		"alert", "incident", "address", "decision", "sign-request", "signer-reset", string(chain.BlockAdded), string(chain.BlockRemoved)} {
		h[typ] = []kafkago.Header{
			{Key: HeaderSchema, Value: []byte(fmt.Sprintf("cordon.%s.v%d", typ, chain.SchemaVersion))},
			{Key: HeaderType, Value: []byte(typ)},
		}
	}
	return h
}()

func (p *Producer) message(topic, typ, key string, v any) (kafkago.Message, error) {
	var val []byte
	if a, ok := v.(jsonAppender); ok {
		val = a.AppendJSON(make([]byte, 0, 384))
	} else {
		var err error
		if val, err = marshalJSON(v); err != nil {
			return kafkago.Message{}, fmt.Errorf("encode %s %s: %w", typ, key, err)
		}
	}
	return kafkago.Message{Topic: topic, Key: []byte(key), Value: val, Headers: recordHeaders[typ]}, nil
}

// KeyValue is one keyed record.
type KeyValue struct {
	Key   string
	Value []byte
}

// PublishKeyed writes records to topic (for the compacted topics such as
// the address registry); it returns once Kafka acknowledged all of them.
func (p *Producer) PublishKeyed(ctx context.Context, topic, typ string, recs []KeyValue) error {
	msgs := make([]kafkago.Message, len(recs))
	for i, r := range recs {
		msgs[i] = kafkago.Message{Topic: topic, Key: []byte(r.Key), Value: r.Value, Headers: recordHeaders[typ]}
		if err := p.cfg.signGo(&msgs[i]); err != nil {
			return err
		}
	}
	return p.write(ctx, msgs)
}

// Follow reads topic from its start (fn gets every record in partition
// order), calls caught once it has read what the topic held when Follow
// started, then keeps polling for new records every interval until ctx
// ends.
func (p *Producer) Follow(ctx context.Context, topic string, interval time.Duration, fn func(Record) error, caught func()) error {
	next := map[int]int64{}
	first := true
	seen := newReplays()
	for {
		parts, err := p.partitions(ctx, topic)
		if err != nil {
			return err
		}
		for _, part := range parts {
			start, end, err := p.Offsets(ctx, topic, part)
			if err != nil {
				return err
			}
			from, ok := next[part]
			if !ok || from < start {
				from = start // compaction or retention removed the older records
			}
			if from < end {
				if err := p.readRange(ctx, topic, part, from, end, seen, fn); err != nil {
					return err
				}
			}
			next[part] = end
		}
		if first {
			first = false
			if caught != nil {
				caught()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// Alert writes an alert record keyed by its id.
func (p *Producer) Alert(ctx context.Context, a chain.Alert) error {
	m, err := p.message(p.cfg.Topics.Alerts, "alert", a.ID, &a)
	if err != nil {
		return err
	}
	return p.write(ctx, []kafkago.Message{m})
}

// Metrics are the producer's Prometheus metrics.
type Metrics struct {
	messages *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	errors   prometheus.Counter
	publish  prometheus.Histogram
}

// NewMetrics registers the producer metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_kafka_messages_total",
			Help: "Records acknowledged by Kafka, by topic."}, []string{"topic"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_kafka_bytes_total",
			Help: "Record value bytes acknowledged by Kafka, by topic."}, []string{"topic"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_kafka_write_errors_total",
			Help: "Writes that failed after all retries."}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cordon_kafka_publish_seconds",
			Help: "Time to publish one batch of block events with their records.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.bytes, m.errors, m.publish)
	}
	return m
}

package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Message is one record read by a Consumer.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	raw       kafkago.Message
}

// Consumer reads topics as a member of a consumer group and commits
// offsets only when told to, after the records are safely stored.
type Consumer struct {
	r   *kafkago.Reader
	cfg Config
}

// NewConsumer joins group on topics with the brokers, TLS and SASL of cfg.
// A new group starts at the oldest records.
func NewConsumer(cfg Config, group string, topics []string) (*Consumer, error) {
	cfg.fill()
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka: no brokers configured")
	}
	if group == "" || len(topics) == 0 {
		return nil, errors.New("kafka: a consumer needs a group and topics")
	}
	tr, err := cfg.transport()
	if err != nil {
		return nil, err
	}
	dialer := &kafkago.Dialer{Timeout: 10 * time.Second, DualStack: true, ClientID: cfg.ClientID}
	if tr.TLS != nil {
		dialer.TLS = tr.TLS
	}
	if tr.SASL != nil {
		dialer.SASLMechanism = tr.SASL
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: cfg.Brokers, GroupID: group, GroupTopics: topics, Dialer: dialer,
		StartOffset: kafkago.FirstOffset, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond,
		CommitInterval: 0, // synchronous commits, only through Commit
		// Transactional topics (cordon.intel) are read as committed.
		IsolationLevel: kafkago.ReadCommitted,
	})
	return &Consumer{r: r, cfg: cfg}, nil
}

// Fetch returns up to max records: it waits for the first, then takes
// what arrives within linger.
//
// Records of signed topics that fail verification are left out (reported
// to Config.Refused); committing a later record of their partition moves
// past them.
func (c *Consumer) Fetch(ctx context.Context, max int, linger time.Duration) ([]Message, error) {
	var out []Message
	for len(out) == 0 {
		m, err := c.r.FetchMessage(ctx)
		if err != nil {
			return nil, fmt.Errorf("fetch: %w", err)
		}
		out = c.take(out, m)
	}
	lctx, cancel := context.WithTimeout(ctx, linger)
	defer cancel()
	for len(out) < max {
		m, err := c.r.FetchMessage(lctx)
		if err != nil {
			// Linger over, or ctx ended: the records taken are returned
			// (dropping them would let a later commit skip them).
			break
		}
		out = c.take(out, m)
	}
	return out, nil
}

// take appends m to out unless it is a refused record.
func (c *Consumer) take(out []Message, m kafkago.Message) []Message {
	if c.cfg.Topics.Signer(m.Topic) != "" {
		r := &Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value}
		for _, h := range m.Headers {
			r.Headers = append(r.Headers, Header{Key: h.Key, Value: h.Value})
		}
		if !c.cfg.admit(m.Topic, r, nil) {
			return out
		}
	}
	return append(out, wrap(m))
}

func wrap(m kafkago.Message) Message {
	return Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, raw: m}
}

// Commit commits the offsets of msgs (and everything before them in their
// partitions).
func (c *Consumer) Commit(ctx context.Context, msgs []Message) error {
	raw := make([]kafkago.Message, len(msgs))
	for i, m := range msgs {
		raw[i] = m.raw
	}
	if err := c.r.CommitMessages(ctx, raw...); err != nil {
		return fmt.Errorf("commit offsets: %w", err)
	}
	return nil
}

// Close leaves the group.
func (c *Consumer) Close() error { return c.r.Close() }

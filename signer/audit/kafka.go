package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/cordonhq/cordon/ingest/kafka"
)

// HeaderKind is the value of the cordon-type header of the log's records.
const HeaderKind = "audit"

// Message is r as a Kafka record of topic (the audit topic: one
// partition): key the seq, value the canonical bytes. A retried write
// of the same record gives the same key and value.
func (r *Record) Message(topic string) (kafka.Record, error) {
	b, err := r.Canonical()
	if err != nil {
		return kafka.Record{}, err
	}
	return kafka.Record{Topic: topic, Key: SeqKey(r.Seq), Value: b, Headers: []kafka.Header{{Key: kafka.HeaderType, Value: []byte(HeaderKind)}}}, nil
}

// ReadTopic hands fn every committed record of the audit topic
// (cfg.Topics.Audit), in offset order, as it is on the topic: record
// signatures (when the topic is signed) are not checked, so that a
// forged record reaches Verify and is named.
func ReadTopic(ctx context.Context, cfg kafka.Config, fn func(Entry) error) error {
	cfg.Topics.Fill()
	return kafka.ReadLog(ctx, cfg, cfg.Topics.Audit, kafka.LogOptions{ClientID: "audit-verify", Unverified: true}, func(r *kafka.Record) error {
		if r.Partition != 0 {
			return fmt.Errorf("audit topic %s has a partition %d: the log is one partition", cfg.Topics.Audit, r.Partition)
		}
		return fn(Entry{Offset: r.Offset, Key: r.Key, Value: r.Value})
	})
}

// VerifyTopic reads the whole audit topic committed so far and verifies
// it (Verify), trusting the checkpoints of keys; expect are anchors
// (Verifier.Expect) the log must still hold. The error wraps
// ErrTampered when the log has a problem, and is a read error otherwise.
// A new gate leader calls it after fencing the previous one and
// restores its Chain from the report's Head.
func VerifyTopic(ctx context.Context, cfg kafka.Config, keys *Keys, expect ...Anchor) (Report, error) {
	v := NewVerifier(keys)
	for _, a := range expect {
		v.Expect(a.Seq, a.Hash)
	}
	if err := ReadTopic(ctx, cfg, func(e Entry) error {
		if !v.Add(e) {
			return errStop // the first problem is found: the rest need not be read
		}
		return nil
	}); err != nil && !errors.Is(err, errStop) {
		return Report{}, fmt.Errorf("read audit log: %w", err)
	}
	return v.Finish()
}

var errStop = errors.New("stop")

// Anchor is a record the log must hold: its seq and hash, as an earlier
// verification reported its head.
type Anchor struct {
	Seq  uint64
	Hash string
}

package intel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
)

// The indicator topic is written in Kafka transactions (an import is
// visible whole or not at all) and read with isolation read_committed,
// through the Kafka wrapper's transactional writer and log reader.

// Topic is the indicator topic of a Kafka cluster.
type Topic struct {
	bad  atomic.Int64
	ref  refusals
	cfg  kafka.Config
	name string
}

// OpenTopic names the indicator topic (cfg.Topics.Intel) of cfg's brokers.
func OpenTopic(cfg kafka.Config) (*Topic, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("intel: no Kafka brokers configured")
	}
	cfg.Topics.Fill()
	return &Topic{cfg: cfg, name: cfg.Topics.Intel}, nil
}

// Close releases the topic (its clients live only as long as each call).
func (t *Topic) Close() {}

// Bad counts the records Read and Consume refused: not valid indicators
// keyed by their feed and id (Refused says why).
func (t *Topic) Bad() int64 { return t.bad.Load() }

// Name is the topic's name.
func (t *Topic) Name() string { return t.name }

// Ensure makes sure the topic exists (created, compacted, when
// kafka.create_topics allows it).
func (t *Topic) Ensure(ctx context.Context) error {
	if err := kafka.Ensure(ctx, t.cfg, t.name); err != nil {
		return fmt.Errorf("intel: %w", err)
	}
	return nil
}

// Publish writes the indicators in one transaction: readers see all of
// them or none. transactionalID names the writer; a newer writer with the
// same id fences an older one that is still running.
func (t *Topic) Publish(ctx context.Context, transactionalID string, inds []Indicator) error {
	if len(inds) == 0 {
		return nil
	}
	recs, err := t.Records(inds)
	if err != nil {
		return err
	}
	// An import of millions of indicators is one transaction: it may take
	// minutes to write.
	w, err := kafka.NewTxWriter(t.cfg, transactionalID, t.name, 5*time.Minute)
	if err != nil {
		return fmt.Errorf("intel: %w", err)
	}
	defer w.Close()
	if err := w.Commit(ctx, recs); err != nil {
		return fmt.Errorf("intel: publish: %w", err)
	}
	return nil
}

// Records are the topic's records of inds, for a writer that commits
// them in a transaction of its own together with other records (partner
// sharing commits a partner's indicators with its sync position).
func (t *Topic) Records(inds []Indicator) ([]kafka.Record, error) {
	recs := make([]kafka.Record, len(inds))
	for i := range inds {
		v, err := json.Marshal(&inds[i])
		if err != nil {
			return nil, fmt.Errorf("intel: encode %s: %w", inds[i].ID, err)
		}
		recs[i] = kafka.Record{Topic: t.name, Key: []byte(KeyOf(&inds[i]).String()), Value: v}
	}
	return recs, nil
}

// Read reads the topic's committed records from the start: fn gets each
// indicator with its key, or a tombstone (nil with its key). Records not
// keyed by their own feed and id are refused (counted, logged), never
// passed on. With follow it keeps reading after catching up (caught is
// called then); without, it returns once caught up.
func (t *Topic) Read(ctx context.Context, follow bool, fn func(k Key, in *Indicator) error, caught func()) error {
	legacyBefore := t.ref.counts[0].Load()
	onCaught := func() {
		t.legacySummary(t.ref.counts[0].Load() - legacyBefore)
		if caught != nil {
			caught()
		}
	}
	err := kafka.ReadLog(ctx, t.cfg, t.name, kafka.LogOptions{Follow: follow, Caught: onCaught, ClientID: "intel"}, func(r *kafka.Record) error {
		k, in, ok := t.decode(r)
		if !ok {
			return nil
		}
		return fn(k, in)
	})
	if err != nil {
		return fmt.Errorf("intel: %w", err)
	}
	return nil
}

// Consume reads the topic's committed records as member of group, in
// batches: fn gets each batch of valid indicators (tombstones and refused
// records are left out), and the batch's offsets are committed only once
// fn returned nil; fn is called again with the same batch until it does
// (or ctx ends). For copies of the topic elsewhere (the ClickHouse
// indicators table).
func (t *Topic) Consume(ctx context.Context, group string, fn func([]Indicator) error) error {
	err := kafka.ConsumeGroup(ctx, t.cfg, t.name, group, func(recs []*kafka.Record) error {
		batch := make([]Indicator, 0, len(recs))
		for _, r := range recs {
			if _, in, ok := t.decode(r); ok && in != nil {
				batch = append(batch, *in)
			}
		}
		return fn(batch)
	})
	if err != nil {
		return fmt.Errorf("intel: %w", err)
	}
	return nil
}

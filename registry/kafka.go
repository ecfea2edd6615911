package registry

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
)

// Publish writes entries to the address topic, keyed by address.
func Publish(ctx context.Context, p *kafka.Producer, entries []Entry) error {
	recs := make([]kafka.KeyValue, len(entries))
	for i := range entries {
		v, err := json.Marshal(&entries[i])
		if err != nil {
			return err
		}
		recs[i] = kafka.KeyValue{Key: entries[i].Key(), Value: v}
	}
	return p.PublishKeyed(ctx, p.Topics().Addresses, "address", recs)
}

// Store keeps an Index equal to the address topic: read from its start,
// then followed, so every instance holds the same addresses.
type Store struct {
	Index *Index
	prod  *kafka.Producer
	ready atomic.Bool
	bad   atomic.Int64
}

// NewStore returns the store of the address topic of p.
func NewStore(p *kafka.Producer) *Store { return &Store{Index: NewIndex(), prod: p} }

// Run reads and follows the topic until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	return s.prod.Follow(ctx, s.prod.Topics().Addresses, 500*time.Millisecond, func(r kafka.Record) error {
		var e Entry
		if err := json.Unmarshal(r.Value, &e); err != nil || e.Validate() != nil || e.Key() != string(r.Key) {
			s.bad.Add(1)
			return nil //nolint:nilerr // not a record cordon writes: skipped, never fatal
		}
		s.Index.Put(&e)
		return nil
	}, func() { s.ready.Store(true) })
}

// Ready tells whether the store has read what the topic held at start.
func (s *Store) Ready() bool { return s.ready.Load() }

// Bad counts skipped records.
func (s *Store) Bad() int64 { return s.bad.Load() }

package followtest

import (
	"context"
	"errors"
	"sync"

	"github.com/cordonhq/cordon/internal/chain"
)

// ErrInjected is the error of a Publish that MemorySink.FailAfter made
// fail.
var ErrInjected = errors.New("followtest: injected publish failure")

// MemorySink is a follow.Sink that keeps every stream as an append-only
// log in memory, like a Kafka partition: repeats of an event stay in the
// log and Checkpoint skips them. It is safe for concurrent use.
type MemorySink struct {
	mu      sync.Mutex
	streams map[string][]chain.BlockEvent
	// armed makes the next Publish of more than failAfter events store
	// only failAfter of them and fail.
	armed     bool
	failAfter int
}

// NewMemorySink returns an empty MemorySink.
func NewMemorySink() *MemorySink {
	return &MemorySink{streams: map[string][]chain.BlockEvent{}}
}

// Publish appends the events to their streams' logs.
func (s *MemorySink) Publish(ctx context.Context, updates []chain.Update) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keep, err := len(updates), error(nil)
	if s.armed && len(updates) > s.failAfter {
		keep, err = s.failAfter, ErrInjected
		s.armed = false
	}
	for _, u := range updates[:keep] {
		k := u.Event.Stream()
		s.streams[k] = append(s.streams[k], u.Event)
	}
	return err
}

// Checkpoint replays the stream's log: the next sequence number and up to
// window newest canonical headers.
func (s *MemorySink) Checkpoint(ctx context.Context, c chain.Chain, network string, window int) (chain.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return chain.Checkpoint{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var st chain.StreamState
	var last uint64
	for _, ev := range s.streams[chain.StreamKey(c, network)] {
		if ev.Seq <= last {
			continue // a repeat of a retried write
		}
		last = ev.Seq
		st.Apply(ev)
	}
	tail := st.Chain
	if len(tail) > window {
		tail = tail[len(tail)-window:]
	}
	return chain.Checkpoint{NextSeq: last + 1, Tail: append([]chain.Header(nil), tail...)}, nil
}

// FailAfter makes the next Publish that carries more than n events store
// only its first n and return ErrInjected.
func (s *MemorySink) FailAfter(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAfter, s.armed = n, true
}

// Events returns the stream's log, repeats included.
func (s *MemorySink) Events(_ context.Context, c chain.Chain, network string) ([]chain.BlockEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]chain.BlockEvent(nil), s.streams[chain.StreamKey(c, network)]...), nil
}

// UnderTest returns the sink with its hooks, for Sink.
func (s *MemorySink) UnderTest() SinkUnderTest {
	return SinkUnderTest{Sink: s, FailAfter: s.FailAfter, Events: s.Events}
}

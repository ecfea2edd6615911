package intel

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/ingest/kafka"
)

// Why a record of the indicator topic was refused: the reason label of
// cordon_intel_records_refused_total.
const (
	// RefusedLegacyKey: keyed by a bare indicator id, as cordon wrote
	// before indicators were namespaced by feed (docs/intel.md,
	// "Migration"). Never applied: it names no feed.
	RefusedLegacyKey = "legacy_key"
	// RefusedBadKey: a key that is neither feed/id nor a bare id.
	RefusedBadKey = "bad_key"
	// RefusedKeyMismatch: the record's feed or id is not its key's — a
	// record claiming one feed's key for another feed's statement.
	// cordon's importer never writes one.
	RefusedKeyMismatch = "key_mismatch"
	// RefusedInvalid: the value is not a valid indicator.
	RefusedInvalid = "invalid"
)

var refusalReasons = []string{RefusedLegacyKey, RefusedBadKey, RefusedKeyMismatch, RefusedInvalid}

// refusals counts and reports the records a Topic refused.
type refusals struct {
	counts  [4]atomic.Int64 // by refusalReasons (legacy_key first)
	mu      sync.Mutex
	log     *slog.Logger
	counter *prometheus.CounterVec
}

// Instrument makes the topic log the records it refuses to log and count
// them in reg's cordon_intel_records_refused_total{reason}. Several
// topics may share a registry.
func (t *Topic) Instrument(log *slog.Logger, reg prometheus.Registerer) error {
	t.ref.mu.Lock()
	defer t.ref.mu.Unlock()
	t.ref.log = log
	if reg == nil {
		return nil
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_intel_records_refused_total",
		Help: "Records of the indicator topic refused, never applied, by reason (legacy_key, bad_key, key_mismatch, invalid)."},
		[]string{"reason"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("intel: register metrics: %w", err)
		}
		c = are.ExistingCollector.(*prometheus.CounterVec)
	}
	for _, r := range refusalReasons {
		c.WithLabelValues(r)
	}
	t.ref.counter = c
	return nil
}

// Refused counts the records refused so far, by reason.
func (t *Topic) Refused() map[string]int64 {
	out := map[string]int64{}
	for i, r := range refusalReasons {
		if n := t.ref.counts[i].Load(); n > 0 {
			out[r] = n
		}
	}
	return out
}

// refuse counts a refused record and logs it; records of the legacy
// format are logged only for the first few (a topic written before
// namespacing holds one per indicator), then summed up in Read.
func (t *Topic) refuse(r *kafka.Record, reason string, err error) {
	n := int64(0)
	for i, rr := range refusalReasons {
		if rr == reason {
			n = t.ref.counts[i].Add(1)
		}
	}
	t.bad.Add(1)
	t.ref.mu.Lock()
	log, counter := t.ref.log, t.ref.counter
	t.ref.mu.Unlock()
	if counter != nil {
		counter.WithLabelValues(reason).Inc()
	}
	if log == nil || (reason == RefusedLegacyKey && n > 3) {
		return
	}
	log.Warn("intel: record refused, not applied", "topic", t.name, "partition", r.Partition, "offset", r.Offset,
		"key", clip(string(r.Key)), "reason", reason, "err", err)
}

// decode is the key and indicator of a record (nil for a tombstone);
// false when the record is refused (counted, logged).
func (t *Topic) decode(r *kafka.Record) (Key, *Indicator, bool) {
	k, err := ParseKey(r.Key)
	switch {
	case errors.Is(err, ErrLegacyKey):
		t.refuse(r, RefusedLegacyKey, err)
		return Key{}, nil, false
	case err != nil:
		t.refuse(r, RefusedBadKey, err)
		return Key{}, nil, false
	}
	if r.Value == nil {
		return k, nil, true
	}
	var in Indicator
	if err := json.Unmarshal(r.Value, &in); err != nil {
		t.refuse(r, RefusedInvalid, err)
		return Key{}, nil, false
	}
	if err := in.Validate(); err != nil {
		t.refuse(r, RefusedInvalid, err)
		return Key{}, nil, false
	}
	if got := KeyOf(&in); got != k {
		t.refuse(r, RefusedKeyMismatch, fmt.Errorf("the record says feed %q id %q", clip(got.Feed), got.ID))
		return Key{}, nil, false
	}
	return k, &in, true
}

// legacySummary logs, once caught up, how many legacy records this read
// refused (n), with what to do.
func (t *Topic) legacySummary(n int64) {
	t.ref.mu.Lock()
	log := t.ref.log
	t.ref.mu.Unlock()
	if n == 0 || log == nil {
		return
	}
	log.Warn("intel: the topic holds records keyed by bare indicator ids (written before indicators were namespaced by feed); "+
		"they are not matched: re-import every feed once (docs/intel.md, Migration)", "topic", t.name, "refused", n)
}

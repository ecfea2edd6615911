package alliance

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/sharing/partner"
	"github.com/cordonhq/cordon/sharing/stix"
	"github.com/cordonhq/cordon/sharing/taxii"
)

// Self is the exchange this instance shares for: its partner name, its
// STIX identity (created_by_ref of what it publishes) and its Ed25519
// signing key.
type Self struct {
	Name     string
	Identity string
	Key      ed25519.PrivateKey
}

// Partners is what the service needs of the partner registry.
type Partners interface {
	stix.KeyLookup
	// NameOf names the partner whose STIX identity is identity, and
	// IdentityOf is the identity of the partner named name.
	NameOf(identity string) (string, bool)
	IdentityOf(name string) (string, bool)
	// MayRelay tells whether sender may hand us objects signed by
	// signerIdentity (its own, or a partner's it is named to relay).
	MayRelay(sender, signerIdentity string) bool
	// MayReceive tells whether the caller may receive one of our records
	// of the collection alias (its read rights and the record's TLP).
	MayReceive(c taxii.Caller, alias string, rec *taxii.Record) bool
}

// Collection aliases every instance serves.
const (
	// Collection is the collection of our own signed indicators, which
	// partners read (and long-poll).
	Collection = "indicators"
	// Inbox is the collection partners post to: their urgent listings,
	// revocations and sightings. It is written, never read.
	Inbox = "inbox"
	// Hashed is the privacy mode's collection: our listings of
	// addresses tied to customers rather than criminals, each value the
	// address's keyed hash with the alliance key, so partners holding
	// the key match an address without learning the list.
	Hashed = "hashed"
)

// ServiceConfig configures the service.
type ServiceConfig struct {
	Self     Self
	Partners Partners
	Kafka    kafka.Config
	Intel    *intel.Topic
	Store    *taxii.Store // holds Published and Inbox
	Clock    clock.Clock
	Log      *slog.Logger
	Metrics  *Metrics
	// Limits bound the objects a partner sends (stix.DefaultLimits).
	Limits stix.Limits
	// Skew is how far in the future a partner's object may be dated
	// (stix.MaxSkew).
	Skew time.Duration
	// AllianceKey is the privacy mode's key (nil: no private listings).
	AllianceKey []byte
}

// Service is partner sharing's state and intake: it serves our
// collections from the Store, takes partners' objects (posted to us or
// pulled from them) after checking each, and writes what it takes to
// the indicator topic in the same Kafka transaction as its own state,
// so a restart neither loses nor repeats anything.
type Service struct {
	cfg   ServiceConfig
	topic string
	w     *kafka.TxWriter

	mu     sync.Mutex // one intake or publication at a time
	held   map[string]*held
	seq    uint64 // the last held batch written
	cursor map[string]time.Time
	stats  *stats
	// sightings are the sightings made (true: posted); unsent those to
	// post again.
	sightings map[string]bool
	unsent    map[string]sent
}

// Open fences any older instance (the transactional id), reads the state
// back and fills the store.
func Open(ctx context.Context, cfg ServiceConfig) (*Service, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Limits.MaxBytes == 0 {
		cfg.Limits = stix.DefaultLimits
	}
	if cfg.Skew == 0 {
		cfg.Skew = stix.MaxSkew
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	switch {
	case cfg.Self.Name == "" || !stix.ValidID(cfg.Self.Identity) || len(cfg.Self.Key) != ed25519.PrivateKeySize:
		return nil, errors.New("sharing: self needs a name, an identity--<uuid> and an Ed25519 key")
	case cfg.Partners == nil || cfg.Intel == nil || cfg.Store == nil:
		return nil, errors.New("sharing: partners, the indicator topic and the store are required")
	}
	cfg.Kafka.Topics.Fill()
	s := &Service{cfg: cfg, topic: cfg.Kafka.Topics.Sharing, held: map[string]*held{}, cursor: map[string]time.Time{}, stats: newStats(),
		sightings: map[string]bool{}, unsent: map[string]sent{}}
	if err := kafka.Ensure(ctx, cfg.Kafka, s.topic, cfg.Intel.Name()); err != nil {
		return nil, fmt.Errorf("sharing: %w", err)
	}
	w, err := kafka.NewTxWriter(cfg.Kafka, kafka.TxSharing, s.topic, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("sharing: %w", err)
	}
	// An empty commit makes the writer take its transactional id now,
	// fencing an older instance before the state is read.
	if err := w.Commit(ctx, nil); err != nil {
		w.Close()
		return nil, fmt.Errorf("sharing: fence older instances: %w", err)
	}
	s.w = w
	if err := s.restore(ctx); err != nil {
		w.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the writer.
func (s *Service) Close() { s.w.Close() }

func (s *Service) restore(ctx context.Context) error {
	st := &restored{objects: map[string][]taxii.Record{}, held: map[string]*held{}, cursors: map[string]time.Time{}, sent: map[string]sent{}}
	var bad error
	err := kafka.ReadLog(ctx, s.cfg.Kafka, s.topic, kafka.LogOptions{ClientID: "sharing-restore"}, func(r *kafka.Record) error {
		if err := st.apply(r); err != nil && bad == nil {
			bad = err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sharing: restore: %w", err)
	}
	if bad != nil {
		return fmt.Errorf("sharing: restore %s: %w", s.topic, bad)
	}
	for col, recs := range st.objects {
		sort.SliceStable(recs, func(i, j int) bool { return recs[i].DateAdded.Before(recs[j].DateAdded) })
		if err := s.cfg.Store.Restore(col, recs); err != nil {
			return fmt.Errorf("sharing: %w", err)
		}
	}
	s.held, s.cursor, s.seq = st.held, st.cursors, st.seq
	for id, v := range st.sent {
		s.sightings[id] = v.Sent
		if !v.Sent {
			s.unsent[id] = v
		}
	}
	s.cfg.Log.Info("sharing: state restored", "held", len(st.held), "cursors", len(st.cursors), "collections", len(st.objects))
	return nil
}

// Cursor is how far the partner's collection was pulled.
func (s *Service) Cursor(partner, col string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor[cursorKey(partner, col)]
}

// MaxFutureHold is how far ahead of our clock a pulled object may be
// dated for the pull to wait for it rather than pass it.
const MaxFutureHold = time.Hour

// Refusal reasons: the reason label of cordon_sharing_objects_refused_total.
const (
	ReasonMalformed = "malformed"
	ReasonType      = "type"
	ReasonFuture    = "future"
	ReasonSignature = "signature"
	ReasonRelay     = "relay"
	ReasonOwn       = "own"
	ReasonOwner     = "owner"
	ReasonStale     = "stale"
	ReasonConflict  = "conflict"
	ReasonValue     = "value"
	ReasonNotStored = "not_stored"
)

// Refused is why an object was refused.
type Refused struct {
	Reason string
	Err    error
}

func (r *Refused) Error() string { return r.Reason + ": " + r.Err.Error() }
func (r *Refused) Unwrap() error { return r.Err }

func refuse(reason string, format string, a ...any) *Refused {
	return &Refused{Reason: reason, Err: fmt.Errorf(format, a...)}
}

// Accept is the server's intake: the objects a partner posted to one of
// our collections.
func (s *Service) Accept(ctx context.Context, c taxii.Caller, alias string, objs []stix.Object) []taxii.Outcome {
	return s.intake(ctx, c.Name, objs, nil)
}

// Ingest takes a page pulled from partner's collection col, whose last
// object was added at after: the objects taken and the new position
// commit together.
func (s *Service) Ingest(ctx context.Context, partner, col string, objs []stix.Object, after time.Time) ([]taxii.Outcome, error) {
	// An object refused only because it is dated ahead of our clock (the
	// partner's clock runs fast) becomes acceptable later: the position
	// stays before it, so the next pull brings it again. Beyond
	// MaxFutureHold it is refused and passed like any other.
	now := s.cfg.Clock.Now()
	for i := range objs {
		if err := stix.Check(&objs[i], now, s.cfg.Skew); errors.Is(err, stix.ErrFuture) && objs[i].Modified.Before(now.Add(MaxFutureHold)) {
			after = s.Cursor(partner, col)
			break
		}
	}
	rec, err := record(s.topic, kindCursor, cursorKey(partner, col), cursor{Partner: partner, Collection: col, After: after})
	if err != nil {
		return nil, err
	}
	out := s.intake(ctx, partner, objs, &pos{rec: rec, key: cursorKey(partner, col), after: after})
	for _, o := range out {
		var r *Refused
		if errors.As(o.Err, &r) && r.Reason == ReasonNotStored {
			return out, o.Err
		}
	}
	return out, nil
}

type pos struct {
	rec   kafka.Record
	key   string
	after time.Time
}

// intake checks each object, then commits the ones taken (their held
// versions and indicators) in one transaction, with the pull position
// when there is one. Nothing is taken if the commit fails. The checks
// that need no state (signatures, values) run before the lock, so one
// partner's large bundle does not hold up another's urgent listing for
// long.
func (s *Service) intake(ctx context.Context, from string, objs []stix.Object, p *pos) []taxii.Outcome {
	now := s.cfg.Clock.Now().UTC()
	out := make([]taxii.Outcome, len(objs))
	cands := make([]*candidate, len(objs))
	for i := range objs {
		out[i] = taxii.Outcome{ID: objs[i].ID, Version: objs[i].Modified}
	}
	// The signatures are checked on every core.
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), max(1, len(objs)/64))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(objs); i += workers {
				cands[i], out[i].Err = s.verify(&objs[i], from, now)
			}
		}()
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	batch := map[string]*held{}
	var recs []kafka.Record
	var inds []intel.Indicator
	taken := make([]int, 0, len(objs))
	for i, c := range cands {
		if out[i].Err != nil {
			continue
		}
		dup, err := s.order(c, batch)
		if err != nil {
			out[i].Err = err
			continue
		}
		if dup {
			out[i].Duplicate = true
			continue
		}
		c.h.First = c.h.Taken
		prev := batch[c.h.key()]
		if prev == nil {
			prev = s.held[c.h.key()]
		}
		if prev != nil {
			c.h.First = prev.since()
		}
		for _, in := range c.ins {
			c.h.Values = append(c.h.Values, heldValue{ID: in.ID, Kind: in.Kind, Chain: in.Chain, Network: in.Network, Value: in.Value})
		}
		batch[c.h.key()] = c.h
		inds = append(inds, c.ins...)
		if prev != nil {
			// A value the new version no longer names (another producer's
			// pattern of several addresses, one dropped) is revoked: it
			// would otherwise stay listed under its own key forever.
			inds = append(inds, dropped(prev, c)...)
		}
		taken = append(taken, i)
	}
	var err error
	if len(batch) > 0 {
		hb := heldBatch{Seq: s.seq + 1, Held: make([]*held, 0, len(batch))}
		for _, h := range batch {
			hb.Held = append(hb.Held, h)
		}
		var r kafka.Record
		if r, err = record(s.topic, kindHeld, heldKey(hb.Seq), hb); err == nil {
			recs = append(recs, r)
		}
	}
	var ir []kafka.Record
	if err == nil {
		ir, err = s.cfg.Intel.Records(inds)
	}
	if err == nil {
		recs = append(recs, ir...)
		if p != nil {
			recs = append(recs, p.rec)
		}
		if len(recs) > 0 {
			err = s.w.Commit(ctx, recs)
		}
	}
	if len(batch) > 0 {
		// The sequence moves on even when the commit fails: a commit
		// whose answer was lost (EndTxn timed out, the poster's context
		// ended) may still have been applied, and a second batch under
		// the same key would replace it at compaction, losing the
		// versions it held (a replay of them would then be taken).
		s.seq++
	}
	if err != nil {
		s.cfg.Log.Error("sharing: objects not stored", "from", from, "objects", len(taken), "err", err)
		for _, i := range taken {
			out[i].Err = &Refused{Reason: ReasonNotStored, Err: fmt.Errorf("not stored: %w", err)}
		}
		s.count(from, out)
		return out
	}
	for k, h := range batch {
		s.held[k] = h
	}
	if p != nil {
		s.cursor[p.key] = p.after
	}
	s.count(from, out)
	return out
}

// dropped are revoked copies of the indicators prev produced that c no
// longer does.
func dropped(prev *held, c *candidate) []intel.Indicator {
	if len(c.ins) == 0 {
		return nil
	}
	now := map[string]bool{}
	for _, in := range c.ins {
		now[in.ID] = true
	}
	var out []intel.Indicator
	for _, v := range prev.Values {
		if now[v.ID] {
			continue
		}
		in := c.ins[0]
		in.ID, in.Kind, in.Chain, in.Network, in.Value, in.Revoked = v.ID, v.Kind, v.Chain, v.Network, v.Value, true
		out = append(out, in)
	}
	return out
}

// candidate is an object that passed the checks needing no state.
type candidate struct {
	o       *stix.Object
	h       *held
	ins     []intel.Indicator
	revoked bool
}

// key is a held version's key: the creator and the id. An id is its
// creator's: another partner's object under the same id is another
// object, so nobody can claim, block or probe the ids of another's
// listings (which anyone can compute).
func (h *held) key() string { return h.CreatedBy + "|" + h.ID }

// verify runs the checks of one object that need no state: dates and
// type, signature, identity and relay rights, TLP of relayed objects,
// values.
func (s *Service) verify(o *stix.Object, from string, now time.Time) (*candidate, error) {
	if err := stix.Check(o, now, s.cfg.Skew); err != nil {
		switch {
		case errors.Is(err, stix.ErrNotAccepted):
			return nil, &Refused{ReasonType, err}
		case errors.Is(err, stix.ErrFuture):
			return nil, &Refused{ReasonFuture, err}
		}
		return nil, &Refused{ReasonMalformed, err}
	}
	signer, hash, err := stix.VerifyHash(o.Raw, s.cfg.Partners)
	if err != nil {
		return nil, &Refused{ReasonSignature, fmt.Errorf("object %s: %w", o.ID, err)}
	}
	if signer.Identity == s.cfg.Self.Identity {
		return nil, refuse(ReasonOwn, "object %s is signed with our own key: we take no copies of our own objects", o.ID)
	}
	name, ok := s.cfg.Partners.NameOf(signer.Identity)
	if !ok {
		return nil, refuse(ReasonSignature, "object %s: signer %s is no partner", o.ID, signer.Identity)
	}
	if !s.cfg.Partners.MayRelay(from, signer.Identity) {
		return nil, refuse(ReasonRelay, "object %s is signed by %s, whose objects %s may not relay", o.ID, name, from)
	}
	if name != from {
		// A relay passes on only what its signer shared widely:
		// AMBER and above went to named recipients.
		if t, err := partner.TLPOf(o.Raw); err != nil || (t != intel.TLPClear && t != intel.TLPGreen) {
			return nil, refuse(ReasonRelay, "object %s of %s relayed by %s is marked TLP:%s: only TLP:CLEAR and GREEN objects are relayed",
				o.ID, name, from, strings.ToUpper(string(t)))
		}
	}
	var ins []intel.Indicator
	switch o.Type {
	case "indicator":
		ins, err = stix.ToIndicators(o, "partner:"+name, name, now)
		if err != nil {
			return nil, &Refused{ReasonValue, fmt.Errorf("object %s: %w", o.ID, err)}
		}
	case "sighting":
		if err := s.sightingOfOurs(o, from, name); err != nil {
			return nil, err
		}
	}
	var rv struct {
		Revoked bool `json:"revoked"`
	}
	_ = json.Unmarshal(o.Raw, &rv)
	h := &held{ID: o.ID, Modified: o.Modified, CreatedBy: o.CreatedByRef, Hash: hex.EncodeToString(hash[:]), From: from, Signer: name, Taken: now}
	if len(ins) > 0 {
		h.TLP = ins[0].TLP
	}
	return &candidate{o: o, h: h, ins: ins, revoked: rv.Revoked}, nil
}

// order decides a verified object against the version held of it (or
// taken earlier in the batch): true for a duplicate, or why it is
// refused (an older version, other content under the same version, a
// revocation of an object its creator never sent us).
func (s *Service) order(c *candidate, batch map[string]*held) (bool, error) {
	o, k := c.o, c.h.key()
	prev := batch[k]
	if prev == nil {
		prev = s.held[k]
	}
	if prev == nil {
		if c.revoked {
			return false, refuse(ReasonOwner, "object %s is a revocation, and %s never sent us the object: only its creator revokes it", o.ID, c.h.Signer)
		}
		if o.Type == "sighting" {
			s.cfg.Metrics.sightingsIn.WithLabelValues(c.h.Signer).Inc()
			s.cfg.Log.Warn("sharing: a partner sighted one of our indicators", "from", c.h.From, "signer", c.h.Signer, "sighting", o.ID)
		}
		return false, nil
	}
	switch cmp := o.Modified.Compare(prev.Modified); {
	case cmp < 0:
		return false, refuse(ReasonStale, "object %s: %s: modified %s, and %s is held", o.ID, stix.ErrStale,
			stix.FormatTimestamp(o.Modified), stix.FormatTimestamp(prev.Modified))
	case cmp == 0 && prev.Hash == c.h.Hash:
		return true, nil
	case cmp == 0:
		return false, refuse(ReasonConflict, "object %s: %s: modified %s holds other content", o.ID, stix.ErrConflict, stix.FormatTimestamp(o.Modified))
	}
	return false, nil
}

func (s *Service) count(from string, out []taxii.Outcome) {
	for _, o := range out {
		var r *Refused
		switch {
		case o.Err == nil && o.Duplicate:
			s.cfg.Metrics.received(from, "duplicate")
			s.stats.add(from, 0, 1, 0)
		case o.Err == nil:
			s.cfg.Metrics.received(from, "accepted")
			s.stats.add(from, 1, 0, 0)
		case errors.As(o.Err, &r):
			s.cfg.Metrics.refused(from, r.Reason)
			s.stats.add(from, 0, 0, 1)
			s.cfg.Log.Warn("sharing: object refused", "from", from, "object", o.ID, "reason", r.Reason, "err", o.Err)
		default:
			s.cfg.Metrics.refused(from, ReasonMalformed)
			s.stats.add(from, 0, 0, 1)
			s.cfg.Log.Warn("sharing: object refused", "from", from, "object", o.ID, "err", o.Err)
		}
	}
}

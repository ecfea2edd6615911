package alliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/sharing/stix"
	"github.com/cordonhq/cordon/sharing/taxii"
)

// Listing is what an operator publishes: values of one chain network
// with one category, marking and confidence.
type Listing struct {
	Chain       chain.Chain `json:"chain"`
	Network     string      `json:"network"`
	Kind        intel.Kind  `json:"kind,omitempty"`
	Values      []string    `json:"values"`
	Category    string      `json:"category"`
	Confidence  int         `json:"confidence"`
	TLP         intel.TLP   `json:"tlp"`
	Description string      `json:"description,omitempty"`
	ValidUntil  time.Time   `json:"valid_until,omitzero"`
	// Urgent listings (an active theft) are posted to every entitled
	// partner at once instead of waiting for their pull.
	Urgent bool        `json:"urgent,omitempty"`
	Refs   []intel.Ref `json:"external_references,omitempty"`
	// Private listings (addresses tied to customers) are published as
	// keyed hashes to the hashed collection (the privacy mode).
	Private bool `json:"private,omitempty"`
}

// Published is one object published.
type Published struct {
	ID         string          `json:"id"`
	Collection string          `json:"collection"`
	Value      string          `json:"value"`
	Version    time.Time       `json:"version"`
	TLP        intel.TLP       `json:"tlp"`
	Urgent     bool            `json:"urgent,omitempty"`
	Revoked    bool            `json:"revoked,omitempty"`
	Object     json.RawMessage `json:"object"`
	Recorded   time.Time       `json:"recorded"`
}

// MaxListing bounds the values of one listing.
const MaxListing = 10000

// errListing is wrapped by every refusal of a listing's content.
var errListing = errors.New("invalid listing")

// OwnFeed is the feed our own publications enter the indicator topic
// as, so that this instance screens with them too.
func (s *Service) OwnFeed() string { return "share:" + s.cfg.Self.Name }

// Publish signs the listing's indicators with our key and commits them
// to the published collection and the indicator topic in one
// transaction. Publishing a value again is a new version of the same
// object (its id is derived from us, the chain and the value).
func (s *Service) Publish(ctx context.Context, l Listing) ([]Published, error) {
	if len(l.Values) == 0 || len(l.Values) > MaxListing {
		return nil, fmt.Errorf("sharing: %w: a listing holds 1 to %d values, not %d", errListing, MaxListing, len(l.Values))
	}
	if l.TLP == "" {
		l.TLP = intel.TLPAmber
	}
	if l.Kind == "" {
		l.Kind = intel.KindAddress
	}
	col := Collection
	if l.Private {
		if len(s.cfg.AllianceKey) == 0 {
			return nil, fmt.Errorf("sharing: %w: a private listing needs the alliance key (sharing.alliance_key)", errListing)
		}
		if l.Kind != intel.KindAddress {
			return nil, fmt.Errorf("sharing: %w: private listings are of addresses", errListing)
		}
		hashed := make([]string, len(l.Values))
		for i, v := range l.Values {
			h, err := stix.HashValue(s.cfg.AllianceKey, l.Chain, l.Network, v)
			if err != nil {
				return nil, fmt.Errorf("sharing: %w: value %d (%q): %w", errListing, i, v, err)
			}
			hashed[i] = h
		}
		l.Values, l.Kind, col = hashed, intel.KindAddressHash, Hashed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock.Now().UTC().Truncate(time.Millisecond)
	var ins []intel.Indicator
	seen := map[string]bool{}
	for i, v := range l.Values {
		in := intel.Indicator{Kind: l.Kind, Chain: l.Chain, Network: l.Network, Value: v, Category: l.Category, Source: s.cfg.Self.Name,
			Confidence: l.Confidence, TLP: l.TLP, ValidFrom: now, ValidUntil: l.ValidUntil, Created: now, Modified: now,
			Feed: s.OwnFeed(), Description: l.Description, Refs: l.Refs}
		if err := in.Validate(); err != nil {
			return nil, fmt.Errorf("sharing: %w: value %d (%q): %w", errListing, i, v, err)
		}
		in.ID = intel.ID(s.cfg.Self.Name, in.Chain, in.Kind, in.Value)
		if seen[in.ID] {
			continue
		}
		seen[in.ID] = true
		if prev, ok := s.ours(in.ID); ok {
			in.Created, in.ValidFrom = prev.Created, prev.Created
			if !in.Modified.After(prev.Modified) {
				in.Modified = prev.Modified.Add(time.Millisecond)
			}
		}
		ins = append(ins, in)
	}
	return s.commitOwn(ctx, col, ins, func(in *intel.Indicator) ([]byte, error) {
		return stix.FromIndicator(in, s.cfg.Self.Identity, stix.Options{Urgent: l.Urgent})
	})
}

// ErrNotOurs is returned for a revocation of an object we did not
// publish.
var ErrNotOurs = errors.New("not an indicator we published")

// Revoke publishes a revoked version of each of our indicators named by
// id. Revocations are always urgent.
func (s *Service) Revoke(ctx context.Context, ids []string) ([]Published, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock.Now().UTC().Truncate(time.Millisecond)
	raws := map[string][]byte{}
	cols := map[string][]intel.Indicator{}
	for _, id := range ids {
		prev, ok := s.ours(id)
		if !ok {
			return nil, fmt.Errorf("sharing: revoke %s: %w", id, ErrNotOurs)
		}
		if prev.Revoked {
			continue
		}
		mod := now
		if !mod.After(prev.Modified) {
			mod = prev.Modified.Add(time.Millisecond)
		}
		raw, err := stix.Revoke(prev.raw, mod)
		if err != nil {
			return nil, fmt.Errorf("sharing: revoke %s: %w", id, err)
		}
		raws[id] = raw
		in := prev.Indicator
		in.Modified, in.Revoked = mod, true
		cols[prev.col] = append(cols[prev.col], in)
	}
	var out []Published
	for _, col := range []string{Collection, Hashed} {
		if len(cols[col]) == 0 {
			continue
		}
		pub, err := s.commitOwn(ctx, col, cols[col], func(in *intel.Indicator) ([]byte, error) { return raws[in.ID], nil })
		if err != nil {
			return out, err
		}
		out = append(out, pub...)
	}
	return out, nil
}

// RevokeValues revokes our indicators of the given values (private:
// the hashed listings of them).
func (s *Service) RevokeValues(ctx context.Context, c chain.Chain, network string, kind intel.Kind, values []string, private bool) ([]Published, error) {
	if kind == "" {
		kind = intel.KindAddress
	}
	ids := make([]string, 0, len(values))
	for _, v := range values {
		n, err := intel.NormalizeValue(kind, c, network, v)
		if err != nil {
			return nil, fmt.Errorf("sharing: %w: %q: %w", errListing, v, err)
		}
		k := kind
		if private {
			if n, err = stix.HashValue(s.cfg.AllianceKey, c, network, n); err != nil {
				return nil, fmt.Errorf("sharing: %w: %q: %w", errListing, v, err)
			}
			k = intel.KindAddressHash
		}
		ids = append(ids, intel.ID(s.cfg.Self.Name, c, k, n))
	}
	return s.Revoke(ctx, ids)
}

type own struct {
	intel.Indicator
	raw []byte
	col string
}

// ours is the newest version of one of our published indicators.
func (s *Service) ours(id string) (own, bool) {
	col := Collection
	p, err := s.cfg.Store.Query(col, taxii.Filter{IDs: []string{id}}, 1)
	if err == nil && len(p.Records) == 0 {
		col = Hashed
		p, err = s.cfg.Store.Query(col, taxii.Filter{IDs: []string{id}}, 1)
	}
	if err != nil || len(p.Records) == 0 {
		return own{}, false
	}
	r := p.Records[0]
	o, err := stix.DecodeObject(r.Raw, s.cfg.Limits)
	if err != nil {
		return own{}, false
	}
	ins, err := stix.ToIndicators(o, s.OwnFeed(), s.cfg.Self.Name, s.cfg.Clock.Now())
	if err != nil || len(ins) != 1 {
		return own{}, false
	}
	return own{Indicator: ins[0], raw: r.Raw, col: col}, true
}

// commitOwn signs each indicator's object (made by form), reads it back
// as partners will, and commits the objects and indicators together.
func (s *Service) commitOwn(ctx context.Context, col string, ins []intel.Indicator, form func(*intel.Indicator) ([]byte, error)) ([]Published, error) {
	key := stix.SigningKey{Identity: s.cfg.Self.Identity, Key: s.cfg.Self.Key}
	recs := make([]taxii.Record, 0, len(ins))
	own := make([]intel.Indicator, 0, len(ins))
	out := make([]Published, 0, len(ins))
	for i := range ins {
		raw, err := form(&ins[i])
		if err != nil {
			return nil, fmt.Errorf("sharing: %w: %s: %w", errListing, ins[i].Value, err)
		}
		signed, err := stix.Sign(raw, key)
		if err != nil {
			return nil, fmt.Errorf("sharing: sign %s: %w", ins[i].ID, err)
		}
		o, err := stix.DecodeObject(signed, s.cfg.Limits)
		if err != nil {
			return nil, fmt.Errorf("sharing: our own object %s: %w", ins[i].ID, err)
		}
		back, err := stix.ToIndicators(o, s.OwnFeed(), s.cfg.Self.Name, s.cfg.Clock.Now())
		if err != nil {
			return nil, fmt.Errorf("sharing: our own object %s reads back wrong: %w", ins[i].ID, err)
		}
		own = append(own, back...)
		recs = append(recs, taxii.Record{ID: o.ID, Type: o.Type, SpecVersion: o.SpecVersion, Version: o.Modified, Raw: signed})
		out = append(out, Published{ID: o.ID, Collection: col, Value: ins[i].Value, Version: o.Modified, TLP: back[0].TLP, Urgent: stix.Urgent(o),
			Revoked: back[0].Revoked, Object: signed})
	}
	added, err := s.cfg.Store.AddWith(col, recs, func(col string, batch []taxii.Record) error {
		krs := make([]kafka.Record, 0, len(batch)+len(own))
		for i := range batch {
			r, err := record(s.topic, kindObject, objectKey(col, &batch[i]), &batch[i])
			if err != nil {
				return err
			}
			krs = append(krs, r)
		}
		irs, err := s.cfg.Intel.Records(own)
		if err != nil {
			return err
		}
		return s.w.Commit(ctx, append(krs, irs...))
	})
	if err != nil {
		return nil, fmt.Errorf("sharing: publish: %w", err)
	}
	now := s.cfg.Clock.Now().UTC()
	kept := out[:0]
	for i := range out {
		if added[i] {
			out[i].Recorded = now
			kept = append(kept, out[i])
		}
	}
	s.cfg.Metrics.published(len(kept))
	return kept, nil
}

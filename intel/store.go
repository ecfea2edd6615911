package intel

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
)

// Store is the index a cordon instance matches with, kept equal to the
// indicator topic: rebuilt from it on start, then following it.
type Store struct {
	Index *Index
	topic *Topic
	ready atomic.Bool
}

// NewStore returns a store of the topic's indicators; call Run.
func NewStore(t *Topic) *Store { return &Store{Index: NewIndex(), topic: t} }

// Run reads the topic from the start and keeps following it until ctx
// ends.
func (s *Store) Run(ctx context.Context) error {
	return s.topic.Read(ctx, true, func(k Key, in *Indicator) error {
		if in == nil {
			s.Index.Delete(k)
		} else {
			s.Index.Put(in)
		}
		return nil
	}, func() { s.ready.Store(true) })
}

// Ready tells whether the store has caught up with the topic once.
func (s *Store) Ready() bool { return s.ready.Load() }

// Verdict is the screening answer for one value.
type Verdict struct {
	Chain   chain.Chain `json:"chain"`
	Address string      `json:"address"`
	// Verdict is "clean", "flagged", or "invalid" (with Error).
	Verdict string `json:"verdict"`
	// Category and Confidence are the strongest match's.
	Category   string  `json:"category,omitempty"`
	Confidence int     `json:"confidence,omitempty"`
	Matches    []Match `json:"matches"`
	Error      string  `json:"error,omitempty"`
}

// Hits returns the indicators active now that addr matches (none when it
// is clean or not a valid address of the chain), each named by its key
// (feed/id): the screening that crediting and the withdrawal gate hold
// money on.
func (x *Index) Hits(c chain.Chain, network, addr string) []chain.Hit {
	matches := Screen(x, c, network, addr, time.Now()).Matches
	out := make([]chain.Hit, 0, len(matches))
	for _, m := range matches {
		out = append(out, chain.Hit{Address: addr, Indicator: Key{Feed: m.Feed, ID: m.ID}.String(), Category: m.Category, Source: m.Source,
			Confidence: m.Confidence})
	}
	return out
}

// Screen checks an address (or contract) of chain on network.
func Screen(x *Index, c chain.Chain, network, addr string, now time.Time) Verdict {
	v := Verdict{Chain: c, Address: addr, Matches: []Match{}}
	norm, err := address.Normalize(c, network, addr)
	if err != nil {
		v.Verdict, v.Error = "invalid", err.Error()
		return v
	}
	v.Address = norm
	v.Matches = x.Lookup(v.Matches, c, KindAddress, norm, now)
	if c == chain.ETH {
		v.Matches = x.Lookup(v.Matches, c, KindContract, norm, now)
	}
	if k := x.privacy.Load(); k != nil && len(*k) >= address.MinPrivacyKey {
		if h, err := address.PrivacyHash(*k, c, network, norm); err == nil {
			v.Matches = x.Lookup(v.Matches, c, KindAddressHash, h, now)
		}
	}
	v.Verdict = "clean"
	for _, m := range v.Matches {
		v.Verdict = "flagged"
		if s, best := Severity(m.Category), Severity(v.Category); s > best || (s == best && m.Confidence > v.Confidence) {
			v.Category, v.Confidence = m.Category, m.Confidence
		}
	}
	return v
}

package taxii

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cordonhq/cordon/internal/clock"
)

// Precision is the precision of date-added timestamps: two objects are
// never added at the same microsecond.
const Precision = time.Microsecond

// Record is one version of one object as the store holds it.
type Record struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	SpecVersion string    `json:"spec_version"`
	Version     time.Time `json:"version"`
	DateAdded   time.Time `json:"date_added"`
	// Raw is the object as posted, re-served byte for byte.
	Raw []byte `json:"raw"`
}

// Object is what Access.MayReceive decides on.
type Object = Record

// ErrNoCollection is returned for a collection the store does not hold.
var ErrNoCollection = errors.New("no such collection")

type collection struct {
	log      []*Record            // by DateAdded
	versions map[string][]*Record // id -> by Version
	byKey    map[string]*Record   // id + version
}

// Store holds collections in memory. Safe for concurrent use.
type Store struct {
	// Append, when set, is called with each batch before it becomes
	// visible; an error refuses the batch (persistence).
	Append func(collection string, recs []Record) error

	clock  clock.Clock
	addMu  sync.Mutex // serializes adders: stamp, Append, insert
	mu     sync.RWMutex
	cols   map[string]*collection
	last   time.Time
	change chan struct{}
}

// NewStore returns a store of the named collections.
func NewStore(c clock.Clock, collections ...string) *Store {
	if c == nil {
		c = clock.Real{}
	}
	s := &Store{clock: c, cols: map[string]*collection{}, change: make(chan struct{})}
	for _, id := range collections {
		s.cols[id] = &collection{versions: map[string][]*Record{}, byKey: map[string]*Record{}}
	}
	return s
}

func key(id string, v time.Time) string { return id + "|" + v.UTC().Format(time.RFC3339Nano) }

// Has tells whether the store holds id at version v.
func (s *Store) Has(col, id string, v time.Time) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.cols[col]
	return c != nil && c.byKey[key(id, v)] != nil
}

// Add stamps recs with date-added timestamps, hands them to Append, then
// makes them visible. Records already held (same id and version) are
// skipped; added tells which were new.
func (s *Store) Add(col string, recs []Record) (added []bool, err error) {
	return s.AddWith(col, recs, s.Append)
}

// AddWith is Add with persist in place of the Append hook, for a caller
// that persists a batch together with records of its own.
func (s *Store) AddWith(col string, recs []Record, persist func(collection string, recs []Record) error) (added []bool, err error) {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	s.mu.RLock()
	c := s.cols[col]
	s.mu.RUnlock()
	if c == nil {
		return nil, fmt.Errorf("add to %q: %w", col, ErrNoCollection)
	}
	added = make([]bool, len(recs))
	var batch []Record
	seen := map[string]bool{}
	last := s.last
	for i, r := range recs {
		k := key(r.ID, r.Version)
		if s.Has(col, r.ID, r.Version) || seen[k] {
			continue
		}
		seen[k] = true
		t := s.clock.Now().UTC().Truncate(Precision)
		if !t.After(last) {
			t = last.Add(Precision)
		}
		last = t
		r.DateAdded = t
		batch = append(batch, r)
		added[i] = true
	}
	if len(batch) == 0 {
		return added, nil
	}
	if persist != nil {
		if err := persist(col, batch); err != nil {
			return nil, fmt.Errorf("persist %d objects of %q: %w", len(batch), col, err)
		}
	}
	s.insert(c, batch, last)
	return added, nil
}

func (s *Store) insert(c *collection, batch []Record, last time.Time) {
	s.mu.Lock()
	for i := range batch {
		r := &batch[i]
		c.log = append(c.log, r)
		vs := c.versions[r.ID]
		j := sort.Search(len(vs), func(j int) bool { return vs[j].Version.After(r.Version) })
		vs = append(vs, nil)
		copy(vs[j+1:], vs[j:])
		vs[j] = r
		c.versions[r.ID] = vs
		c.byKey[key(r.ID, r.Version)] = r
	}
	s.last = last
	close(s.change)
	s.change = make(chan struct{})
	s.mu.Unlock()
}

// Restore rebuilds a collection from persisted records, in date-added
// order, before the store serves.
func (s *Store) Restore(col string, recs []Record) error {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	s.mu.RLock()
	c := s.cols[col]
	last := s.last
	s.mu.RUnlock()
	if c == nil {
		return fmt.Errorf("restore %q: %w", col, ErrNoCollection)
	}
	var prev time.Time
	if n := len(c.log); n > 0 {
		prev = c.log[n-1].DateAdded
	}
	batch := make([]Record, 0, len(recs))
	seen := make(map[string]bool, len(recs))
	for i, r := range recs {
		if !r.DateAdded.After(prev) {
			return fmt.Errorf("restore %q: record %d (%s) added %s, not after %s", col, i, r.ID, r.DateAdded, prev)
		}
		k := key(r.ID, r.Version)
		if c.byKey[k] != nil || seen[k] {
			return fmt.Errorf("restore %q: record %d (%s) version %s held twice", col, i, r.ID, r.Version)
		}
		seen[k] = true
		prev = r.DateAdded
		if prev.After(last) {
			last = prev
		}
		batch = append(batch, r)
	}
	s.insert(c, batch, last)
	return nil
}

// Wait returns when col holds an object added after the given time, or
// when ctx ends.
func (s *Store) Wait(ctx context.Context, col string, after time.Time) error {
	for {
		s.mu.RLock()
		c, ch := s.cols[col], s.change
		var newest time.Time
		if c != nil && len(c.log) > 0 {
			newest = c.log[len(c.log)-1].DateAdded
		}
		s.mu.RUnlock()
		if c == nil {
			return fmt.Errorf("wait on %q: %w", col, ErrNoCollection)
		}
		if newest.After(after) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Filter selects records. Empty fields match everything.
type Filter struct {
	AddedAfter  time.Time
	IDs         []string
	Types       []string
	SpecVersion []string
	// Versions holds "last", "first", "all" or timestamps; empty is last.
	Versions []string
	// Keep, when set, drops records the caller may not receive.
	Keep func(*Record) bool
}

// Page is one page of a query.
type Page struct {
	Records []*Record
	More    bool
}

func (f *Filter) matchVersion(c *collection, r *Record) bool {
	vs := f.Versions
	if len(vs) == 0 {
		vs = []string{"last"}
	}
	for _, v := range vs {
		switch v {
		case "all":
			return true
		case "last":
			if l := c.versions[r.ID]; l[len(l)-1] == r {
				return true
			}
		case "first":
			if l := c.versions[r.ID]; l[0] == r {
				return true
			}
		default:
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil && t.Equal(r.Version) {
				return true
			}
		}
	}
	return false
}

func (f *Filter) match(c *collection, r *Record) bool {
	if len(f.Types) > 0 && !slices.Contains(f.Types, r.Type) {
		return false
	}
	if len(f.SpecVersion) > 0 && !slices.Contains(f.SpecVersion, r.SpecVersion) {
		return false
	}
	if !f.matchVersion(c, r) {
		return false
	}
	return f.Keep == nil || f.Keep(r)
}

// Query returns up to limit records of col matching f added after the
// filter's AddedAfter, in date-added order, found by binary search.
func (s *Store) Query(col string, f Filter, limit int) (Page, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.cols[col]
	if c == nil {
		return Page{}, fmt.Errorf("query %q: %w", col, ErrNoCollection)
	}
	var cand []*Record
	if len(f.IDs) > 0 {
		for _, id := range f.IDs {
			cand = append(cand, c.versions[id]...)
		}
		sort.Slice(cand, func(i, j int) bool { return cand[i].DateAdded.Before(cand[j].DateAdded) })
	} else {
		cand = c.log
	}
	i := sort.Search(len(cand), func(i int) bool { return cand[i].DateAdded.After(f.AddedAfter) })
	var p Page
	for ; i < len(cand); i++ {
		r := cand[i]
		if len(f.IDs) > 0 && r.DateAdded.Compare(f.AddedAfter) <= 0 {
			continue
		}
		if !f.match(c, r) {
			continue
		}
		if len(p.Records) == limit {
			p.More = true
			break
		}
		p.Records = append(p.Records, r)
	}
	return p, nil
}

// Newest is the date-added time of the newest record of col: zero when
// col is empty or not held.
func (s *Store) Newest(col string) time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.cols[col]; c != nil && len(c.log) > 0 {
		return c.log[len(c.log)-1].DateAdded
	}
	return time.Time{}
}

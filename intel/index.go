package intel

import (
	"encoding/hex"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

// Index is the in-memory matcher: (chain, kind, value) → the indicators
// on it, each identified by its key (feed, id). It keeps per indicator only what matching and a verdict need
// (about 70 bytes: see BENCHMARKS.md), not the value itself: values are
// found through two independent 64-bit hashes of (chain, kind, value),
// and a match needs both to agree. Descriptions and references live in
// Kafka and ClickHouse.
//
// It is safe for concurrent use; lookups share a read lock.
type Index struct {
	mu     sync.RWMutex
	s1, s2 maphash.Seed
	// slots and idSlots are open-addressing tables of record numbers
	// (index+1; 0 is empty), by value hash and by key (feed, id).
	slots   []uint32
	idSlots []uint32
	recs    []rec
	live    int
	sources []string
	srcIdx  map[string]uint16
	feeds   []string
	feedIdx map[string]uint32
	cats    []string
	catIdx  map[string]uint8
	// privacy is the alliance key: with it, screening also matches an
	// address's keyed hash against hashed indicators (KindAddressHash).
	privacy atomic.Pointer[[]byte]
}

// SetPrivacyKey gives the index the alliance key of partner sharing's
// privacy mode (address.PrivacyHash): Screen then matches hashed
// indicators too.
func (x *Index) SetPrivacyKey(key []byte) { x.privacy.Store(&key) }

type rec struct {
	h1, h2 uint64
	id     [16]byte
	feed   uint32 // with id, the key
	next   uint32 // next record on the same value (index+1)
	// from and until are Unix seconds (until 0: no end).
	from, until uint32
	source      uint16
	cat         uint8
	conf        uint8
	tlp         uint8
	flags       uint8
}

const (
	flagRevoked = 1 << iota
	flagDeleted
)

var tlps = []TLP{TLPClear, TLPGreen, TLPAmber, TLPAmberStrict, TLPRed}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{s1: maphash.MakeSeed(), s2: maphash.MakeSeed(), slots: make([]uint32, 1024), idSlots: make([]uint32, 1024),
		srcIdx: map[string]uint16{}, feedIdx: map[string]uint32{}, catIdx: map[string]uint8{}}
}

// Match is an indicator that matched, as the index keeps it.
type Match struct {
	// Feed and ID are the indicator's key.
	Feed       string    `json:"feed"`
	ID         string    `json:"id"`
	Source     string    `json:"source"`
	Category   string    `json:"category"`
	Confidence int       `json:"confidence"`
	TLP        TLP       `json:"tlp"`
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
}

func (x *Index) hashes(c chain.Chain, kind Kind, value string) (uint64, uint64) {
	var h1, h2 maphash.Hash
	h1.SetSeed(x.s1)
	h2.SetSeed(x.s2)
	for _, h := range []*maphash.Hash{&h1, &h2} {
		_, _ = h.WriteString(string(c))
		_ = h.WriteByte(0)
		_, _ = h.WriteString(string(kind))
		_ = h.WriteByte(0)
		_, _ = h.WriteString(value)
	}
	return h1.Sum64(), h2.Sum64()
}

func parseUUID(id string) ([16]byte, bool) {
	var u [16]byte
	s := strings.TrimPrefix(id, "indicator--")
	if len(s) != 36 {
		return u, false
	}
	s = s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	_, err := hex.Decode(u[:], []byte(s))
	return u, err == nil
}

func formatUUID(u [16]byte) string {
	x := hex.EncodeToString(u[:])
	return "indicator--" + x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

func unix32(t time.Time) uint32 {
	if t.IsZero() || t.Unix() <= 0 {
		return 0
	}
	if t.Unix() >= math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(t.Unix())
}

// Put adds or replaces the indicator with in's key (feed, id); another
// feed's indicator with the same id is another indicator. in must be
// valid.
func (x *Index) Put(in *Indicator) {
	id, ok := parseUUID(in.ID)
	if !ok || in.Feed == "" {
		return
	}
	h1, h2 := x.hashes(in.Chain, in.Kind, in.Value)
	x.mu.Lock()
	defer x.mu.Unlock()
	feed, known := x.feedIdx[in.Feed]
	if !known {
		feed = uint32(len(x.feeds))
		x.feeds = append(x.feeds, in.Feed)
		x.feedIdx[in.Feed] = feed
	}
	r := rec{h1: h1, h2: h2, id: id, feed: feed, from: unix32(in.ValidFrom), until: unix32(in.ValidUntil),
		source: x.intern(in.Source), cat: x.category(in.Category), conf: uint8(min(max(in.Confidence, 0), 100))}
	for i, t := range tlps {
		if t == in.TLP {
			r.tlp = uint8(i)
		}
	}
	if in.Revoked {
		r.flags |= flagRevoked
	}
	if n := x.byKey(feed, id); n != 0 {
		old := &x.recs[n-1]
		if old.h1 == h1 && old.h2 == h2 {
			r.next = old.next
			*old = r
			return
		}
		// The id now names another value: the old record stops matching.
		old.flags |= flagDeleted
		x.live--
	}
	x.add(r)
}

// Delete removes the indicator with key k (a tombstone in the topic).
func (x *Index) Delete(k Key) {
	u, ok := parseUUID(k.ID)
	if !ok {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	feed, known := x.feedIdx[k.Feed]
	if !known {
		return
	}
	if n := x.byKey(feed, u); n != 0 {
		x.recs[n-1].flags |= flagDeleted
		x.live--
	}
}

func (x *Index) intern(s string) uint16 {
	if i, ok := x.srcIdx[s]; ok {
		return i
	}
	if len(x.sources) == math.MaxUint16 {
		return math.MaxUint16 - 1 // sources beyond 65,534 share the last name
	}
	x.sources = append(x.sources, s)
	x.srcIdx[s] = uint16(len(x.sources) - 1)
	return uint16(len(x.sources) - 1)
}

func (x *Index) category(s string) uint8 {
	if i, ok := x.catIdx[s]; ok {
		return i
	}
	if len(x.cats) == math.MaxUint8 {
		return x.category(CategoryOther)
	}
	x.cats = append(x.cats, s)
	x.catIdx[s] = uint8(len(x.cats) - 1)
	return uint8(len(x.cats) - 1)
}

func (x *Index) byKey(feed uint32, id [16]byte) uint32 {
	mask := uint64(len(x.idSlots) - 1)
	for i := keyHash(feed, id) & mask; ; i = (i + 1) & mask {
		n := x.idSlots[i]
		if n == 0 {
			return 0
		}
		if r := &x.recs[n-1]; r.id == id && r.feed == feed && r.flags&flagDeleted == 0 {
			return n
		}
	}
}

func keyHash(feed uint32, id [16]byte) uint64 {
	// Feeds choose their ids: every byte counts, so ids sharing a prefix
	// do not pile up on one slot.
	var v, w uint64
	for i := range 8 {
		v, w = v<<8|uint64(id[i]), w<<8|uint64(id[8+i])
	}
	return (v ^ w*0xbf58476d1ce4e5b9 ^ uint64(feed)<<32) * 0x9e3779b97f4a7c15
}

func (x *Index) add(r rec) {
	if (len(x.recs)+1)*4 > len(x.slots)*3 {
		x.grow()
	}
	x.recs = append(x.recs, r)
	n := uint32(len(x.recs))
	x.link(n)
	x.live++
}

// link puts record n into both tables.
func (x *Index) link(n uint32) {
	r := &x.recs[n-1]
	mask := uint64(len(x.slots) - 1)
	for i := r.h1 & mask; ; i = (i + 1) & mask {
		m := x.slots[i]
		if m == 0 {
			x.slots[i] = n
			break
		}
		if o := &x.recs[m-1]; o.h1 == r.h1 && o.h2 == r.h2 {
			r.next, x.slots[i] = m, n // head of the value's chain
			break
		}
	}
	mask = uint64(len(x.idSlots) - 1)
	for i := keyHash(r.feed, r.id) & mask; ; i = (i + 1) & mask {
		if x.idSlots[i] == 0 {
			x.idSlots[i] = n
			break
		}
	}
}

func (x *Index) grow() {
	size := len(x.slots) * 2
	x.slots, x.idSlots = make([]uint32, size), make([]uint32, size)
	for i := range x.recs {
		x.recs[i].next = 0
	}
	for n := range x.recs {
		x.link(uint32(n + 1))
	}
}

// Lookup appends to dst the indicators on (chain, kind, value) that are
// active at now. value must be normalized.
func (x *Index) Lookup(dst []Match, c chain.Chain, kind Kind, value string, now time.Time) []Match {
	h1, h2 := x.hashes(c, kind, value)
	t := now.Unix()
	x.mu.RLock()
	defer x.mu.RUnlock()
	mask := uint64(len(x.slots) - 1)
	for i := h1 & mask; ; i = (i + 1) & mask {
		n := x.slots[i]
		if n == 0 {
			return dst
		}
		if r := &x.recs[n-1]; r.h1 != h1 || r.h2 != h2 {
			continue
		}
		for ; n != 0; n = x.recs[n-1].next {
			r := &x.recs[n-1]
			if r.flags != 0 || t < int64(r.from) || (r.until != 0 && t >= int64(r.until)) {
				continue
			}
			m := Match{Feed: x.feeds[r.feed], ID: formatUUID(r.id), Source: x.sources[r.source], Category: x.cats[r.cat], Confidence: int(r.conf),
				TLP: tlps[r.tlp], ValidFrom: time.Unix(int64(r.from), 0).UTC()}
			if r.until != 0 {
				m.ValidUntil = time.Unix(int64(r.until), 0).UTC()
			}
			dst = append(dst, m)
		}
		return dst
	}
}

// Len is the number of indicators held (revoked and expired included).
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.live
}

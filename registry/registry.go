package registry

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
)

// Kinds of registered addresses.
const (
	KindDeposit = "deposit"
	KindHot     = "hot"
	KindCold    = "cold"
)

// Entry is one registered address.
type Entry struct {
	Chain   chain.Chain `json:"chain"`
	Network string      `json:"network"`
	Address string      `json:"address"`
	// Account is the exchange's account the deposits to the address are
	// credited to (deposit addresses); Asset is what it accepts: "native",
	// a token contract, or "*" for all.
	Account string `json:"account,omitempty"`
	Asset   string `json:"asset,omitempty"`
	Kind    string `json:"kind"`
	// Removed takes the address out of the registry.
	Removed bool `json:"removed,omitempty"`
}

// Key is the entry's Kafka key: one record per address.
func (e *Entry) Key() string { return string(e.Chain) + "/" + e.Network + "/" + e.Address }

// Validate checks and normalizes the entry in place.
func (e *Entry) Validate() error {
	if e.Network == "" {
		e.Network = "mainnet"
	}
	a, err := address.Normalize(e.Chain, e.Network, e.Address)
	if err != nil {
		return err
	}
	e.Address = a
	e.Kind = strings.ToLower(strings.TrimSpace(e.Kind))
	switch e.Kind {
	case "":
		e.Kind = KindDeposit
	case KindDeposit, KindHot, KindCold:
	default:
		return fmt.Errorf("kind %q: want deposit, hot or cold", e.Kind)
	}
	if e.Kind == KindDeposit && e.Account == "" {
		return errors.New("a deposit address needs an account")
	}
	if len(e.Account) > 128 {
		return fmt.Errorf("account: %d characters, at most 128", len(e.Account))
	}
	for i := 0; i < len(e.Account); i++ {
		if c := e.Account[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("account %q: printable ASCII without spaces", e.Account)
		}
	}
	switch e.Asset = strings.TrimSpace(e.Asset); {
	case e.Asset == "" || e.Asset == "*":
		e.Asset = "*"
	case e.Asset == chain.AssetNative:
	case e.Chain == chain.ETH:
		t, err := address.Normalize(chain.ETH, e.Network, e.Asset)
		if err != nil {
			return fmt.Errorf("asset: want native, * or a token contract: %w", err)
		}
		e.Asset = t
	default:
		return fmt.Errorf("asset %q: Bitcoin has only native", e.Asset)
	}
	return nil
}

// RowError is one rejected row of a file or request.
type RowError struct {
	Row   int    `json:"row"` // line of a file, or index in a request (from 0)
	Error string `json:"error"`
}

// MaxRowErrors bounds the errors one parse reports.
const MaxRowErrors = 1000

// ParseEntries reads a CSV file with a header (chain, network, address,
// account, asset, kind; address required) or JSON lines of Entry, and
// returns the valid entries and an error for every bad row: a bad row
// never keeps the good ones out.
func ParseEntries(r io.Reader, defaultChain chain.Chain) ([]Entry, []RowError, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, err := br.Peek(256)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, nil, err
	}
	if t := bytes.TrimLeft(head, " \t\r\n\xef\xbb\xbf"); len(t) > 0 && t[0] == '{' {
		return parseJSONL(br, defaultChain)
	}
	return parseCSV(br, defaultChain)
}

func parseJSONL(r io.Reader, defaultChain chain.Chain) ([]Entry, []RowError, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	var out []Entry
	var bad []RowError
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			bad = append(bad, RowError{line, err.Error()})
		} else {
			if e.Chain == "" {
				e.Chain = defaultChain
			}
			if err := e.Validate(); err != nil {
				bad = append(bad, RowError{line, err.Error()})
			} else {
				out = append(out, e)
			}
		}
		if len(bad) >= MaxRowErrors {
			return out, bad, fmt.Errorf("stopped after %d bad rows", MaxRowErrors)
		}
	}
	return out, bad, sc.Err()
}

func parseCSV(r io.Reader, defaultChain chain.Chain) ([]Entry, []RowError, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("read header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for k := range col {
		switch k {
		case "chain", "network", "address", "account", "asset", "kind":
		default:
			return nil, nil, fmt.Errorf("line 1: unknown column %q (want chain, network, address, account, asset, kind)", k)
		}
	}
	if _, ok := col["address"]; !ok {
		return nil, nil, errors.New("line 1: no address column")
	}
	get := func(rec []string, k string) string {
		if i, ok := col[k]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []Entry
	var bad []RowError
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, bad, err // a csv.ParseError names its line; rows before it stand
		}
		line, _ := cr.FieldPos(0)
		e := Entry{Chain: chain.Chain(strings.ToLower(get(rec, "chain"))), Network: get(rec, "network"), Address: get(rec, "address"),
			Account: get(rec, "account"), Asset: get(rec, "asset"), Kind: get(rec, "kind")}
		if e.Chain == "" {
			e.Chain = defaultChain
		}
		if err := e.Validate(); err != nil {
			bad = append(bad, RowError{line, err.Error()})
			if len(bad) >= MaxRowErrors {
				return out, bad, fmt.Errorf("stopped after %d bad rows", MaxRowErrors)
			}
			continue
		}
		out = append(out, e)
	}
	return out, bad, nil
}

// Index is the in-memory set of registered addresses. Per address it
// keeps two independent 64-bit hashes of (chain, network, address), the
// account as a number into a table of account names, the asset as a
// number into a table of assets, and the kind: 24 bytes, plus about 5.3
// bytes of hash table, plus the account name once per account.
type Index struct {
	mu       sync.RWMutex
	s1, s2   maphash.Seed
	slots    []uint32
	recs     []regRec
	live     int
	accounts []string
	accIdx   map[string]uint32
	assets   []string
	assetIdx map[string]uint16
}

type regRec struct {
	h1, h2  uint64
	account uint32
	asset   uint16
	kind    uint8
	removed bool
}

var kinds = []string{KindDeposit, KindHot, KindCold}

// NewIndex returns an empty registry.
func NewIndex() *Index {
	return &Index{s1: maphash.MakeSeed(), s2: maphash.MakeSeed(), slots: make([]uint32, 1024),
		accIdx: map[string]uint32{}, assetIdx: map[string]uint16{}}
}

func (g *Index) hashes(c chain.Chain, network, addr string) (uint64, uint64) {
	var a, b maphash.Hash
	a.SetSeed(g.s1)
	b.SetSeed(g.s2)
	for _, h := range []*maphash.Hash{&a, &b} {
		_, _ = h.WriteString(string(c))
		_ = h.WriteByte(0)
		_, _ = h.WriteString(network)
		_ = h.WriteByte(0)
		_, _ = h.WriteString(addr)
	}
	return a.Sum64(), b.Sum64()
}

// Put adds, replaces or (Removed) removes a valid entry.
func (g *Index) Put(e *Entry) {
	h1, h2 := g.hashes(e.Chain, e.Network, e.Address)
	g.mu.Lock()
	defer g.mu.Unlock()
	r := regRec{h1: h1, h2: h2, account: g.account(e.Account), asset: g.asset(e.Asset), removed: e.Removed}
	for i, k := range kinds {
		if k == e.Kind {
			r.kind = uint8(i)
		}
	}
	if n := g.find(h1, h2); n != 0 {
		old := &g.recs[n-1]
		if !old.removed && r.removed {
			g.live--
		} else if old.removed && !r.removed {
			g.live++
		}
		*old = r
		return
	}
	if r.removed {
		return
	}
	if (len(g.recs)+1)*4 > len(g.slots)*3 {
		g.grow()
	}
	g.recs = append(g.recs, r)
	g.link(uint32(len(g.recs)))
	g.live++
}

func (g *Index) account(s string) uint32 {
	if i, ok := g.accIdx[s]; ok {
		return i
	}
	if len(g.accounts) == math.MaxUint32 {
		panic("credit: more than 4 billion accounts")
	}
	g.accounts = append(g.accounts, s)
	g.accIdx[s] = uint32(len(g.accounts) - 1)
	return uint32(len(g.accounts) - 1)
}

func (g *Index) asset(s string) uint16 {
	if i, ok := g.assetIdx[s]; ok {
		return i
	}
	if len(g.assets) == math.MaxUint16 {
		return g.asset("*")
	}
	g.assets = append(g.assets, s)
	g.assetIdx[s] = uint16(len(g.assets) - 1)
	return uint16(len(g.assets) - 1)
}

func (g *Index) find(h1, h2 uint64) uint32 {
	mask := uint64(len(g.slots) - 1)
	for i := h1 & mask; ; i = (i + 1) & mask {
		n := g.slots[i]
		if n == 0 {
			return 0
		}
		if r := &g.recs[n-1]; r.h1 == h1 && r.h2 == h2 {
			return n
		}
	}
}

func (g *Index) link(n uint32) {
	mask := uint64(len(g.slots) - 1)
	for i := g.recs[n-1].h1 & mask; ; i = (i + 1) & mask {
		if g.slots[i] == 0 {
			g.slots[i] = n
			return
		}
	}
}

func (g *Index) grow() {
	g.slots = make([]uint32, len(g.slots)*2)
	for n := range g.recs {
		g.link(uint32(n + 1))
	}
}

// Lookup returns the registered entry of an address (normalized), and
// whether there is one.
func (g *Index) Lookup(c chain.Chain, network, addr string) (Entry, bool) {
	h1, h2 := g.hashes(c, network, addr)
	g.mu.RLock()
	defer g.mu.RUnlock()
	n := g.find(h1, h2)
	if n == 0 || g.recs[n-1].removed {
		return Entry{}, false
	}
	r := &g.recs[n-1]
	return Entry{Chain: c, Network: network, Address: addr, Account: g.accounts[r.account], Asset: g.assets[r.asset], Kind: kinds[r.kind]}, true
}

// Len is the number of registered addresses.
func (g *Index) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.live
}

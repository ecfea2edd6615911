package risk

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/signer/intent"
)

// Record is one withdrawal the gate accepted: what the windows count
// and the account's history keeps.
type Record struct {
	ID      string
	Account string
	Chain   chain.Chain
	Network string
	Asset   string
	// Amount is in base units; USD is its dollar value when accepted
	// (unknown counts as above every limit).
	Amount *big.Int
	USD    intent.USD
	// Destination is in its normal form (internal/address).
	Destination string
	// Time is when the gate accepted it.
	Time time.Time
}

// ErrRecord is wrapped by the errors of Add and RestoreAccount: a record
// that cannot be counted.
var ErrRecord = errors.New("invalid withdrawal record")

func (r *Record) check() error {
	switch {
	case r.ID == "" || len(r.ID) > 200:
		return fmt.Errorf("%w: id %q", ErrRecord, truncate(r.ID))
	case r.Account == "" || len(r.Account) > 200:
		return fmt.Errorf("%w %s: account %q", ErrRecord, r.ID, truncate(r.Account))
	case r.Chain == "" || r.Network == "" || r.Asset == "":
		return fmt.Errorf("%w %s: chain, network and asset are required", ErrRecord, r.ID)
	case r.Destination == "":
		return fmt.Errorf("%w %s: no destination", ErrRecord, r.ID)
	case r.Amount == nil || r.Amount.Sign() < 0:
		return fmt.Errorf("%w %s: amount must be a non-negative integer", ErrRecord, r.ID)
	case r.Time.UnixNano() <= 0:
		return fmt.Errorf("%w %s: no acceptance time", ErrRecord, r.ID)
	}
	return nil
}

// netID numbers a (chain, network): destinations keep the number, not
// the strings.
type netID uint16

type netKey struct {
	chain   chain.Chain
	network string
}

type assetKey struct {
	net   netID
	asset string
}

// assetSeries is one asset's window state.
type assetSeries struct {
	key assetKey
	series
}

// account is one account's history: what it settled (withdrawals past
// Retain) in compact form, and the removable recent ones.
type account struct {
	id     string
	recent []*entry // time order
	dests  []dest
	stats  []stat
}

// dest is a destination the account withdrew to.
type dest struct {
	addr        string
	first, last int64
	count       uint32
	net         netID
}

// stat is the account's settled withdrawals of one asset.
type stat struct {
	asset *assetSeries
	count uint32
	max   *big.Int
}

// settle folds e into the settled history.
func (a *account) settle(e *entry, maxDests int) {
	net := e.asset.key.net
	i := a.findDest(net, e.dest)
	if i >= 0 {
		d := &a.dests[i]
		d.count++
		d.first, d.last = min(d.first, e.t), max(d.last, e.t)
	} else {
		if len(a.dests) >= maxDests {
			lru := 0
			for j := range a.dests {
				if a.dests[j].last < a.dests[lru].last {
					lru = j
				}
			}
			a.dests = slices.Delete(a.dests, lru, lru+1)
		}
		a.dests = append(a.dests, dest{addr: e.dest, first: e.t, last: e.t, count: 1, net: net})
	}
	for j := range a.stats {
		if s := &a.stats[j]; s.asset == e.asset {
			s.count++
			if e.amount.Cmp(s.max) > 0 {
				s.max.Set(e.amount)
			}
			return
		}
	}
	a.stats = append(a.stats, stat{asset: e.asset, count: 1, max: new(big.Int).Set(e.amount)})
}

func (a *account) findDest(net netID, addr string) int {
	for i := range a.dests {
		if a.dests[i].net == net && a.dests[i].addr == addr {
			return i
		}
	}
	return -1
}

func (a *account) dropRecent(e *entry) {
	if i := slices.Index(a.recent, e); i >= 0 {
		a.recent = slices.Delete(a.recent, i, i+1)
	}
}

// state is the risk layer's memory; Risk guards it with its mutex.
type state struct {
	retain   int64
	maxDests int
	// Distinct windows per scope, in nanoseconds.
	accountWins, assetWins, globalWins []int64

	nets     []netKey
	netIDs   map[netKey]netID
	assets   map[assetKey]*assetSeries
	accounts map[string]*account
	byID     map[string]*entry
	// global is every removable entry (Retain long), with the global
	// windows' cursors; its front settles into the accounts' history.
	// The asset series keep their entries as long, so every window is
	// exact for any now from the newest time seen less Retain plus the
	// window on.
	global *series
	maxNow int64
}

func newState(cfg *Config) *state {
	s := &state{retain: int64(cfg.Retain), maxDests: cfg.MaxDestinations, netIDs: map[netKey]netID{},
		assets: map[assetKey]*assetSeries{}, accounts: map[string]*account{}, byID: map[string]*entry{}}
	for _, r := range cfg.Velocity {
		w := int64(r.Window)
		switch r.Scope {
		case ScopeAccount:
			if !slices.Contains(s.accountWins, w) {
				s.accountWins = append(s.accountWins, w)
			}
		case ScopeAsset:
			if !slices.Contains(s.assetWins, w) {
				s.assetWins = append(s.assetWins, w)
			}
		case ScopeGlobal:
			if !slices.Contains(s.globalWins, w) {
				s.globalWins = append(s.globalWins, w)
			}
		}
	}
	s.global = newSeries(s.globalWins)
	return s
}

func (s *state) net(c chain.Chain, network string) (netID, bool) {
	k := netKey{c, network}
	if id, ok := s.netIDs[k]; ok {
		return id, true
	}
	if len(s.nets) > 0xffff {
		return 0, false
	}
	id := netID(len(s.nets))
	s.nets = append(s.nets, k)
	s.netIDs[k] = id
	return id, true
}

func (s *state) asset(c chain.Chain, network, asset string) (*assetSeries, error) {
	n, ok := s.net(c, network)
	if !ok {
		return nil, fmt.Errorf("%w: more than 65536 chain networks", ErrRecord)
	}
	k := assetKey{n, asset}
	a := s.assets[k]
	if a == nil {
		a = &assetSeries{key: k, series: *newSeries(s.assetWins)}
		s.assets[k] = a
	}
	return a, nil
}

func (s *state) account(id string) *account {
	a := s.accounts[id]
	if a == nil {
		a = &account{id: id}
		s.accounts[id] = a
	}
	return a
}

// advance moves the state's clock to now (never back): withdrawals older
// than Retain settle into their accounts' history and leave the windows.
func (s *state) advance(now int64) {
	if now <= s.maxNow {
		return
	}
	s.maxNow = now
	s.global.pruneTo(now, now-s.retain, func(e *entry) {
		// Every entry is in the global series, so its asset's series is
		// pruned here too (to the same horizon).
		e.asset.pruneTo(now, now-s.retain, nil)
		if !e.removed {
			delete(s.byID, e.id)
			e.acct.dropRecent(e)
			e.acct.settle(e, s.maxDests)
		}
		e.acct, e.asset = nil, nil
	})
}

// add counts r; an id already held is ignored (replaying is idempotent).
func (s *state) add(r *Record) error {
	if err := r.check(); err != nil {
		return err
	}
	if s.byID[r.ID] != nil {
		return nil
	}
	as, err := s.asset(r.Chain, r.Network, r.Asset)
	if err != nil {
		return err
	}
	acct := s.account(r.Account)
	e := &entry{id: r.ID, acct: acct, asset: as, dest: r.Destination, t: r.Time.UnixNano(), amount: new(big.Int).Set(r.Amount)}
	e.setUSD(r.USD.Rat())
	s.advance(e.t)
	if e.t <= s.maxNow-s.retain {
		acct.settle(e, s.maxDests)
		return nil
	}
	s.byID[e.id] = e
	s.global.insert(e)
	as.insert(e)
	i := sort.Search(len(acct.recent), func(i int) bool { return acct.recent[i].t > e.t })
	acct.recent = slices.Insert(acct.recent, i, e)
	return nil
}

// remove takes withdrawal id out of the windows and the history.
func (s *state) remove(id string) bool {
	e := s.byID[id]
	if e == nil {
		return false
	}
	s.global.uncount(e)
	e.asset.uncount(e)
	a := e.acct
	a.dropRecent(e)
	e.removed = true
	delete(s.byID, id)
	if len(a.recent) == 0 && len(a.dests) == 0 && len(a.stats) == 0 {
		delete(s.accounts, a.id)
	}
	return true
}

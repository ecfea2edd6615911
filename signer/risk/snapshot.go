package risk

import (
	"cmp"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/signer/intent"
)

// AccountState is one account's whole memory in the risk layer, as JSON:
// its settled history (destinations, per-asset count and largest
// amount) and its withdrawals still removable (Recent), which also feed
// the asset and global windows. Restoring every account's state gives
// back the layer as it was; the gate keeps it, keyed by account, on a
// compacted topic.
type AccountState struct {
	Account      string             `json:"account"`
	Destinations []DestinationState `json:"destinations,omitempty"`
	Assets       []AssetState       `json:"assets,omitempty"`
	Recent       []RecordState      `json:"recent,omitempty"`
}

// DestinationState is a settled destination: first and last use and
// how many withdrawals went to it.
type DestinationState struct {
	Chain   chain.Chain `json:"chain"`
	Network string      `json:"network"`
	Address string      `json:"address"`
	First   time.Time   `json:"first"`
	Last    time.Time   `json:"last"`
	Count   uint32      `json:"count"`
}

// AssetState is the settled withdrawals of one asset: how many, and the
// largest amount (base units, decimal).
type AssetState struct {
	Chain   chain.Chain `json:"chain"`
	Network string      `json:"network"`
	Asset   string      `json:"asset"`
	Count   uint32      `json:"count"`
	Max     string      `json:"max"`
}

// RecordState is a Record as JSON: the amount a decimal string of base
// units, the dollar value exact (a decimal, or a fraction "n/d" when it
// has no finite decimal form; empty when unknown).
type RecordState struct {
	ID          string      `json:"id"`
	Chain       chain.Chain `json:"chain"`
	Network     string      `json:"network"`
	Asset       string      `json:"asset"`
	Amount      string      `json:"amount"`
	USD         string      `json:"usd,omitempty"`
	Destination string      `json:"destination"`
	Time        time.Time   `json:"time"`
}

func utc(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// exactUSD writes r exactly: a decimal when it has one, else "n/d".
func exactUSD(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	// A fraction has a finite decimal form when its denominator is
	// 2^a·5^b, with max(a, b) digits.
	d := new(big.Int).Set(r.Denom())
	digits := 0
	q, m := new(big.Int), new(big.Int)
	for _, p := range []*big.Int{big.NewInt(2), big.NewInt(5)} {
		n := 0
		for {
			q.QuoRem(d, p, m)
			if m.Sign() != 0 {
				break
			}
			d.Set(q)
			n++
		}
		digits = max(digits, n)
	}
	if d.Cmp(big.NewInt(1)) != 0 {
		return r.RatString()
	}
	return r.FloatString(digits)
}

func parseExactUSD(s string) (intent.USD, error) {
	if s == "" {
		return intent.USD{}, nil
	}
	if len(s) > 200 || strings.ContainsAny(s, "eE+ ") {
		return intent.USD{}, fmt.Errorf("usd %q: want a decimal or n/d", truncate(s))
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return intent.USD{}, fmt.Errorf("usd %q: want a decimal or n/d", truncate(s))
	}
	return intent.Dollars(r), nil
}

func (s *state) snapshot(id string) (AccountState, bool) {
	a := s.accounts[id]
	if a == nil {
		return AccountState{Account: id}, false
	}
	out := AccountState{Account: id}
	for _, d := range a.dests {
		n := s.nets[d.net]
		out.Destinations = append(out.Destinations, DestinationState{Chain: n.chain, Network: n.network, Address: d.addr,
			First: utc(d.first), Last: utc(d.last), Count: d.count})
	}
	slices.SortFunc(out.Destinations, func(x, y DestinationState) int {
		return cmp.Or(cmp.Compare(x.Chain, y.Chain), cmp.Compare(x.Network, y.Network), cmp.Compare(x.Address, y.Address))
	})
	for _, st := range a.stats {
		n := s.nets[st.asset.key.net]
		out.Assets = append(out.Assets, AssetState{Chain: n.chain, Network: n.network, Asset: st.asset.key.asset, Count: st.count, Max: st.max.String()})
	}
	slices.SortFunc(out.Assets, func(x, y AssetState) int {
		return cmp.Or(cmp.Compare(x.Chain, y.Chain), cmp.Compare(x.Network, y.Network), cmp.Compare(x.Asset, y.Asset))
	})
	for _, e := range a.recent {
		n := s.nets[e.asset.key.net]
		rs := RecordState{ID: e.id, Chain: n.chain, Network: n.network, Asset: e.asset.key.asset, Amount: e.amount.String(),
			Destination: e.dest, Time: utc(e.t)}
		if e.usd != nil {
			rs.USD = exactUSD(e.usd)
		}
		out.Recent = append(out.Recent, rs)
	}
	return out, true
}

// restore replaces account st.Account's memory with st. It checks all
// of st before changing anything.
func (s *state) restore(st AccountState) error {
	if st.Account == "" || len(st.Account) > 200 {
		return fmt.Errorf("%w: account %q", ErrRecord, truncate(st.Account))
	}
	recs := make([]Record, 0, len(st.Recent))
	for i, rs := range st.Recent {
		amt, ok := new(big.Int).SetString(rs.Amount, 10)
		if !ok || !decimalRe.MatchString(rs.Amount) {
			return fmt.Errorf("%w: account %s: recent[%d].amount %q", ErrRecord, st.Account, i, truncate(rs.Amount))
		}
		usd, err := parseExactUSD(rs.USD)
		if err != nil {
			return fmt.Errorf("%w: account %s: recent[%d]: %w", ErrRecord, st.Account, i, err)
		}
		r := Record{ID: rs.ID, Account: st.Account, Chain: rs.Chain, Network: rs.Network, Asset: rs.Asset, Amount: amt, USD: usd,
			Destination: rs.Destination, Time: rs.Time}
		if err := r.check(); err != nil {
			return err
		}
		if e := s.byID[r.ID]; e != nil && e.acct.id != st.Account {
			return fmt.Errorf("%w: account %s: recent[%d]: %s is held for account %s", ErrRecord, st.Account, i, r.ID, e.acct.id)
		}
		recs = append(recs, r)
	}
	maxes := make([]*big.Int, len(st.Assets))
	for i, as := range st.Assets {
		m, ok := new(big.Int).SetString(as.Max, 10)
		if !ok || !decimalRe.MatchString(as.Max) || as.Count == 0 || as.Chain == "" || as.Network == "" || as.Asset == "" {
			return fmt.Errorf("%w: account %s: assets[%d]: want chain, network, asset, a count and a decimal max", ErrRecord, st.Account, i)
		}
		maxes[i] = m
	}
	seen := map[string]bool{}
	for i, as := range st.Assets {
		k := string(as.Chain) + "/" + as.Network + "/" + as.Asset
		if seen[k] {
			return fmt.Errorf("%w: account %s: assets[%d]: %s listed twice", ErrRecord, st.Account, i, k)
		}
		seen[k] = true
	}
	for i, d := range st.Destinations {
		if d.Chain == "" || d.Network == "" || d.Address == "" || d.Count == 0 || d.First.UnixNano() <= 0 || d.Last.Before(d.First) {
			return fmt.Errorf("%w: account %s: destinations[%d]: want chain, network, address, a count and first <= last", ErrRecord, st.Account, i)
		}
		k := "dest " + string(d.Chain) + "/" + d.Network + "/" + d.Address
		if seen[k] {
			return fmt.Errorf("%w: account %s: destinations[%d]: %s listed twice", ErrRecord, st.Account, i, d.Address)
		}
		seen[k] = true
	}
	if a := s.accounts[st.Account]; a != nil {
		for _, e := range slices.Clone(a.recent) {
			s.remove(e.id)
		}
		delete(s.accounts, st.Account)
	}
	a := s.account(st.Account)
	for _, d := range st.Destinations {
		n, ok := s.net(d.Chain, d.Network)
		if !ok {
			return fmt.Errorf("%w: more than 65536 chain networks", ErrRecord)
		}
		a.dests = append(a.dests, dest{addr: d.Address, first: d.First.UnixNano(), last: d.Last.UnixNano(), count: d.Count, net: n})
	}
	for i, as := range st.Assets {
		ser, err := s.asset(as.Chain, as.Network, as.Asset)
		if err != nil {
			return err
		}
		a.stats = append(a.stats, stat{asset: ser, count: as.Count, max: maxes[i]})
	}
	for i := range recs {
		if err := s.add(&recs[i]); err != nil {
			return err
		}
	}
	return nil
}

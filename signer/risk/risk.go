package risk

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/intent"
)

// CounterpartiesUnknown is the finding that the destination's earlier
// counterparties could not be read (the lookup failed or timed out), so
// they were not screened: the policy fails closed on it.
const CounterpartiesUnknown = intent.CounterpartiesUnknown

// Screener returns the active indicators an address matches; none means
// clean. intel.Index satisfies it (cmd wires it).
type Screener interface {
	Hits(c chain.Chain, network, addr string) []chain.Hit
}

// ScreenerFunc is a function as a Screener.
type ScreenerFunc func(c chain.Chain, network, addr string) []chain.Hit

// Hits calls f.
func (f ScreenerFunc) Hits(c chain.Chain, network, addr string) []chain.Hit {
	return f(c, network, addr)
}

// Registry tells whether an address is one of the exchange's own: its
// kind (deposit, hot, cold) and, for a deposit address, the account it
// credits. cmd wires it to registry.Index.Lookup.
type Registry interface {
	Lookup(c chain.Chain, network, addr string) (kind, account string, ok bool)
}

// RegistryFunc is a function as a Registry.
type RegistryFunc func(c chain.Chain, network, addr string) (kind, account string, ok bool)

// Lookup calls f.
func (f RegistryFunc) Lookup(c chain.Chain, network, addr string) (kind, account string, ok bool) {
	return f(c, network, addr)
}

// Counterparties returns up to limit addresses that sent funds to addr
// or received funds from it on chain, most recent first. ClickHouse
// implements it over the loaded chain.
type Counterparties interface {
	Counterparties(ctx context.Context, c chain.Chain, network, addr string, limit int) ([]string, error)
}

// Deps are what the risk layer reads. Screener and Registry are
// required; without Counterparties (or with counterparties.limit 0) the
// earlier counterparties are not looked at.
type Deps struct {
	Screener       Screener
	Registry       Registry
	Counterparties Counterparties
}

// Risk is the online risk layer: the memory of accepted withdrawals
// (windows and each account's history) and the checks a withdrawal
// gets. It is safe for concurrent use. Its state changes only through
// Add, Remove and RestoreAccount, and the clock (the newest time it was
// given); given the same calls it answers the same.
type Risk struct {
	cfg    Config
	screen Screener
	reg    Registry
	cps    *cache // nil: off
	mu     sync.Mutex
	st     *state
}

// New checks cfg and returns an empty risk layer.
func New(cfg Config, d Deps) (*Risk, error) {
	var p config.Problems
	cfg.Validate(&p, "risk")
	if err := p.Err(); err != nil {
		return nil, err
	}
	if d.Screener == nil || d.Registry == nil {
		return nil, errors.New("risk: a Screener and a Registry are required")
	}
	r := &Risk{cfg: cfg, screen: d.Screener, reg: d.Registry, st: newState(&cfg)}
	if d.Counterparties != nil && cfg.Counterparties.Limit > 0 {
		r.cps = newCache(d.Counterparties, cfg.Counterparties)
	}
	return r, nil
}

// Add counts an accepted withdrawal in the windows and the account's
// history. An id already held is ignored, so replaying is idempotent.
func (r *Risk) Add(rec Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.add(&rec)
}

// Remove takes a withdrawal that left the accumulation (denied,
// rejected, expired, cancelled) out of the windows and the history. It
// tells whether the withdrawal was held: one accepted more than Retain
// before the newest time seen has settled and stays.
func (r *Risk) Remove(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.remove(id)
}

// Account returns account's memory (the zero state and false when it
// has none).
func (r *Risk) Account(account string) (AccountState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.snapshot(account)
}

// RestoreAccount replaces an account's memory with st (Account's
// answer, possibly read back from JSON).
func (r *Risk) RestoreAccount(st AccountState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.restore(st)
}

// Held is how many withdrawals are removable (within Retain).
func (r *Risk) Held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.st.byID)
}

// Query is the withdrawal being decided.
type Query struct {
	// ID is its withdrawal id; when it is already held (Add came first)
	// it is not counted twice.
	ID      string
	Account string
	Chain   chain.Chain
	Network string
	Asset   string
	Amount  *big.Int
	USD     intent.USD
	// Destination is in its normal form.
	Destination string
	Context     intent.Context
}

// Accumulation is one window's total, the withdrawal being decided
// included: how many, their dollar value (unknown when any one's is),
// and for scope asset the base units.
type Accumulation struct {
	Count  int64
	USD    intent.USD
	Amount *big.Int
}

// Result is what Assess found.
type Result struct {
	Findings []intent.Finding
	// Accumulations are keyed scope_window ("account_24h", "asset_1h",
	// "global_30m"; windows in whole hours, minutes or seconds).
	Accumulations map[string]Accumulation
}

// Has tells whether a finding of code is among r's.
func (r Result) Has(code string) bool {
	for _, f := range r.Findings {
		if f.Code == code {
			return true
		}
	}
	return false
}

// QueryOf is the query of an intent, its dollar value and its request
// context.
func QueryOf(in *intent.Intent, usd intent.USD, c intent.Context) (Query, error) {
	amt, ok := new(big.Int).SetString(in.Amount, 10)
	if !ok || amt.Sign() < 0 {
		return Query{}, fmt.Errorf("withdrawal %s: amount %q: want a decimal integer in base units", in.ID, truncate(in.Amount))
	}
	return Query{ID: in.ID, Account: in.Account, Chain: chain.Chain(in.Chain), Network: in.Network, Asset: in.Asset, Amount: amt,
		USD: usd, Destination: in.Destination, Context: c}, nil
}

// RecordOf is the record of an accepted intent and its dollar value.
func RecordOf(in *intent.Intent, usd intent.USD) (Record, error) {
	q, err := QueryOf(in, usd, intent.Context{})
	if err != nil {
		return Record{}, err
	}
	return Record{ID: in.ID, Account: in.Account, Chain: q.Chain, Network: in.Network, Asset: in.Asset, Amount: q.Amount, USD: usd,
		Destination: in.Destination, Time: in.Requested}, nil
}

// Assess checks withdrawal q at now. Screening, the registry and the
// counterparties are read first, without holding the layer's lock; a
// counterparties lookup is bounded by counterparties.timeout and
// cached.
func (r *Risk) Assess(ctx context.Context, q Query, now time.Time) (Result, error) {
	if q.Account == "" || q.Chain == "" || q.Network == "" || q.Asset == "" || q.Destination == "" || q.Amount == nil || q.Amount.Sign() < 0 {
		return Result{}, errors.New("risk: a query needs account, chain, network, asset, destination and a non-negative amount")
	}
	if now.UnixNano() <= 0 {
		return Result{}, errors.New("risk: assess needs the time")
	}
	var out []intent.Finding
	for _, h := range r.screen.Hits(q.Chain, q.Network, q.Destination) {
		out = append(out, flagged(intent.FlaggedDestination, h,
			fmt.Sprintf("The destination %s is listed by %s as %s (indicator %s, confidence %d).", q.Destination, h.Source, h.Category, h.Indicator, h.Confidence)))
	}
	out = append(out, r.counterparties(ctx, &q)...)
	if kind, owner, ok := r.reg.Lookup(q.Chain, q.Network, q.Destination); ok {
		same := owner != "" && owner == q.Account
		reason := fmt.Sprintf("The destination is one of the exchange's own %s addresses", kind)
		switch {
		case same:
			reason += ", of this same account."
		case owner != "":
			reason += fmt.Sprintf(", of account %s.", owner)
		default:
			reason += "."
		}
		out = append(out, intent.Finding{Code: intent.InternalTransfer, Reason: reason,
			Details: map[string]string{"kind": kind, "account": owner, "same_account": fmt.Sprint(same)}})
	}

	r.mu.Lock()
	res := r.assessLocked(&q, now.UnixNano())
	r.mu.Unlock()
	out = append(out, res.Findings...)

	out = append(out, r.contextFindings(q.Context)...)
	if !q.USD.Known() {
		out = append(out, intent.Finding{Code: intent.PriceUnknown,
			Reason:  fmt.Sprintf("There is no fresh price for %s on %s %s, so the withdrawal's dollar value is unknown.", q.Asset, q.Chain, q.Network),
			Details: map[string]string{"chain": string(q.Chain), "network": q.Network, "asset": q.Asset}})
	}
	res.Findings = out
	return res, nil
}

func flagged(code string, h chain.Hit, reason string) intent.Finding {
	return intent.Finding{Code: code, Reason: reason, Details: map[string]string{
		"address": h.Address, "indicator": h.Indicator, "category": h.Category, "source": h.Source, "confidence": fmt.Sprint(h.Confidence)}}
}

// Warm looks up the earlier counterparties of destination into the
// cache, outside any assessment (no lock on the history): the gate warms
// them before its loop assesses from the cache only. Without a
// counterparties source it does nothing; a failed lookup is left for the
// assessment to report.
func (r *Risk) Warm(ctx context.Context, c chain.Chain, network, destination string) {
	if r.cps != nil {
		_, _ = r.cps.lookup(ctx, c, network, destination) //nolint:errcheck // the assessment reports a miss
	}
}

func (r *Risk) counterparties(ctx context.Context, q *Query) []intent.Finding {
	if r.cps == nil {
		return nil
	}
	list, err := r.cps.lookup(ctx, q.Chain, q.Network, q.Destination)
	if err != nil {
		return []intent.Finding{{Code: CounterpartiesUnknown,
			Reason:  fmt.Sprintf("The destination's earlier counterparties could not be read, so they were not screened: %s.", firstLine(err)),
			Details: map[string]string{"error": firstLine(err)}}}
	}
	var out []intent.Finding
	for _, cp := range list {
		if cp == q.Destination {
			continue
		}
		for _, h := range r.screen.Hits(q.Chain, q.Network, cp) {
			f := flagged(intent.FlaggedCounterparty, h, fmt.Sprintf("The destination has transacted with %s, which %s lists as %s (indicator %s, confidence %d).",
				cp, h.Source, h.Category, h.Indicator, h.Confidence))
			f.Details["counterparty"] = cp
			out = append(out, f)
		}
	}
	return out
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 300 {
		s = s[:300]
	}
	return strings.ToValidUTF8(s, "")
}

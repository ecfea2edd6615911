package risk

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/intent"
)

// Scopes of a velocity window.
const (
	ScopeAccount = "account"
	ScopeAsset   = "asset"
	ScopeGlobal  = "global"
)

// Config configures the risk layer: the gate.risk section of cordon's
// configuration file. Defaults() fills every key; a list given in the
// file replaces the default list.
type Config struct {
	// Velocity are the sliding windows over the accepted withdrawals.
	Velocity []VelocityRule `yaml:"velocity"`
	// Lookalike compares a new destination with the account's earlier
	// ones (address poisoning).
	Lookalike Lookalike `yaml:"lookalike"`
	// AboveHistory compares the amount with the account's own history of
	// the asset.
	AboveHistory AboveHistory `yaml:"above_history"`
	// Context holds the thresholds on what the exchange says of the
	// request.
	Context ContextThresholds `yaml:"context"`
	// Counterparties bounds the lookup of the destination's earlier
	// counterparties.
	Counterparties CounterpartiesConfig `yaml:"counterparties"`
	// Retain is how long an accepted withdrawal stays removable (the gate
	// calls Remove when it is denied, rejected, expired or cancelled);
	// after it the withdrawal is part of the account's history for good.
	// At least the longest window. Default 72h.
	Retain time.Duration `yaml:"retain"`
	// MaxDestinations caps the destinations remembered per account; past
	// it the least recently used is forgotten (so it counts as new
	// again). Default 10000.
	MaxDestinations int `yaml:"max_destinations"`
}

// VelocityRule is one sliding window: the accepted withdrawals in the
// last Window (this one included), per account, per asset (chain,
// network, asset) or over all, counted whichever policy rule matched
// them. A limit of zero (or empty) is no limit; a rule with no limit
// only gives the policy its accumulation.
type VelocityRule struct {
	Scope  string        `yaml:"scope"`
	Window time.Duration `yaml:"window"`
	// Chain, Network and Asset restrict a rule of scope asset to one
	// asset ("native" or a token contract); empty applies it to each.
	Chain   string `yaml:"chain"`
	Network string `yaml:"network"`
	Asset   string `yaml:"asset"`
	// MaxCount is the most withdrawals allowed in the window.
	MaxCount int64 `yaml:"max_count"`
	// MaxUSD is the most dollars allowed in the window, an exact
	// decimal ("250000"); a window holding a withdrawal of unknown value
	// is above it.
	MaxUSD string `yaml:"max_usd"`
	// MaxAmount is the most base units allowed in the window: only for
	// scope asset with the asset named.
	MaxAmount string `yaml:"max_amount"`

	maxUSD    intent.USD
	maxAmount *big.Int
}

// Lookalike says when a destination new to the account looks like one
// it used: both have the chain's fixed prefix (0x; bc1q, bc1p, tb1q, …; the
// base58 version character) and then share their first Leading and last
// Trailing characters. Zero for both turns the check off.
type Lookalike struct {
	Leading  int `yaml:"leading"`
	Trailing int `yaml:"trailing"`
}

// AboveHistory says when an amount is far above the account's own
// history: more than Factor times the largest withdrawal of the asset
// it made, once it made at least MinCount. Factor is an exact decimal ("3", "2.5"); empty turns the
// check off.
type AboveHistory struct {
	Factor   string `yaml:"factor"`
	MinCount int    `yaml:"min_count"`

	factor *big.Rat
}

// ContextThresholds are what makes the request context a finding. A
// field the exchange did not send (or sent malformed) is unknown and
// reported as such. A zero duration or empty score turns its check off.
type ContextThresholds struct {
	// AccountChangedWithin: account_changed when credentials, 2FA or
	// contact details changed less than this long ago.
	AccountChangedWithin time.Duration `yaml:"account_changed_within"`
	// DeviceNewerThan: device_new when the device was first seen less
	// than this long ago.
	DeviceNewerThan time.Duration `yaml:"device_newer_than"`
	// SessionYoungerThan: session_new when the session is younger.
	SessionYoungerThan time.Duration `yaml:"session_younger_than"`
	// RiskScoreAtLeast: exchange_risk when the exchange's score (0 to
	// 100) is at or above it; a decimal string.
	RiskScoreAtLeast string `yaml:"risk_score_at_least"`

	riskScore *big.Rat
}

// CounterpartiesConfig bounds the earlier-counterparties lookup.
type CounterpartiesConfig struct {
	// Limit is how many of the destination's most recent counterparties
	// are screened. Default 100.
	Limit int `yaml:"limit"`
	// Timeout bounds one lookup; a lookup that fails or times out is the
	// finding counterparties_unknown. Default 500ms.
	Timeout time.Duration `yaml:"timeout"`
	// CacheSize is how many destinations' counterparties are kept;
	// CacheTTL how long an answer is used. Defaults 100000 and 10m.
	CacheSize int           `yaml:"cache_size"`
	CacheTTL  time.Duration `yaml:"cache_ttl"`
}

// Defaults returns the configuration a demanding operator would ship.
func Defaults() Config {
	return Config{
		Velocity: []VelocityRule{
			{Scope: ScopeAccount, Window: time.Hour, MaxCount: 5, MaxUSD: "50000"},
			{Scope: ScopeAccount, Window: 24 * time.Hour, MaxCount: 20, MaxUSD: "250000"},
			{Scope: ScopeAsset, Window: time.Hour, MaxCount: 2000},
			{Scope: ScopeAsset, Window: 24 * time.Hour, MaxUSD: "10000000"},
			{Scope: ScopeGlobal, Window: time.Hour, MaxUSD: "5000000"},
			{Scope: ScopeGlobal, Window: 24 * time.Hour, MaxCount: 200000, MaxUSD: "25000000"},
		},
		Lookalike:    Lookalike{Leading: 4, Trailing: 4},
		AboveHistory: AboveHistory{Factor: "3", MinCount: 3},
		Context: ContextThresholds{AccountChangedWithin: 72 * time.Hour, DeviceNewerThan: 7 * 24 * time.Hour,
			SessionYoungerThan: 10 * time.Minute, RiskScoreAtLeast: "70"},
		Counterparties:  CounterpartiesConfig{Limit: 100, Timeout: 500 * time.Millisecond, CacheSize: 100_000, CacheTTL: 10 * time.Minute},
		Retain:          72 * time.Hour,
		MaxDestinations: 10_000,
	}
}

var (
	decimalRe = regexp.MustCompile(`^(0|[1-9][0-9]{0,77})$`)
	dollarsRe = regexp.MustCompile(`^(0|[1-9][0-9]{0,20})(\.[0-9]{1,18})?$`)
)

// Validate records every problem of c in p, each named by its key under
// base ("gate.risk").
func (c *Config) Validate(p *config.Problems, base string) {
	longest := time.Duration(0)
	seen := map[string]int{}
	for i := range c.Velocity {
		r := &c.Velocity[i]
		key := fmt.Sprintf("%s.velocity[%d]", base, i)
		switch r.Scope {
		case ScopeAccount, ScopeGlobal:
			for _, f := range []struct{ k, v string }{{"chain", r.Chain}, {"network", r.Network}, {"asset", r.Asset}} {
				if f.v != "" {
					p.Add(key+"."+f.k, "only a rule of scope asset names an asset")
				}
			}
			if r.MaxAmount != "" {
				p.Add(key+".max_amount", "only a rule of scope asset that names its asset limits base units")
			}
		case ScopeAsset:
			if r.Chain != "" && r.Chain != "eth" && r.Chain != "btc" {
				p.Add(key+".chain", "%q: want eth or btc", r.Chain)
			}
			if (r.Chain == "") != (r.Asset == "") || (r.Network != "" && r.Chain == "") {
				p.Add(key+".asset", "name chain, network and asset together, or none of them")
			}
			if r.MaxAmount != "" && (r.Chain == "" || r.Network == "" || r.Asset == "") {
				p.Add(key+".max_amount", "base units mean something for one asset only: name chain, network and asset")
			}
		default:
			p.Add(key+".scope", "%q: want account, asset or global", r.Scope)
		}
		if r.Window < time.Second || r.Window > 31*24*time.Hour {
			p.Add(key+".window", "%s: want 1s to 744h", r.Window)
		} else if r.Window%time.Second != 0 {
			p.Add(key+".window", "%s: want whole seconds", r.Window)
		}
		longest = max(longest, r.Window)
		if r.MaxCount < 0 {
			p.Add(key+".max_count", "%d: want 0 (no limit) or more", r.MaxCount)
		}
		r.maxUSD = intent.USD{}
		if r.MaxUSD != "" {
			if !dollarsRe.MatchString(r.MaxUSD) {
				p.Add(key+".max_usd", "%q: want an exact decimal dollar amount such as 250000 or 99.5", r.MaxUSD)
			} else if u, err := intent.ParseUSD(r.MaxUSD); err == nil {
				r.maxUSD = u
			}
		}
		r.maxAmount = nil
		if r.MaxAmount != "" {
			if v, ok := new(big.Int).SetString(r.MaxAmount, 10); ok && decimalRe.MatchString(r.MaxAmount) {
				r.maxAmount = v
			} else {
				p.Add(key+".max_amount", "%q: want a decimal integer in base units", r.MaxAmount)
			}
		}
		id := r.Scope + "|" + r.Chain + "|" + r.Network + "|" + r.Asset + "|" + r.Window.String()
		if j, dup := seen[id]; dup {
			p.Add(key, "the same window as velocity[%d]: put both limits in one rule", j)
		}
		seen[id] = i
	}
	l := c.Lookalike
	if l.Leading < 0 || l.Leading > 20 {
		p.Add(base+".lookalike.leading", "%d: want 0 to 20", l.Leading)
	}
	if l.Trailing < 0 || l.Trailing > 20 {
		p.Add(base+".lookalike.trailing", "%d: want 0 to 20", l.Trailing)
	}
	if (l.Leading == 0) != (l.Trailing == 0) {
		p.Add(base+".lookalike", "compare both leading and trailing characters, or neither (0 and 0 turn the check off)")
	}
	c.AboveHistory.factor = nil
	if f := c.AboveHistory.Factor; f != "" {
		r, ok := new(big.Rat).SetString(f)
		switch {
		case !dollarsRe.MatchString(f) || !ok:
			p.Add(base+".above_history.factor", "%q: want an exact decimal such as 3 or 2.5", f)
		case r.Cmp(big.NewRat(1, 1)) <= 0:
			p.Add(base+".above_history.factor", "%q: want more than 1", f)
		default:
			c.AboveHistory.factor = r
		}
	}
	if m := c.AboveHistory.MinCount; m < 1 || m > 1_000_000 {
		p.Add(base+".above_history.min_count", "%d: want 1 to 1000000", m)
	}
	ctx := &c.Context
	for _, d := range []struct {
		k string
		v time.Duration
	}{{"account_changed_within", ctx.AccountChangedWithin}, {"device_newer_than", ctx.DeviceNewerThan}, {"session_younger_than", ctx.SessionYoungerThan}} {
		if d.v < 0 || d.v%time.Second != 0 {
			p.Add(base+".context."+d.k, "%s: want whole seconds, 0 to turn the check off", d.v)
		}
	}
	ctx.riskScore = nil
	if s := ctx.RiskScoreAtLeast; s != "" {
		if v, err := parseScore(s); err != nil {
			p.Add(base+".context.risk_score_at_least", "%v", err)
		} else {
			ctx.riskScore = v
		}
	}
	cp := c.Counterparties
	if cp.Limit < 0 || cp.Limit > 10_000 {
		p.Add(base+".counterparties.limit", "%d: want 0 (off) to 10000", cp.Limit)
	}
	if cp.Timeout < time.Millisecond || cp.Timeout > time.Minute {
		p.Add(base+".counterparties.timeout", "%s: want 1ms to 1m", cp.Timeout)
	}
	if cp.CacheSize < 0 || cp.CacheSize > 10_000_000 {
		p.Add(base+".counterparties.cache_size", "%d: want 0 (no cache) to 10000000", cp.CacheSize)
	}
	if cp.CacheTTL < 0 || cp.CacheTTL > 24*time.Hour {
		p.Add(base+".counterparties.cache_ttl", "%s: want 0 to 24h", cp.CacheTTL)
	}
	if c.Retain < longest {
		p.Add(base+".retain", "%s: want at least the longest window, %s", c.Retain, longest)
	} else if c.Retain > 90*24*time.Hour {
		p.Add(base+".retain", "%s: want at most 2160h", c.Retain)
	}
	if c.MaxDestinations < 1 || c.MaxDestinations > 1_000_000 {
		p.Add(base+".max_destinations", "%d: want 1 to 1000000", c.MaxDestinations)
	}
}

// parseScore reads the exchange's risk score: a decimal from 0 to 100
// with at most 6 decimals. It is untrusted input (the request context).
func parseScore(s string) (*big.Rat, error) {
	if len(s) > 10 || !scoreRe.MatchString(s) {
		return nil, fmt.Errorf("%q: want a decimal score from 0 to 100", truncate(s))
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Cmp(big.NewRat(100, 1)) > 0 {
		return nil, fmt.Errorf("%q: want a decimal score from 0 to 100", truncate(s))
	}
	return r, nil
}

var scoreRe = regexp.MustCompile(`^(0|[1-9][0-9]{0,2})(\.[0-9]{1,6})?$`)

func truncate(s string) string {
	if len(s) > 40 {
		return strings.ToValidUTF8(s[:40], "") + "…"
	}
	return s
}

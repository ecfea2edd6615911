package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/intent"
)

// PricesConfig is gate.policy.prices: the assets the gate can value, with
// their decimals and optionally a price, and how old a price may be.
type PricesConfig struct {
	// MaxAge is how old a price may be before it is stale and the value
	// unknown (default 10m).
	MaxAge time.Duration `yaml:"max_age"`
	Assets []AssetPrice  `yaml:"assets"`
}

// AssetPrice is one asset: chain, network (empty: every network of the
// chain without an entry of its own), asset (native or a token
// contract), the decimals of its base unit (18 for ether, 8 for bitcoin)
// and a price in dollars per whole unit.
//
// A price given here counts as published when cordon starts: it goes
// stale after max_age unless cordon.prices updates it. Static prices
// never go stale, and cordon.prices does not change them: say so only
// for an asset whose price is fixed (a test network, a stable coin you
// value at par).
type AssetPrice struct {
	Chain    string `yaml:"chain"`
	Network  string `yaml:"network"`
	Asset    string `yaml:"asset"`
	Decimals int    `yaml:"decimals"`
	USD      string `yaml:"usd"`
	Static   bool   `yaml:"static"`
}

// DefaultMaxAge is a price's age limit when max_age is not set.
const DefaultMaxAge = 10 * time.Minute

// Validate records the problems of c at base (gate.policy.prices).
func (c PricesConfig) Validate(p *config.Problems, base string) {
	if c.MaxAge < 0 || c.MaxAge > 24*time.Hour {
		p.Add(base+".max_age", "%s: want 0 (the default, %s) to 24h", c.MaxAge, DefaultMaxAge)
	}
	seen := map[string]int{}
	for i, a := range c.Assets {
		key := fmt.Sprintf("%s.assets[%d]", base, i)
		if a.Chain == "" {
			p.Add(key+".chain", "empty: want the chain (eth, btc)")
		}
		if a.Asset == "" {
			p.Add(key+".asset", "empty: want native or a token contract")
		}
		if a.Decimals < 0 || a.Decimals > 36 {
			p.Add(key+".decimals", "%d: want 0 to 36 (18 for ether, 8 for bitcoin)", a.Decimals)
		}
		if a.USD != "" {
			if _, err := positive(a.USD); err != nil {
				p.Add(key+".usd", "%v", err)
			}
		} else if a.Static {
			p.Add(key+".static", "a static asset needs its usd price")
		}
		k := priceKey(a.Chain, a.Network, a.Asset)
		if j, dup := seen[k]; dup {
			p.Add(key, "%s is also %s.assets[%d]", k, base, j)
		}
		seen[k] = i
	}
}

func positive(s string) (intent.USD, error) {
	u, err := intent.ParseUSD(s)
	if err != nil {
		return intent.USD{}, err
	}
	if u.Rat().Sign() <= 0 {
		return intent.USD{}, fmt.Errorf("%q: a price is more than 0", s)
	}
	return u, nil
}

func priceKey(chain, network, asset string) string { return chain + "/" + network + "/" + asset }

// Prices values amounts in dollars: configured prices and the live ones
// the gate feeds from cordon.prices. Safe for concurrent use.
type Prices struct {
	maxAge time.Duration
	mu     sync.RWMutex
	byKey  map[string]*price
}

type price struct {
	decimals int
	static   bool
	usd      intent.USD // unknown: none yet
	at       time.Time
}

// NewPrices builds the prices of a validated config; configured prices
// count as published at now.
func NewPrices(c PricesConfig, now time.Time) (*Prices, error) {
	var p config.Problems
	c.Validate(&p, "prices")
	if err := p.Err(); err != nil {
		return nil, err
	}
	ps := &Prices{maxAge: c.MaxAge, byKey: map[string]*price{}}
	if ps.maxAge == 0 {
		ps.maxAge = DefaultMaxAge
	}
	for _, a := range c.Assets {
		pr := &price{decimals: a.Decimals, static: a.Static}
		if a.USD != "" {
			pr.usd, _ = positive(a.USD) //nolint:errcheck // Validate checked it
			pr.at = now
		}
		ps.byKey[priceKey(a.Chain, a.Network, a.Asset)] = pr
	}
	return ps, nil
}

// lookup finds the entry of (chain, network, asset): its own, else the
// chain's for every network. Callers hold mu.
func (ps *Prices) lookup(chain, network, asset string) (*price, bool) {
	if p, ok := ps.byKey[priceKey(chain, network, asset)]; ok {
		return p, true
	}
	p, ok := ps.byKey[priceKey(chain, "", asset)]
	return p, ok
}

// Errors of Update.
var (
	ErrUnknownAsset = errors.New("asset not configured")
	ErrStaticPrice  = errors.New("asset has a static price")
	ErrBadPrice     = errors.New("bad price")
)

// Update sets the price of an asset at time at (from cordon.prices). An
// update older than the price held is ignored; one for an asset not
// configured, or static, one that is not above zero, or one from more
// than MaxClockSkew after now is refused.
func (ps *Prices) Update(chain, network, asset string, usd intent.USD, at, now time.Time) error {
	if !usd.Known() || usd.Rat().Sign() <= 0 {
		return fmt.Errorf("%w: %s %s %s at %s: want a price above 0", ErrBadPrice, chain, network, asset, usd)
	}
	if at.After(now.Add(MaxClockSkew)) {
		return fmt.Errorf("%w: %s %s %s: published in the future (%s)", ErrBadPrice, chain, network, asset, at.UTC().Format(time.RFC3339))
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.lookup(chain, network, asset)
	switch {
	case !ok:
		return fmt.Errorf("%w: %s %s %s (gate.policy.prices.assets gives each asset's decimals)", ErrUnknownAsset, chain, network, asset)
	case p.static:
		return fmt.Errorf("%w: %s %s %s", ErrStaticPrice, chain, network, asset)
	case !p.at.IsZero() && at.Before(p.at):
		return nil
	}
	p.usd, p.at = usd, at
	return nil
}

// PriceUpdate is one record of cordon.prices, as the exchange publishes
// it: JSON {"chain","network","asset","usd","at"}, usd a decimal string.
type PriceUpdate struct {
	Chain   string    `json:"chain"`
	Network string    `json:"network"`
	Asset   string    `json:"asset"`
	USD     string    `json:"usd"`
	At      time.Time `json:"at"`
}

// Apply decodes a cordon.prices record and updates the price with it.
func (ps *Prices) Apply(record []byte, now time.Time) error {
	var u PriceUpdate
	d := json.NewDecoder(bytes.NewReader(record))
	d.DisallowUnknownFields()
	if err := d.Decode(&u); err != nil {
		return fmt.Errorf("%w: %w", ErrBadPrice, err)
	}
	usd, err := positive(u.USD)
	if err != nil {
		return fmt.Errorf("%w: %s %s %s: %w", ErrBadPrice, u.Chain, u.Network, u.Asset, err)
	}
	if u.At.IsZero() {
		return fmt.Errorf("%w: %s %s %s: no time", ErrBadPrice, u.Chain, u.Network, u.Asset)
	}
	return ps.Update(u.Chain, u.Network, u.Asset, usd, u.At, now)
}

// Value is the dollar value of amount base units of an asset at now, or
// unknown with the reason: no such asset, no price yet, a stale price, or
// no amount. Unknown is never zero: the policy puts it above every tier.
func (ps *Prices) Value(chain, network, asset string, amount *big.Int, now time.Time) (intent.USD, string) {
	if amount == nil || amount.Sign() < 0 {
		return intent.USD{}, "no amount"
	}
	ps.mu.RLock()
	p, ok := ps.lookup(chain, network, asset)
	var pr price
	if ok {
		pr = *p
	}
	ps.mu.RUnlock()
	switch {
	case !ok:
		return intent.USD{}, fmt.Sprintf("no price for %s %s %s: the asset is not configured", chain, network, asset)
	case !pr.usd.Known():
		return intent.USD{}, fmt.Sprintf("no price for %s %s %s yet", chain, network, asset)
	case !pr.static && now.Sub(pr.at) > ps.maxAge:
		return intent.USD{}, fmt.Sprintf("the price of %s %s %s is stale: from %s, older than %s",
			chain, network, asset, pr.at.UTC().Format(time.RFC3339), ps.maxAge)
	}
	return intent.Value(amount, pr.decimals, pr.usd), ""
}

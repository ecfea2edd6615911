package credit

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/cordonhq/cordon/internal/chain"
)

// Policies turns the credit configuration (validated) into the engine's
// policy lookup — the most specific of (chain, asset) and (chain, "*"),
// the defaults (Bitcoin 3, Ethereum 12) otherwise — and the credited
// tokens.
func Policies(c Config) (func(chain.Chain, string) Policy, Tokens, error) {
	byKey := map[string]Policy{}
	all := append(DefaultPolicies(), c.Policies...) // configured ones override
	for _, p := range all {
		pol := Policy{Confirmations: p.Confirmations, Finalized: p.Finalized, Quorum: p.Quorum,
			DualCategories: c.TwoOperators.Categories, DualConfidence: c.TwoOperators.MinConfidence}
		var err error
		if pol.DualAbove, err = amount(p.TwoOperatorsAbove); err != nil {
			return nil, nil, fmt.Errorf("credit policy %s/%s: two_operators_above: %w", p.Chain, p.Asset, err)
		}
		if pol.Dust, err = amount(p.Dust); err != nil {
			return nil, nil, fmt.Errorf("credit policy %s/%s: dust: %w", p.Chain, p.Asset, err)
		}
		if pol.Review, err = amount(p.Review); err != nil {
			return nil, nil, fmt.Errorf("credit policy %s/%s: review: %w", p.Chain, p.Asset, err)
		}
		for _, t := range p.Tiers {
			m, err := amount(t.Min)
			if err != nil || m == nil {
				return nil, nil, fmt.Errorf("credit policy %s/%s: tier min %q", p.Chain, p.Asset, t.Min)
			}
			pol.Tiers = append(pol.Tiers, Tier{Min: m, Confirmations: t.Confirmations})
		}
		byKey[p.Chain+"/"+strings.ToLower(p.Asset)] = pol
	}
	tokens := Tokens{}
	for ch, toks := range c.Tokens {
		for _, t := range toks {
			if tokens[chain.Chain(ch)] == nil {
				tokens[chain.Chain(ch)] = map[string]bool{}
			}
			tokens[chain.Chain(ch)][strings.ToLower(t)] = true
		}
	}
	tokenDust, err := amount(c.TokenDust)
	if err != nil {
		return nil, nil, fmt.Errorf("credit token_dust: %w", err)
	}
	return func(c chain.Chain, asset string) Policy {
		if p, ok := byKey[string(c)+"/"+strings.ToLower(asset)]; ok {
			return p
		}
		p := byKey[string(c)+"/*"]
		if asset != chain.AssetNative && tokenDust != nil {
			// A token without its own policy: the chain's dust is in its
			// coin, which says nothing about the token's units.
			p.Dust = tokenDust
		}
		return p
	}, tokens, nil
}

func amount(s string) (*big.Int, error) {
	if s == "" {
		return nil, nil
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() < 0 {
		return nil, fmt.Errorf("%q: not a decimal integer", s)
	}
	return v, nil
}

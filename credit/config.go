package credit

import (
	"fmt"
	"regexp"

	"github.com/cordonhq/cordon/internal/config"
)

// Config configures deposit crediting: the credit section of cordon's
// configuration file.
type Config struct {
	// Policies are per chain and asset ("native", a token contract, or
	// "*" for the chain's default); the most specific applies.
	Policies []PolicyConfig `yaml:"policies"`
	// Tokens are the token contracts credited, per chain; transfers of
	// other tokens are recorded as unknown_token.
	Tokens map[string][]string `yaml:"tokens"`
	// TokenDust is the dust threshold (token base units) of a credited
	// token that has no policy of its own: the chain's default policy is
	// in the chain's coin, so its dust would mean nothing for a token.
	// Default 10000 (0.01 of a 6-decimal token such as USDT); give
	// 18-decimal tokens their own policy.
	TokenDust string `yaml:"token_dust"`
	// RetainBlocks: settled deposits (credited, rejected, dust, unknown
	// token) whose block is this many blocks below the tip are forgotten
	// by the crediting engine's memory (they stay on cordon.deposits).
	// Keep it far above every chain's max_reorg_depth.
	RetainBlocks uint64 `yaml:"retain_blocks"`
	// TwoOperators names the held deposits whose release takes two
	// distinct operators (besides each policy's two_operators_above).
	TwoOperators TwoOperators `yaml:"two_operators"`
}

// TwoOperators says when a release needs a second operator: a screening hit
// is of one of Categories (default: sanctions), or has a confidence of at
// least MinConfidence (0: no such rule).
type TwoOperators struct {
	Categories    []string `yaml:"categories"`
	MinConfidence int      `yaml:"min_confidence"`
}

// PolicyConfig is the confirmation policy of one chain and asset. Amounts
// are decimal integers in base units (wei, satoshi, token units).
type PolicyConfig struct {
	Chain         string       `yaml:"chain"`
	Asset         string       `yaml:"asset"`
	Confirmations uint64       `yaml:"confirmations"`
	Tiers         []TierConfig `yaml:"tiers"`
	Dust          string       `yaml:"dust"`
	Review        string       `yaml:"review"`
	// Finalized (Ethereum) also waits for the node's finalized block to
	// reach the deposit's block.
	Finalized bool `yaml:"finalized"`
	// Quorum is how many of the chain's endpoints must report the
	// deposit's block at its height before it is credited; 0 is the
	// chain's quorum (its quorum key, by default a majority when it has
	// three or more endpoints).
	Quorum int `yaml:"quorum"`
	// TwoOperatorsAbove: releasing a held deposit of at least this amount
	// (base units) takes two distinct operators.
	TwoOperatorsAbove string `yaml:"two_operators_above"`
}

// TierConfig raises the confirmations of deposits of at least Min.
type TierConfig struct {
	Min           string `yaml:"min"`
	Confirmations uint64 `yaml:"confirmations"`
}

// DefaultPolicies are the policies when none is configured:
// Bitcoin 3 confirmations, Ethereum 12.
func DefaultPolicies() []PolicyConfig {
	return []PolicyConfig{{Chain: "btc", Asset: "*", Confirmations: 3}, {Chain: "eth", Asset: "*", Confirmations: 12}}
}

var decimalRe = regexp.MustCompile(`^(0|[1-9][0-9]{0,77})$`)

// Validate records every problem of c in p, each named by its key under
// base (the section's own key: "credit" in cordon's configuration file).
func (c Config) Validate(p *config.Problems, base string) {
	bad := p.Add
	if c.RetainBlocks < 1000 {
		bad(base+".retain_blocks", "%d: at least 1000 (and far above every max_reorg_depth)", c.RetainBlocks)
	}
	seen := map[string]bool{}
	for i, pol := range c.Policies {
		key := fmt.Sprintf("%s.policies[%d]", base, i)
		if pol.Chain != "eth" && pol.Chain != "btc" {
			bad(key+".chain", "%q: want eth or btc", pol.Chain)
		}
		if pol.Asset == "" {
			bad(key+".asset", "empty: want native, a token contract, or * (the chain's default)")
		}
		if pol.Finalized && pol.Chain != "eth" {
			bad(key+".finalized", "only eth has a finalized block tag")
		}
		if seen[pol.Chain+"/"+pol.Asset] {
			bad(key, "a second policy for %s %s", pol.Chain, pol.Asset)
		}
		seen[pol.Chain+"/"+pol.Asset] = true
		if pol.Quorum < 0 || pol.Quorum > 64 {
			bad(key+".quorum", "%d: want 0 (the chain's quorum) to 64", pol.Quorum)
		}
		if pol.Confirmations < 1 || pol.Confirmations > 10_000 {
			bad(key+".confirmations", "%d: want 1 to 10000", pol.Confirmations)
		}
		for _, f := range []struct{ k, v string }{{"dust", pol.Dust}, {"review", pol.Review}, {"two_operators_above", pol.TwoOperatorsAbove}} {
			if f.v != "" && !decimalRe.MatchString(f.v) {
				bad(key+"."+f.k, "%q: want a decimal integer in base units", f.v)
			}
		}
		for j, t := range pol.Tiers {
			tk := fmt.Sprintf("%s.tiers[%d]", key, j)
			if !decimalRe.MatchString(t.Min) {
				bad(tk+".min", "%q: want a decimal integer in base units", t.Min)
			}
			if t.Confirmations <= pol.Confirmations {
				bad(tk+".confirmations", "%d: a tier must ask more than the policy's %d", t.Confirmations, pol.Confirmations)
			}
		}
	}
	if c.TokenDust != "" && !decimalRe.MatchString(c.TokenDust) {
		bad(base+".token_dust", "%q: want a decimal integer in token base units", c.TokenDust)
	}
	if m := c.TwoOperators.MinConfidence; m < 0 || m > 100 {
		bad(base+".two_operators.min_confidence", "%d: want 0 (off) to 100", m)
	}
	for i, cat := range c.TwoOperators.Categories {
		if cat == "" {
			bad(fmt.Sprintf("%s.two_operators.categories[%d]", base, i), "empty: want an indicator category (sanctions, hack, ...)")
		}
	}
	for ch, toks := range c.Tokens {
		if ch != "eth" {
			bad(base+".tokens."+ch, "only eth has tokens")
			continue
		}
		for i, t := range toks {
			if !regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`).MatchString(t) {
				bad(fmt.Sprintf("%s.tokens.eth[%d]", base, i), "%q: want a 0x token contract address", t)
			}
		}
	}
}

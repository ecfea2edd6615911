package vault

import (
	"fmt"
	"math/big"
	"slices"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
	"github.com/cordonhq/cordon/signer/wallet"
)

// Config is the signer section of the signer's own config file: its own
// copies of what the gate also holds (approvers, policy), its wallets,
// its limits and who resets its breaker. Nothing here is read from
// Kafka.
type Config struct {
	// Approvers: the signer's own copy of the approver registry (names,
	// groups, Ed25519 public keys).
	Approvers []intent.Approver `yaml:"approvers"`
	// Policy: its own copy of the policy file and its approval record
	// (empty: the default policy).
	Policy  policy.Config `yaml:"policy"`
	Wallets wallet.Config `yaml:"wallets"`
	// Limits cap what is signed, per asset. An asset without a limit is
	// never signed.
	Limits  []Limit       `yaml:"limits"`
	Breaker BreakerConfig `yaml:"breaker"`
}

// Limit caps one asset's withdrawals, in the asset's base units
// (satoshi, wei, token units), as decimal strings: per transaction
// (each withdrawal), per rolling 24 hours, and per destination per
// rolling 24 hours. Empty is no cap of that kind; the limit itself must
// exist.
type Limit struct {
	Chain   string `yaml:"chain"`
	Network string `yaml:"network"`
	// Asset is "native" or the token's contract address (lowercase hex).
	Asset             string `yaml:"asset"`
	PerWithdrawal     string `yaml:"per_withdrawal"`
	PerDay            string `yaml:"per_day"`
	PerDestinationDay string `yaml:"per_destination_day"`
}

// BreakerConfig is who resets the signer's breaker: ResetQuorum approvers
// of ResetGroups (default 2 of security).
type BreakerConfig struct {
	ResetQuorum int      `yaml:"reset_quorum"`
	ResetGroups []string `yaml:"reset_groups"`
}

type limit struct {
	perWithdrawal, perDay, perDestination *big.Int
}

func amount(s string) (*big.Int, error) {
	if s == "" {
		return nil, nil
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() < 0 || v.String() != s {
		return nil, fmt.Errorf("%q: want a non-negative decimal integer in base units", s)
	}
	return v, nil
}

// Validate records every problem of c in p, each named by its key under
// base ("signer"), and returns the approvers and the limits by
// chain/network/asset.
func (c *Config) Validate(p *config.Problems, base string) (*intent.Approvers, map[string]limit) {
	if c.Breaker.ResetQuorum == 0 && len(c.Breaker.ResetGroups) == 0 {
		c.Breaker = BreakerConfig{ResetQuorum: 2, ResetGroups: []string{"security"}}
	}
	c.Wallets.Validate(p, base+".wallets")
	if len(c.Wallets.BTC)+len(c.Wallets.ETH) == 0 {
		p.Add(base+".wallets", "empty: name the hot wallets the signer signs for")
	}
	limits := map[string]limit{}
	for i, l := range c.Limits {
		k := fmt.Sprintf("%s.limits[%d]", base, i)
		if l.Chain == "" || l.Network == "" || l.Asset == "" {
			p.Add(k, "chain, network and asset are required")
			continue
		}
		var lm limit
		var err error
		for _, f := range []struct {
			key string
			s   string
			v   **big.Int
		}{{"per_withdrawal", l.PerWithdrawal, &lm.perWithdrawal}, {"per_day", l.PerDay, &lm.perDay}, {"per_destination_day", l.PerDestinationDay, &lm.perDestination}} {
			if *f.v, err = amount(f.s); err != nil {
				p.Add(k+"."+f.key, "%v", err)
			}
		}
		id := limitKey(l.Chain, l.Network, l.Asset)
		if _, dup := limits[id]; dup {
			p.Add(k, "a second limit of %s", id)
		}
		limits[id] = lm
	}
	if len(c.Approvers) == 0 {
		p.Add(base+".approvers", "empty: the signer checks every approval against its own copy of the approvers")
		return nil, limits
	}
	approvers, err := intent.NewApprovers(base+".approvers", c.Approvers)
	if err != nil {
		p.Add(base+".approvers", "%v", err)
		return nil, limits
	}
	c.Policy.Validate(p, base+".policy", approvers)
	n := 0
	for _, a := range approvers.List() {
		if !a.Disabled && slices.ContainsFunc(c.Breaker.ResetGroups, a.In) {
			n++
		}
	}
	if c.Breaker.ResetQuorum < 1 || c.Breaker.ResetQuorum > n {
		p.Add(base+".breaker.reset_quorum", "%d: want 1 to %d (the enabled approvers of %v)", c.Breaker.ResetQuorum, n, c.Breaker.ResetGroups)
	}
	return approvers, limits
}

func limitKey(chain, network, asset string) string { return chain + "/" + network + "/" + asset }

package rules

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
)

// Severities of alerts, lowest first.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

var severities = []string{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// SeverityRank orders severities (0 for an unknown one).
func SeverityRank(s string) int {
	for i, v := range severities {
		if v == s {
			return i + 1
		}
	}
	return 0
}

// Amounts are thresholds in base units by asset, keyed "chain/asset":
// "eth/native", "btc/native", or "eth/0x…" for a token. A missing asset
// has no threshold.
type Amounts map[string]string

// Config tunes the rules (key `detect.rules`).
type Config struct {
	// Outflow: an outflow from a hot or cold wallet is large when it is
	// at least Factor times the median of the wallet's outflows of that
	// asset within Window (with at least MinSamples of them), or at
	// least Large whatever the baseline; nothing below Min alerts.
	Outflow OutflowConfig `yaml:"outflow"`
	// Velocity: more than MaxCount outflows, or more than MaxValue, from
	// one wallet and asset within Window; and the share of the wallet's
	// balance that left within it (drain).
	Velocity VelocityConfig `yaml:"velocity"`
	// Flagged: contact with an address the indicators flag.
	Flagged FlaggedConfig `yaml:"flagged"`
	// Poisoning: dust and zero-value transfers to or from our
	// addresses, and lookalikes of the wallets' counterparties.
	Poisoning PoisoningConfig `yaml:"poisoning"`
	// Custom are the operators' own rules.
	Custom []CustomRule `yaml:"custom"`
	// ContractWallets are the exchange's contract wallets (multisig
	// proxies) whose implementation, owners and delegatecalls are
	// checked every block.
	ContractWallets []ContractWallet `yaml:"contract_wallets"`
	// Approvals: allowances our addresses grant to spenders not allowed.
	Approvals ApprovalConfig `yaml:"approvals"`
	// UndoDepth is how many recent blocks per stream can be removed by a
	// reorganization (default 64; deeper reorganizations are refused by
	// the watchers).
	UndoDepth int `yaml:"undo_depth"`
}

// OutflowConfig is the large-outflow rule's.
type OutflowConfig struct {
	Disabled   bool          `yaml:"disabled"`
	Window     time.Duration `yaml:"window"`
	MinSamples int           `yaml:"min_samples"`
	Factor     float64       `yaml:"factor"`
	Min        Amounts       `yaml:"min"`
	Large      Amounts       `yaml:"large"`
	Severity   string        `yaml:"severity"`
}

// VelocityConfig is the velocity and drain rules'.
type VelocityConfig struct {
	Disabled bool          `yaml:"disabled"`
	Window   time.Duration `yaml:"window"`
	MaxCount int           `yaml:"max_count"`
	MaxValue Amounts       `yaml:"max_value"`
	// DrainShare is the share of a wallet's balance whose departure
	// within Window is a drain (default 0.5; 0 keeps the default, a
	// negative value turns the drain rule off).
	DrainShare float64 `yaml:"drain_share"`
	Severity   string  `yaml:"severity"`
}

// FlaggedConfig is the flagged-contact rule's.
type FlaggedConfig struct {
	Disabled bool `yaml:"disabled"`
	// MinConfidence ignores hits of lower confidence (0–100).
	MinConfidence int `yaml:"min_confidence"`
}

// PoisoningConfig is the poisoning rules'.
type PoisoningConfig struct {
	Disabled bool `yaml:"disabled"`
	// Dust are the largest amounts that count as dust; zero-value
	// transfers always do.
	Dust Amounts `yaml:"dust"`
	// Prefix and Suffix are how many leading and trailing characters of
	// an address (after its 0x or bech32 prefix) a lookalike shares with
	// a counterparty (defaults 4 and 4).
	Prefix int `yaml:"prefix"`
	Suffix int `yaml:"suffix"`
	// Remember is how many counterparties per wallet are remembered
	// (default 256).
	Remember int `yaml:"remember"`
}

// CustomRule is an operator's rule: a CEL expression over one transfer
// that raises an alert when true.
type CustomRule struct {
	Name     string `yaml:"name"`
	When     string `yaml:"when"`
	Severity string `yaml:"severity"`
	Summary  string `yaml:"summary"`
	// All evaluates the rule on every transfer of a block, not only on
	// those touching a registered address.
	All bool `yaml:"all"`
}

// Defaults fills what is unset.
func (c *Config) Defaults() {
	if c.UndoDepth <= 0 {
		c.UndoDepth = 64
	}
	if c.Outflow.Window <= 0 {
		c.Outflow.Window = 7 * 24 * time.Hour
	}
	if c.Outflow.MinSamples <= 0 {
		c.Outflow.MinSamples = 10
	}
	if c.Outflow.Factor <= 0 {
		c.Outflow.Factor = 5
	}
	if c.Outflow.Severity == "" {
		c.Outflow.Severity = SeverityHigh
	}
	if c.Velocity.Window <= 0 {
		c.Velocity.Window = time.Hour
	}
	if c.Velocity.DrainShare == 0 {
		c.Velocity.DrainShare = 0.5
	}
	if c.Velocity.Severity == "" {
		c.Velocity.Severity = SeverityHigh
	}
	if c.Poisoning.Prefix <= 0 {
		c.Poisoning.Prefix = 4
	}
	if c.Poisoning.Suffix <= 0 {
		c.Poisoning.Suffix = 4
	}
	if c.Poisoning.Remember <= 0 {
		c.Poisoning.Remember = 256
	}
	for i := range c.Custom {
		if c.Custom[i].Severity == "" {
			c.Custom[i].Severity = SeverityMedium
		}
	}
	for i := range c.ContractWallets {
		c.ContractWallets[i].defaults()
	}
	if c.Approvals.Severity == "" {
		c.Approvals.Severity = SeverityHigh
	}
}

// Validate names every bad key under prefix (custom rules are compiled
// too).
func (c Config) Validate(prefix string) error {
	var p iconfig.Problems
	c.Check(&p, prefix)
	return p.Err()
}

// Check adds every bad key under prefix to p.
func (c Config) Check(p *iconfig.Problems, prefix string) {
	c.Defaults()
	bad := func(key, format string, a ...any) { p.Add(prefix+"."+key, format, a...) }
	amounts := func(key string, m Amounts) {
		for k, v := range m {
			if _, err := parseAsset(k); err != nil {
				bad(key+"."+k, "%v", err)
			}
			if _, err := chain.ParseAmount(v); err != nil {
				bad(key+"."+k, "%v", err)
			}
		}
	}
	amounts("outflow.min", c.Outflow.Min)
	amounts("outflow.large", c.Outflow.Large)
	amounts("velocity.max_value", c.Velocity.MaxValue)
	amounts("poisoning.dust", c.Poisoning.Dust)
	for key, s := range map[string]string{"outflow.severity": c.Outflow.Severity, "velocity.severity": c.Velocity.Severity} {
		if SeverityRank(s) == 0 {
			bad(key, "%q: want one of %s", s, strings.Join(severities, ", "))
		}
	}
	if c.Outflow.Factor < 1 {
		bad("outflow.factor", "%v: want at least 1", c.Outflow.Factor)
	}
	if c.Velocity.DrainShare > 1 {
		bad("velocity.drain_share", "%v: want a share up to 1 (or negative to turn it off)", c.Velocity.DrainShare)
	}
	if c.Velocity.MaxCount < 0 {
		bad("velocity.max_count", "%d: want 0 (off) or more", c.Velocity.MaxCount)
	}
	if c.Flagged.MinConfidence < 0 || c.Flagged.MinConfidence > 100 {
		bad("flagged.min_confidence", "%d: want 0 to 100", c.Flagged.MinConfidence)
	}
	if c.Poisoning.Prefix > 20 || c.Poisoning.Suffix > 20 {
		bad("poisoning", "prefix and suffix: want at most 20 characters each")
	}
	c.checkContracts(bad)
	if SeverityRank(c.Approvals.Severity) == 0 {
		bad("approvals.severity", "%q: want one of %s", c.Approvals.Severity, strings.Join(severities, ", "))
	}
	for j, a := range c.Approvals.Spenders {
		if !isHexAddr(a) {
			bad(fmt.Sprintf("approvals.spenders[%d]", j), "%q: want a 0x-prefixed 20-byte address", a)
		}
	}
	names := map[string]bool{}
	for i, r := range c.Custom {
		key := fmt.Sprintf("custom[%d]", i)
		if err := iconfig.Name(r.Name); err != nil {
			bad(key+".name", "%v", err)
		} else if names[r.Name] {
			bad(key+".name", "%q: twice", r.Name)
		}
		names[r.Name] = true
		if SeverityRank(r.Severity) == 0 {
			bad(key+".severity", "%q: want one of %s", r.Severity, strings.Join(severities, ", "))
		}
		if len(r.Summary) > 500 {
			bad(key+".summary", "longer than 500 characters")
		}
		if _, err := compileCustom(r); err != nil {
			bad(key+".when", "%v", err)
		}
	}
}

func (c Config) checkContracts(bad func(key, format string, a ...any)) {
	seen := map[string]bool{}
	for i, w := range c.ContractWallets {
		key := fmt.Sprintf("contract_wallets[%d]", i)
		if err := iconfig.Name(w.Name); err != nil {
			bad(key+".name", "%v", err)
		}
		if !isHexAddr(w.Address) {
			bad(key+".address", "%q: want a 0x-prefixed 20-byte address", w.Address)
		} else if k := w.Network + "/" + strings.ToLower(w.Address); seen[k] {
			bad(key+".address", "%q: twice on network %q", w.Address, w.Network)
		} else {
			seen[k] = true
		}
		if w.Network == "" {
			bad(key+".network", "required: the Ethereum network as the watcher names it (chains.eth[].network)")
		}
		if len(w.Implementations) == 0 {
			bad(key+".implementations", "required: the implementation(s) the proxy may point at (its EIP-1967 slot)")
		}
		for j, a := range w.Implementations {
			if !isHexAddr(a) {
				bad(fmt.Sprintf("%s.implementations[%d]", key, j), "%q: want a 0x-prefixed 20-byte address", a)
			}
		}
		for j, a := range w.Owners {
			if !isHexAddr(a) {
				bad(fmt.Sprintf("%s.owners[%d]", key, j), "%q: want a 0x-prefixed 20-byte address", a)
			}
		}
		for j, a := range w.DelegateCalls {
			if !isHexAddr(a) {
				bad(fmt.Sprintf("%s.delegatecall_allow[%d]", key, j), "%q: want a 0x-prefixed 20-byte address", a)
			}
		}
		if !isHexWord(w.Slot) {
			bad(key+".implementation_slot", "%q: want a 0x-prefixed 32-byte slot", w.Slot)
		}
		if SeverityRank(w.Severity) == 0 {
			bad(key+".severity", "%q: want one of %s", w.Severity, strings.Join(severities, ", "))
		}
	}
}

// parseAsset splits a "chain/asset" key.
func parseAsset(k string) ([2]string, error) {
	c, a, ok := strings.Cut(k, "/")
	if !ok || a == "" || (c != string(chain.ETH) && c != string(chain.BTC)) {
		return [2]string{}, fmt.Errorf("asset %q: want chain/asset, like eth/native or eth/0x…", k)
	}
	return [2]string{c, strings.ToLower(a)}, nil
}

// amountOf is m's threshold for an asset (nil when none).
func (m Amounts) amountOf(c chain.Chain, asset string) *big.Int {
	if len(m) == 0 {
		return nil
	}
	v, ok := m[string(c)+"/"+strings.ToLower(asset)]
	if !ok {
		return nil
	}
	b, ok := new(big.Int).SetString(v, 10)
	if !ok {
		return nil
	}
	return b
}

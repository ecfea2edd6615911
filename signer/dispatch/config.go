package dispatch

import (
	"fmt"
	"time"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/wallet"
)

// Config is the dispatcher's section (gate.dispatch): the hot wallets it
// builds from (the same wallets, names and keys as the signer's own
// file), and how it follows their transactions.
type Config struct {
	// Wallets are the hot wallets: one per chain network.
	Wallets wallet.Config `yaml:"wallets"`
	// Confirmations is the depth at which a mined withdrawal is confirmed,
	// by "chain/network" (default: btc 6, eth 12).
	Confirmations map[string]int `yaml:"confirmations"`
	// Batch is the most withdrawals one Bitcoin transaction carries
	// (default 50; at most 100, the signer's limit).
	Batch int `yaml:"batch"`
	// FeeRate is the Bitcoin fee rate (sat/vbyte) used when the node has
	// no estimate (a young regtest chain; default 2). The wallet's cap
	// still applies.
	FeeRate int64 `yaml:"fee_rate"`
	// Rebroadcast is how long a broadcast transaction may stay unmined
	// before it is sent again (default 2m); Interval how often approved
	// withdrawals are looked for (default 250ms); Margin how long before
	// its approvals become void a withdrawal is still handed to signing
	// (default 1m).
	Rebroadcast time.Duration `yaml:"rebroadcast"`
	Interval    time.Duration `yaml:"interval"`
	Margin      time.Duration `yaml:"margin"`
}

// Defaults.
const (
	DefaultBatch       = 50
	DefaultFeeRate     = 2
	DefaultRebroadcast = 2 * time.Minute
	DefaultInterval    = 250 * time.Millisecond
	DefaultMargin      = time.Minute
	MaxBatch           = 100
)

// Validate checks the section (at key) and fills in the defaults.
func (c *Config) Validate(p *config.Problems, key string) {
	c.Wallets.Validate(p, key+".wallets")
	seen := map[string]string{}
	for _, w := range c.Wallets.BTC {
		k := "btc/" + w.Network
		if o, ok := seen[k]; ok {
			p.Add(key+".wallets.btc", "wallets %q and %q are both on %s: the dispatcher builds from one hot wallet per network", o, w.Name, k)
		}
		seen[k] = w.Name
	}
	for _, w := range c.Wallets.ETH {
		k := "eth/" + w.Network
		if o, ok := seen[k]; ok {
			p.Add(key+".wallets.eth", "wallets %q and %q are both on %s: the dispatcher builds from one hot wallet per network", o, w.Name, k)
		}
		seen[k] = w.Name
	}
	if c.Confirmations == nil {
		c.Confirmations = map[string]int{}
	}
	for k, n := range c.Confirmations {
		if n < 1 || n > 10_000 {
			p.Add(fmt.Sprintf("%s.confirmations.%s", key, k), "%d: want 1 to 10000", n)
		}
	}
	for k := range seen {
		if _, ok := c.Confirmations[k]; !ok {
			c.Confirmations[k] = 6
			if k[:3] == "eth" {
				c.Confirmations[k] = 12
			}
		}
	}
	switch {
	case c.Batch == 0:
		c.Batch = DefaultBatch
	case c.Batch < 1 || c.Batch > MaxBatch:
		p.Add(key+".batch", "%d: want 1 to %d", c.Batch, MaxBatch)
	}
	if c.FeeRate == 0 {
		c.FeeRate = DefaultFeeRate
	} else if c.FeeRate < 1 {
		p.Add(key+".fee_rate", "%d: want at least 1 sat/vbyte", c.FeeRate)
	}
	if c.Rebroadcast == 0 {
		c.Rebroadcast = DefaultRebroadcast
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Margin == 0 {
		c.Margin = DefaultMargin
	}
	if c.Rebroadcast < time.Second || c.Interval < 0 || c.Margin < 0 {
		p.Add(key, "rebroadcast, interval and margin must be positive (rebroadcast at least 1s)")
	}
}

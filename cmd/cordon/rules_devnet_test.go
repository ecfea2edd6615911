package main

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/detect/rules"
	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

type flags map[string]bool

func (f flags) Hits(_ chain.Chain, _ string, a string) []chain.Hit {
	if !f[strings.ToLower(a)] {
		return nil
	}
	return []chain.Hit{{Address: a, Indicator: "ind-1", Category: "theft", Source: "test", Confidence: 90}}
}

// lookalikeKey finds a key whose address shares the first prefix and
// last suffix hex characters of a's (a poisoner's vanity address).
func lookalikeKey(t *testing.T, a common.Address, prefix, suffix int) *ecdsa.PrivateKey {
	want := strings.ToLower(a.Hex()[2:])
	for range 1 << 20 {
		k, err := crypto.GenerateKey()
		require.NoError(t, err)
		got := strings.ToLower(crypto.PubkeyToAddress(k.PublicKey).Hex()[2:])
		if got != want && got[:prefix] == want[:prefix] && got[len(got)-suffix:] == want[len(want)-suffix:] {
			return k
		}
	}
	t.Fatal("no lookalike found")
	return nil
}

// TestRulesDevnet: each built-in rule on the devnet's real blocks, read
// by the Ethereum watcher's source: a scenario that must fire and a near
// miss that must not, block by block, asserted exactly — the baseline's
// large outflow (and one just under its factor), velocity (one over the
// count, the count itself), the drain, flagged contact (and a clean
// payer), dust (and just above it), a lookalike of a counterparty paying
// the wallet, and the wallet paying it (and paying the genuine one).
func TestRulesDevnet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dev, err := devnet.Start(devnet.Config{})
	require.NoError(t, err)
	defer dev.Close()
	tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{Seed: 8}, nil)
	require.NoError(t, err)
	a := dev.Accounts()
	const hotI, depI, flaggedI, friendI, otherI, strangerI = 5, 6, 7, 8, 9, 10
	hot, dep, friend := a[hotI], a[depI], a[friendI]
	const prefix, suffix = 1, 2
	poisoner := lookalikeKey(t, friend, prefix, suffix)
	eth1 := devnet.Ether(1)
	milli := func(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e15)) }

	type step struct {
		name string
		send func() error
		want []string // the rules the block raises, sorted
	}
	pay := func(from int, to common.Address, wei *big.Int) func() error {
		return func() error { _, err := tr.Pay(ctx, from, to, wei); return err }
	}
	steps := []step{
		{"funding the hot wallet", pay(friendI, hot, devnet.Ether(100)), nil},
		{"the poisoner's gas", pay(0, crypto.PubkeyToAddress(poisoner.PublicKey), eth1), nil},
	}
	for range 6 {
		steps = append(steps, step{"a usual outflow (the baseline)", pay(hotI, friend, eth1), nil})
	}
	steps = append(steps,
		step{"near miss: an outflow just under 5x the median", pay(hotI, friend, milli(4990)), nil},
		step{"an outflow over 5x the median; the window's 8th (max_count 8: a near miss of velocity)", pay(hotI, a[otherI], devnet.Ether(6)),
			[]string{rules.RuleOutflowLarge}},
		step{"the window's 9th outflow", pay(hotI, friend, eth1), []string{rules.RuleVelocityCount}},
		step{"the drain: past half of what the wallet held left", pay(hotI, a[otherI], devnet.Ether(60)), []string{rules.RuleDrain, rules.RuleOutflowLarge}},
		step{"near miss: a clean payer to a deposit address", pay(strangerI, dep, eth1), nil},
		step{"a flagged payer to a deposit address", pay(flaggedI, dep, eth1), []string{rules.RuleFlaggedContact}},
		step{"dust to a deposit address", pay(strangerI, dep, big.NewInt(1000)), []string{rules.RulePoisoningDust}},
		step{"near miss: just above the dust", pay(strangerI, dep, big.NewInt(1001)), nil},
		step{"a lookalike of the wallet's counterparty pays it", func() error {
			_, err := tr.PayFrom(ctx, poisoner, hot, milli(10))
			return err
		}, []string{rules.RulePoisoningLookalik}},
		step{"near miss: the wallet pays its genuine counterparty", pay(hotI, friend, milli(100)), nil},
		step{"the wallet pays the lookalike: the poisoning worked", pay(hotI, crypto.PubkeyToAddress(poisoner.PublicKey), milli(100)),
			[]string{rules.RulePaidLookalike}},
	)
	heights := make([]uint64, len(steps))
	for i, s := range steps {
		require.NoError(t, s.send(), s.name)
		dev.Commit()
		heights[i] = dev.Head().Number.Uint64()
	}

	cfg := rules.Config{
		Outflow:   rules.OutflowConfig{MinSamples: 5, Factor: 5},
		Velocity:  rules.VelocityConfig{MaxCount: 8, Window: time.Hour},
		Poisoning: rules.PoisoningConfig{Prefix: prefix, Suffix: suffix, Dust: rules.Amounts{"eth/native": "1000"}},
	}
	require.NoError(t, cfg.Validate("detect.rules"))
	e, err := rules.New(cfg, kinds{lowerHex(hot): rules.KindHot, lowerHex(dep): rules.KindDeposit}, flags{lowerHex(a[flaggedI]): true})
	require.NoError(t, err)
	byHeight := map[uint64][]string{}
	applyDevnet(t, ctx, dev, e, func(b *chain.Block, alerts []chain.Alert) {
		for _, al := range alerts {
			byHeight[b.Height] = append(byHeight[b.Height], al.Rule)
		}
	})
	for i, s := range steps {
		got := byHeight[heights[i]]
		slices.Sort(got)
		want := slices.Clone(s.want)
		slices.Sort(want)
		require.Equal(t, want, got, "step %d: %s (block %d)", i, s.name, heights[i])
	}
}

// applyDevnet reads the devnet's blocks, from the first to its head, with
// the Ethereum watcher's source on its JSON-RPC, applies each to e and
// hands fn the block and its alerts.
func applyDevnet(t *testing.T, ctx context.Context, dev *devnet.Devnet, e *rules.Engine, fn func(*chain.Block, []chain.Alert)) {
	t.Helper()
	src, err := eth.NewSource(ctx, eth.Config{Network: "devnet", ChainID: devnet.ChainID,
		Endpoints: []eth.EndpointConfig{{Name: "http", URL: iconfig.SecretValue(dev.HTTPURL())}}}, nil, nil)
	require.NoError(t, err)
	defer src.Close()
	hctx, hstop := context.WithCancel(ctx)
	defer hstop()
	go func() { _ = src.Pool().Run(hctx) }()
	head, err := src.Head(ctx)
	require.NoError(t, err)
	for h := uint64(1); h <= head; h++ {
		b, err := src.BlockAt(ctx, h)
		require.NoError(t, err)
		fn(b, e.Apply(chain.Update{Event: chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockAdded, Seq: h, Header: b.Header}, Block: b}))
	}
}

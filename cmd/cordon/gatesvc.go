package main

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/clock"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/retry"
	"github.com/cordonhq/cordon/registry"
	"github.com/cordonhq/cordon/signer/audit"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/policy"
	"github.com/cordonhq/cordon/signer/risk"
)

// gating runs the withdrawal gate while this instance leads; its API is
// mounted on the API server.
type gating struct {
	svc        *gate.Service
	prices     *policy.Prices
	kc         kafka.Config
	indicators *intel.Store
	registry   *registry.Store
	ready      <-chan struct{}
	log        *slog.Logger
	// committed is called after each of the gate's commits (the
	// dispatcher's wake-up), when set.
	committed atomic.Pointer[func(gate.Changes)]
}

// newGating builds the gate from the config: the approvers, the policy
// (the shipped default, or a policy file with its approval record), the
// prices, a risk layer screening with the indicator store and reading
// the registry, and the audit log signed with the gate's key.
func newGating(cfg config.Config, indicators *intel.Store, addresses *registry.Store, reg prometheus.Registerer, ready <-chan struct{},
	log *slog.Logger) (*gating, *gate.API, error) {
	var p iconfig.Problems
	approvers := cfg.Gate.Validate(&p, "gate")
	networks := gateNetworks(cfg)
	assets := gate.NewAssetList(&p, "gate.assets", networks, cfg.Gate.Assets)
	if err := p.Err(); err != nil {
		return nil, nil, err
	}
	pol, by, err := policy.Load(cfg.Gate.Policy, approvers)
	if err != nil {
		return nil, nil, err
	}
	seed := cfg.RecordAuth.Keys.Gate.Value()
	if seed == "" {
		return nil, nil, errors.New("the gate signs its audit log with record_auth.keys.gate, which is not set (cordon keys generate --role gate)")
	}
	key, err := audit.NewKey(seed)
	if err != nil {
		return nil, nil, err
	}
	chn, err := audit.New(cfg.Gate.Audit, key, clock.Real{})
	if err != nil {
		return nil, nil, err
	}
	log.Info("gate: policy loaded", "policy", pol.Hash(), "approved_by", by, "rules", len(pol.Rules()))
	// One price table for every term as leader, fed from cordon.prices.
	prices, err := policy.NewPrices(cfg.Gate.Policy.Prices, time.Now())
	if err != nil {
		return nil, nil, err
	}
	// The destination's earlier counterparties come from ClickHouse when
	// the instance has it (a lookup that fails is counterparties_unknown,
	// never clean); without ClickHouse the check is off.
	var cps risk.Counterparties
	if len(cfg.ClickHouse.Addrs) > 0 {
		st, err := clickhouse.Open(context.Background(), cfg.ClickHouse.Config)
		if err != nil {
			log.Warn("gate: no ClickHouse for the destinations' counterparties", "err", err)
		} else {
			cps = risk.NewClickHouse(st)
		}
	}
	newCore := func() (*gate.Core, error) {
		r, err := risk.New(cfg.Gate.Risk, risk.Deps{Screener: indicators.Index, Counterparties: cps,
			Registry: risk.RegistryFunc(func(c chain.Chain, network, addr string) (string, string, bool) {
				e, ok := addresses.Index.Lookup(c, network, addr)
				return e.Kind, e.Account, ok
			})})
		if err != nil {
			return nil, err
		}
		c := gate.NewCore()
		c.Approvers, c.Policy, c.Prices, c.Risk, c.Assets, c.Breaker, c.Book = approvers, pol, prices, r, assets, cfg.Gate.Breaker, cfg.Gate.AddressBook
		c.PolicySource, c.PolicyApprovedBy, c.RetainFinished = policySource(cfg.Gate.Policy), by, cfg.Gate.RetainFinished
		return c, nil
	}
	g := &gating{prices: prices, kc: cfg.Kafka, indicators: indicators, registry: addresses, ready: ready, log: log}
	svc, err := gate.NewService(gate.ServiceConfig{Kafka: cfg.Kafka, NewCore: newCore, Log: log, Metrics: gate.NewMetrics(reg),
		Audit: &gate.ChainAuditor{Chain: chn, Topic: cfg.Kafka.Topics.Audit},
		Committed: func(ch gate.Changes) {
			if f := g.committed.Load(); f != nil {
				(*f)(ch)
			}
		}})
	if err != nil {
		return nil, nil, err
	}
	g.svc = svc
	return g, &gate.API{Service: svc, Assets: assets}, nil
}

// policySource names where the gate's policy comes from.
func policySource(c policy.Config) string {
	if c.File == "" {
		return "the shipped default policy"
	}
	return c.File
}

// gateNetworks are the chain networks the instance follows ("eth/mainnet").
func gateNetworks(cfg config.Config) []string {
	out := make([]string, 0, len(cfg.Chains.ETH)+len(cfg.Chains.BTC))
	for _, e := range cfg.Chains.ETH {
		out = append(out, "eth/"+e.Config.Network)
	}
	for _, b := range cfg.Chains.BTC {
		out = append(out, "btc/"+b.Config.Network)
	}
	return out
}

// Run leads the gate once the registry and the indicator store have
// caught up: a withdrawal must not be assessed on a partial blocklist.
func (g *gating) Run(ctx context.Context) error {
	if !waitReady(ctx, g.ready) {
		return nil
	}
	caught := make(chan struct{})
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error { return g.followPrices(ectx, caught) })
	eg.Go(func() error {
		select {
		case <-ectx.Done():
			return nil
		case <-caught:
		}
		for !g.indicators.Ready() || !g.registry.Ready() {
			select {
			case <-ectx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
		}
		return g.svc.Run(ectx)
	})
	return eg.Wait()
}

// followPrices applies cordon.prices to the gate's price table; caught
// is closed once it read what the topic held. A record that does not
// parse or moves a price back in time is refused and logged; the price
// before it stays.
func (g *gating) followPrices(ctx context.Context, caught chan struct{}) error {
	once := false
	return retry.Forever(ctx, restartPolicy, g.log, "gate: reading cordon.prices failed", func(ctx context.Context) error {
		if err := kafka.Ensure(ctx, g.kc, g.kc.Topics.Prices); err != nil {
			return err
		}
		return kafka.ReadLog(ctx, g.kc, g.kc.Topics.Prices, kafka.LogOptions{Follow: true, ClientID: "gate-prices", Caught: func() {
			if !once {
				once = true
				close(caught)
			}
		}}, func(r *kafka.Record) error {
			if r.Value == nil {
				return nil
			}
			if err := g.prices.Apply(r.Value, time.Now()); err != nil {
				g.log.Warn("gate: a price was refused", "topic", g.kc.Topics.Prices, "key", string(r.Key), "err", err)
			}
			return nil
		})
	})
}

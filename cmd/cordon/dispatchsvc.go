package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/btcsuite/btcd/rpcclient"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/retry"
	"github.com/cordonhq/cordon/registry"
	sdispatch "github.com/cordonhq/cordon/signer/dispatch"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/watchers/btc"
)

// dispatching runs the dispatcher while this instance's gate leads: a
// new term starts a new dispatcher, which takes the transactions in
// flight over from the gate's state.
type dispatching struct {
	cfg     config.Config
	svc     *gate.Service
	metrics *sdispatch.Metrics
	log     *slog.Logger
	// prod and addresses register the hot wallets (kind hot) in the
	// address registry.
	prod      *kafka.Producer
	addresses *registry.Store
	mu        sync.Mutex
	cur       *sdispatch.Dispatcher // the running dispatcher (nil between terms)
}

// current is the running dispatcher (nil between terms), for the
// status line.
func (d *dispatching) current() *sdispatch.Dispatcher {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur
}

func (d *dispatching) set(x *sdispatch.Dispatcher) {
	d.mu.Lock()
	d.cur = x
	d.mu.Unlock()
}

func newDispatching(cfg config.Config, g *gating, prod *kafka.Producer, addresses *registry.Store, reg prometheus.Registerer,
	log *slog.Logger) *dispatching {
	d := &dispatching{cfg: cfg, svc: g.svc, metrics: sdispatch.NewMetrics(reg), log: log, prod: prod, addresses: addresses}
	// A commit that changed withdrawals (an approval among them) wakes
	// the dispatcher at once: the time from the last approval to the
	// broadcast is not an interval's wait. The withdrawals themselves
	// are the gate loop's and are not read here.
	wake := func(ch gate.Changes) {
		if len(ch.Withdrawals) > 0 {
			if cur := d.current(); cur != nil {
				cur.Wake()
			}
		}
	}
	g.committed.Store(&wake)
	return d
}

// Run registers the hot wallets, waits for the gate to lead, runs a
// dispatcher until the term ends, and starts again.
func (d *dispatching) Run(ctx context.Context) error {
	if err := retry.Do(ctx, restartPolicy, d.log, "dispatch: registering the hot wallets failed", d.register); err != nil || ctx.Err() != nil {
		return nil //nolint:nilerr // Do fails only when ctx ended: stopping
	}
	for {
		for !d.svc.Leader() {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(200 * time.Millisecond):
			}
		}
		tctx, cancel := context.WithCancel(ctx)
		go func() {
			for d.svc.Leader() && tctx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
			}
			cancel()
		}()
		err := retry.Forever(tctx, restartPolicy, d.log, "dispatch: stopped; starting again", d.term)
		cancel()
		if ctx.Err() != nil {
			return nil //nolint:nilerr // stopping
		}
		if err != nil {
			d.log.Warn("dispatch: term ended", "err", err)
		}
	}
}

// register puts each hot wallet's address in the address registry as
// kind hot (deposits to it are not a customer's; detection watches it),
// once the registry is read and unless it is there already.
func (d *dispatching) register(ctx context.Context) error {
	for !d.addresses.Ready() {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	var entries []registry.Entry
	add := func(c chain.Chain, network, addr, name string) {
		e := registry.Entry{Chain: c, Network: network, Address: addr, Kind: registry.KindHot, Account: "hot-wallet:" + name}
		if err := e.Validate(); err != nil {
			d.log.Error("dispatch: a hot wallet's address does not validate", "wallet", name, "err", err)
			return
		}
		if cur, ok := d.addresses.Index.Lookup(c, network, e.Address); ok && cur.Kind == registry.KindHot {
			return
		}
		entries = append(entries, e)
	}
	for _, w := range d.cfg.Dispatch.Wallets.BTC {
		if s, err := w.Script(); err == nil {
			add(chain.BTC, w.Network, s.Address, w.Name)
		}
	}
	for _, w := range d.cfg.Dispatch.Wallets.ETH {
		if a, err := w.Address(); err == nil {
			add(chain.ETH, w.Network, a.Hex(), w.Name)
		}
	}
	if len(entries) == 0 {
		return nil
	}
	if err := registry.Publish(ctx, d.prod, entries); err != nil {
		return err
	}
	d.log.Info("dispatch: hot wallets registered", "count", len(entries))
	return nil
}

// term runs one dispatcher on the chains' endpoints.
func (d *dispatching) term(ctx context.Context) error {
	o := sdispatch.Options{Config: d.cfg.Dispatch, Gate: d.svc, BTC: map[string]sdispatch.BTCNode{}, ETH: map[string]sdispatch.ETHNode{},
		SignRequests: d.cfg.Kafka.Topics.SignRequests, Log: d.log, Metrics: d.metrics}
	for _, w := range d.cfg.Dispatch.Wallets.BTC {
		for _, c := range d.cfg.Chains.BTC {
			if c.Config.Network != w.Network {
				continue
			}
			var ccs []*rpcclient.ConnConfig
			for _, ec := range c.Endpoints {
				cc, _, err := btc.ConnConfig(ec)
				if err != nil {
					return fmt.Errorf("dispatch: btc/%s endpoint %s: %w", w.Network, ec.Name, err)
				}
				ccs = append(ccs, cc)
			}
			nodes, err := sdispatch.NewBTCClients(ccs)
			if err != nil {
				return err
			}
			defer nodes.Close()
			o.BTC[w.Network] = nodes
		}
	}
	for _, w := range d.cfg.Dispatch.Wallets.ETH {
		for _, c := range d.cfg.Chains.ETH {
			if c.Config.Network != w.Network {
				continue
			}
			var urls []string
			for _, ec := range c.Endpoints {
				urls = append(urls, ec.URL.Value())
			}
			nodes, err := sdispatch.DialETH(ctx, urls)
			if err != nil {
				return err
			}
			defer nodes.Close()
			o.ETH[w.Network] = nodes
		}
	}
	disp, err := sdispatch.New(o)
	if err != nil {
		return err
	}
	d.set(disp)
	defer d.set(nil)
	return sdispatch.RunKafka(ctx, d.cfg.Kafka, disp)
}

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
	"github.com/cordonhq/cordon/internal/retry"
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
	mu      sync.Mutex
	cur     *sdispatch.Dispatcher // the running dispatcher (nil between terms)
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

func newDispatching(cfg config.Config, g *gating, reg prometheus.Registerer, log *slog.Logger) *dispatching {
	d := &dispatching{cfg: cfg, svc: g.svc, metrics: sdispatch.NewMetrics(reg), log: log}
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

// Run waits for the gate to lead, runs a dispatcher until the term ends,
// and starts again.
func (d *dispatching) Run(ctx context.Context) error {
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

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/detect/live"
	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/obs"
	"github.com/cordonhq/cordon/internal/recordauth"
	"github.com/cordonhq/cordon/internal/retry"
	"github.com/cordonhq/cordon/registry"
	"github.com/cordonhq/cordon/sharing/alliance"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/watchers/btc"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/follow"
	"github.com/cordonhq/cordon/watchers/rpcpool"
)

// pipeline is the running system of `cordon run` and `cordon dev`: the
// Kafka producer and one watcher per configured chain network.
type pipeline struct {
	producer *kafka.Producer
	watchers []*watcher
	loader   *chLoader // nil without clickhouse.addrs
	topicsOK atomic.Bool
	// kafkaReady is closed once the topics exist.
	kafkaReady chan struct{}
	log        *slog.Logger
}

type watcher struct {
	name   string
	chain  chain.Chain
	health func(context.Context) error // the endpoint pool's health checks
	close  func()
	// follower is nil on an instance that does not run the watcher role:
	// the source is there for crediting's confirmations (nodes).
	follower *follow.Follower
	nodes    credit.Source
}

func newPipeline(ctx context.Context, cfg config.Config, reg prometheus.Registerer, log *slog.Logger) (*pipeline, error) {
	prod, err := kafka.New(cfg.Kafka, kafka.NewMetrics(reg), log.With("component", "kafka"))
	if err != nil {
		return nil, err
	}
	p := &pipeline{producer: prod, log: log, kafkaReady: make(chan struct{})}
	if len(cfg.ClickHouse.Addrs) > 0 && cfg.Runs(config.RoleLoader) {
		p.loader = newCHLoader(cfg, prod, clickhouse.NewLoaderMetrics(reg), log.With("component", "clickhouse"))
	}
	fm := follow.NewMetrics(reg)
	rm := rpcpool.NewMetrics(reg)
	em := eth.NewMetrics(reg, rm)
	// The sources serve the watchers and crediting's confirmations.
	watch := cfg.Runs(config.RoleWatcher)
	if !watch && !cfg.Runs(config.RoleCredit) {
		return p, nil
	}
	for _, e := range cfg.Chains.ETH {
		src, err := eth.NewSource(ctx, e.Config, em, log.With("component", "eth-rpc"))
		if err != nil {
			p.close()
			return nil, fmt.Errorf("chains.eth %s: %w", e.Config.Network, err)
		}
		src.Pool().SetAlerter(prod) // endpoints disagreeing on a block
		w := &watcher{name: chain.StreamKey(chain.ETH, e.Config.Network), chain: chain.ETH, health: src.Pool().Run, close: src.Close, nodes: src}
		if watch {
			w.follower = follow.New(e.Follow, src, prod, src.Wake(ctx), prod, fm, log.With("component", "watcher"))
		}
		p.watchers = append(p.watchers, w)
	}
	bm := btc.NewMetrics(reg, rm)
	for _, b := range cfg.Chains.BTC {
		src, err := btc.NewSource(b.Config, bm, log.With("component", "btc-rpc"))
		if err != nil {
			p.close()
			return nil, fmt.Errorf("chains.btc %s: %w", b.Config.Network, err)
		}
		src.Pool().SetAlerter(prod) // endpoints disagreeing on a block
		w := &watcher{name: chain.StreamKey(chain.BTC, b.Config.Network), chain: chain.BTC, health: src.Pool().Run, close: src.Close, nodes: src}
		if watch {
			w.follower = follow.New(b.Follow, src, prod, nil, prod, fm, log.With("component", "watcher"))
		}
		p.watchers = append(p.watchers, w)
	}
	return p, nil
}

func (p *pipeline) close() {
	for _, w := range p.watchers {
		w.close()
	}
	if err := p.producer.Close(); err != nil {
		p.log.Warn("close kafka producer", "err", err)
	}
}

// addChecks registers the readiness checks of the pipeline.
func (p *pipeline) addChecks(checks *obs.Checks) {
	checks.Add("kafka", func() error {
		if !p.topicsOK.Load() {
			return errors.New("topics not yet created or verified")
		}
		return nil
	})
	if p.loader != nil {
		checks.Add("clickhouse", p.loader.ready)
	}
	for _, w := range p.watchers {
		if w.follower == nil {
			continue
		}
		checks.Add(w.name, func() error {
			st := w.follower.Status()
			if !st.Loaded {
				return errors.New("checkpoint not loaded from Kafka yet")
			}
			if st.LastError != "" {
				return errors.New(st.LastError)
			}
			return nil
		})
	}
}

// start runs every component in g.
func (p *pipeline) start(ctx context.Context, g *errgroup.Group) {
	ready := p.kafkaReady
	g.Go(func() error {
		err := retry.Do(ctx, retry.Policy{Initial: time.Second, Max: 10 * time.Second}, p.log, "kafka not ready", p.producer.EnsureTopics)
		if err != nil {
			return err
		}
		p.topicsOK.Store(true)
		close(ready)
		return nil
	})
	if p.loader != nil {
		g.Go(func() error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-ready:
			}
			return p.loader.run(ctx)
		})
	}
	for _, w := range p.watchers {
		g.Go(func() error { return w.health(ctx) })
		if w.follower == nil {
			continue
		}
		g.Go(func() error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-ready:
			}
			if err := w.follower.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("watcher %s: %w", w.name, err)
			}
			return nil
		})
	}
}

// component is a long-running part of the system.
type component interface {
	Run(ctx context.Context) error
}

// system is what `cordon run` and `cordon dev` start: cordon's HTTP server
// (health, readiness, metrics), the pipeline, and beside it the indicator
// store, the address registry, the crediting leader (role credit), and (role api, with api.listen)
// the deposits view and the API, sharing one registry.
type system struct {
	srv        *obs.Server
	p          *pipeline
	indicators *indicatorStore
	addresses  *addressRegistry
	credit     *crediting
	detect     *detecting   // nil without the detect role
	api        *apiServer   // nil without api.listen
	gate       *gating      // nil without the gate role
	sharing    *sharingSvc  // nil without the share role
	dispatch   *dispatching // nil without the gate role and hot wallets
	// components run beside the pipeline.
	components []component
}

func newSystem(ctx context.Context, cfg config.Config, log *slog.Logger) (*system, error) {
	reg := obs.NewRegistry()
	checks := &obs.Checks{}
	var signs []recordauth.Role
	if cfg.Runs(config.RoleCredit) {
		signs = append(signs, recordauth.Credit)
	}
	if cfg.API.Listen != "" && cfg.Runs(config.RoleAPI) {
		signs = append(signs, recordauth.API)
	}
	if cfg.Runs(config.RoleGate) {
		signs = append(signs, recordauth.Gate)
	}
	if cfg.Runs(config.RoleShare) {
		signs = append(signs, recordauth.Intel)
	}
	if cfg.Runs(config.RoleDetect) {
		signs = append(signs, recordauth.Detect)
	}
	if err := requireAuth(cfg.Kafka, "cordon run (roles "+strings.Join(cfg.Roles, ", ")+")", signs...); err != nil {
		return nil, err
	}
	refused := newRefusals(reg, log.With("component", "record-auth"))
	cfg.Kafka.Refused = refused.report
	srv, err := obs.Listen(cfg.HTTP.Listen, reg, checks, log)
	if err != nil {
		return nil, err
	}
	p, err := newPipeline(ctx, cfg, reg, log)
	if err != nil {
		return nil, err
	}
	refused.alerter.Store(p.producer)
	p.addChecks(checks)
	kc := cfg.Kafka
	ilog := log.With("component", "intel")
	s := &system{srv: srv, p: p}
	if !cfg.Runs(config.RoleCredit) && !cfg.Runs(config.RoleAPI) && !cfg.Runs(config.RoleDetect) {
		return s, nil // a watcher or loader reads no indicators and no registry
	}
	if s.indicators, err = newIndicatorStore(kc, p.kafkaReady, reg, ilog); err != nil {
		p.close()
		return nil, err
	}
	if k := cfg.Sharing.AllianceKeyBytes(); k != nil {
		// The privacy mode: partners' hashed listings match here too.
		s.indicators.store.Index.SetPrivacyKey(k)
	}
	s.addresses = &addressRegistry{store: registry.NewStore(p.producer), ready: p.kafkaReady, log: ilog}
	s.components = []component{s.indicators, s.addresses}
	checks.Add("intel", s.indicators.check)
	checks.Add("addresses", s.addresses.check)
	if cfg.Runs(config.RoleCredit) {
		s.credit = &crediting{cfg: cfg, indicators: s.indicators.store, registry: s.addresses.store, metrics: credit.NewMetrics(reg),
			nodes: p.nodes(), ready: p.kafkaReady, log: log.With("component", "credit")}
		s.components = append(s.components, s.credit)
	}
	if cfg.Runs(config.RoleDetect) {
		s.detect = &detecting{cfg: cfg, indicators: s.indicators.store, registry: s.addresses.store, metrics: live.NewMetrics(reg),
			ready: p.kafkaReady, log: log.With("component", "detect")}
		s.components = append(s.components, s.detect)
		if len(cfg.Detect.Notify.Webhooks) > 0 {
			s.components = append(s.components, newNotifying(cfg, p.producer, reg, p.kafkaReady, log.With("component", "notify")))
		}
	}
	if cfg.API.Listen != "" && cfg.Runs(config.RoleAPI) {
		view := &depositsView{view: credit.NewView(kc), ready: p.kafkaReady, log: ilog}
		var gapi *gate.API
		if cfg.Runs(config.RoleGate) {
			var g *gating
			if g, gapi, err = newGating(cfg, s.indicators.store, s.addresses.store, reg, p.kafkaReady, log.With("component", "gate")); err != nil {
				s.close()
				return nil, err
			}
			s.gate = g
			s.components = append(s.components, g)
			if len(cfg.Dispatch.Wallets.BTC)+len(cfg.Dispatch.Wallets.ETH) > 0 {
				s.dispatch = newDispatching(cfg, g, p.producer, s.addresses.store, reg, log.With("component", "dispatch"))
				s.components = append(s.components, s.dispatch)
			}
		}
		var sapi *alliance.API
		if cfg.Runs(config.RoleShare) {
			if s.sharing, sapi, err = newSharing(cfg, s.indicators.topic, s.indicators.store.Index, reg, p.kafkaReady, log.With("component", "sharing")); err != nil {
				s.close()
				return nil, err
			}
			s.components = append(s.components, s.sharing)
		}
		if s.api, err = newAPIServer(cfg.API, p.producer, s.indicators.store, s.addresses.store, view.view, gapi, sapi, reg, log.With("component", "api")); err != nil {
			s.close()
			return nil, err
		}
		s.components = append(s.components, view, s.api)
	}
	return s, nil
}

// start runs the server, the pipeline and the components in g.
func (s *system) start(ctx context.Context, g *errgroup.Group) {
	g.Go(func() error { return s.srv.Run(ctx) })
	s.p.start(ctx, g)
	for _, c := range s.components {
		g.Go(func() error { return c.Run(ctx) })
	}
}

func (s *system) close() {
	s.p.close()
	if s.indicators != nil {
		s.indicators.close()
	}
}

// nodes are the pipeline's sources for crediting's confirmations.
func (p *pipeline) nodes() credit.Sources {
	n := credit.Sources{}
	for _, w := range p.watchers {
		n[w.name] = w.nodes
	}
	return n
}

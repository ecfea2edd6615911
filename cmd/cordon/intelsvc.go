package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/retry"
	"github.com/cordonhq/cordon/registry"
	"github.com/cordonhq/cordon/sharing/alliance"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/policy"
)

// The components below are what each instance runs beside the pipeline:
// each has Run(ctx) error, and newSystem composes them. Those that read
// Kafka start once the pipeline has created or verified the topics
// (ready), and keep going through failures, restarted by retry.Forever.

// waitReady waits for ready; false means ctx ended first.
func waitReady(ctx context.Context, ready <-chan struct{}) bool {
	select {
	case <-ctx.Done():
		return false
	case <-ready:
		return true
	}
}

// indicatorStore keeps this instance's indicator store equal to the
// cordon.intel topic.
type indicatorStore struct {
	topic *intel.Topic
	store *intel.Store
	ready <-chan struct{}
	log   *slog.Logger
}

func newIndicatorStore(kc kafka.Config, ready <-chan struct{}, reg prometheus.Registerer, log *slog.Logger) (*indicatorStore, error) {
	t, err := intel.OpenTopic(kc)
	if err != nil {
		return nil, err
	}
	if err := t.Instrument(log, reg); err != nil {
		return nil, err
	}
	return &indicatorStore{topic: t, store: intel.NewStore(t), ready: ready, log: log}, nil
}

func (c *indicatorStore) Run(ctx context.Context) error {
	if !waitReady(ctx, c.ready) {
		return nil
	}
	return retry.Forever(ctx, restartPolicy, c.log, "indicator store: reading the intel topic failed", func(ctx context.Context) error {
		if err := c.topic.Ensure(ctx); err != nil {
			return err
		}
		return c.store.Run(ctx)
	})
}

func (c *indicatorStore) check() error {
	if !c.store.Ready() {
		return errors.New("indicator store not caught up with the topic yet")
	}
	return nil
}

func (c *indicatorStore) close() { c.topic.Close() }

// addressRegistry keeps this instance's copy of the address registry
// (cordon.addresses).
type addressRegistry struct {
	store *registry.Store
	ready <-chan struct{}
	log   *slog.Logger
}

func (c *addressRegistry) Run(ctx context.Context) error {
	if !waitReady(ctx, c.ready) {
		return nil
	}
	return retry.Forever(ctx, restartPolicy, c.log, "address registry: reading its topic failed", c.store.Run)
}

func (c *addressRegistry) check() error {
	if !c.store.Ready() {
		return errors.New("address registry not read from its topic yet")
	}
	return nil
}

// crediting runs the crediting service while this instance leads
// (credit.Lead): one instance credits, the others stand by.
type crediting struct {
	cfg        config.Config
	indicators *intel.Store
	registry   *registry.Store
	metrics    *credit.Metrics
	// nodes confirm each deposit's block with its chain's endpoints.
	nodes credit.Nodes
	// svc is the running service (nil while standing by).
	svc   atomic.Pointer[credit.Service]
	ready <-chan struct{}
	log   *slog.Logger
}

// Run runs the crediting service once the registry and the indicator
// store have caught up (a deposit must not be decided on a partial
// registry or unscreened).
func (c *crediting) Run(ctx context.Context) error {
	if !waitReady(ctx, c.ready) {
		return nil
	}
	for !c.indicators.Ready() || !c.registry.Ready() {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	policy, tokens, err := credit.Policies(c.cfg.Credit)
	if err != nil {
		return err
	}
	var resolver credit.SenderResolver
	if ch := c.cfg.ClickHouse; len(ch.Addrs) > 0 {
		st, err := clickhouse.Open(ctx, ch.Config)
		if err != nil {
			c.log.Warn("credit: no ClickHouse for Bitcoin senders; such deposits are held as sender unknown", "err", err)
		} else {
			defer func() { _ = st.Close() }()
			resolver = credit.ClickHouseResolver{Store: st}
		}
	}
	kc := c.cfg.Kafka
	// One instance of the cluster credits: the leader of a Kafka consumer
	// group; the others stand by and take over when it goes.
	err = kafka.Lead(ctx, kafka.LeaderConfig{Kafka: kc, Group: kafka.GroupCreditLeader, Topic: kc.Topics.CreditLeader(),
		Log: c.log}, func(ctx context.Context) error {
		svc, err := credit.NewService(credit.ServiceConfig{Kafka: kc, Policy: policy, Tokens: tokens,
			Registry: c.registry.Index, Screen: c.indicators.Index.Hits, Resolver: resolver, Log: c.log, Metrics: c.metrics,
			Retain: c.cfg.Credit.RetainBlocks, Operators: operatorNames(c.cfg.API.Operators), Nodes: c.nodes})
		if err != nil {
			return err
		}
		c.svc.Store(svc)
		defer c.svc.Store(nil)
		return svc.Run(ctx)
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// depositsView follows cordon.deposits for GET /v1/deposits.
type depositsView struct {
	view  *credit.View
	ready <-chan struct{}
	log   *slog.Logger
}

func (c *depositsView) Run(ctx context.Context) error {
	if !waitReady(ctx, c.ready) {
		return nil
	}
	return retry.Forever(ctx, restartPolicy, c.log, "deposits view: reading cordon.deposits failed", c.view.Run)
}

// apiServer is cordon's authenticated HTTP API: screening, addresses,
// operators' decisions and deposits.
type apiServer struct {
	srv               *http.Server
	ln                net.Listener
	certFile, keyFile string
}

// newAPIServer listens on a.Listen (so the address is known before Run).
// One apiauth.Auth checks every handler's tokens and scopes; refusals and
// operators' changes of registered addresses are alerted on cordon.alerts.
func newAPIServer(a config.API, prod *kafka.Producer, indicators *intel.Store, addresses *registry.Store, deposits *credit.View,
	gapi *gate.API, sapi *alliance.API, reg prometheus.Registerer, log *slog.Logger) (*apiServer, error) {
	auth, err := apiauth.New(a.Tokens, a.Operators, apiauth.Options{Registerer: reg, Log: log, Alerter: prod})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(intel.Endpoint, intel.NewScreenHandler(a.APIConfig, auth, indicators, reg))
	mux.Handle(registry.Endpoint, registry.NewAddressesHandler(registry.AddressesAPI{Auth: auth, Registry: addresses, Alert: prod,
		MaxBody: a.MaxBodyBytes, MaxBatch: a.MaxBatch, Log: log,
		Publish: func(ctx context.Context, entries []registry.Entry) error { return registry.Publish(ctx, prod, entries) }}))
	mux.Handle(credit.DecisionsEndpoint, credit.NewDecisionsHandler(auth, a.MaxBodyBytes, deposits,
		func(ctx context.Context, d credit.Decision) error { return credit.PublishDecision(ctx, prod, d) }, nil))
	mux.Handle(credit.DepositsEndpoint, credit.NewDepositsHandler(auth, a.MaxBatch, deposits))
	mux.Handle(gate.PricesEndpoint, gate.PricesHandler(auth, func(ctx context.Context, ps []policy.PriceUpdate) error {
		recs := make([]kafka.KeyValue, len(ps))
		for i := range ps {
			v, err := json.Marshal(&ps[i])
			if err != nil {
				return err
			}
			recs[i] = kafka.KeyValue{Key: gate.PriceKey(&ps[i]), Value: v}
		}
		return prod.PublishKeyed(ctx, prod.Topics().Prices, "price", recs)
	}, nil))
	if gapi != nil {
		gapi.Auth = auth
		gapi.Handle(mux)
	}
	if sapi != nil {
		sapi.Auth = auth
		sapi.Handle(mux)
	}
	s := &apiServer{certFile: a.CertFile, keyFile: a.KeyFile,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}}
	var lc net.ListenConfig
	if s.ln, err = lc.Listen(context.Background(), "tcp", a.Listen); err != nil {
		return nil, fmt.Errorf("api.listen %s: %w", a.Listen, err)
	}
	return s, nil
}

// addr is the API's listening address ("" without the API).
func (s *apiServer) addr() string {
	if s == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run serves until ctx ends, then shuts down gracefully.
func (s *apiServer) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if s.certFile != "" {
			err = s.srv.ServeTLS(s.ln, s.certFile, s.keyFile)
		} else {
			err = s.srv.Serve(s.ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("api: %w", err)
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return s.srv.Shutdown(sctx)
	})
	return g.Wait()
}

// operatorNames are the names of the configured operators.
func operatorNames(ops []config.Operator) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = o.Name
	}
	return out
}

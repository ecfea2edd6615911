package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/obs"
	"github.com/cordonhq/cordon/registry"
)

// intelService keeps the indicator store of this instance equal to the
// cordon.intel topic and serves the screening API.
type intelService struct {
	cfg   config.Config
	topic *intel.Topic
	store *intel.Store
	// addrs is the address registry (cordon.addresses).
	addrs *registry.Store
	// credit turns deposits into credit decisions (nil until it runs).
	credit        atomic.Pointer[credit.Service]
	creditMetrics *credit.Metrics
	// deposits is the open deposits, for GET /v1/deposits (nil without
	// the API).
	deposits *credit.View
	prod     *kafka.Producer
	api      *http.Server
	ln       net.Listener
	log      *slog.Logger
	root     *slog.Logger // the process's logger, without this component
}

func newIntelService(cfg config.Config, prod *kafka.Producer, reg prometheus.Registerer, log *slog.Logger) (*intelService, error) {
	t, err := intel.OpenTopic(kafkaConfig(cfg.Kafka))
	if err != nil {
		return nil, err
	}
	s := &intelService{cfg: cfg, topic: t, store: intel.NewStore(t), addrs: registry.NewStore(prod), prod: prod,
		log: log.With("component", "intel"), root: log,
		creditMetrics: credit.NewMetrics(reg)}
	if a := cfg.API; a.Listen != "" {
		tokens := make([]string, len(a.Tokens))
		for i, tok := range a.Tokens {
			tokens[i] = tok.Value()
		}
		mux := http.NewServeMux()
		mux.Handle("/v1/screen", intel.NewScreenHandler(intel.APIConfig{Tokens: tokens, MaxBodyBytes: a.MaxBodyBytes, MaxBatch: a.MaxBatch}, s.store, reg))
		mux.Handle("/v1/addresses", registry.NewAddressesHandler(tokens, a.MaxBodyBytes, a.MaxBatch,
			func(ctx context.Context, entries []registry.Entry) error { return registry.Publish(ctx, prod, entries) }))
		operators := map[string]string{}
		for _, o := range a.Operators {
			operators[o.Name] = o.Token.Value()
		}
		mux.Handle("/v1/decisions", credit.NewDecisionsHandler(operators, tokens, a.MaxBodyBytes,
			func(ctx context.Context, d credit.Decision) error { return credit.PublishDecision(ctx, prod, d) }, nil))
		s.deposits = credit.NewView(kafkaConfig(cfg.Kafka))
		mux.Handle("/v1/deposits", credit.NewDepositsHandler(tokens, operators, a.MaxBatch, s.deposits))
		s.api = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
		var lc net.ListenConfig
		if s.ln, err = lc.Listen(context.Background(), "tcp", a.Listen); err != nil {
			t.Close()
			return nil, fmt.Errorf("api.listen %s: %w", a.Listen, err)
		}
	}
	return s, nil
}

// apiAddr is the API's listening address ("" without the API).
func (s *intelService) apiAddr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

func (s *intelService) addChecks(checks *obs.Checks) {
	checks.Add("intel", func() error {
		if !s.store.Ready() {
			return errors.New("indicator store not caught up with the topic yet")
		}
		return nil
	})
	checks.Add("addresses", func() error {
		if !s.addrs.Ready() {
			return errors.New("address registry not read from its topic yet")
		}
		return nil
	})
}

// start runs the store (once Kafka is ready) and the API in g.
func (s *intelService) start(ctx context.Context, g *errgroup.Group, kafkaReady <-chan struct{}) {
	g.Go(func() error {
		select {
		case <-ctx.Done():
			return nil
		case <-kafkaReady:
		}
		for attempt := 0; ; attempt++ {
			err := s.topic.Ensure(ctx)
			if err == nil {
				err = s.store.Run(ctx)
			}
			if ctx.Err() != nil {
				return nil //nolint:nilerr // stopping: the read ended because ctx did
			}
			wait := min(time.Duration(attempt+1)*time.Second, 15*time.Second)
			s.log.Warn("indicator store: reading the intel topic failed; retrying", "err", err, "retry_in", wait)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
	})
	g.Go(func() error {
		select {
		case <-ctx.Done():
			return nil
		case <-kafkaReady:
		}
		for attempt := 0; ; attempt++ {
			err := s.addrs.Run(ctx)
			if ctx.Err() != nil {
				return nil //nolint:nilerr // stopping
			}
			wait := min(time.Duration(attempt+1)*time.Second, 15*time.Second)
			s.log.Warn("address registry: reading its topic failed; retrying", "err", err, "retry_in", wait)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
	})
	g.Go(func() error { return s.runCredit(ctx, kafkaReady) })
	if s.deposits != nil {
		g.Go(func() error {
			select {
			case <-ctx.Done():
				return nil
			case <-kafkaReady:
			}
			for ctx.Err() == nil {
				if err := s.deposits.Run(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("deposits view: reading cordon.deposits failed; retrying", "err", err)
					select {
					case <-ctx.Done():
					case <-time.After(5 * time.Second):
					}
				}
			}
			return nil
		})
	}
	if s.api == nil {
		return
	}
	g.Go(func() error {
		var err error
		if s.cfg.API.CertFile != "" {
			err = s.api.ServeTLS(s.ln, s.cfg.API.CertFile, s.cfg.API.KeyFile)
		} else {
			err = s.api.Serve(s.ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("api: %w", err)
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return s.api.Shutdown(sctx)
	})
}

func (s *intelService) close() { s.topic.Close() }

// runCredit runs the crediting service once the registry and the
// indicator store have caught up (a deposit must not be decided on a
// partial registry or unscreened), while this instance leads (credit.Lead):
// one instance credits, the others stand by.
func (s *intelService) runCredit(ctx context.Context, kafkaReady <-chan struct{}) error {
	select {
	case <-ctx.Done():
		return nil
	case <-kafkaReady:
	}
	for !s.store.Ready() || !s.addrs.Ready() {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	policy, tokens, err := credit.Policies(s.cfg.Credit)
	if err != nil {
		return err
	}
	var resolver credit.SenderResolver
	if ch := s.cfg.ClickHouse; len(ch.Addrs) > 0 {
		st, err := clickhouse.Open(ctx, clickhouse.Config{Addrs: ch.Addrs, Database: ch.Database, Username: ch.Username, Password: ch.Password.Value()})
		if err != nil {
			s.log.Warn("credit: no ClickHouse for Bitcoin senders; such deposits are held as sender unknown", "err", err)
		} else {
			defer func() { _ = st.Close() }()
			resolver = credit.ClickHouseResolver{Store: st}
		}
	}
	screen := s.store.Index.Hits
	kc := kafkaConfig(s.cfg.Kafka)
	log := s.root.With("component", "credit")
	// One instance of the cluster credits: the leader of a Kafka consumer
	// group; the others stand by and take over when it goes.
	err = kafka.Lead(ctx, kafka.LeaderConfig{Kafka: kc, Group: "cordon-credit-leader", Topic: kc.Topics.CreditLeader(),
		Log: log}, func(ctx context.Context) error {
		svc, err := credit.NewService(credit.ServiceConfig{Kafka: kc, Policy: policy, Tokens: tokens,
			Registry: s.addrs.Index, Screen: screen, Resolver: resolver, Log: log, Metrics: s.creditMetrics,
			Retain: s.cfg.Credit.RetainBlocks})
		if err != nil {
			return err
		}
		s.credit.Store(svc)
		defer s.credit.Store(nil)
		return svc.Run(ctx)
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

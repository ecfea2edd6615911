package main

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/internal/retry"
	"github.com/cordonhq/cordon/sharing/alliance"
	"github.com/cordonhq/cordon/sharing/partner"
	"github.com/cordonhq/cordon/sharing/taxii"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/intent"
)

// sharingSvc runs partner sharing: the TAXII server on its own
// listener (mutual TLS), the pulls from each partner, and the service
// behind the operators' /v1/share endpoints.
type sharingSvc struct {
	cfg      alliance.Config
	kc       kafka.Config
	intel    *intel.Topic
	index    *intel.Index
	registry *partner.Registry
	store    *taxii.Store
	self     alliance.Self
	cert     tls.Certificate
	peers    []alliance.Peer
	ln       net.Listener
	metrics  *alliance.Metrics
	svc      atomic.Pointer[alliance.Service]
	ready    <-chan struct{}
	log      *slog.Logger
}

// newSharing reads the partners and our certificate and listens on
// sharing.listen (so the address is known before Run).
func newSharing(cfg config.Config, it *intel.Topic, index *intel.Index, reg prometheus.Registerer, ready <-chan struct{}, log *slog.Logger) (*sharingSvc, *alliance.API, error) {
	sc := cfg.Sharing
	if cfg.RecordAuth.Keys.Intel.Value() == "" {
		return nil, nil, errors.New("sharing writes partners' indicators to the indicator topic, signed with record_auth.keys.intel, which is not set (cordon keys generate --role intel)")
	}
	key, err := sc.Key()
	if err != nil {
		return nil, nil, fmt.Errorf("sharing.signing_key: %w", err)
	}
	r, err := partner.New(sc.Partners, partner.Options{AllowHTTP: sc.AllowHTTP})
	if err != nil {
		return nil, nil, fmt.Errorf("sharing: %w", err)
	}
	if err := r.AddSelf(sc.Identity, key.Public().(ed25519.PublicKey)); err != nil {
		return nil, nil, fmt.Errorf("sharing: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(sc.CertFile, sc.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("sharing.cert_file: %w", err)
	}
	s := &sharingSvc{cfg: sc, kc: cfg.Kafka, intel: it, index: index, registry: r, cert: cert, metrics: alliance.NewMetrics(reg), ready: ready, log: log,
		store: taxii.NewStore(clock.Real{}, alliance.Collection, alliance.Inbox, alliance.Hashed),
		self:  alliance.Self{Name: sc.Name, Identity: sc.Identity, Key: key}}
	for _, name := range r.Names() {
		p, _ := r.Partner(name)
		if p.URL == "" {
			continue
		}
		tc, err := r.ClientTLS(name, cert)
		if err != nil {
			return nil, nil, fmt.Errorf("sharing: partner %s: %w", name, err)
		}
		c, err := taxii.NewClient(taxii.ClientConfig{APIRoot: p.URL, AllowHTTP: sc.AllowHTTP, UserAgent: "cordon/" + sc.Name,
			HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4,
				IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second}}})
		if err != nil {
			return nil, nil, fmt.Errorf("sharing.partners %s: %w", name, err)
		}
		caller := taxii.Caller{Name: name}
		s.peers = append(s.peers, alliance.Peer{Name: name, Client: c, Pull: p.Pull, Push: p.Push, Sightings: p.Sightings,
			Entitled: func(alias string, rec *taxii.Record) bool { return r.MayReceive(caller, alias, rec) }})
	}
	var lc net.ListenConfig
	if s.ln, err = lc.Listen(context.Background(), "tcp", sc.Listen); err != nil {
		return nil, nil, fmt.Errorf("sharing.listen %s: %w", sc.Listen, err)
	}
	api := &alliance.API{Service: s.svc.Load, Peers: s.peers, Partners: r.Names(), Log: log}
	return s, api, nil
}

// addr is the TAXII listener's address.
func (s *sharingSvc) addr() string { return s.ln.Addr().String() }

// cursorKey keys the paging cursors: sharing.cursor_key, or an HMAC of
// the signing key.
func (s *sharingSvc) cursorKey() []byte {
	if k := s.cfg.CursorKey.Value(); k != "" {
		return []byte(k)
	}
	m := hmac.New(sha256.New, s.self.Key.Seed())
	m.Write([]byte("cordon taxii cursor key"))
	return m.Sum(nil)
}

// Run opens the service once Kafka is ready, then serves partners and
// pulls from them until ctx ends.
func (s *sharingSvc) Run(ctx context.Context) error {
	defer func() { _ = s.ln.Close() }()
	if !waitReady(ctx, s.ready) {
		return nil
	}
	var svc *alliance.Service
	err := retry.Do(ctx, restartPolicy, s.log, "sharing: opening its state failed", func(ctx context.Context) error {
		var err error
		svc, err = alliance.Open(ctx, alliance.ServiceConfig{Self: s.self, Partners: s.registry, Kafka: s.kc, Intel: s.intel, Store: s.store,
			Log: s.log, Metrics: s.metrics, AllianceKey: s.cfg.AllianceKeyBytes()})
		return err
	})
	if err != nil || svc == nil {
		return nil
	}
	defer svc.Close()
	s.svc.Store(svc)
	defer s.svc.Store(nil)
	srv, err := taxii.NewServer(taxii.ServerConfig{Title: "cordon " + s.cfg.Name, Description: "partner sharing of " + s.cfg.Name,
		APIRoot: s.cfg.APIRoot, Store: s.store, Access: s.registry, Intake: svc, CursorKey: s.cursorKey(), Log: s.log,
		Collections: []taxii.CollectionInfo{
			{Alias: alliance.Collection, Title: "indicators of " + s.cfg.Name, Description: "our signed listings: read, and long-poll"},
			{Alias: alliance.Inbox, Title: "inbox of " + s.cfg.Name, Description: "partners' urgent listings, revocations and sightings: write only"},
			{Alias: alliance.Hashed, Title: "hashed listings of " + s.cfg.Name, Description: "the privacy mode: keyed hashes of addresses tied to customers"}}})
	if err != nil {
		return fmt.Errorf("sharing: %w", err)
	}
	hs := &http.Server{Handler: srv, TLSConfig: s.registry.ServerTLS(s.cert), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: log.New(slogWriter{s.log}, "", 0)}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := hs.ServeTLS(s.ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("sharing: taxii server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hs.Shutdown(sctx)
	})
	for _, p := range s.peers {
		for _, col := range p.Pull {
			g.Go(func() error {
				return retry.Forever(gctx, restartPolicy, s.log.With("partner", p.Name, "collection", col), "sharing: pull failed", func(ctx context.Context) error {
					return svc.Pull(ctx, p, col, alliance.PullOptions{Page: s.cfg.PullPage, Wait: s.cfg.PullWait})
				})
			})
		}
	}
	g.Go(func() error { return svc.RetrySightings(gctx, s.peers, 30*time.Second) })
	g.Go(func() error {
		return retry.Forever(gctx, restartPolicy, s.log, "sharing: following cordon.withdrawals for sightings failed", func(ctx context.Context) error {
			return s.sightWithdrawals(ctx, svc)
		})
	})
	g.Go(func() error {
		return retry.Forever(gctx, restartPolicy, s.log, "sharing: following cordon.deposits for sightings failed", func(ctx context.Context) error {
			return s.sightDeposits(ctx, svc)
		})
	})
	s.log.Info("sharing: serving partners", "taxii", "https://"+s.addr()+"/"+s.cfg.APIRoot+"/", "partners", len(s.registry.Names()), "pulling", len(s.peers))
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// slogWriter logs the TLS server's own messages (refused handshakes:
// unknown certificates) at warn.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.log.Warn("sharing: taxii server", "msg", string(b))
	return len(b), nil
}

// sightDeposits follows cordon.deposits and reports each held deposit
// that a partner's indicator matched back to that partner (a sighting,
// once per deposit and indicator, to partners configured for it).
func (s *sharingSvc) sightDeposits(ctx context.Context, svc *alliance.Service) error {
	kc := s.kc
	kc.Topics.Fill()
	return kafka.ReadLog(ctx, kc, kc.Topics.Deposits, kafka.LogOptions{Follow: true, ClientID: "sharing-sightings"}, func(r *kafka.Record) error {
		var ev credit.DepositEvent
		if err := json.Unmarshal(r.Value, &ev); err != nil || ev.Status != credit.StatusHeld {
			return nil //nolint:nilerr // a record crediting's readers refuse is no sighting
		}
		for _, h := range ev.Indicators {
			if !strings.HasPrefix(h.Indicator, "partner:") {
				continue
			}
			// No transaction: it would tie our customer's deposit address
			// to this exchange.
			where := fmt.Sprintf("a deposit to %s from the listed address, held: %s/%s", s.self.Name, ev.Chain, ev.Network)
			if err := svc.Sight(ctx, s.peers, h.Indicator, "deposit", ev.ID, where, time.Now()); err != nil && !errors.Is(err, alliance.ErrNoSighting) {
				s.log.Warn("sharing: sighting", "deposit", ev.ID, "indicator", h.Indicator, "err", err)
			}
		}
		return nil
	})
}

// sightWithdrawals follows cordon.withdrawals and reports each
// withdrawal the gate found flagged by a partner's indicator back to that
// partner (the destination screened again here names the indicators).
func (s *sharingSvc) sightWithdrawals(ctx context.Context, svc *alliance.Service) error {
	kc := s.kc
	kc.Topics.Fill()
	return kafka.ReadLog(ctx, kc, kc.Topics.Withdrawals, kafka.LogOptions{Follow: true, ClientID: "sharing-sightings-withdrawals"}, func(r *kafka.Record) error {
		var ev gate.Event
		if err := json.Unmarshal(r.Value, &ev); err != nil || !slices.Contains(ev.Findings, intent.FlaggedDestination) {
			return nil //nolint:nilerr // not a flagged withdrawal
		}
		for _, h := range s.index.Hits(chain.Chain(ev.Chain), ev.Network, ev.Destination) {
			if !strings.HasPrefix(h.Indicator, "partner:") {
				continue
			}
			where := fmt.Sprintf("a withdrawal from %s to the listed address, %s: %s/%s", s.self.Name, ev.Status, ev.Chain, ev.Network)
			// The withdrawal's own time: one made before we took the
			// partner's indicator (screened again here with today's
			// index) is not reported.
			seen := ev.Time
			if seen.IsZero() {
				seen = time.Now()
			}
			if err := svc.Sight(ctx, s.peers, h.Indicator, "withdrawal", ev.ID, where, seen); err != nil && !errors.Is(err, alliance.ErrNoSighting) {
				s.log.Warn("sharing: sighting", "withdrawal", ev.ID, "indicator", h.Indicator, "err", err)
			}
		}
		return nil
	})
}

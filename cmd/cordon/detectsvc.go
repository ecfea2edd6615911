package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/detect/contain"
	"github.com/cordonhq/cordon/detect/live"
	"github.com/cordonhq/cordon/detect/notify"
	"github.com/cordonhq/cordon/detect/rules"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/registry"
	"github.com/cordonhq/cordon/sharing/alliance"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

// detecting runs detection's rules on the block stream while this
// instance leads (kafka.Lead): one instance raises the alerts, the others
// stand by and take over from its last commit.
type detecting struct {
	cfg        config.Config
	indicators *intel.Store
	registry   *registry.Store
	metrics    *live.Metrics
	// committed, when set, sees every committed round's alerts.
	committed func([]chain.Alert)
	// svc is the running service (nil while standing by).
	svc   atomic.Pointer[live.Service]
	ready <-chan struct{}
	log   *slog.Logger
}

// registryKinds gives the rules the kind of a registered address (deposit,
// hot, cold) from the address registry.
type registryKinds struct{ idx *registry.Index }

func (r registryKinds) Kind(c chain.Chain, network, addr string) (string, bool) {
	e, ok := r.idx.Lookup(c, network, addr)
	if !ok {
		return "", false
	}
	return e.Kind, true
}

// Run runs detection once the registry and the indicator store have
// caught up: rules evaluated on a partial registry would miss our own
// wallets, and on a partial indicator store flagged contact.
func (d *detecting) Run(ctx context.Context) error {
	if !waitReady(ctx, d.ready) {
		return nil
	}
	for !d.indicators.Ready() || !d.registry.Ready() {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	kc := d.cfg.Kafka
	reader, err := contractReader(d.cfg)
	if err != nil {
		return err
	}
	var contracts rules.ContractReader
	if reader != nil {
		defer reader.Close()
		contracts = reader
	}
	err = kafka.Lead(ctx, kafka.LeaderConfig{Kafka: kc, Group: kafka.GroupDetectLeader, Topic: kc.Topics.DetectLeader(),
		Log: d.log}, func(ctx context.Context) error {
		svc, err := live.NewService(live.ServiceConfig{Kafka: kc, Rules: d.cfg.Detect.Rules,
			Registry: registryKinds{d.registry.Index}, Screener: d.indicators.Index, Log: d.log, Metrics: d.metrics,
			Committed: d.committed, Contain: containment(d.cfg.Detect.Contain, d.registry), Incidents: d.cfg.Detect.Incidents, Contracts: contracts})
		if err != nil {
			return err
		}
		d.svc.Store(svc)
		defer d.svc.Store(nil)
		return svc.Run(ctx)
	})
	if ctx.Err() != nil {
		return nil //nolint:nilerr // stopping: the term ended because ctx did
	}
	return err
}

// notifying delivers the alerts to the configured webhooks (every
// instance of role detect: each webhook's consumer group shares the
// alerts topic's partitions among them).
type notifying struct {
	svc   *notify.Service
	ready <-chan struct{}
}

func newNotifying(cfg config.Config, dead notify.DeadLetters, reg prometheus.Registerer, ready <-chan struct{}, log *slog.Logger) *notifying {
	return &notifying{ready: ready, svc: notify.NewService(notify.ServiceConfig{Kafka: cfg.Kafka, Notify: cfg.Detect.Notify, Dead: dead,
		Log: log, Metrics: notify.NewMetrics(reg)})}
}

func (n *notifying) Run(ctx context.Context) error {
	if !waitReady(ctx, n.ready) {
		return nil
	}
	return n.svc.Run(ctx)
}

// detectStatus is detection's dev status line.
func detectStatus(svc *live.Service) string {
	if svc == nil {
		return "standing by"
	}
	st := svc.Stats()
	var sev strings.Builder
	for _, s := range []string{rules.SeverityCritical, rules.SeverityHigh, rules.SeverityMedium, rules.SeverityLow} {
		if n := st.BySeverity[s]; n > 0 {
			fmt.Fprintf(&sev, "  %s %d", s, n)
		}
	}
	return fmt.Sprintf("blocks %d  wallets %d  alerts %d%s  retracted %d  contained %d (not taken %d)  incidents open %d", st.Blocks, st.Wallets, st.Alerts,
		sev.String(), st.Retracted, st.Contained, st.NotTaken, st.Incidents)
}

// devDetect turns detection on in cordon dev, with an operator's rule of
// the dev's own as an example of a custom rule: any transfer of the dev
// token of 1,000,000 DEV or more touching a registered address.
func devDetect(cfg *config.Config, treasury *devnet.ContractWallet) {
	cfg.Roles = append(cfg.Roles, config.RoleDetect)
	cfg.Detect.Rules.Outflow.MinSamples = 5
	// The dev's traffic raises high alerts (flagged contact) but seldom a
	// critical one: incidents open from high, so the dev shows them.
	cfg.Detect.Incidents.OpenAt = rules.SeverityHigh
	cfg.Detect.Rules.Custom = append(cfg.Detect.Rules.Custom, rules.CustomRule{Name: "dev-token-whale", Severity: rules.SeverityMedium,
		When:    `standard == "erc20" && at_least(amount_text, "1000000000000")`,
		Summary: "{amount_text} base units of token {asset} from {from} to {to} (dev rule)"})
	if treasury != nil {
		w := rules.ContractWallet{Name: "dev-treasury", Network: devNetwork, Address: strings.ToLower(treasury.Proxy.Hex()),
			Implementations: []string{strings.ToLower(treasury.Logic.Hex())}}
		for _, o := range treasury.Owners {
			w.Owners = append(w.Owners, strings.ToLower(o.Hex()))
		}
		cfg.Detect.Rules.ContractWallets = append(cfg.Detect.Rules.ContractWallets, w)
	}
}

// devTreasuryOwners are the devnet accounts owning the dev treasury;
// devThief is the attacker's account.
var devTreasuryOwners, devThief = []int{21, 22}, 23

// devAttack schedules the February 2025 theft on the dev treasury after
// some blocks: the attacker's contracts, an owner's delegatecall approved
// through a tampered front end (the implementation rewritten), the sweep
// to a fresh address and a peel chain of three hops.
func devAttack(tr *devnet.Traffic, w *devnet.ContractWallet, after int, log *slog.Logger) {
	steps := make([]func(context.Context) error, after)
	for i := range steps {
		steps[i] = func(context.Context) error { return nil }
	}
	steps[after-1] = func(context.Context) error {
		log.Warn("dev attack: the contract-wallet takeover starts (the thief's contracts, then an owner's delegatecall, the sweep, a peel chain)",
			"wallet", w.Proxy)
		return nil
	}
	tr.Schedule(steps...)
	tr.ScheduleAttack(w, devTreasuryOwners[0], devThief, 3)
}

// apiBreaker trips the withdrawal gate's breaker through its API (POST
// /v1/breaker with a token of scope breaker): the gate writes each trip,
// with its reason naming the alert, to its audit log.
type apiBreaker struct{ c gateClient }

func (b apiBreaker) Trip(ctx context.Context, t contain.Trip) (string, error) {
	var out gate.Trip
	err := b.c.call(ctx, http.MethodPost, gate.BreakerEndpoint, gate.TripRequest{Scope: t.Scope, Chain: t.Chain, Network: t.Network,
		Asset: t.Asset, Reason: t.Reason}, &out)
	return out.ID, refused(err)
}

// refused marks the API's refusals as contain.ErrRefused.
func refused(err error) error {
	if refusal(err) {
		return fmt.Errorf("%w: %w", contain.ErrRefused, err)
	}
	return err
}

func (b apiBreaker) Find(ctx context.Context, marker string) (string, error) {
	var out struct {
		Trips []gate.Trip `json:"trips"`
	}
	if err := b.c.call(ctx, http.MethodGet, gate.BreakerEndpoint, nil, &out); err != nil {
		return "", refused(err)
	}
	for _, t := range out.Trips {
		if strings.Contains(t.Reason, marker) {
			return t.ID, nil
		}
	}
	return "", nil
}

// apiPublisher publishes urgent listings through partner sharing's API
// (POST /v1/share/listings with a token of scope share).
type apiPublisher struct{ c gateClient }

func (p apiPublisher) PublishUrgent(ctx context.Context, l contain.Listing) ([]string, error) {
	var out alliance.ListingAnswer
	err := p.c.call(ctx, http.MethodPost, alliance.ListingsEndpoint, alliance.Listing{Chain: l.Chain, Network: l.Network, Values: l.Values,
		Category: l.Category, Confidence: l.Confidence, TLP: intel.TLP(l.TLP), Description: l.Description, Urgent: true}, &out)
	ids := make([]string, len(out.Published))
	for i, x := range out.Published {
		ids[i] = x.ID
	}
	return ids, refused(err)
}

// containment is the runner of detect.contain: the gate's and sharing's
// APIs where configured, the registry telling our addresses.
func containment(cfg contain.Config, reg *registry.Store) *contain.Runner {
	if len(cfg.Actions) == 0 {
		return nil
	}
	r := &contain.Runner{Config: cfg, Ours: func(c chain.Chain, network, addr string) bool {
		_, ok := reg.Index.Lookup(c, network, addr)
		return ok
	}}
	if cfg.Gate.Configured() {
		r.Breaker = apiBreaker{gateClient{api: strings.TrimRight(cfg.Gate.URL, "/"), token: cfg.Gate.Token.Value()}}
	}
	if cfg.Share.Configured() {
		r.Publisher = apiPublisher{gateClient{api: strings.TrimRight(cfg.Share.URL, "/"), token: cfg.Share.Token.Value()}}
	}
	return r
}

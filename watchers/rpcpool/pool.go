package rpcpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/watchers/follow"
)

// ErrWrongChain is wrapped by a health check's error when the endpoint
// serves another chain or network: such an endpoint is never used.
var ErrWrongChain = errors.New("endpoint serves another chain")

// Config tunes endpoint selection and health checks.
type Config struct {
	// Label names the pool in logs and metrics, e.g. "btc/mainnet".
	Label string
	// RequestTimeout bounds each call; a slower endpoint is failed over.
	RequestTimeout time.Duration
	// HealthInterval is the period of health checks.
	HealthInterval time.Duration
	// MaxLag marks an endpoint unhealthy when its head is this many blocks
	// behind the best endpoint.
	MaxLag uint64
	// Penalty is how long a failed endpoint is avoided.
	Penalty time.Duration
}

func (c *Config) fill() {
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.HealthInterval <= 0 {
		c.HealthInterval = 5 * time.Second
	}
	if c.MaxLag == 0 {
		c.MaxLag = 16
	}
	if c.Penalty <= 0 {
		c.Penalty = 10 * time.Second
	}
}

// EndpointError names the endpoint and method of a failed call.
type EndpointError struct {
	Endpoint string
	Method   string
	Err      error
}

func (e *EndpointError) Error() string {
	return fmt.Sprintf("endpoint %s: %s: %v", e.Endpoint, e.Method, e.Err)
}

func (e *EndpointError) Unwrap() error { return e.Err }

// Endpoint is one node endpoint of a pool, holding the chain-specific
// connection C.
type Endpoint[C any] struct {
	Name string
	Conn C
	// secret is removed from every logged error (URLs carry API keys).
	secret string

	mu         sync.Mutex
	checked    bool
	wrongChain error
	head       uint64
	latency    time.Duration
	penalUntil time.Time
	lastErr    error
}

// NewEndpoint returns an endpoint named name whose errors are logged with
// every occurrence of secret (its URL) replaced.
func NewEndpoint[C any](name, secret string, conn C) *Endpoint[C] {
	return &Endpoint[C]{Name: name, Conn: conn, secret: secret}
}

// Redact removes the endpoint's URL from an error message.
func (e *Endpoint[C]) Redact(err error) string { return Redact(err, e.secret) }

// NoteHead records a head height the endpoint reported outside a health
// check.
func (e *Endpoint[C]) NoteHead(h uint64) {
	e.mu.Lock()
	e.head = max(e.head, h)
	e.mu.Unlock()
}

// Redact removes secret (a URL that may hold an API key) from an error
// message.
func Redact(err error, secret string) string {
	if err == nil {
		return ""
	}
	if secret == "" {
		return err.Error()
	}
	return strings.ReplaceAll(err.Error(), secret, "<url>")
}

// Check asks one endpoint for its head height. An error wrapping
// ErrWrongChain excludes the endpoint until a later check passes.
type Check[C any] func(ctx context.Context, ep *Endpoint[C]) (head uint64, err error)

// Pool spreads calls over endpoints.
type Pool[C any] struct {
	cfg     Config
	eps     []*Endpoint[C]
	check   Check[C]
	log     *slog.Logger
	metrics *Metrics
}

// New returns a pool over eps.
func New[C any](cfg Config, eps []*Endpoint[C], check Check[C], metrics *Metrics, log *slog.Logger) (*Pool[C], error) {
	cfg.fill()
	if len(eps) == 0 {
		return nil, errors.New("no endpoints configured")
	}
	seen := map[string]bool{}
	for _, ep := range eps {
		if seen[ep.Name] {
			return nil, fmt.Errorf("two endpoints are named %q", ep.Name)
		}
		seen[ep.Name] = true
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Pool[C]{cfg: cfg, eps: eps, check: check, log: log, metrics: metrics}, nil
}

// Config returns the pool's configuration with defaults filled in.
func (p *Pool[C]) Config() Config { return p.cfg }

// Endpoints returns the endpoints in configuration order.
func (p *Pool[C]) Endpoints() []*Endpoint[C] { return p.eps }

// candidates orders endpoints for a call: usable ones by head (highest
// first) then latency; penalized ones last, as a final resort.
func (p *Pool[C]) candidates() []*Endpoint[C] {
	now := time.Now()
	type cand struct {
		ep        *Endpoint[C]
		penalized bool
		head      uint64
		latency   time.Duration
	}
	cs := make([]cand, 0, len(p.eps))
	for _, ep := range p.eps {
		ep.mu.Lock()
		if ep.wrongChain == nil {
			cs = append(cs, cand{ep: ep, penalized: now.Before(ep.penalUntil), head: ep.head, latency: ep.latency})
		}
		ep.mu.Unlock()
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].penalized != cs[j].penalized {
			return !cs[i].penalized
		}
		if cs[i].head != cs[j].head {
			return cs[i].head > cs[j].head
		}
		return cs[i].latency < cs[j].latency
	})
	out := make([]*Endpoint[C], len(cs))
	for i, c := range cs {
		out[i] = c.ep
	}
	return out
}

// Do runs fn on the best endpoint, failing over to the next on error, each
// attempt bounded by the request timeout. A follow.ErrNotFound moves on
// without penalizing the endpoint; when every endpoint says so, Do returns
// an error wrapping follow.ErrNotFound. An ended ctx returns its error
// before any endpoint is called.
func (p *Pool[C]) Do(ctx context.Context, method string, fn func(ctx context.Context, ep *Endpoint[C]) error) error {
	if err := ctx.Err(); err != nil {
		// The clients race a ready reply against ctx and may let either
		// win; an ended context must not send a request at all.
		return err
	}
	var errs []error
	cands := p.candidates()
	if len(cands) == 0 {
		return fmt.Errorf("%s: no usable endpoint (all serve the wrong chain)", method)
	}
	notFound := 0
	for _, ep := range cands {
		cctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
		start := time.Now()
		err := fn(cctx, ep)
		cancel()
		p.metrics.observe(p.cfg.Label, ep.Name, method, err, time.Since(start))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		errs = append(errs, &EndpointError{Endpoint: ep.Name, Method: method, Err: errors.New(ep.Redact(err))})
		if errors.Is(err, follow.ErrNotFound) {
			notFound++
			continue
		}
		p.penalize(ep, method, err)
	}
	if notFound == len(cands) {
		return fmt.Errorf("%s: %w on every endpoint", method, follow.ErrNotFound)
	}
	return fmt.Errorf("%s failed on all %d endpoints: %w", method, len(cands), errors.Join(errs...))
}

func (p *Pool[C]) penalize(ep *Endpoint[C], method string, err error) {
	ep.mu.Lock()
	ep.penalUntil = time.Now().Add(p.cfg.Penalty)
	ep.lastErr = err
	ep.mu.Unlock()
	p.metrics.healthy.WithLabelValues(p.cfg.Label, ep.Name).Set(0)
	p.log.Warn("endpoint failed; using the next one", "endpoint", ep.Name, "method", method, "err", ep.Redact(err))
}

// Run health-checks every endpoint until ctx ends.
func (p *Pool[C]) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.HealthInterval)
	defer t.Stop()
	for {
		p.CheckHealth(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// CheckHealth checks every endpoint once: chain identity, head, and lag
// behind the best endpoint.
func (p *Pool[C]) CheckHealth(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ep := range p.eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.checkOne(ctx, ep)
		}()
	}
	wg.Wait()
	var best uint64
	for _, ep := range p.eps {
		ep.mu.Lock()
		if ep.wrongChain == nil && ep.lastErr == nil {
			best = max(best, ep.head)
		}
		ep.mu.Unlock()
	}
	for _, ep := range p.eps {
		ep.mu.Lock()
		healthy := ep.wrongChain == nil && ep.lastErr == nil
		if healthy && best > ep.head && best-ep.head > p.cfg.MaxLag {
			healthy = false
			ep.penalUntil = time.Now().Add(p.cfg.HealthInterval)
			p.log.Warn("endpoint lagging; avoided until it catches up", "endpoint", ep.Name, "head", ep.head, "best_head", best)
		}
		head := ep.head
		ep.mu.Unlock()
		v := 0.0
		if healthy {
			v = 1
		}
		p.metrics.healthy.WithLabelValues(p.cfg.Label, ep.Name).Set(v)
		p.metrics.head.WithLabelValues(p.cfg.Label, ep.Name).Set(float64(head))
	}
}

func (p *Pool[C]) checkOne(ctx context.Context, ep *Endpoint[C]) {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	head, err := p.check(cctx, ep)
	cancel()
	lat := time.Since(start)
	ep.mu.Lock()
	defer ep.mu.Unlock()
	wasOK := ep.checked && ep.lastErr == nil && ep.wrongChain == nil
	ep.checked = true
	if errors.Is(err, ErrWrongChain) {
		if ep.wrongChain == nil {
			p.log.Error("endpoint serves another chain; never used", "endpoint", ep.Name, "err", ep.Redact(err))
		}
		ep.wrongChain = err
		return
	}
	ep.wrongChain = nil
	if err != nil {
		if wasOK || ep.lastErr == nil {
			p.log.Warn("endpoint health check failed", "endpoint", ep.Name, "err", ep.Redact(err))
		}
		ep.lastErr = err
		ep.penalUntil = time.Now().Add(p.cfg.HealthInterval)
		return
	}
	if !wasOK {
		p.log.Info("endpoint healthy", "endpoint", ep.Name, "head", head, "latency", lat.Round(time.Microsecond))
	}
	ep.lastErr = nil
	ep.head = head
	ep.latency = lat
	ep.penalUntil = time.Time{}
}

// Metrics are the endpoint metrics shared by every pool of a registry.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	healthy  *prometheus.GaugeVec
	head     *prometheus.GaugeVec
}

// NewMetrics registers the endpoint metrics with reg (nil: unregistered).
// Create it once per registry and share it between pools.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_rpc_requests_total",
			Help: "Node RPC calls by pool, endpoint, method and outcome (ok, not_found, error)."}, []string{"chain", "endpoint", "method", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cordon_rpc_request_seconds",
			Help: "Node RPC call latency.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"chain", "endpoint", "method"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cordon_rpc_endpoint_healthy",
			Help: "1 when the endpoint passed its last health check and is not lagging."}, []string{"chain", "endpoint"}),
		head: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cordon_rpc_endpoint_head_height",
			Help: "Head height the endpoint reported at its last health check."}, []string{"chain", "endpoint"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.healthy, m.head)
	}
	return m
}

func (m *Metrics) observe(label, ep, method string, err error, d time.Duration) {
	outcome := "ok"
	switch {
	case errors.Is(err, follow.ErrNotFound):
		outcome = "not_found"
	case err != nil:
		outcome = "error"
	}
	m.requests.WithLabelValues(label, ep, method, outcome).Inc()
	m.duration.WithLabelValues(label, ep, method).Observe(d.Seconds())
}

// Requests exposes the request counter (chain, endpoint, method, outcome),
// for tests and status displays.
func (m *Metrics) Requests() *prometheus.CounterVec { return m.requests }

package rpcpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/internal/chain"
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
	// behind the agreed head.
	MaxLag uint64
	// Penalty is how long a failed endpoint is avoided.
	Penalty time.Duration
	// Quorum is the number of endpoints that must report the same block
	// (or a head at least as high) for the pool to believe it; 0 is
	// Quorum(number of endpoints).
	Quorum int
	// Chain and Network name the pool's stream in the alerts it raises.
	Chain   chain.Chain
	Network string
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

// redactedError is an error whose message has the endpoint's URL removed;
// errors.Is and errors.As still see the error it redacts.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redact[C any](ep *Endpoint[C], err error) error {
	return &redactedError{msg: ep.Redact(err), err: err}
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
	msg := err.Error()
	for _, s := range secretParts(secret) {
		msg = strings.ReplaceAll(msg, s, "<redacted>")
	}
	return strings.ReplaceAll(msg, "<redacted>", "<url>")
}

// secretParts are the forms in which a URL's secrets may appear in an
// error: the URL itself, without its scheme, escaped, and each part that
// can carry a key (userinfo, every path segment of 8 characters or more,
// the query and its values, the fragment), longest first so that a
// shorter part never splits a longer one.
func secretParts(raw string) []string {
	parts := []string{raw, url.QueryEscape(raw), url.PathEscape(raw)}
	if u, err := url.Parse(raw); err == nil {
		if u.User != nil {
			parts = append(parts, u.User.String(), u.User.Username())
			if pw, ok := u.User.Password(); ok {
				parts = append(parts, pw)
			}
		}
		rest := strings.TrimPrefix(raw, u.Scheme+"://")
		parts = append(parts, rest, u.RawQuery, u.Fragment)
		if len(u.Path) > 1 { // the host alone is no secret
			parts = append(parts, u.Host+u.EscapedPath(), u.EscapedPath(), u.Path)
		}
		for _, seg := range strings.Split(u.Path, "/") {
			if len(seg) >= 8 {
				parts = append(parts, seg, url.PathEscape(seg))
			}
		}
		for _, vs := range u.Query() {
			for _, v := range vs {
				if len(v) >= 4 {
					parts = append(parts, v, url.QueryEscape(v))
				}
			}
		}
	}
	out := parts[:0]
	seen := map[string]bool{}
	for _, p := range parts {
		if len(p) >= 4 && p != "/" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// Check asks one endpoint for its head height. An error wrapping
// ErrWrongChain excludes the endpoint until a later check passes.
type Check[C any] func(ctx context.Context, ep *Endpoint[C]) (head uint64, err error)

// Quorum returns the default quorum for n endpoints: n/2+1 when n >= 3,
// else 1.
func Quorum(n int) int {
	if n >= 3 {
		return n/2 + 1
	}
	return 1
}

// Pool spreads calls over endpoints.
type Pool[C any] struct {
	cfg     Config
	eps     []*Endpoint[C]
	check   Check[C]
	log     *slog.Logger
	metrics *Metrics
	alerts  alerts
}

// New returns a pool over eps.
func New[C any](cfg Config, eps []*Endpoint[C], check Check[C], metrics *Metrics, log *slog.Logger) (*Pool[C], error) {
	cfg.fill()
	if len(eps) == 0 {
		return nil, errors.New("no endpoints configured")
	}
	if cfg.Quorum == 0 {
		cfg.Quorum = Quorum(len(eps))
	}
	if cfg.Quorum < 1 || cfg.Quorum > len(eps) {
		return nil, fmt.Errorf("quorum %d: want between 1 and the %d configured endpoints", cfg.Quorum, len(eps))
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
	switch {
	case cfg.Quorum == 1:
		log.Warn("a single endpoint is trusted (quorum 1): one lying or compromised endpoint can serve a fabricated chain; "+
			"configure at least three independent endpoints and a majority quorum", "endpoints", len(eps), "quorum", cfg.Quorum)
	case len(eps) < 3:
		log.Warn("fewer than three endpoints: one that fails stops the chain, and none can be outvoted; "+
			"configure at least three independent endpoints", "endpoints", len(eps), "quorum", cfg.Quorum)
	}
	return &Pool[C]{cfg: cfg, eps: eps, check: check, log: log, metrics: metrics, alerts: alerts{sent: map[string]time.Time{}}}, nil
}

// Config returns the pool's configuration with defaults filled in.
func (p *Pool[C]) Config() Config { return p.cfg }

// Endpoints returns the endpoints in configuration order.
func (p *Pool[C]) Endpoints() []*Endpoint[C] { return p.eps }

// healthyLocked reports whether an endpoint passed its last health check
// (ep.mu held).
func (ep *Endpoint[C]) healthyLocked() bool {
	return ep.checked && ep.wrongChain == nil && ep.lastErr == nil
}

// AgreedHead is the highest height that at least Quorum healthy endpoints
// report having (the Quorum-th highest head of their last health checks
// and calls); ok is false when fewer than Quorum endpoints are healthy.
func (p *Pool[C]) AgreedHead() (head uint64, ok bool) {
	heads := make([]uint64, 0, len(p.eps))
	for _, ep := range p.eps {
		ep.mu.Lock()
		if ep.healthyLocked() {
			heads = append(heads, ep.head)
		}
		ep.mu.Unlock()
	}
	return kthHighest(heads, p.cfg.Quorum)
}

// kthHighest returns the k-th highest of vs (k >= 1); ok is false when vs
// has fewer than k values.
func kthHighest(vs []uint64, k int) (uint64, bool) {
	if len(vs) < k || k < 1 {
		return 0, false
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] > vs[j] })
	return vs[k-1], true
}

// candidates orders endpoints for a call: usable ones first, those at or
// above the agreed head by latency, then those below it by head; penalized
// ones last, as a final resort. A head claimed above the agreed head earns
// nothing: with a quorum of two or more, no single endpoint can put itself
// first by claiming a higher head.
func (p *Pool[C]) candidates() []*Endpoint[C] {
	agreed, _ := p.AgreedHead()
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
			cs = append(cs, cand{ep: ep, penalized: now.Before(ep.penalUntil), head: min(ep.head, agreed), latency: ep.latency})
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
	return p.do(ctx, method, p.candidates(), fn)
}

// DoOn is Do restricted to eps (in the pool's order of preference): the
// endpoints that reported an agreed block, for fetching its body.
func (p *Pool[C]) DoOn(ctx context.Context, method string, eps []*Endpoint[C], fn func(ctx context.Context, ep *Endpoint[C]) error) error {
	in := make(map[*Endpoint[C]]bool, len(eps))
	for _, ep := range eps {
		in[ep] = true
	}
	var cands []*Endpoint[C]
	for _, ep := range p.candidates() {
		if in[ep] {
			cands = append(cands, ep)
		}
	}
	return p.do(ctx, method, cands, fn)
}

func (p *Pool[C]) do(ctx context.Context, method string, cands []*Endpoint[C], fn func(ctx context.Context, ep *Endpoint[C]) error) error {
	if err := ctx.Err(); err != nil {
		// The clients race a ready reply against ctx and may let either
		// win; an ended context must not send a request at all.
		return err
	}
	var errs []error
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
		if errors.Is(err, follow.ErrNotFound) {
			// Kept out of the error's chain: one endpoint's "not found"
			// beside another's failure is a failure, not a missing block.
			errs = append(errs, &EndpointError{Endpoint: ep.Name, Method: method, Err: errors.New(ep.Redact(err))})
			notFound++
			continue
		}
		errs = append(errs, &EndpointError{Endpoint: ep.Name, Method: method, Err: redact(ep, err)})
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
// behind the agreed head.
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
	agreed, ok := p.AgreedHead()
	if ok {
		p.metrics.agreedHead.WithLabelValues(p.cfg.Label).Set(float64(agreed))
	}
	for _, ep := range p.eps {
		ep.mu.Lock()
		healthy := ep.wrongChain == nil && ep.lastErr == nil
		if healthy && ok && agreed > ep.head && agreed-ep.head > p.cfg.MaxLag {
			healthy = false
			ep.penalUntil = time.Now().Add(p.cfg.HealthInterval)
			p.log.Warn("endpoint lagging; avoided until it catches up", "endpoint", ep.Name, "head", ep.head, "agreed_head", agreed)
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

	agreedHead    *prometheus.GaugeVec
	disagreements *prometheus.CounterVec
	notAgreed     *prometheus.CounterVec
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
		agreedHead: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cordon_rpc_agreed_head_height",
			Help: "The highest height at least a quorum of healthy endpoints report having."}, []string{"chain"}),
		disagreements: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_rpc_disagreements_total",
			Help: "Block hashes an endpoint reported that differ from another endpoint's at the same height, by the dissenting endpoint."},
			[]string{"chain", "endpoint"}),
		notAgreed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_rpc_not_agreed_total",
			Help: "Heights asked whose block hash no quorum of endpoints reported (the height waits)."}, []string{"chain"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.healthy, m.head, m.agreedHead, m.disagreements, m.notAgreed)
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

// Disagreements exposes cordon_rpc_disagreements_total (chain, endpoint).
func (m *Metrics) Disagreements() *prometheus.CounterVec { return m.disagreements }

package eth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/watchers/follow"
)

// EndpointConfig names one JSON-RPC endpoint of a chain.
type EndpointConfig struct {
	// Name labels the endpoint in logs and metrics; the URL itself is never
	// logged because providers put API keys in it.
	Name string
	URL  string
	// Headers are sent with every HTTP request (for example an API key).
	Headers map[string]string
}

// PoolConfig tunes endpoint selection and health checks.
type PoolConfig struct {
	ChainID uint64
	// RequestTimeout bounds each RPC call; a slower endpoint is failed over.
	RequestTimeout time.Duration
	// HealthInterval is the period of eth_chainId / eth_blockNumber checks.
	HealthInterval time.Duration
	// MaxLag marks an endpoint unhealthy when its head is this many blocks
	// behind the best endpoint.
	MaxLag uint64
	// Penalty is how long a failed endpoint is avoided.
	Penalty time.Duration
}

func (c *PoolConfig) fill() {
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

type endpoint struct {
	name   string
	isWS   bool
	url    string
	client *rpc.Client
	http   *httpCaller // hot calls over HTTP; nil for WebSocket endpoints

	mu         sync.Mutex
	checked    bool // a health check has run
	wrongChain error
	head       uint64
	latency    time.Duration
	penalUntil time.Time
	lastErr    error
	noBlockRcp bool // eth_getBlockReceipts is unsupported
}

// Pool spreads calls over a chain's endpoints: the healthiest first, the
// next one on failure.
type Pool struct {
	cfg     PoolConfig
	eps     []*endpoint
	log     *slog.Logger
	metrics *PoolMetrics
	chain   string
}

// NewPool dials every endpoint (lazily for HTTP) and returns a Pool.
func NewPool(ctx context.Context, chainLabel string, cfg PoolConfig, eps []EndpointConfig, metrics *PoolMetrics, log *slog.Logger) (*Pool, error) {
	cfg.fill()
	if len(eps) == 0 {
		return nil, errors.New("no endpoints configured")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{cfg: cfg, log: log, metrics: metrics, chain: chainLabel}
	if p.metrics == nil {
		p.metrics = NewPoolMetrics(nil)
	}
	for i, ec := range eps {
		u, err := url.Parse(ec.URL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("endpoint %d (%s): invalid URL", i, ec.Name)
		}
		name := ec.Name
		if name == "" {
			name = u.Hostname()
		}
		var opts []rpc.ClientOption
		for k, v := range ec.Headers {
			opts = append(opts, rpc.WithHeader(k, v))
		}
		isWS := u.Scheme == "ws" || u.Scheme == "wss"
		dctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
		c, err := rpc.DialOptions(dctx, ec.URL, opts...)
		cancel()
		if err != nil {
			// A WebSocket endpoint that is down at start is not fatal:
			// the others serve, and this one is redialled by health checks.
			log.Warn("endpoint unreachable at start", "endpoint", name, "err", redact(err, ec.URL))
		}
		ep := &endpoint{name: name, isWS: isWS, url: ec.URL, client: c}
		if !isWS {
			ep.http = newHTTPCaller(ec.URL, ec.Headers)
		}
		p.eps = append(p.eps, ep)
	}
	return p, nil
}

// Close closes every endpoint's client.
func (p *Pool) Close() {
	for _, ep := range p.eps {
		ep.mu.Lock()
		if ep.client != nil {
			ep.client.Close()
		}
		ep.mu.Unlock()
	}
}

// redact removes a URL (which may hold an API key) from an error message.
func redact(err error, rawURL string) string {
	if err == nil {
		return ""
	}
	return strings.ReplaceAll(err.Error(), rawURL, "<url>")
}

func (ep *endpoint) rpcClient(ctx context.Context, timeout time.Duration) (*rpc.Client, error) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.client != nil {
		return ep.client, nil
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := rpc.DialContext(dctx, ep.url)
	if err != nil {
		return nil, errors.New(redact(fmt.Errorf("dial: %w", err), ep.url))
	}
	ep.client = c
	return c, nil
}

// candidates orders endpoints for a call: usable ones by head (highest
// first) then latency; penalized ones last, as a final resort.
func (p *Pool) candidates() []*endpoint {
	now := time.Now()
	type cand struct {
		ep        *endpoint
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
	out := make([]*endpoint, len(cs))
	for i, c := range cs {
		out[i] = c.ep
	}
	return out
}

// do runs fn on the best endpoint, failing over to the next on error. A
// follow.ErrNotFound moves on without penalizing the endpoint.
func (p *Pool) do(ctx context.Context, method string, fn func(ctx context.Context, ep *endpoint, c *rpc.Client) error) error {
	var errs []error
	cands := p.candidates()
	if len(cands) == 0 {
		return fmt.Errorf("%s: no usable endpoint (all serve the wrong chain)", method)
	}
	notFound := 0
	for _, ep := range cands {
		c, err := ep.rpcClient(ctx, p.cfg.RequestTimeout)
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
			start := time.Now()
			err = fn(cctx, ep, c)
			cancel()
			p.metrics.observe(p.chain, ep.name, method, err, time.Since(start))
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, follow.ErrNotFound) {
			notFound++
			errs = append(errs, &EndpointError{Endpoint: ep.name, Method: method, Err: err})
			continue
		}
		p.penalize(ep, method, err)
		errs = append(errs, &EndpointError{Endpoint: ep.name, Method: method, Err: err})
	}
	if notFound == len(cands) {
		return fmt.Errorf("%s: %w on every endpoint", method, follow.ErrNotFound)
	}
	return fmt.Errorf("%s failed on all %d endpoints: %w", method, len(cands), errors.Join(errs...))
}

func (p *Pool) penalize(ep *endpoint, method string, err error) {
	ep.mu.Lock()
	ep.penalUntil = time.Now().Add(p.cfg.Penalty)
	ep.lastErr = err
	ep.mu.Unlock()
	p.metrics.healthy.WithLabelValues(p.chain, ep.name).Set(0)
	p.log.Warn("endpoint failed; using the next one", "endpoint", ep.name, "method", method, "err", redact(err, ep.url))
}

// callTyped decodes a call's result straight into result (a pointer), over
// the endpoint's direct HTTP path when it has one.
func (ep *endpoint) callTyped(ctx context.Context, c *rpc.Client, result any, method string, args ...any) error {
	if ep.http != nil {
		return ep.http.call(ctx, result, method, args...)
	}
	return c.CallContext(ctx, result, method, args...)
}

// call is a raw JSON-RPC call on one endpoint.
func call(ctx context.Context, c *rpc.Client, method string, args ...any) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.CallContext(ctx, &raw, method, args...); err != nil {
		return nil, err
	}
	return raw, nil
}

// Run health-checks every endpoint until ctx ends.
func (p *Pool) Run(ctx context.Context) error {
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

// CheckHealth checks every endpoint once: chain id, head, and lag behind
// the best endpoint.
func (p *Pool) CheckHealth(ctx context.Context) {
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
			p.log.Warn("endpoint lagging; avoided until it catches up", "endpoint", ep.name, "head", ep.head, "best_head", best)
		}
		head := ep.head
		ep.mu.Unlock()
		v := 0.0
		if healthy {
			v = 1
		}
		p.metrics.healthy.WithLabelValues(p.chain, ep.name).Set(v)
		p.metrics.head.WithLabelValues(p.chain, ep.name).Set(float64(head))
	}
}

func (p *Pool) checkOne(ctx context.Context, ep *endpoint) {
	c, err := ep.rpcClient(ctx, p.cfg.RequestTimeout)
	var head uint64
	var wrong error
	start := time.Now()
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
		var id, num string
		err = c.BatchCallContext(cctx, []rpc.BatchElem{
			{Method: "eth_chainId", Result: &id},
			{Method: "eth_blockNumber", Result: &num},
		})
		cancel()
		if err == nil {
			var gotID uint64
			if gotID, err = parseQuantity("eth_chainId", id); err == nil && p.cfg.ChainID != 0 && gotID != p.cfg.ChainID {
				wrong = fmt.Errorf("serves chain id %d, configured chain_id is %d", gotID, p.cfg.ChainID)
			}
			if err == nil {
				head, err = parseQuantity("eth_blockNumber", num)
			}
		}
	}
	lat := time.Since(start)
	ep.mu.Lock()
	defer ep.mu.Unlock()
	wasOK := ep.checked && ep.lastErr == nil && ep.wrongChain == nil
	ep.checked = true
	if wrong != nil {
		if ep.wrongChain == nil {
			p.log.Error("endpoint serves another chain; never used", "endpoint", ep.name, "err", wrong)
		}
		ep.wrongChain = wrong
		return
	}
	ep.wrongChain = nil
	if err != nil {
		if wasOK || ep.lastErr == nil {
			p.log.Warn("endpoint health check failed", "endpoint", ep.name, "err", redact(err, ep.url))
		}
		ep.lastErr = err
		ep.penalUntil = time.Now().Add(p.cfg.HealthInterval)
		return
	}
	if !wasOK {
		p.log.Info("endpoint healthy", "endpoint", ep.name, "head", head, "latency", lat.Round(time.Microsecond))
	}
	ep.lastErr = nil
	ep.head = head
	ep.latency = lat
	ep.penalUntil = time.Time{}
}

// PoolMetrics are the endpoint and decoding metrics of Ethereum pools.
type PoolMetrics struct {
	nonStandard *prometheus.CounterVec
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	healthy     *prometheus.GaugeVec
	head        *prometheus.GaugeVec
}

// NewPoolMetrics registers the endpoint metrics with reg (nil: unregistered).
// Create it once per registry and share it between pools.
func NewPoolMetrics(reg prometheus.Registerer) *PoolMetrics {
	m := &PoolMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_rpc_requests_total",
			Help: "JSON-RPC calls by endpoint, method and outcome (ok, not_found, error)."}, []string{"chain", "endpoint", "method", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cordon_rpc_request_seconds",
			Help: "JSON-RPC call latency.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"chain", "endpoint", "method"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cordon_rpc_endpoint_healthy",
			Help: "1 when the endpoint passed its last health check and is not lagging."}, []string{"chain", "endpoint"}),
		head: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cordon_rpc_endpoint_head_height",
			Help: "Head height the endpoint reported at its last health check."}, []string{"chain", "endpoint"}),
		nonStandard: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_eth_nonstandard_transfer_logs_total",
			Help: "Logs with the Transfer signature that are neither ERC-20 nor ERC-721 shaped (not turned into transfers)."}, []string{"chain"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.healthy, m.head, m.nonStandard)
	}
	return m
}

func (m *PoolMetrics) observe(chain, ep, method string, err error, d time.Duration) {
	outcome := "ok"
	switch {
	case errors.Is(err, follow.ErrNotFound):
		outcome = "not_found"
	case err != nil:
		outcome = "error"
	}
	m.requests.WithLabelValues(chain, ep, method, outcome).Inc()
	m.duration.WithLabelValues(chain, ep, method).Observe(d.Seconds())
}

// Requests exposes the request counter (chain, endpoint, method, outcome),
// for tests and status displays.
func (m *PoolMetrics) Requests() *prometheus.CounterVec { return m.requests }

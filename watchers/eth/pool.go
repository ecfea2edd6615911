package eth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/rpcpool"
)

// EndpointConfig names one JSON-RPC endpoint of a chain. The URL and the
// header values are secret references in the config file (providers put
// API keys in them); code that builds one uses config.SecretValue.
type EndpointConfig struct {
	// Name labels the endpoint in logs and metrics; the URL itself is never
	// logged because providers put API keys in it.
	Name string        `yaml:"name"`
	URL  config.Secret `yaml:"url"`
	// Headers are sent with every HTTP request (for example an API key).
	Headers map[string]config.Secret `yaml:"headers"`
}

// PoolConfig tunes endpoint selection and health checks. Its keys sit
// flat in a chain network's entry of the config file.
type PoolConfig struct {
	// ChainID is Config.ChainID (NewSource sets it).
	ChainID uint64 `yaml:"-"`
	// RequestTimeout bounds each RPC call; a slower endpoint is failed over.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// HealthInterval is the period of eth_chainId / eth_blockNumber checks.
	HealthInterval time.Duration `yaml:"health_interval"`
	// MaxLag marks an endpoint unhealthy when its head is this many blocks
	// behind the agreed head.
	MaxLag uint64 `yaml:"max_lag"`
	// Penalty is how long a failed endpoint is avoided.
	Penalty time.Duration `yaml:"-"`
}

// Pool is the endpoint pool of an Ethereum network.
type Pool = rpcpool.Pool[*conn]

type endpoint = rpcpool.Endpoint[*conn]

// conn is the Ethereum side of one endpoint.
type conn struct {
	isWS bool
	url  string
	http *httpCaller // hot calls over HTTP; nil for WebSocket endpoints

	mu         sync.Mutex
	client     *rpc.Client
	noBlockRcp bool // eth_getBlockReceipts is unsupported
}

func newPool(ctx context.Context, network string, quorum int, cfg PoolConfig, ecs []EndpointConfig, metrics *rpcpool.Metrics, log *slog.Logger) (*Pool, error) {
	pc := rpcpool.Config{Label: "eth/" + network, RequestTimeout: cfg.RequestTimeout, HealthInterval: cfg.HealthInterval,
		MaxLag: cfg.MaxLag, Penalty: cfg.Penalty, Quorum: quorum, Chain: chain.ETH, Network: network}
	timeout := pc.RequestTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var eps []*endpoint
	for i, ec := range ecs {
		rawURL := ec.URL.Value()
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("endpoint %d (%s): invalid URL", i, ec.Name)
		}
		name := ec.Name
		if name == "" {
			name = u.Hostname()
		}
		headers := make(map[string]string, len(ec.Headers))
		var opts []rpc.ClientOption
		for k, v := range ec.Headers {
			headers[k] = v.Value()
			opts = append(opts, rpc.WithHeader(k, v.Value()))
		}
		c := &conn{isWS: u.Scheme == "ws" || u.Scheme == "wss", url: rawURL}
		dctx, cancel := context.WithTimeout(ctx, timeout)
		c.client, err = rpc.DialOptions(dctx, rawURL, opts...)
		cancel()
		if err != nil {
			// A WebSocket endpoint that is down at start is not fatal:
			// the others serve, and this one is redialled when used.
			c.client = nil
			log.Warn("endpoint unreachable at start", "endpoint", name, "err", rpcpool.Redact(err, rawURL))
		}
		if !c.isWS {
			c.http = newHTTPCaller(rawURL, headers)
		}
		eps = append(eps, rpcpool.NewEndpoint(name, rawURL, c))
	}
	check := func(ctx context.Context, ep *endpoint) (uint64, error) {
		c, err := ep.Conn.rpcClient(ctx)
		if err != nil {
			return 0, err
		}
		var id, num string
		err = c.BatchCallContext(ctx, []rpc.BatchElem{
			{Method: "eth_chainId", Result: &id},
			{Method: "eth_blockNumber", Result: &num},
		})
		if err != nil {
			return 0, err
		}
		gotID, err := parseQuantity("eth_chainId", id)
		if err != nil {
			return 0, err
		}
		if cfg.ChainID != 0 && gotID != cfg.ChainID {
			return 0, fmt.Errorf("%w: chain id %d, configured chain_id is %d", rpcpool.ErrWrongChain, gotID, cfg.ChainID)
		}
		return parseQuantity("eth_blockNumber", num)
	}
	return rpcpool.New(pc, eps, check, metrics, log)
}

// closePool closes every endpoint's client.
func closePool(p *Pool) {
	for _, ep := range p.Endpoints() {
		ep.Conn.close()
	}
}

func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		c.client.Close()
		c.client = nil
	}
}

// rpcClient returns the endpoint's client, dialling it again after a
// dropped WebSocket connection.
func (c *conn) rpcClient(ctx context.Context) (*rpc.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client, nil
	}
	cl, err := rpc.DialContext(ctx, c.url)
	if err != nil {
		return nil, errors.New(rpcpool.Redact(fmt.Errorf("dial: %w", err), c.url))
	}
	c.client = cl
	return cl, nil
}

// callTyped decodes a call's result straight into result (a pointer), over
// the endpoint's direct HTTP path when it has one.
func (c *conn) callTyped(ctx context.Context, result any, method string, args ...any) error {
	if c.http != nil {
		return c.http.call(ctx, result, method, args...)
	}
	cl, err := c.rpcClient(ctx)
	if err != nil {
		return err
	}
	return cl.CallContext(ctx, result, method, args...)
}

// call is a raw JSON-RPC call on one endpoint.
func (c *conn) call(ctx context.Context, method string, args ...any) (json.RawMessage, error) {
	cl, err := c.rpcClient(ctx)
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := cl.CallContext(ctx, &raw, method, args...); err != nil {
		return nil, err
	}
	return raw, nil
}

// Metrics are the Ethereum watcher's own metrics, next to the shared
// endpoint metrics of rpcpool.
type Metrics struct {
	rpc         *rpcpool.Metrics
	nonStandard *prometheus.CounterVec
}

// NewMetrics registers the Ethereum metrics with reg (nil: unregistered);
// rpc are the shared endpoint metrics (nil: unregistered ones).
// Create it once per registry and share it between sources.
func NewMetrics(reg prometheus.Registerer, rpc *rpcpool.Metrics) *Metrics {
	if rpc == nil {
		rpc = rpcpool.NewMetrics(nil)
	}
	m := &Metrics{rpc: rpc,
		nonStandard: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_eth_nonstandard_transfer_logs_total",
			Help: "Logs with the Transfer signature that are neither ERC-20 nor ERC-721 shaped (not turned into transfers)."}, []string{"chain"}),
	}
	if reg != nil {
		reg.MustRegister(m.nonStandard)
	}
	return m
}

package btc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/rpcpool"
)

// Config configures a Source. A chains.btc entry of the config file
// decodes into it (with the follower's keys beside it).
type Config struct {
	// Network is mainnet, testnet, signet, regtest or simnet: it selects
	// address encoding and the genesis block every endpoint must have.
	Network   string           `yaml:"network"`
	Endpoints []EndpointConfig `yaml:"endpoints"`
	// Clients is the number of concurrent requests per endpoint (rpcclient
	// clients); at least the follower's parallelism.
	Clients int `yaml:"-"`
	// RequestTimeout bounds each call; HealthInterval is the period of
	// the endpoints' health checks; an endpoint MaxLag blocks behind the
	// best is avoided, a failed one for Penalty.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	HealthInterval time.Duration `yaml:"health_interval"`
	MaxLag         uint64        `yaml:"max_lag"`
	Penalty        time.Duration `yaml:"-"`
}

// Pool is the endpoint pool of a Bitcoin network.
type Pool = rpcpool.Pool[*conn]

type endpoint = rpcpool.Endpoint[*conn]

// Source reads normalized blocks from a pool of Bitcoin endpoints. It
// implements follow.Source.
type Source struct {
	net     Network
	pool    *Pool
	log     *slog.Logger
	metrics *Metrics
}

// NewSource creates the endpoint clients of cfg. It does not contact the
// nodes; the pool's health checks and the first calls do.
func NewSource(cfg Config, metrics *Metrics, log *slog.Logger) (*Source, error) {
	net, err := LookupNetwork(cfg.Network)
	if err != nil {
		return nil, fmt.Errorf("btc source: %w", err)
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 8
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics(nil, nil)
	}
	log = log.With("chain", "btc", "network", net.Name)
	var eps []*endpoint
	for i, ec := range cfg.Endpoints {
		c, name, err := newConn(ec, cfg.Clients)
		if err != nil {
			for _, ep := range eps {
				ep.Conn.close()
			}
			return nil, fmt.Errorf("btc source: endpoint %d (%s): %w", i, ec.Name, err)
		}
		eps = append(eps, rpcpool.NewEndpoint(name, ec.URL.Value(), c))
	}
	s := &Source{net: net, log: log, metrics: metrics}
	pc := rpcpool.Config{Label: "btc/" + net.Name, RequestTimeout: cfg.RequestTimeout, HealthInterval: cfg.HealthInterval,
		MaxLag: cfg.MaxLag, Penalty: cfg.Penalty}
	s.pool, err = rpcpool.New(pc, eps, s.check, metrics.rpc, log)
	if err != nil {
		return nil, fmt.Errorf("btc source: %w", err)
	}
	return s, nil
}

// Network returns the source's network.
func (s *Source) Network() Network { return s.net }

// Pool returns the endpoint pool, whose Run does the health checks.
func (s *Source) Pool() *Pool { return s.pool }

// Close shuts the endpoint clients down.
func (s *Source) Close() {
	for _, ep := range s.pool.Endpoints() {
		ep.Conn.close()
	}
}

// check confirms an endpoint serves the configured network (its block 0
// is the network's genesis block) and reports its head.
func (s *Source) check(ctx context.Context, ep *endpoint) (uint64, error) {
	raw, err := ep.Conn.call(ctx, "getblockhash", 0)
	if err != nil {
		return 0, err
	}
	genesis, err := decodeHash("getblockhash(0)", raw)
	if err != nil {
		return 0, err
	}
	if genesis != s.net.Genesis.String() {
		return 0, fmt.Errorf("%w: genesis block %s is not %s's %s", rpcpool.ErrWrongChain, genesis, s.net.Name, s.net.Genesis)
	}
	raw, err = ep.Conn.call(ctx, "getblockcount")
	if err != nil {
		return 0, err
	}
	return decodeUint("getblockcount", raw)
}

// Head returns the best block height of the best endpoint.
func (s *Source) Head(ctx context.Context) (uint64, error) {
	var head uint64
	err := s.pool.Do(ctx, "getblockcount", func(ctx context.Context, ep *endpoint) error {
		raw, err := ep.Conn.call(ctx, "getblockcount")
		if err != nil {
			return err
		}
		if head, err = decodeUint("getblockcount", raw); err != nil {
			return err
		}
		ep.NoteHead(head)
		return nil
	})
	return head, err
}

func (s *Source) hashAt(ctx context.Context, ep *endpoint, height uint64) (chainhash.Hash, error) {
	raw, err := ep.Conn.call(ctx, "getblockhash", height)
	if err != nil {
		return chainhash.Hash{}, err
	}
	str, err := decodeHash(fmt.Sprintf("getblockhash(%d)", height), raw)
	if err != nil {
		return chainhash.Hash{}, err
	}
	h, err := chainhash.NewHashFromStr(str)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("getblockhash(%d): %w", height, err)
	}
	return *h, nil
}

// HeaderAt returns the canonical header at height: getblockhash, then the
// raw 80-byte header, which must hash to it.
func (s *Source) HeaderAt(ctx context.Context, height uint64) (chain.Header, error) {
	var out chain.Header
	err := s.pool.Do(ctx, "getblockheader", func(ctx context.Context, ep *endpoint) error {
		hash, err := s.hashAt(ctx, ep, height)
		if err != nil {
			return err
		}
		raw, err := ep.Conn.call(ctx, "getblockheader", hash.String(), false)
		if err != nil {
			return err
		}
		b, err := decodeHexString("getblockheader", raw, 2*wire.MaxBlockHeaderPayload)
		if err != nil {
			return err
		}
		out, err = DecodeHeader(&s.net, height, b, &hash)
		return err
	})
	return out, err
}

// DecodeHeader decodes a raw 80-byte block header that must hash to want.
func DecodeHeader(net *Network, height uint64, raw []byte, want *chainhash.Hash) (chain.Header, error) {
	if len(raw) != wire.MaxBlockHeaderPayload {
		return chain.Header{}, badBlock("header of %d bytes, want %d", len(raw), wire.MaxBlockHeaderPayload)
	}
	if got := chainhash.DoubleHashH(raw); got != *want {
		return chain.Header{}, badBlock("header hashes to %s, asked for block %s", got, want)
	}
	var h wire.BlockHeader
	if err := h.Deserialize(bytes.NewReader(raw)); err != nil {
		return chain.Header{}, badBlock("header: %v", err)
	}
	return chain.Header{Chain: chain.BTC, Network: net.Name, Height: height, Hash: HashHex(want),
		ParentHash: HashHex(&h.PrevBlock), Time: h.Timestamp.Unix()}, nil
}

// BlockAt fetches the raw block at height from one endpoint (getblockhash,
// then getblock with verbosity 0), checks it and normalizes it.
func (s *Source) BlockAt(ctx context.Context, height uint64) (*chain.Block, error) {
	var out *chain.Block
	err := s.pool.Do(ctx, "block", func(ctx context.Context, ep *endpoint) error {
		raw, hash, err := s.rawBlock(ctx, ep, height)
		if err != nil {
			return err
		}
		start := time.Now()
		out, err = Normalize(&s.net, height, raw, &hash)
		s.metrics.normalize.Observe(time.Since(start).Seconds())
		if err != nil {
			s.metrics.rejected.WithLabelValues(s.pool.Config().Label, ep.Name).Inc()
			return fmt.Errorf("block %d: %w", height, err)
		}
		return nil
	})
	return out, err
}

// RawBlockAt fetches the raw bytes of the block at height without decoding
// them (the reference the backfill benchmark compares against).
func (s *Source) RawBlockAt(ctx context.Context, height uint64) ([]byte, error) {
	var out []byte
	err := s.pool.Do(ctx, "rawblock", func(ctx context.Context, ep *endpoint) error {
		raw, _, err := s.rawBlock(ctx, ep, height)
		out = raw
		return err
	})
	return out, err
}

func (s *Source) rawBlock(ctx context.Context, ep *endpoint, height uint64) ([]byte, chainhash.Hash, error) {
	hash, err := s.hashAt(ctx, ep, height)
	if err != nil {
		return nil, hash, err
	}
	reply, err := ep.Conn.call(ctx, "getblock", hash.String(), 0)
	if err != nil {
		return nil, hash, err
	}
	raw, err := decodeHexString(fmt.Sprintf("getblock(%d)", height), reply, MaxReplyHexBytes)
	return raw, hash, err
}

// Metrics are the Bitcoin watcher's own metrics, next to the shared
// endpoint metrics of rpcpool.
type Metrics struct {
	rpc       *rpcpool.Metrics
	normalize prometheus.Histogram
	rejected  *prometheus.CounterVec
}

// NewMetrics registers the Bitcoin metrics with reg (nil: unregistered); rpc
// are the shared endpoint metrics (nil: unregistered ones). Create it once
// per registry and share it between sources.
func NewMetrics(reg prometheus.Registerer, rpc *rpcpool.Metrics) *Metrics {
	if rpc == nil {
		rpc = rpcpool.NewMetrics(nil)
	}
	m := &Metrics{rpc: rpc,
		normalize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cordon_btc_normalize_seconds",
			Help: "Time to decode, check and normalize one raw block.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_btc_blocks_rejected_total",
			Help: "Raw blocks refused (truncated, corrupted, wrong hash or merkle root), by endpoint."}, []string{"chain", "endpoint"}),
	}
	if reg != nil {
		reg.MustRegister(m.normalize, m.rejected)
	}
	return m
}

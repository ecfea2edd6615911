package btc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
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
	// Quorum is the number of endpoints that must report the same block
	// hash at a height (and a head at least as high) before the block is
	// believed; 0 is a majority with three endpoints or more, else 1.
	Quorum int `yaml:"quorum"`
}

// Pool is the endpoint pool of a Bitcoin network.
type Pool = rpcpool.Pool[*conn]

type endpoint = rpcpool.Endpoint[*conn]

// Source reads normalized blocks from a pool of Bitcoin endpoints. It
// implements follow.Source.
type Source struct {
	net     Network
	params  *chaincfg.Params
	pool    *Pool
	log     *slog.Logger
	metrics *Metrics
	headers headerCache // headers whose proof of work was checked
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
	s := &Source{net: net, params: net.Params(), log: log, metrics: metrics, headers: headerCache{m: map[chainhash.Hash]wire.BlockHeader{}}}
	pc := rpcpool.Config{Label: "btc/" + net.Name, RequestTimeout: cfg.RequestTimeout, HealthInterval: cfg.HealthInterval,
		MaxLag: cfg.MaxLag, Penalty: cfg.Penalty, Quorum: cfg.Quorum, Chain: chain.BTC, Network: net.Name}
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

// Quorum returns the configured (or default) quorum and the number of
// configured endpoints.
func (s *Source) Quorum() (q, n int) { return s.pool.Quorum() }

// trusted reports whether one endpoint is believed alone (a quorum of 1).
func (s *Source) trusted() bool {
	q, _ := s.pool.Quorum()
	return q == 1
}

// HashesAt asks every configured endpoint (not only the usable ones;
// wrong-chain ones report an error) for its canonical block hash at
// height (getblockhash), in parallel, each bounded by the request timeout;
// the order is the configuration order. Hashes are lowercase hex in the
// conventional byte order, as the block events carry them.
func (s *Source) HashesAt(ctx context.Context, height uint64) []rpcpool.Report {
	return s.pool.Reports(ctx, "getblockhash", s.hashOf(height))
}

func (s *Source) hashOf(height uint64) func(ctx context.Context, ep *endpoint) (string, error) {
	return func(ctx context.Context, ep *endpoint) (string, error) {
		h, err := s.hashAt(ctx, ep, height)
		if err != nil {
			return "", err
		}
		return HashHex(&h), nil
	}
}

// agree asks the endpoints which block is at height.
func (s *Source) agree(ctx context.Context, height uint64) (*rpcpool.Agreement[*conn], chainhash.Hash, error) {
	ag, err := s.pool.Agree(ctx, rpcpool.Question[*conn]{Method: "getblockhash", Height: height, HashOf: s.hashOf(height), Work: s.chainwork})
	if err != nil {
		return nil, chainhash.Hash{}, err
	}
	h, err := chainhash.NewHashFromStr(ag.Hash)
	if err != nil {
		return nil, chainhash.Hash{}, fmt.Errorf("agreed hash %q: %w", ag.Hash, err)
	}
	return ag, *h, nil
}

// chainwork is the accumulated work of the chain ending at hash as ep
// reports it (getblockheader's chainwork: bitcoind has it, btcd does not).
func (s *Source) chainwork(ctx context.Context, ep *endpoint, hash string) (*big.Int, error) {
	raw, err := ep.Conn.call(ctx, "getblockheader", hash, true)
	if err != nil {
		return nil, err
	}
	var r struct {
		Chainwork string `json:"chainwork"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Chainwork == "" {
		return nil, errors.New("getblockheader: no chainwork")
	}
	w, ok := new(big.Int).SetString(r.Chainwork, 16)
	if !ok {
		return nil, fmt.Errorf("getblockheader: chainwork %.80q is not hex", r.Chainwork)
	}
	return w, nil
}

// Head returns the agreed head: the highest block height at least a
// quorum of endpoints report (with a quorum of 1, the best endpoint's).
func (s *Source) Head(ctx context.Context) (uint64, error) {
	return s.pool.AgreedHeight(ctx, "getblockcount", func(ctx context.Context, ep *endpoint) (uint64, error) {
		raw, err := ep.Conn.call(ctx, "getblockcount")
		if err != nil {
			return 0, err
		}
		head, err := decodeUint("getblockcount", raw)
		if err != nil {
			return 0, err
		}
		ep.NoteHead(head)
		return head, nil
	})
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
// raw 80-byte header, which must hash to it and carry valid proof of work.
// With a quorum above 1 the hash is the one a quorum of endpoints report.
func (s *Source) HeaderAt(ctx context.Context, height uint64) (chain.Header, error) {
	var out chain.Header
	if s.trusted() {
		err := s.pool.Do(ctx, "getblockheader", func(ctx context.Context, ep *endpoint) error {
			hash, err := s.hashAt(ctx, ep, height)
			if err != nil {
				return err
			}
			out, err = s.header(ctx, ep, height, hash)
			return err
		})
		return out, err
	}
	ag, hash, err := s.agree(ctx, height)
	if err != nil {
		return out, err
	}
	err = s.pool.DoOn(ctx, "getblockheader", ag.Agreeing, func(ctx context.Context, ep *endpoint) error {
		out, err = s.header(ctx, ep, height, hash)
		return err
	})
	return out, err
}

// header fetches the header hash from ep and checks it: it hashes to hash
// and its proof of work holds.
func (s *Source) header(ctx context.Context, ep *endpoint, height uint64, hash chainhash.Hash) (chain.Header, error) {
	hdr, err := s.rawHeader(ctx, ep, hash)
	if err != nil {
		return chain.Header{}, err
	}
	if err := s.checkWork(ctx, ep, height, hdr, &hash); err != nil {
		return chain.Header{}, err
	}
	return chain.Header{Chain: chain.BTC, Network: s.net.Name, Height: height, Hash: HashHex(&hash),
		ParentHash: HashHex(&hdr.PrevBlock), Time: hdr.Timestamp.Unix()}, nil
}

// rawHeader fetches the 80-byte header of hash (getblockheader) and checks
// that it hashes to hash.
func (s *Source) rawHeader(ctx context.Context, ep *endpoint, hash chainhash.Hash) (*wire.BlockHeader, error) {
	raw, err := ep.Conn.call(ctx, "getblockheader", hash.String(), false)
	if err != nil {
		return nil, err
	}
	b, err := decodeHexString("getblockheader", raw, 2*wire.MaxBlockHeaderPayload)
	if err != nil {
		return nil, err
	}
	return decodeWireHeader(b, &hash)
}

func decodeWireHeader(raw []byte, want *chainhash.Hash) (*wire.BlockHeader, error) {
	if len(raw) < wire.MaxBlockHeaderPayload {
		return nil, badBlock("header of %d bytes, want %d", len(raw), wire.MaxBlockHeaderPayload)
	}
	if got := chainhash.DoubleHashH(raw[:wire.MaxBlockHeaderPayload]); got != *want {
		return nil, badBlock("header hashes to %s, asked for block %s", got, want)
	}
	var h wire.BlockHeader
	if err := h.Deserialize(bytes.NewReader(raw[:wire.MaxBlockHeaderPayload])); err != nil {
		return nil, badBlock("header: %v", err)
	}
	return &h, nil
}

// checkWork checks the proof of work of the header hash at height (see
// CheckWork) against its parent: from the headers already checked, or
// fetched from ep. A failure is counted against ep, which the pool then
// penalizes.
func (s *Source) checkWork(ctx context.Context, ep *endpoint, height uint64, hdr *wire.BlockHeader, hash *chainhash.Hash) error {
	var parent *wire.BlockHeader
	if height > 0 {
		p, ok := s.headers.get(hdr.PrevBlock)
		if !ok {
			ph, err := s.rawHeader(ctx, ep, hdr.PrevBlock)
			if err != nil {
				return fmt.Errorf("block %d: parent header for the proof-of-work check: %w", height, err)
			}
			if err := CheckWork(s.params, height-1, ph, &hdr.PrevBlock, nil); err != nil {
				s.metrics.rejected.WithLabelValues(s.pool.Config().Label, ep.Name).Inc()
				return fmt.Errorf("block %d's parent %s: %w", height-1, hdr.PrevBlock, err)
			}
			p = *ph
		}
		parent = &p
	}
	if err := CheckWork(s.params, height, hdr, hash, parent); err != nil {
		s.metrics.rejected.WithLabelValues(s.pool.Config().Label, ep.Name).Inc()
		s.log.Error("endpoint served a header without valid proof of work; refused", "endpoint", ep.Name, "height", height,
			"block_hash", hash.String(), "err", err)
		return fmt.Errorf("block %d (%s): %w", height, hash, err)
	}
	s.headers.put(*hash, *hdr)
	return nil
}

// headerCache keeps the newest headers whose proof of work was checked, so
// that following the chain block by block needs no extra call for the
// parent's bits.
type headerCache struct {
	mu    sync.Mutex
	m     map[chainhash.Hash]wire.BlockHeader
	order []chainhash.Hash
}

const headerCacheSize = 4096

func (c *headerCache) get(h chainhash.Hash) (wire.BlockHeader, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[h]
	return v, ok
}

func (c *headerCache) put(h chainhash.Hash, hdr wire.BlockHeader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[h]; ok {
		return
	}
	if len(c.order) >= headerCacheSize {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[h] = hdr
	c.order = append(c.order, h)
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
// then getblock with verbosity 0), checks it (proof of work included) and
// normalizes it. With a quorum above 1 the block is the one whose hash a
// quorum of endpoints report at height, fetched from one of them.
func (s *Source) BlockAt(ctx context.Context, height uint64) (*chain.Block, error) {
	var out *chain.Block
	if s.trusted() {
		err := s.pool.Do(ctx, "block", func(ctx context.Context, ep *endpoint) error {
			raw, hash, err := s.rawBlock(ctx, ep, height)
			if err != nil {
				return err
			}
			out, err = s.normalize(ctx, ep, height, raw, hash)
			return err
		})
		return out, err
	}
	ag, hash, err := s.agree(ctx, height)
	if err != nil {
		return nil, err
	}
	err = s.pool.DoOn(ctx, "block", ag.Agreeing, func(ctx context.Context, ep *endpoint) error {
		raw, err := s.rawBlockOf(ctx, ep, height, hash)
		if err != nil {
			return err
		}
		out, err = s.normalize(ctx, ep, height, raw, hash)
		return err
	})
	return out, err
}

func (s *Source) normalize(ctx context.Context, ep *endpoint, height uint64, raw []byte, hash chainhash.Hash) (*chain.Block, error) {
	hdr, err := decodeWireHeader(raw, &hash)
	if err != nil {
		s.metrics.rejected.WithLabelValues(s.pool.Config().Label, ep.Name).Inc()
		return nil, fmt.Errorf("block %d: %w", height, err)
	}
	if err := s.checkWork(ctx, ep, height, hdr, &hash); err != nil {
		return nil, err
	}
	start := time.Now()
	out, err := Normalize(&s.net, height, raw, &hash)
	s.metrics.normalize.Observe(time.Since(start).Seconds())
	if err != nil {
		s.metrics.rejected.WithLabelValues(s.pool.Config().Label, ep.Name).Inc()
		return nil, fmt.Errorf("block %d: %w", height, err)
	}
	return out, nil
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
	raw, err := s.rawBlockOf(ctx, ep, height, hash)
	return raw, hash, err
}

func (s *Source) rawBlockOf(ctx context.Context, ep *endpoint, height uint64, hash chainhash.Hash) ([]byte, error) {
	reply, err := ep.Conn.call(ctx, "getblock", hash.String(), 0)
	if err != nil {
		return nil, err
	}
	return decodeHexString(fmt.Sprintf("getblock(%d)", height), reply, MaxReplyHexBytes)
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

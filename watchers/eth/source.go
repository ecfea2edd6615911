package eth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/holiman/uint256"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/follow"
	"github.com/cordonhq/cordon/watchers/rpcpool"
)

// Config configures a Source. A chains.eth entry of the config file
// decodes into it (with the follower's keys beside it).
type Config struct {
	Network   string           `yaml:"network"`
	ChainID   uint64           `yaml:"chain_id"`
	Endpoints []EndpointConfig `yaml:"endpoints"`
	Pool      PoolConfig       `yaml:",inline"`
	// VerifyHeaderHash recomputes each block's hash from its header fields
	// and rejects replies whose claimed hash differs; nil is true. Disable
	// it only for chains whose headers go-ethereum cannot hash (some L2s).
	VerifyHeaderHash *bool `yaml:"verify_header_hash"`
	// VerifyTxRoot rebuilds the transactions with go-ethereum's decoder and
	// checks their hashes and the header's transactionsRoot, so altered
	// transaction contents are refused; nil is VerifyHeaderHash. It needs
	// VerifyHeaderHash to bind the root to the block hash.
	VerifyTxRoot *bool `yaml:"verify_tx_root"`
	// VerifyReceiptsRoot rebuilds the receipts (status, cumulative gas,
	// bloom, logs, type) and checks the header's receiptsRoot, so altered
	// logs or statuses are refused; nil is VerifyHeaderHash. It needs
	// VerifyHeaderHash, like VerifyTxRoot.
	VerifyReceiptsRoot *bool `yaml:"verify_receipts_root"`
	// Quorum is the number of endpoints that must report the same block
	// hash at a height (and a head at least as high) before the block is
	// believed; 0 is a majority with three endpoints or more, else 1.
	Quorum int `yaml:"quorum"`
	// ReceiptBatch is the number of eth_getTransactionReceipt calls per
	// JSON-RPC batch when a node lacks eth_getBlockReceipts.
	ReceiptBatch int `yaml:"-"`
}

// Verifies reports the checks a Source of c makes: the header hash, and
// the transactions against the header's root.
func (c Config) Verifies() (headerHash, txRoot bool) {
	headerHash = c.VerifyHeaderHash == nil || *c.VerifyHeaderHash
	txRoot = headerHash
	if c.VerifyTxRoot != nil {
		txRoot = *c.VerifyTxRoot
	}
	return headerHash, txRoot
}

// VerifiesReceipts reports whether a Source of c checks receipts against
// the header's receiptsRoot.
func (c Config) VerifiesReceipts() bool {
	if c.VerifyReceiptsRoot != nil {
		return *c.VerifyReceiptsRoot
	}
	header, _ := c.Verifies()
	return header
}

// Source reads normalized blocks from a pool of Ethereum endpoints. It
// implements follow.Source.
type Source struct {
	cfg Config
	// verifyHeader and verifyTxRoot are cfg.Verifies().
	verifyHeader, verifyTxRoot bool
	verifyReceipts             bool
	byzantium                  uint64
	pool                       *Pool
	log                        *slog.Logger
	metrics                    *Metrics
}

// NewSource dials the endpoints of cfg.
func NewSource(ctx context.Context, cfg Config, metrics *Metrics, log *slog.Logger) (*Source, error) {
	if cfg.Network == "" {
		return nil, errors.New("eth source: network is empty")
	}
	if cfg.ReceiptBatch <= 0 {
		cfg.ReceiptBatch = 100
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("chain", "eth", "network", cfg.Network)
	cfg.Pool.ChainID = cfg.ChainID
	if metrics == nil {
		metrics = NewMetrics(nil, nil)
	}
	p, err := newPool(ctx, cfg.Network, cfg.Quorum, cfg.Pool, cfg.Endpoints, metrics.rpc, log)
	if err != nil {
		return nil, fmt.Errorf("eth source: %w", err)
	}
	s := &Source{cfg: cfg, pool: p, log: log, metrics: metrics, byzantium: byzantiumBlock(cfg.ChainID)}
	s.verifyHeader, s.verifyTxRoot = cfg.Verifies()
	s.verifyReceipts = cfg.VerifiesReceipts()
	return s, nil
}

// Quorum returns the configured (or default) quorum and the number of
// configured endpoints.
func (s *Source) Quorum() (q, n int) { return s.pool.Quorum() }

// HashesAt asks every configured endpoint (not only the usable ones;
// wrong-chain ones report an error) for its canonical block hash at
// height, in parallel, each bounded by the request timeout; the order is
// the configuration order. Hashes are lowercase 0x-prefixed hex, as the
// block events carry them.
func (s *Source) HashesAt(ctx context.Context, height uint64) []rpcpool.Report {
	return s.pool.Reports(ctx, "eth_getBlockByNumber", func(ctx context.Context, ep *endpoint) (string, error) {
		h, err := s.headerAt(ctx, ep, height)
		return h.Hash, err
	})
}

// trusted reports whether one endpoint is believed alone (a quorum of 1):
// calls then go to the best endpoint, with no cross-checks.
func (s *Source) trusted() bool {
	q, _ := s.pool.Quorum()
	return q == 1
}

// Pool returns the endpoint pool, whose Run does the health checks.
func (s *Source) Pool() *Pool { return s.pool }

// Close closes the endpoint clients.
func (s *Source) Close() { closePool(s.pool) }

// Head returns the agreed head: the highest block height at least a
// quorum of endpoints report (with a quorum of 1, the best endpoint's).
func (s *Source) Head(ctx context.Context) (uint64, error) {
	return s.pool.AgreedHeight(ctx, "eth_blockNumber", func(ctx context.Context, ep *endpoint) (uint64, error) {
		var num string
		if err := ep.Conn.callTyped(ctx, &num, "eth_blockNumber"); err != nil {
			return 0, err
		}
		h, err := parseQuantity("eth_blockNumber", num)
		if err != nil {
			return 0, err
		}
		ep.NoteHead(h)
		return h, nil
	})
}

// Finalized returns the height of the node's finalized block (0 while it
// has none: a node before the merge, or a fresh devnet). With a quorum
// above 1 it is the highest finalized height a quorum of endpoints report.
func (s *Source) Finalized(ctx context.Context) (uint64, error) {
	out, err := s.pool.AgreedHeight(ctx, "eth_getBlockByNumber", func(ctx context.Context, ep *endpoint) (uint64, error) {
		raw, err := ep.Conn.call(ctx, "eth_getBlockByNumber", "finalized", false)
		var re rpc.Error
		if errors.As(err, &re) {
			// The node answered but knows no finalized block (before the
			// merge; "finalized block not found"): not the endpoint's fault.
			// One trusted endpoint moves on to the next; in a quorum it
			// reports none.
			if !s.trusted() {
				return 0, nil
			}
			return 0, fmt.Errorf("%w: %w", follow.ErrNotFound, err)
		}
		if err != nil {
			return 0, err
		}
		if isNull(raw) {
			return 0, nil
		}
		h, err := decodeHeader(s.cfg.Network, raw)
		if err != nil {
			return 0, fmt.Errorf("finalized block: %w", err)
		}
		return h.Height, nil
	})
	if errors.Is(err, follow.ErrNotFound) && s.trusted() {
		return 0, nil
	}
	return out, err
}

// HeaderAt returns the canonical header at height. With a quorum above 1
// it is the header whose hash a quorum of endpoints report there.
func (s *Source) HeaderAt(ctx context.Context, height uint64) (chain.Header, error) {
	var out chain.Header
	if s.trusted() {
		err := s.pool.Do(ctx, "eth_getBlockByNumber", func(ctx context.Context, ep *endpoint) error {
			h, err := s.headerAt(ctx, ep, height)
			out = h
			return err
		})
		return out, err
	}
	var mu sync.Mutex
	headers := map[*endpoint]chain.Header{}
	ag, err := s.pool.Agree(ctx, rpcpool.Question[*conn]{Method: "eth_getBlockByNumber", Height: height,
		HashOf: func(ctx context.Context, ep *endpoint) (string, error) {
			h, err := s.headerAt(ctx, ep, height)
			if err == nil {
				mu.Lock()
				headers[ep] = h
				mu.Unlock()
			}
			return h.Hash, err
		}})
	if err != nil {
		return out, err
	}
	return headers[ag.Agreeing[0]], nil
}

// headerAt asks one endpoint for its canonical header at height, checking
// that the header fields hash to the hash it claims (verify_header_hash).
func (s *Source) headerAt(ctx context.Context, ep *endpoint, height uint64) (chain.Header, error) {
	var r *rpcBlockHeader
	if err := ep.Conn.callTyped(ctx, &r, "eth_getBlockByNumber", hexutil.EncodeUint64(height), false); err != nil {
		return chain.Header{}, err
	}
	if r == nil {
		return chain.Header{}, follow.ErrNotFound
	}
	h, err := r.header(s.cfg.Network)
	if err != nil {
		return h, err
	}
	if h.Height != height {
		return h, fmt.Errorf("reply is for block %d, asked for %d", h.Height, height)
	}
	if s.verifyHeader {
		if err := verifyHeaderHash(r); err != nil {
			return h, fmt.Errorf("block %d: %w", height, err)
		}
	}
	return h, nil
}

func (r *rpcBlockHeader) header(network string) (chain.Header, error) {
	h := chain.Header{Chain: chain.ETH, Network: network}
	var err error
	if h.Height, err = parseQuantity("number", r.Number); err != nil {
		return h, err
	}
	if h.Hash, err = normHash("hash", r.Hash); err != nil {
		return h, err
	}
	if h.ParentHash, err = normHash("parentHash", r.ParentHash); err != nil {
		return h, err
	}
	ts, err := parseQuantity("timestamp", r.Timestamp)
	h.Time = int64(ts)
	return h, err
}

func decodeHeader(network string, raw []byte) (chain.Header, error) {
	var r rpcBlockHeader
	if err := json.Unmarshal(raw, &r); err != nil {
		return chain.Header{}, fmt.Errorf("decode header: %w", err)
	}
	return r.header(network)
}

// BlockAt fetches the block at height with its receipts from one endpoint
// and normalizes it. With a quorum above 1 the block is the one whose hash
// a quorum of endpoints report at height, fetched by that hash from one of
// them and checked to be that block.
func (s *Source) BlockAt(ctx context.Context, height uint64) (*chain.Block, error) {
	var out *chain.Block
	if s.trusted() {
		err := s.pool.Do(ctx, "block", func(ctx context.Context, ep *endpoint) error {
			b, err := s.fetch(ctx, ep, height, "")
			out = b
			return err
		})
		return out, err
	}
	ag, err := s.pool.Agree(ctx, rpcpool.Question[*conn]{Method: "eth_getBlockByNumber", Height: height,
		HashOf: func(ctx context.Context, ep *endpoint) (string, error) {
			h, err := s.headerAt(ctx, ep, height)
			return h.Hash, err
		}})
	if err != nil {
		return nil, err
	}
	err = s.pool.DoOn(ctx, "block", ag.Agreeing, func(ctx context.Context, ep *endpoint) error {
		b, err := s.fetch(ctx, ep, height, ag.Hash)
		out = b
		return err
	})
	return out, err
}

// fetch reads the block at height (by hash when hash is not empty) and its
// receipts from ep, checks them and normalizes them.
func (s *Source) fetch(ctx context.Context, ep *endpoint, height uint64, hash string) (*chain.Block, error) {
	var blk *rpcBlock // decoded straight from the reply: no intermediate copy
	if hash == "" {
		if err := ep.Conn.callTyped(ctx, &blk, "eth_getBlockByNumber", hexutil.EncodeUint64(height), true); err != nil {
			return nil, fmt.Errorf("eth_getBlockByNumber: %w", err)
		}
	} else if err := ep.Conn.callTyped(ctx, &blk, "eth_getBlockByHash", hash, true); err != nil {
		return nil, fmt.Errorf("eth_getBlockByHash: %w", err)
	}
	if blk == nil {
		return nil, follow.ErrNotFound
	}
	if n, err := parseQuantity("number", blk.Number); err != nil {
		return nil, err
	} else if n != height {
		return nil, fmt.Errorf("reply is for block %d, asked for %d", n, height)
	}
	if hash != "" && !strings.EqualFold(blk.Hash, hash) {
		return nil, fmt.Errorf("block %d: reply is block %s, asked for the agreed %s", height, trunc(blk.Hash), hash)
	}
	if s.verifyHeader {
		if err := verifyHeaderHash(&blk.rpcBlockHeader); err != nil {
			return nil, fmt.Errorf("block %d: %w", height, err)
		}
	}
	if s.verifyTxRoot {
		if err := verifyTxRoot(blk); err != nil {
			return nil, fmt.Errorf("block %d: %w", height, err)
		}
	}
	receipts, err := s.receipts(ctx, ep, blk)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", height, err)
	}
	if err := checkStatus(height, s.byzantium, receipts); err != nil {
		return nil, fmt.Errorf("block %d: %w", height, err)
	}
	if s.verifyReceipts {
		if err := verifyReceiptsRoot(blk, receipts, s.byzantium); err != nil {
			return nil, fmt.Errorf("block %d: %w", height, err)
		}
	}
	var st NormalizeStats
	b, err := normalize(s.cfg.Network, blk, receipts, &st)
	if st.NonStandardTransferLogs > 0 {
		s.metrics.nonStandard.WithLabelValues(s.pool.Config().Label).Add(float64(st.NonStandardTransferLogs))
	}
	return b, err
}

// verifyHeaderHash rebuilds the header from the reply's fields and checks
// that it hashes to the hash the reply claims.
func verifyHeaderHash(b *rpcBlockHeader) error {
	h, err := headerOf(b)
	if err != nil {
		return fmt.Errorf("header for hash check: %w", err)
	}
	if got := h.Hash().Hex(); !strings.EqualFold(got, b.Hash) {
		return fmt.Errorf("header fields hash to %s but the reply claims %s", got, trunc(b.Hash))
	}
	return nil
}

func headerOf(b *rpcBlockHeader) (*types.Header, error) {
	var err error
	h := &types.Header{}
	hash := func(field, s string, dst *common.Hash) {
		if err != nil {
			return
		}
		var v string
		if v, err = normHash(field, s); err == nil {
			*dst = common.HexToHash(v)
		}
	}
	optHash := func(field string, s *string) *common.Hash {
		if s == nil {
			return nil
		}
		var v common.Hash
		hash(field, *s, &v)
		return &v
	}
	optU64 := func(field string, s *string) *uint64 {
		if s == nil || err != nil {
			return nil
		}
		var v uint64
		v, err = parseQuantity(field, *s)
		return &v
	}
	bigQ := func(field, s string) *big.Int {
		if err != nil {
			return nil
		}
		var v *uint256.Int
		if v, err = parseBigQuantity(field, s); err != nil {
			return nil
		}
		return v.ToBig()
	}
	hash("parentHash", b.ParentHash, &h.ParentHash)
	hash("sha3Uncles", b.Sha3Uncles, &h.UncleHash)
	hash("stateRoot", b.StateRoot, &h.Root)
	hash("transactionsRoot", b.TransactionsRoot, &h.TxHash)
	hash("receiptsRoot", b.ReceiptsRoot, &h.ReceiptHash)
	if err != nil {
		return nil, err
	}
	miner, err := normAddress("miner", b.Miner)
	if err != nil {
		return nil, err
	}
	h.Coinbase = common.HexToAddress(miner)
	bloom, err := hexutil.Decode(b.LogsBloom)
	if err != nil || len(bloom) != types.BloomByteLength {
		return nil, fmt.Errorf("logsBloom: want %d hex bytes", types.BloomByteLength)
	}
	h.Bloom = types.BytesToBloom(bloom)
	if h.Extra, err = hexutil.Decode(b.ExtraData); err != nil {
		return nil, fmt.Errorf("extraData: %w", err)
	}
	h.Difficulty = bigQ("difficulty", b.Difficulty)
	h.Number = bigQ("number", b.Number)
	if err != nil {
		return nil, err
	}
	if h.GasLimit, err = parseQuantity("gasLimit", b.GasLimit); err != nil {
		return nil, err
	}
	if h.GasUsed, err = parseQuantity("gasUsed", b.GasUsed); err != nil {
		return nil, err
	}
	if h.Time, err = parseQuantity("timestamp", b.Timestamp); err != nil {
		return nil, err
	}
	if b.MixHash != nil {
		hash("mixHash", *b.MixHash, &h.MixDigest)
	}
	if b.Nonce != nil {
		n, derr := hexutil.Decode(*b.Nonce)
		if derr != nil || len(n) != 8 {
			return nil, fmt.Errorf("nonce %q: want 8 hex bytes", trunc(*b.Nonce))
		}
		copy(h.Nonce[:], n)
	}
	if b.BaseFeePerGas != nil {
		h.BaseFee = bigQ("baseFeePerGas", *b.BaseFeePerGas)
	}
	h.WithdrawalsHash = optHash("withdrawalsRoot", b.WithdrawalsRoot)
	h.BlobGasUsed = optU64("blobGasUsed", b.BlobGasUsed)
	h.ExcessBlobGas = optU64("excessBlobGas", b.ExcessBlobGas)
	h.ParentBeaconRoot = optHash("parentBeaconBlockRoot", b.ParentBeaconBlockRoot)
	h.RequestsHash = optHash("requestsHash", b.RequestsHash)
	h.BlockAccessListHash = optHash("blockAccessListHash", b.BlockAccessListHash)
	h.SlotNumber = optU64("slotNumber", b.SlotNumber)
	return h, err
}

func (s *Source) receipts(ctx context.Context, ep *endpoint, blk *rpcBlock) ([]rpcReceipt, error) {
	if len(blk.Transactions) == 0 {
		return nil, nil
	}
	ep.Conn.mu.Lock()
	noBlockRcp := ep.Conn.noBlockRcp
	ep.Conn.mu.Unlock()
	if !noBlockRcp {
		var rcs *[]rpcReceipt
		err := ep.Conn.callTyped(ctx, &rcs, "eth_getBlockReceipts", blk.Hash)
		switch {
		case err == nil && rcs == nil:
			// The block left the node's chain between the two calls.
			return nil, fmt.Errorf("eth_getBlockReceipts(%s): %w (reorged away?)", trunc(blk.Hash), follow.ErrNotFound)
		case err == nil:
			return *rcs, nil
		case isMethodNotFound(err):
			ep.Conn.mu.Lock()
			ep.Conn.noBlockRcp = true
			ep.Conn.mu.Unlock()
			s.log.Info("endpoint lacks eth_getBlockReceipts; using per-transaction receipts", "endpoint", ep.Name)
		default:
			return nil, fmt.Errorf("eth_getBlockReceipts: %w", err)
		}
	}
	out := make([]rpcReceipt, len(blk.Transactions))
	raws := make([]json.RawMessage, len(blk.Transactions))
	for start := 0; start < len(blk.Transactions); start += s.cfg.ReceiptBatch {
		end := min(start+s.cfg.ReceiptBatch, len(blk.Transactions))
		batch := make([]rpc.BatchElem, 0, end-start)
		for i := start; i < end; i++ {
			batch = append(batch, rpc.BatchElem{Method: "eth_getTransactionReceipt", Args: []any{blk.Transactions[i].Hash}, Result: &raws[i]})
		}
		c, err := ep.Conn.rpcClient(ctx)
		if err != nil {
			return nil, err
		}
		if err := c.BatchCallContext(ctx, batch); err != nil {
			return nil, fmt.Errorf("eth_getTransactionReceipt batch: %w", err)
		}
		for i, el := range batch {
			if el.Error != nil {
				return nil, fmt.Errorf("eth_getTransactionReceipt(%s): %w", trunc(blk.Transactions[start+i].Hash), el.Error)
			}
		}
	}
	for i, raw := range raws {
		if isNull(raw) {
			return nil, fmt.Errorf("receipt of %s: %w", trunc(blk.Transactions[i].Hash), follow.ErrNotFound)
		}
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, fmt.Errorf("decode receipt of %s: %w", trunc(blk.Transactions[i].Hash), err)
		}
	}
	return out, nil
}

func isMethodNotFound(err error) bool {
	var re rpc.Error
	if errors.As(err, &re) && re.ErrorCode() == -32601 {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "method") && (strings.Contains(msg, "not found") || strings.Contains(msg, "not supported") ||
		strings.Contains(msg, "does not exist") || strings.Contains(msg, "not available"))
}

// Wake returns a channel that receives a value whenever a WebSocket endpoint
// announces a new head (eth_subscribe newHeads). Without WebSocket
// endpoints it never fires and the follower polls.
func (s *Source) Wake(ctx context.Context) <-chan struct{} {
	wake := make(chan struct{}, 1)
	for _, ep := range s.pool.Endpoints() {
		if !ep.Conn.isWS {
			continue
		}
		go s.subscribe(ctx, ep, wake)
	}
	return wake
}

func (s *Source) subscribe(ctx context.Context, ep *endpoint, wake chan<- struct{}) {
	for ctx.Err() == nil {
		err := func() error {
			c, err := ep.Conn.rpcClient(ctx)
			if err != nil {
				return err
			}
			heads := make(chan json.RawMessage, 16)
			sub, err := c.EthSubscribe(ctx, heads, "newHeads")
			if err != nil {
				return fmt.Errorf("eth_subscribe newHeads: %w", err)
			}
			defer sub.Unsubscribe()
			s.log.Info("subscribed to new heads", "endpoint", ep.Name)
			for {
				select {
				case <-ctx.Done():
					return nil
				case err := <-sub.Err():
					return fmt.Errorf("newHeads subscription: %w", err)
				case <-heads:
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			}
		}()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("head subscription ended; polling until it is back", "endpoint", ep.Name, "err", ep.Redact(err))
			ep.Conn.close()
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}
}

// ChainID asks the best endpoint for its chain id.
func (s *Source) ChainID(ctx context.Context) (uint64, error) {
	var id uint64
	err := s.pool.Do(ctx, "eth_chainId", func(ctx context.Context, ep *endpoint) error {
		var raw string
		if err := ep.Conn.callTyped(ctx, &raw, "eth_chainId"); err != nil {
			return err
		}
		v, err := parseQuantity("eth_chainId", raw)
		id = v
		return err
	})
	return id, err
}

// NetworkName is the conventional network label of a chain id.
func NetworkName(chainID uint64) string {
	switch chainID {
	case 1:
		return "mainnet"
	case 11155111:
		return "sepolia"
	case 17000:
		return "holesky"
	case 560048:
		return "hoodi"
	case 1337:
		return "devnet"
	}
	return fmt.Sprintf("chain-%d", chainID)
}

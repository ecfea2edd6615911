package devnet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
)

//go:embed contracts/*.bin contracts/*.abi
var contracts embed.FS

type contract struct {
	abi  abi.ABI
	code []byte
}

func loadContract(name string) (contract, error) {
	bin, err := contracts.ReadFile("contracts/" + name + ".bin")
	if err != nil {
		return contract{}, err
	}
	a, err := contracts.ReadFile("contracts/" + name + ".abi")
	if err != nil {
		return contract{}, err
	}
	parsed, err := abi.JSON(bytes.NewReader(a))
	if err != nil {
		return contract{}, fmt.Errorf("%s abi: %w", name, err)
	}
	return contract{abi: parsed, code: common.FromHex(strings.TrimSpace(string(bin)))}, nil
}

// TrafficConfig shapes generated traffic.
type TrafficConfig struct {
	// BlockInterval is the time between blocks (default 1s).
	BlockInterval time.Duration
	// TxPerBlock is the number of transactions sent per block (default 20).
	TxPerBlock int
	// ReorgEvery makes a reorganization every this many blocks on average
	// (0: never).
	ReorgEvery int
	// MaxReorgDepth bounds generated reorganizations (default 3).
	MaxReorgDepth int
	// Seed makes the traffic reproducible.
	Seed uint64
}

// Stats counts generated traffic.
type Stats struct {
	Blocks, Txs, Reorgs atomic.Int64
}

// Traffic generates transactions and reorganizations on a devnet.
type Traffic struct {
	d     *Devnet
	cfg   TrafficConfig
	log   *slog.Logger
	rng   *rand.Rand
	nonce []uint64
	token contract
	nft   contract
	rev   contract
	// Token, NFT and Reverter are the deployed contracts' addresses.
	Token, NFT, Reverter common.Address
	nfts                 map[common.Address][]*big.Int
	Stats                Stats
	signer               types.Signer
	tip, feeCap          *big.Int
	// steps are scheduled steps (Schedule), one run before each block.
	smu   sync.Mutex
	steps []func(ctx context.Context) error
}

// NewTraffic deploys the devnet contracts (unless a previous run on the
// same chain did) and funds every account with tokens.
func NewTraffic(ctx context.Context, d *Devnet, cfg TrafficConfig, log *slog.Logger) (*Traffic, error) {
	if cfg.BlockInterval <= 0 {
		cfg.BlockInterval = time.Second
	}
	if cfg.TxPerBlock <= 0 {
		cfg.TxPerBlock = 20
	}
	if cfg.MaxReorgDepth <= 0 {
		cfg.MaxReorgDepth = 3
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Traffic{d: d, cfg: cfg, log: log, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), // #nosec G404 -- reproducible test traffic
		nonce: make([]uint64, len(d.keys)), nfts: map[common.Address][]*big.Int{},
		signer: types.LatestSignerForChainID(big.NewInt(ChainID)),
		tip:    big.NewInt(params.GWei), feeCap: big.NewInt(100 * params.GWei)}
	var err error
	if t.token, err = loadContract("DevToken"); err != nil {
		return nil, err
	}
	if t.nft, err = loadContract("DevNFT"); err != nil {
		return nil, err
	}
	if t.rev, err = loadContract("Reverter"); err != nil {
		return nil, err
	}
	deployer := d.addrs[0]
	t.Token = crypto.CreateAddress(deployer, 0)
	t.NFT = crypto.CreateAddress(deployer, 1)
	t.Reverter = crypto.CreateAddress(deployer, 2)
	if err := t.syncNonces(ctx); err != nil {
		return nil, err
	}
	code, err := d.client.CodeAt(ctx, t.Token, nil)
	if err != nil {
		return nil, fmt.Errorf("devnet: read token code: %w", err)
	}
	if len(code) > 0 {
		return t, nil // deployed by an earlier run on this chain
	}
	if t.nonce[0] != 0 {
		return nil, errors.New("devnet: deployer account already used but contracts missing; delete the devnet data directory")
	}
	supply := new(big.Int).Mul(big.NewInt(1_000_000_000), big.NewInt(1_000_000)) // 6 decimals
	ctor, _ := t.token.abi.Pack("", supply)
	if err := t.send(ctx, 0, nil, nil, append(append([]byte{}, t.token.code...), ctor...), 2_000_000); err != nil {
		return nil, fmt.Errorf("devnet: deploy token: %w", err)
	}
	if err := t.send(ctx, 0, nil, nil, t.nft.code, 1_000_000); err != nil {
		return nil, fmt.Errorf("devnet: deploy nft: %w", err)
	}
	if err := t.send(ctx, 0, nil, nil, t.rev.code, 500_000); err != nil {
		return nil, fmt.Errorf("devnet: deploy reverter: %w", err)
	}
	d.Commit()
	// Give every account tokens in one batch transfer.
	to := make([]common.Address, 0, len(d.addrs)-1)
	amounts := make([]*big.Int, 0, len(d.addrs)-1)
	for _, a := range d.addrs[1:] {
		to = append(to, a)
		amounts = append(amounts, big.NewInt(10_000_000_000))
	}
	data, err := t.token.abi.Pack("batch", to, amounts)
	if err != nil {
		return nil, err
	}
	if err := t.send(ctx, 0, &t.Token, nil, data, 3_000_000); err != nil {
		return nil, fmt.Errorf("devnet: fund token holders: %w", err)
	}
	d.Commit()
	t.Stats.Blocks.Add(2)
	return t, nil
}

func (t *Traffic) syncNonces(ctx context.Context) error {
	for i, a := range t.d.addrs {
		n, err := t.d.PendingNonce(ctx, a)
		if err != nil {
			return fmt.Errorf("devnet: nonce of %s: %w", a, err)
		}
		t.nonce[i] = n
	}
	return nil
}

// send signs and submits a transaction from account i.
func (t *Traffic) send(ctx context.Context, i int, to *common.Address, value *big.Int, data []byte, gas uint64) error {
	_, err := t.submit(ctx, i, to, value, data, gas)
	return err
}

func (t *Traffic) submit(ctx context.Context, i int, to *common.Address, value *big.Int, data []byte, gas uint64) (common.Hash, error) {
	if value == nil {
		value = new(big.Int)
	}
	if len(data) > 0 {
		// Contract calls and creations get the node's estimate (with a
		// margin): gas costs change between forks, and a fixed limit that
		// runs out makes every such transaction fail. A call that would
		// fail anyway keeps the fixed limit.
		est, err := t.d.client.EstimateGas(ctx, ethereum.CallMsg{From: t.d.addrs[i], To: to, Value: value, Data: data})
		if err == nil {
			gas = est + est/4
		}
	}
	tx, err := types.SignNewTx(t.d.keys[i], t.signer, &types.DynamicFeeTx{ChainID: big.NewInt(ChainID), Nonce: t.nonce[i],
		GasTipCap: t.tip, GasFeeCap: t.feeCap, Gas: gas, To: to, Value: value, Data: data})
	if err != nil {
		return common.Hash{}, err
	}
	if err := t.d.client.SendTransaction(ctx, tx); err != nil {
		return common.Hash{}, err
	}
	t.nonce[i]++
	t.Stats.Txs.Add(1)
	return tx.Hash(), nil
}

// Pay sends wei from account i to to (mined by the next Commit).
func (t *Traffic) Pay(ctx context.Context, i int, to common.Address, wei *big.Int) (common.Hash, error) {
	return t.submit(ctx, i, &to, wei, nil, 21_000)
}

// PayToken sends units of the devnet token from account i to to.
func (t *Traffic) PayToken(ctx context.Context, i int, to common.Address, units *big.Int) (common.Hash, error) {
	data, err := t.token.abi.Pack("transfer", to, units)
	if err != nil {
		return common.Hash{}, err
	}
	return t.submit(ctx, i, &t.Token, nil, data, 100_000)
}

// MintNFT mints a devnet NFT to to, sent by account i.
func (t *Traffic) MintNFT(ctx context.Context, i int, to common.Address) (common.Hash, error) {
	data, err := t.nft.abi.Pack("mint", to)
	if err != nil {
		return common.Hash{}, err
	}
	return t.submit(ctx, i, &t.NFT, nil, data, 150_000)
}

// PayFailing sends wei from account i to the Reverter, naming to in a
// Transfer log: the transaction fails on chain, so neither its value nor
// its log is a transfer.
func (t *Traffic) PayFailing(ctx context.Context, i int, to common.Address, wei *big.Int) (common.Hash, error) {
	data, err := t.rev.abi.Pack("fail", to)
	if err != nil {
		return common.Hash{}, err
	}
	return t.submit(ctx, i, &t.Reverter, wei, data, 100_000)
}

// Key returns the private key of account i, for tests that send their own
// transactions.
func (t *Traffic) Key(i int) *ecdsa.PrivateKey { return t.d.keys[i] }

// SendRandom submits n random transactions: mostly ETH payments and token
// transfers, sometimes an NFT mint or transfer, a failing call carrying
// value, a multi-recipient token batch or a contract creation.
func (t *Traffic) SendRandom(ctx context.Context, n int) error {
	accounts := len(t.d.addrs)
	for range n {
		from := t.rng.IntN(accounts)
		to := t.d.addrs[t.rng.IntN(accounts)]
		var err error
		switch r := t.rng.IntN(100); {
		case r < 45:
			v := new(big.Int).Mul(big.NewInt(int64(1+t.rng.IntN(1000))), big.NewInt(params.GWei*1000))
			err = t.send(ctx, from, &to, v, nil, 21_000)
		case r < 80:
			data, _ := t.token.abi.Pack("transfer", to, big.NewInt(int64(1+t.rng.IntN(1_000_000))))
			err = t.send(ctx, from, &t.Token, nil, data, 100_000)
		case r < 86:
			k := 2 + t.rng.IntN(4)
			tos := make([]common.Address, k)
			vals := make([]*big.Int, k)
			for j := range tos {
				tos[j] = t.d.addrs[t.rng.IntN(accounts)]
				vals[j] = big.NewInt(int64(1 + t.rng.IntN(1000)))
			}
			data, _ := t.token.abi.Pack("batch", tos, vals)
			err = t.send(ctx, from, &t.Token, nil, data, 300_000)
		case r < 92:
			data, _ := t.nft.abi.Pack("mint", to)
			err = t.send(ctx, from, &t.NFT, nil, data, 150_000)
		case r < 97:
			// Fails on chain: its value and its would-be Transfer log must
			// not become transfers.
			data, _ := t.rev.abi.Pack("fail", to)
			err = t.send(ctx, from, &t.Reverter, big.NewInt(params.GWei), data, 100_000)
		default:
			// A contract creation that carries value.
			err = t.send(ctx, from, nil, big.NewInt(params.GWei), []byte{0x60, 0x00, 0x60, 0x00, 0xf3}, 100_000)
		}
		if err != nil {
			t.log.Debug("devnet: send failed; resyncing nonces", "err", err)
			if err := t.syncNonces(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// Step sends n random transactions and seals them into a block.
func (t *Traffic) Step(ctx context.Context, n int) error {
	if err := t.SendRandom(ctx, n); err != nil {
		return err
	}
	t.d.Commit()
	t.Stats.Blocks.Add(1)
	return nil
}

// Reorg replaces the newest depth blocks with a longer branch of depth+1
// blocks that holds the abandoned transactions and new ones.
func (t *Traffic) Reorg(ctx context.Context, depth int) error {
	if err := t.d.Reorg(depth); err != nil {
		// Transactions that could not be mined (a nonce gap after a send
		// error) block the fork: drop them and try once more.
		t.d.Rollback()
		if err := t.d.Reorg(depth); err != nil {
			return fmt.Errorf("devnet reorg: %w", err)
		}
	}
	if err := t.syncNonces(ctx); err != nil {
		return err
	}
	for range depth + 1 {
		if err := t.Step(ctx, 1+t.rng.IntN(t.cfg.TxPerBlock)); err != nil {
			return err
		}
	}
	t.Stats.Reorgs.Add(1)
	return nil
}

// Run makes a block every BlockInterval until ctx ends, with a reorg every
// ReorgEvery blocks on average.
func (t *Traffic) Run(ctx context.Context) error {
	tick := time.NewTicker(t.cfg.BlockInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if t.cfg.ReorgEvery > 0 && t.rng.IntN(t.cfg.ReorgEvery) == 0 && t.d.Head().Number.Uint64() > uint64(t.cfg.MaxReorgDepth)+2 {
			depth := 1 + t.rng.IntN(t.cfg.MaxReorgDepth)
			if err := t.Reorg(ctx, depth); err != nil {
				t.log.Warn("devnet: reorg skipped", "err", err)
			} else {
				t.log.Info("devnet: reorganized", "depth", depth, "height", t.d.Head().Number.Uint64())
			}
			continue
		}
		if step := t.nextStep(); step != nil {
			if err := step(ctx); err != nil {
				t.log.Warn("devnet: a scheduled step failed", "err", err)
			}
		}
		if err := t.Step(ctx, t.cfg.TxPerBlock); err != nil {
			return err
		}
	}
}

package devnet

import (
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/eth/tracers"
	_ "github.com/ethereum/go-ethereum/eth/tracers/native" // the callTracer detection's contract-wallet rule asks for
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
)

// ChainID is the devnet's chain id (the same as go-ethereum's simulated
// backend).
const ChainID = 1337

// Config configures a devnet.
type Config struct {
	// DataDir keeps the chain on disk across restarts; empty keeps it in
	// memory.
	DataDir string
	// Host and Port of the JSON-RPC server (HTTP and WebSocket share it).
	// Port 0 picks a free port.
	Host string
	Port int
	// Accounts is the number of funded accounts (default 32).
	Accounts int
	// Seed derives the account keys; the same seed gives the same accounts.
	Seed string
}

// Devnet is a running development chain.
type Devnet struct {
	stack  *node.Node
	eth    *eth.Ethereum
	beacon *catalyst.SimulatedBeacon
	client *ethclient.Client
	keys   []*ecdsa.PrivateKey
	addrs  []common.Address
	mu     sync.Mutex // serializes Commit and Fork
}

// FundedBalance is the genesis balance of every devnet account.
var FundedBalance = new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(params.Ether))

// Keys derives n deterministic private keys from seed.
func Keys(seed string, n int) []*ecdsa.PrivateKey {
	keys := make([]*ecdsa.PrivateKey, n)
	for i := range keys {
		var idx [8]byte
		binary.BigEndian.PutUint64(idx[:], uint64(i))
		for ctr := byte(0); ; ctr++ {
			k, err := crypto.ToECDSA(crypto.Keccak256([]byte("cordon-devnet"), []byte(seed), idx[:], []byte{ctr}))
			if err == nil {
				keys[i] = k
				break
			}
		}
	}
	return keys
}

// Start starts a devnet.
func Start(cfg Config) (*Devnet, error) {
	if cfg.Accounts <= 0 {
		cfg.Accounts = 32
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	d := &Devnet{keys: Keys(cfg.Seed, cfg.Accounts)}
	alloc := core.SystemContractAllocs()
	user := types.GenesisAlloc{}
	for _, k := range d.keys {
		a := crypto.PubkeyToAddress(k.PublicKey)
		d.addrs = append(d.addrs, a)
		user[a] = types.Account{Balance: FundedBalance}
	}
	maps.Copy(alloc, user)

	nodeConf := node.DefaultConfig
	nodeConf.Name = "cordon-devnet"
	nodeConf.DataDir = cfg.DataDir
	nodeConf.P2P = p2p.Config{NoDiscovery: true, MaxPeers: 0}
	nodeConf.HTTPHost, nodeConf.HTTPPort = cfg.Host, cfg.Port
	nodeConf.WSHost, nodeConf.WSPort = cfg.Host, cfg.Port
	// debug: debug_traceTransaction, as an archive node offers it.
	nodeConf.HTTPModules = []string{"eth", "net", "web3", "debug"}
	nodeConf.WSModules = []string{"eth", "net", "web3", "debug"}
	nodeConf.HTTPVirtualHosts = []string{"*"}
	nodeConf.WSOrigins = []string{"*"}
	nodeConf.AuthPort = 0
	nodeConf.IPCPath = ""

	ethConf := ethconfig.Defaults
	ethConf.Genesis = &core.Genesis{Config: params.AllDevChainProtocolChanges, GasLimit: ethconfig.Defaults.Miner.GasCeil, Alloc: alloc}
	ethConf.SyncMode = ethconfig.FullSync
	ethConf.TxPool.NoLocals = true
	ethConf.NetworkId = ChainID
	ethConf.LogNoHistory = true // no log index: the watcher reads receipts, not eth_getLogs

	stack, err := node.New(&nodeConf)
	if err != nil {
		return nil, fmt.Errorf("devnet node: %w", err)
	}
	backend, err := eth.New(stack, &ethConf)
	if err != nil {
		_ = stack.Close() // the start error is the one to report
		return nil, fmt.Errorf("devnet eth service: %w", err)
	}
	fs := filters.NewFilterSystem(backend.APIBackend, filters.Config{})
	stack.RegisterAPIs([]rpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(fs)}})
	stack.RegisterAPIs(tracers.APIs(backend.APIBackend))
	if err := stack.Start(); err != nil {
		_ = stack.Close() // the start error is the one to report
		return nil, fmt.Errorf("devnet start: %w", err)
	}
	beacon, err := catalyst.NewSimulatedBeacon(0, common.Address{}, backend)
	if err != nil {
		_ = stack.Close() // the start error is the one to report
		return nil, fmt.Errorf("devnet beacon: %w", err)
	}
	d.stack, d.eth, d.beacon = stack, backend, beacon
	d.client = ethclient.NewClient(stack.Attach())
	return d, nil
}

// Close stops the devnet, flushing its chain to DataDir.
func (d *Devnet) Close() error {
	d.client.Close()
	return errors.Join(d.beacon.Stop(), d.stack.Close())
}

// HTTPURL is the JSON-RPC HTTP endpoint.
func (d *Devnet) HTTPURL() string { return d.stack.HTTPEndpoint() }

// WSURL is the JSON-RPC WebSocket endpoint.
func (d *Devnet) WSURL() string { return d.stack.WSEndpoint() }

// Client is an in-process client (for the traffic generator and tests).
func (d *Devnet) Client() *ethclient.Client { return d.client }

// Accounts returns the funded accounts' addresses.
func (d *Devnet) Accounts() []common.Address { return d.addrs }

// Key returns the private key of account i.
func (d *Devnet) Key(i int) *ecdsa.PrivateKey { return d.keys[i] }

// Head returns the current head block's header.
func (d *Devnet) Head() *types.Header { return d.eth.BlockChain().CurrentBlock() }

// Commit seals the pending transactions into a new block and returns its
// hash.
func (d *Devnet) Commit() common.Hash {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.beacon.Commit()
}

// Reorg rewinds the head by depth blocks; the next Commit calls build the
// new branch. Transactions of the abandoned blocks return to the pool.
// It fails when transactions are pending.
func (d *Devnet) Reorg(depth int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	head := d.eth.BlockChain().CurrentBlock()
	if head.Number.Uint64() < uint64(depth) {
		return fmt.Errorf("reorg depth %d exceeds head %d", depth, head.Number.Uint64())
	}
	parent := d.eth.BlockChain().GetHeaderByNumber(head.Number.Uint64() - uint64(depth))
	if parent == nil {
		return fmt.Errorf("no canonical block at %d", head.Number.Uint64()-uint64(depth))
	}
	return d.beacon.Fork(parent.Hash())
}

// Rollback drops every pending transaction.
func (d *Devnet) Rollback() { d.beacon.Rollback() }

// PendingNonce returns the next nonce of an account, pool included.
func (d *Devnet) PendingNonce(ctx context.Context, a common.Address) (uint64, error) {
	return d.client.PendingNonceAt(ctx, a)
}

// Blocks returns the canonical blocks from..to (inclusive).
func (d *Devnet) Blocks(from, to uint64) ([]*types.Block, error) {
	bc := d.eth.BlockChain()
	out := make([]*types.Block, 0, to-from+1)
	for n := from; n <= to; n++ {
		b := bc.GetBlockByNumber(n)
		if b == nil {
			return nil, fmt.Errorf("no canonical block at %d", n)
		}
		out = append(out, b)
	}
	return out, nil
}

// Import inserts blocks of another devnet started with the same Seed (so
// the same genesis) and makes the newest of them the head; the next
// Commit builds on it. Two devnets that share a prefix this way and then
// commit on their own are two nodes on two branches of one chain, each
// block genuine (a lying endpoint's fabricated branch, in tests).
func (d *Devnet) Import(blocks []*types.Block) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(blocks) == 0 {
		return nil
	}
	if _, err := d.eth.BlockChain().InsertChain(blocks); err != nil {
		return fmt.Errorf("devnet import: %w", err)
	}
	head := d.eth.BlockChain().GetBlockByHash(blocks[len(blocks)-1].Hash())
	if head == nil {
		return errors.New("devnet import: imported head not found")
	}
	if _, err := d.eth.BlockChain().SetCanonical(head); err != nil {
		return fmt.Errorf("devnet import: %w", err)
	}
	// The imported blocks may carry timestamps ahead of the clock (blocks
	// committed faster than one a second): seal one empty block after
	// them, so the beacon's next timestamps follow the new head.
	return d.beacon.AdjustTime(time.Second)
}

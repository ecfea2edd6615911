package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
)

// BTCNode is what the dispatcher asks of a Bitcoin network's nodes.
type BTCNode interface {
	// FeeRate is the node's estimate (sat/vbyte) for a confirmation
	// within a few blocks; 0 when it has none.
	FeeRate(ctx context.Context) (int64, error)
	// PrevTx is a transaction by id (the full previous transactions a
	// PSBT carries; the node needs its transaction index).
	PrevTx(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error)
	// Broadcast sends tx; a transaction the node already has is not an
	// error.
	Broadcast(ctx context.Context, tx *wire.MsgTx) error
}

// ETHNode is what the dispatcher asks of an Ethereum network's nodes.
type ETHNode interface {
	PendingNonce(ctx context.Context, a common.Address) (uint64, error)
	EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error)
	// Fees are the pending block's base fee and a suggested tip (wei).
	Fees(ctx context.Context) (baseFee, tip *big.Int, err error)
	// Broadcast sends tx; a transaction the node already has is not an
	// error.
	Broadcast(ctx context.Context, tx *types.Transaction) error
}

// BTCClients are Bitcoin nodes (btcd, Bitcoin Core) over JSON-RPC: reads
// go to the first that answers, a broadcast to every one.
type BTCClients []*rpcclient.Client

// NewBTCClients connects to the nodes (HTTP POST mode).
func NewBTCClients(ccs []*rpcclient.ConnConfig) (BTCClients, error) {
	var out BTCClients
	for _, cc := range ccs {
		c, err := rpcclient.New(cc, nil)
		if err != nil {
			out.Close()
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("dispatch: no bitcoin node")
	}
	return out, nil
}

// Close closes the clients.
func (b BTCClients) Close() {
	for _, c := range b {
		c.Shutdown()
	}
}

// FeeRate asks estimatesmartfee, then estimatefee (btcd).
func (b BTCClients) FeeRate(ctx context.Context) (int64, error) {
	var last error
	for _, c := range b {
		if r, err := c.EstimateSmartFee(3, &btcjson.EstimateModeConservative); err == nil && r.FeeRate != nil && *r.FeeRate > 0 {
			return btcPerKBToSatPerVB(*r.FeeRate), nil
		}
		r, err := c.EstimateFee(3)
		if err != nil {
			last = err
			continue
		}
		if r <= 0 {
			return 0, nil
		}
		return btcPerKBToSatPerVB(r), nil
	}
	return 0, fmt.Errorf("dispatch: fee estimate: %w", last)
}

func btcPerKBToSatPerVB(r float64) int64 {
	amt, err := btcutil.NewAmount(r)
	if err != nil || amt <= 0 {
		return 0
	}
	return max(1, (int64(amt)+999)/1000)
}

// PrevTx is getrawtransaction from the first node that has it.
func (b BTCClients) PrevTx(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error) {
	tx, err := first(b, func(c *rpcclient.Client) (*wire.MsgTx, error) {
		t, err := c.GetRawTransaction(&txid)
		if err != nil {
			return nil, err
		}
		return t.MsgTx(), nil
	})
	if err != nil {
		return nil, fmt.Errorf("dispatch: previous transaction %s: %w", txid, err)
	}
	return tx, nil
}

// Broadcast sends tx to every node; it succeeds when one took it or
// already had it.
func (b BTCClients) Broadcast(ctx context.Context, tx *wire.MsgTx) error {
	err := toAll(b, func(c *rpcclient.Client) error {
		_, err := c.SendRawTransaction(tx, false)
		return err
	})
	if err != nil {
		return fmt.Errorf("dispatch: broadcast %s: %w", tx.TxHash(), err)
	}
	return nil
}

// knownTx tells whether a node refused a transaction because it has it
// already (in its pool or its chain).
func knownTx(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "already have") || strings.Contains(s, "already known") || strings.Contains(s, "already in block chain") ||
		strings.Contains(s, "txn-already") || strings.Contains(s, "already exists")
}

// ETHClients are Ethereum nodes over JSON-RPC: reads go to the first that
// answers, a broadcast to every one.
type ETHClients []*ethclient.Client

// DialETH connects to the nodes.
func DialETH(ctx context.Context, urls []string) (ETHClients, error) {
	var out ETHClients
	for _, u := range urls {
		c, err := ethclient.DialContext(ctx, u)
		if err != nil {
			out.Close()
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("dispatch: no ethereum node")
	}
	return out, nil
}

// Close closes the clients.
func (e ETHClients) Close() {
	for _, c := range e {
		c.Close()
	}
}

// PendingNonce is the first answer of eth_getTransactionCount(pending).
func (e ETHClients) PendingNonce(ctx context.Context, a common.Address) (uint64, error) {
	n, err := first(e, func(c *ethclient.Client) (uint64, error) { return c.PendingNonceAt(ctx, a) })
	if err != nil {
		return 0, fmt.Errorf("dispatch: pending nonce of %s: %w", a.Hex(), err)
	}
	return n, nil
}

// EstimateGas is the first answer of eth_estimateGas.
func (e ETHClients) EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error) {
	n, err := first(e, func(c *ethclient.Client) (uint64, error) { return c.EstimateGas(ctx, msg) })
	if err != nil {
		return 0, fmt.Errorf("dispatch: gas estimate: %w", err)
	}
	return n, nil
}

// Fees are the latest block's base fee and eth_maxPriorityFeePerGas.
func (e ETHClients) Fees(ctx context.Context) (*big.Int, *big.Int, error) {
	var last error
	for _, c := range e {
		h, err := c.HeaderByNumber(ctx, nil)
		if err != nil {
			last = err
			continue
		}
		if h.BaseFee == nil {
			return nil, nil, errors.New("dispatch: the chain has no base fee (before London): EIP-1559 transactions need one")
		}
		tip, err := c.SuggestGasTipCap(ctx)
		if err != nil {
			last = err
			continue
		}
		return h.BaseFee, tip, nil
	}
	return nil, nil, fmt.Errorf("dispatch: fees: %w", last)
}

// Broadcast sends tx to every node; it succeeds when one took it or
// already had it.
func (e ETHClients) Broadcast(ctx context.Context, tx *types.Transaction) error {
	err := toAll(e, func(c *ethclient.Client) error {
		err := c.SendTransaction(ctx, tx)
		if err != nil && strings.Contains(strings.ToLower(err.Error()), "nonce too low") {
			// Mined already (the block stream has not said so yet), or
			// another transaction took the nonce: only a receipt of
			// this very transaction makes it a success.
			if rc, rerr := c.TransactionReceipt(ctx, tx.Hash()); rerr == nil && rc != nil {
				return nil
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("dispatch: broadcast %s: %w", tx.Hash().Hex(), err)
	}
	return nil
}

// first asks each client in turn and returns the first answer, or the
// last error.
func first[C, T any](cs []C, ask func(C) (T, error)) (T, error) {
	var zero T
	last := errors.New("no node")
	for _, c := range cs {
		v, err := ask(c)
		if err == nil {
			return v, nil
		}
		last = err
	}
	return zero, last
}

// toAll sends with every client: it succeeds when one took the
// transaction or already had it, and otherwise returns every error.
func toAll[C any](cs []C, send func(C) error) error {
	if len(cs) == 0 {
		return errors.New("no node")
	}
	var errs []error
	for _, c := range cs {
		if err := send(c); err != nil && !knownTx(err) {
			errs = append(errs, err)
		}
	}
	if len(errs) < len(cs) {
		return nil
	}
	return errors.Join(errs...)
}

package btcnode

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Script forms the wallet pays itself with, so later steps spend them.
const (
	formP2WPKH = iota
	formP2PKH
	formP2TR
	numForms
)

type key struct {
	priv    *btcec.PrivateKey
	scripts [numForms][]byte
}

type utxo struct {
	op       wire.OutPoint
	value    int64
	key      *key
	form     int
	coinbase bool
}

// Wallet is the traffic generator of a dev or test node: it mines to its
// own key, pays many addresses (its own, so that it spends them later, and
// random ones of every script type), and reorganizes the chain on demand.
// It keeps no state that matters: every output it spends is checked with
// gettxout first, so reorgs and restarts only cost it some candidates.
type Wallet struct {
	node   *Node
	params *chaincfg.Params
	keys   []*key
	byPk   map[string]*key
	rng    *lockedRand

	mu    sync.Mutex
	utxos []utxo
}

// lockedRand is a rand.Rand safe for concurrent use: Pay and PayTo may
// run in two goroutines (the dev traffic and the hot wallets' funding).
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) IntN(n int) int       { l.mu.Lock(); defer l.mu.Unlock(); return l.r.IntN(n) }
func (l *lockedRand) Int64N(n int64) int64 { l.mu.Lock(); defer l.mu.Unlock(); return l.r.Int64N(n) }
func (l *lockedRand) Uint32() uint32       { l.mu.Lock(); defer l.mu.Unlock(); return l.r.Uint32() }

func params(network string) (*chaincfg.Params, error) {
	switch network {
	case "", "regtest":
		return &chaincfg.RegressionNetParams, nil
	case "simnet":
		return &chaincfg.SimNetParams, nil
	}
	return nil, fmt.Errorf("btcnode: network %q: want regtest or simnet", network)
}

func deriveKeys(seed string, n int, p *chaincfg.Params) ([]*key, error) {
	out := make([]*key, n)
	for i := range out {
		sum := sha256.Sum256([]byte(fmt.Sprintf("cordon-btc-dev/%s/%d", seed, i)))
		priv, pub := btcec.PrivKeyFromBytes(sum[:])
		k := &key{priv: priv}
		pkh := btcutil.Hash160(pub.SerializeCompressed())
		a1, err := btcutil.NewAddressWitnessPubKeyHash(pkh, p)
		if err != nil {
			return nil, err
		}
		a2, err := btcutil.NewAddressPubKeyHash(pkh, p)
		if err != nil {
			return nil, err
		}
		a3, err := btcutil.NewAddressTaproot(txscript.ComputeTaprootKeyNoScript(pub).SerializeCompressed()[1:], p)
		if err != nil {
			return nil, err
		}
		for f, a := range []btcutil.Address{a1, a2, a3} {
			if k.scripts[f], err = txscript.PayToAddrScript(a); err != nil {
				return nil, err
			}
		}
		out[i] = k
	}
	return out, nil
}

// MiningAddress is the address the wallet of seed mines to; start the node
// with it.
func MiningAddress(network, seed string) (string, error) {
	p, err := params(network)
	if err != nil {
		return "", err
	}
	keys, err := deriveKeys(seed, 1, p)
	if err != nil {
		return "", err
	}
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(keys[0].scripts[formP2WPKH], p)
	if err != nil || len(addrs) != 1 {
		return "", fmt.Errorf("btcnode: mining address of seed %q: %d addresses, %w", seed, len(addrs), err)
	}
	return addrs[0].EncodeAddress(), nil
}

// NewWallet returns the wallet of seed on node.
func NewWallet(node *Node, network, seed string, rngSeed uint64) (*Wallet, error) {
	p, err := params(network)
	if err != nil {
		return nil, err
	}
	keys, err := deriveKeys(seed, 16, p)
	if err != nil {
		return nil, err
	}
	w := &Wallet{node: node, params: p, keys: keys, byPk: map[string]*key{}, rng: &lockedRand{r: rand.New(rand.NewPCG(rngSeed, 7))}} //nolint:gosec // traffic simulation, not key material
	for _, k := range keys {
		for _, s := range k.scripts {
			w.byPk[string(s)] = k
		}
	}
	return w, nil
}

// Height returns the node's best height.
func (w *Wallet) Height() (int64, error) { return w.node.client.GetBlockCount() }

// Mine mines n blocks and records their coinbase outputs.
func (w *Wallet) Mine(n int) ([]*chainhash.Hash, error) {
	hashes, err := w.node.client.Generate(uint32(n))
	if err != nil {
		return nil, fmt.Errorf("generate %d: %w", n, err)
	}
	for _, h := range hashes {
		blk, err := w.node.client.GetBlock(h)
		if err != nil {
			return nil, fmt.Errorf("getblock %s: %w", h, err)
		}
		w.noteTx(blk.Transactions[0], true)
	}
	return hashes, nil
}

// Bootstrap mines until coinbase outputs are spendable (101 blocks) and,
// on simnet, until segwit and taproot are active (their deployments need
// three 100-block signalling windows there; regtest has them from the
// start).
func (w *Wallet) Bootstrap() error {
	h, err := w.Height()
	if err != nil {
		return err
	}
	target := int64(110)
	if w.params.Net == chaincfg.SimNetParams.Net {
		target = 450
	}
	if h < target {
		_, err = w.Mine(int(target - h))
		return err
	}
	// Restarted on an existing chain: find the wallet's coinbases again.
	for height := max(h-200, 1); height <= h; height++ {
		hash, err := w.node.client.GetBlockHash(height)
		if err != nil {
			return fmt.Errorf("getblockhash %d: %w", height, err)
		}
		blk, err := w.node.client.GetBlock(hash)
		if err != nil {
			return fmt.Errorf("getblock %d: %w", height, err)
		}
		for i, tx := range blk.Transactions {
			w.noteTx(tx, i == 0)
		}
	}
	return nil
}

func (w *Wallet) noteTx(tx *wire.MsgTx, coinbase bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := tx.TxHash()
	for v, out := range tx.TxOut {
		k, ok := w.byPk[string(out.PkScript)]
		if !ok {
			continue
		}
		form := 0
		for f, s := range k.scripts {
			if string(s) == string(out.PkScript) {
				form = f
			}
		}
		w.utxos = append(w.utxos, utxo{op: wire.OutPoint{Hash: id, Index: uint32(v)}, value: out.Value, key: k, form: form, coinbase: coinbase})
	}
}

// spendable picks up to n outputs the node confirms are unspent (and
// mature, for coinbases), newest candidates first (mostly change, which
// keeps the candidate list short), dropping candidates that are gone.
func (w *Wallet) spendable(n int) []utxo {
	var picked, keep []utxo
	for len(picked) < n {
		w.mu.Lock()
		if len(w.utxos) == 0 {
			w.mu.Unlock()
			break
		}
		// Mostly the newest candidate, sometimes a random one.
		i := len(w.utxos) - 1
		if w.rng.IntN(4) == 0 {
			i = w.rng.IntN(len(w.utxos))
		}
		u := w.utxos[i]
		w.utxos[i] = w.utxos[len(w.utxos)-1]
		w.utxos = w.utxos[:len(w.utxos)-1]
		w.mu.Unlock()
		res, err := w.node.client.GetTxOut(&u.op.Hash, u.op.Index, true)
		switch {
		case err != nil:
			keep = append(keep, u) // ask again next time
		case res == nil:
			// spent, or its transaction was reorganized away
		case u.coinbase && res.Confirmations < int64(w.params.CoinbaseMaturity):
			keep = append(keep, u)
		default:
			picked = append(picked, u)
		}
		if len(keep) > 64 {
			break // only immature or unreachable candidates left near the top
		}
	}
	w.mu.Lock()
	w.utxos = append(keep, w.utxos...)
	w.mu.Unlock()
	return picked
}

// Pay builds, signs and sends one transaction spending up to ins wallet
// outputs into outs payments plus change. It returns the transaction.
func (w *Wallet) Pay(ins, outs int) (*wire.MsgTx, error) { return w.pay(ins, outs, nil) }

// PayTo sends sat to pkScript (and change back to the wallet), from up to
// ten of the wallet's outputs.
func (w *Wallet) PayTo(pkScript []byte, sat int64) (*wire.MsgTx, error) {
	return w.pay(10, 0, wire.NewTxOut(sat, pkScript))
}

func (w *Wallet) pay(ins, outs int, fixed *wire.TxOut) (*wire.MsgTx, error) {
	inputs := w.spendable(ins)
	if len(inputs) == 0 {
		return nil, errors.New("no spendable outputs")
	}
	tx := wire.NewMsgTx(2)
	if fixed != nil {
		tx.AddTxOut(fixed)
	}
	var total int64
	prev := txscript.NewMultiPrevOutFetcher(nil)
	for _, u := range inputs {
		tx.AddTxIn(wire.NewTxIn(&u.op, nil, nil))
		total += u.value
		prev.AddPrevOut(u.op, wire.NewTxOut(u.value, u.key.scripts[u.form]))
	}
	fee := int64(300 + 200*len(inputs) + 60*outs)
	budget := total - fee
	if fixed != nil {
		budget -= fixed.Value
	}
	if budget < int64(outs+1)*20_000 {
		outs = 0
	}
	for range outs {
		amt := 10_000 + w.rng.Int64N(max(budget/int64(2*(outs+1)), 10_001)-10_000)
		script, err := w.payee()
		if err != nil {
			return nil, err
		}
		tx.AddTxOut(wire.NewTxOut(amt, script))
		budget -= amt
	}
	if w.rng.IntN(4) == 0 {
		data, err := txscript.NullDataScript([]byte(fmt.Sprintf("cordon dev %d", w.rng.Uint32())))
		if err != nil {
			return nil, err
		}
		tx.AddTxOut(wire.NewTxOut(0, data))
	}
	if budget < 1000 {
		return nil, fmt.Errorf("inputs of %d sat cannot pay the fee", total)
	}
	change := w.keys[w.rng.IntN(len(w.keys))]
	tx.AddTxOut(wire.NewTxOut(budget, change.scripts[w.rng.IntN(numForms)]))

	hashes := txscript.NewTxSigHashes(tx, prev)
	for i, u := range inputs {
		pk := u.key.scripts[u.form]
		var err error
		switch u.form {
		case formP2WPKH:
			tx.TxIn[i].Witness, err = txscript.WitnessSignature(tx, hashes, i, u.value, pk, txscript.SigHashAll, u.key.priv, true)
		case formP2PKH:
			tx.TxIn[i].SignatureScript, err = txscript.SignatureScript(tx, i, pk, txscript.SigHashAll, u.key.priv, true)
		case formP2TR:
			tx.TxIn[i].Witness, err = txscript.TaprootWitnessSignature(tx, hashes, i, u.value, pk, txscript.SigHashDefault, u.key.priv)
		}
		if err != nil {
			return nil, fmt.Errorf("sign input %d: %w", i, err)
		}
	}
	if _, err := w.node.client.SendRawTransaction(tx, true); err != nil {
		// The inputs stay candidates; gettxout decides next time.
		w.mu.Lock()
		w.utxos = append(w.utxos, inputs...)
		w.mu.Unlock()
		return nil, fmt.Errorf("sendrawtransaction: %w", err)
	}
	w.noteTx(tx, false)
	return tx, nil
}

// payee returns an output script: half the time one of the wallet's own
// (spent later), otherwise a random address of another type.
func (w *Wallet) payee() ([]byte, error) {
	if w.rng.IntN(2) == 0 {
		return w.keys[w.rng.IntN(len(w.keys))].scripts[w.rng.IntN(numForms)], nil
	}
	var h [32]byte
	for i := range h {
		h[i] = byte(w.rng.Uint32())
	}
	var a btcutil.Address
	var err error
	switch w.rng.IntN(4) {
	case 0:
		a, err = btcutil.NewAddressScriptHashFromHash(h[:20], w.params)
	case 1:
		a, err = btcutil.NewAddressWitnessScriptHash(h[:], w.params)
	case 2:
		a, err = btcutil.NewAddressPubKeyHash(h[:20], w.params)
	default:
		a, err = btcutil.NewAddressWitnessPubKeyHash(h[:20], w.params)
	}
	if err != nil {
		return nil, err
	}
	return txscript.PayToAddrScript(a)
}

// Step sends txs transactions (each paying several addresses and spending
// earlier payments) and mines one block.
func (w *Wallet) Step(txs int) error {
	for range txs {
		if _, err := w.Pay(1+w.rng.IntN(3), 1+w.rng.IntN(6)); err != nil {
			return err
		}
	}
	_, err := w.Mine(1)
	return err
}

// Reorg replaces the newest depth blocks with a longer branch of depth+1
// blocks: it invalidates the block at height tip-depth+1, sends a new
// transaction so the new branch differs, and mines.
func (w *Wallet) Reorg(depth int) error {
	h, err := w.Height()
	if err != nil {
		return err
	}
	if int64(depth) >= h {
		return fmt.Errorf("reorg of %d blocks on a chain of height %d", depth, h)
	}
	hash, err := w.node.client.GetBlockHash(h - int64(depth) + 1)
	if err != nil {
		return err
	}
	if _, err := w.node.Call("invalidateblock", hash.String()); err != nil {
		return fmt.Errorf("invalidateblock %s: %w", hash, err)
	}
	if _, err := w.Pay(1, 2); err != nil {
		return fmt.Errorf("reorg: %w", err)
	}
	_, err = w.Mine(depth + 1)
	return err
}

// Addresses lists the addresses the wallet pays itself to (every key in
// every script form), for tests and the dev intel feed.
func (w *Wallet) Addresses() []string {
	var out []string
	for _, k := range w.keys {
		for _, s := range k.scripts {
			if _, addrs, _, err := txscript.ExtractPkScriptAddrs(s, w.params); err == nil && len(addrs) == 1 {
				out = append(out, addrs[0].EncodeAddress())
			}
		}
	}
	return out
}

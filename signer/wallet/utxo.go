package wallet

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/common"

	"github.com/cordonhq/cordon/internal/chain"
)

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func lower(a common.Address) string { return strings.ToLower(a.Hex()) }

// UTXO is one of the wallet's unspent outputs.
type UTXO struct {
	TxHash   string `json:"tx_hash"`
	Vout     uint32 `json:"vout"`
	Value    int64  `json:"value"`
	Address  string `json:"address"`
	Height   uint64 `json:"height"`
	Coinbase bool   `json:"coinbase,omitempty"`
}

// OutPoint is the output's outpoint.
func (u UTXO) OutPoint() (wire.OutPoint, error) {
	h, err := chainhash.NewHashFromStr(u.TxHash)
	if err != nil || len(u.TxHash) != 64 {
		return wire.OutPoint{}, fmt.Errorf("utxo %s:%d: bad transaction hash", u.TxHash, u.Vout)
	}
	return wire.OutPoint{Hash: *h, Index: u.Vout}, nil
}

func opKey(hash string, vout uint32) string { return hash + ":" + strconv.FormatUint(uint64(vout), 10) }

// undo is what one added block did to the view.
type undo struct {
	Hash    string   `json:"hash"`
	Height  uint64   `json:"height"`
	Created []string `json:"created"`
	Spent   []UTXO   `json:"spent"`
}

// ErrReorgTooDeep is a removed block the view holds no undo record for.
var ErrReorgTooDeep = errors.New("wallet: reorganization deeper than the view's undo window")

// UTXOView is a wallet's unspent outputs on the canonical chain, fed by
// the block stream: AddBlock and RemoveBlock in stream order. It keeps
// an undo record for the newest Depth blocks, so a reorganization up to
// that depth is undone exactly. Outputs reserved by a built transaction
// are not selected again until released. Safe for concurrent use.
type UTXOView struct {
	mu       sync.Mutex
	network  string
	own      map[string]bool // addresses
	depth    int
	tip      uint64
	tipHash  string
	utxos    map[string]UTXO
	undos    []undo            // oldest first
	reserved map[string]string // outpoint → txid that spends it
}

// DefaultUndoDepth is the undo window (blocks) of a view.
const DefaultUndoDepth = 288

// NewUTXOView is an empty view of the outputs paying addresses on
// network, keeping undo records for depth blocks (0: DefaultUndoDepth).
func NewUTXOView(network string, addresses []string, depth int) *UTXOView {
	if depth <= 0 {
		depth = DefaultUndoDepth
	}
	v := &UTXOView{network: network, own: map[string]bool{}, depth: depth, utxos: map[string]UTXO{}, reserved: map[string]string{}}
	for _, a := range addresses {
		v.own[a] = true
	}
	return v
}

// AddBlock applies an added block: its outputs to the wallet's
// addresses, then its spends of the wallet's outputs (an output created
// and spent in the same block never shows).
func (v *UTXOView) AddBlock(ev chain.BlockEvent, outputs []chain.Output, spends []chain.Spend) error {
	if ev.Type != chain.BlockAdded || ev.Chain != chain.BTC || ev.Network != v.network {
		return fmt.Errorf("utxo view: %s event of %s/%s, the view follows btc/%s added blocks", ev.Type, ev.Chain, ev.Network, v.network)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tipHash != "" && ev.ParentHash != v.tipHash {
		return fmt.Errorf("utxo view: block %d %s has parent %s, the view's tip is %d %s", ev.Height, ev.Hash, ev.ParentHash, v.tip, v.tipHash)
	}
	u := undo{Hash: ev.Hash, Height: ev.Height}
	for _, o := range outputs {
		if o.Address == nil || !v.own[*o.Address] || o.BlockHash != ev.Hash {
			continue
		}
		amt, err := strconv.ParseInt(o.Amount.String(), 10, 64)
		if err != nil || amt > btcutil.MaxSatoshi {
			return fmt.Errorf("utxo view: output %s:%d: amount %s", o.TxHash, o.Vout, o.Amount)
		}
		k := opKey(o.TxHash, o.Vout)
		if _, dup := v.utxos[k]; dup {
			continue // BIP 30: never a second live output of one outpoint
		}
		v.utxos[k] = UTXO{TxHash: o.TxHash, Vout: o.Vout, Value: amt, Address: *o.Address, Height: ev.Height, Coinbase: o.Coinbase}
		u.Created = append(u.Created, k)
	}
	for _, s := range spends {
		if s.BlockHash != ev.Hash {
			continue
		}
		k := opKey(s.PrevTxHash, s.PrevVout)
		if old, ok := v.utxos[k]; ok {
			delete(v.utxos, k)
			u.Spent = append(u.Spent, old)
		}
	}
	v.undos = append(v.undos, u)
	for len(v.undos) > v.depth {
		// Final now: its spends never come back, nor their reservations.
		for _, s := range v.undos[0].Spent {
			delete(v.reserved, opKey(s.TxHash, s.Vout))
		}
		v.undos = v.undos[1:]
	}
	v.tip, v.tipHash = ev.Height, ev.Hash
	return nil
}

// RemoveBlock undoes the newest block, which must be ev's.
func (v *UTXOView) RemoveBlock(ev chain.BlockEvent) error {
	if ev.Type != chain.BlockRemoved || ev.Chain != chain.BTC || ev.Network != v.network {
		return fmt.Errorf("utxo view: %s event of %s/%s, the view follows btc/%s removed blocks", ev.Type, ev.Chain, ev.Network, v.network)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	n := len(v.undos)
	if n == 0 || v.undos[n-1].Hash != ev.Hash {
		return fmt.Errorf("%w: removing %d %s, the view's tip is %d %s", ErrReorgTooDeep, ev.Height, ev.Hash, v.tip, v.tipHash)
	}
	u := v.undos[n-1]
	v.undos = v.undos[:n-1]
	// Spends first: an output created and spent in this block is
	// restored, then deleted with the block's other outputs.
	for _, s := range u.Spent {
		v.utxos[opKey(s.TxHash, s.Vout)] = s
	}
	for _, k := range u.Created {
		delete(v.utxos, k)
	}
	v.tip, v.tipHash = ev.Height-1, ev.ParentHash
	return nil
}

// Tip is the height and hash of the newest block applied.
func (v *UTXOView) Tip() (uint64, string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.tip, v.tipHash
}

// All is every unspent output, sorted by outpoint.
func (v *UTXOView) All() []UTXO {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.sorted(func(UTXO) bool { return true })
}

func (v *UTXOView) sorted(keep func(UTXO) bool) []UTXO {
	out := make([]UTXO, 0, len(v.utxos))
	for _, u := range v.utxos {
		if keep(u) {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].TxHash != out[j].TxHash {
			return out[i].TxHash < out[j].TxHash
		}
		return out[i].Vout < out[j].Vout
	})
	return out
}

// Spendable is every output deep enough to spend (minConf confirmations,
// CoinbaseMaturity for a coinbase) and not reserved, sorted by outpoint.
func (v *UTXOView) Spendable(minConf int) []UTXO {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.spendable(minConf)
}

func (v *UTXOView) spendable(minConf int) []UTXO {
	return v.sorted(func(u UTXO) bool {
		if _, r := v.reserved[opKey(u.TxHash, u.Vout)]; r || u.Height > v.tip {
			return false
		}
		conf := v.tip - u.Height + 1
		if u.Coinbase && conf < CoinbaseMaturity {
			return false
		}
		return conf >= uint64(max(minConf, 1))
	})
}

// ErrReserved is returned when an output is already reserved by another transaction.
var ErrReserved = errors.New("wallet: output already reserved")

// Reserve marks the outputs as spent by the built transaction txid, all
// or none.
func (v *UTXOView) Reserve(txid string, outs []UTXO) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.reserve(txid, outs)
}

func (v *UTXOView) reserve(txid string, outs []UTXO) error {
	for _, u := range outs {
		k := opKey(u.TxHash, u.Vout)
		if t, r := v.reserved[k]; r && t != txid {
			return fmt.Errorf("%w: %s by %s", ErrReserved, k, t)
		}
		if _, ok := v.utxos[k]; !ok {
			return fmt.Errorf("wallet: reserve %s: not an unspent output of the view", k)
		}
	}
	for _, u := range outs {
		v.reserved[opKey(u.TxHash, u.Vout)] = txid
	}
	return nil
}

// Release frees the outputs txid reserved (the transaction is
// abandoned), returning how many.
func (v *UTXOView) Release(txid string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for k, t := range v.reserved {
		if t == txid {
			delete(v.reserved, k)
			n++
		}
	}
	return n
}

// Reserved is the outpoints ("txid:vout") reserved and by which txid.
func (v *UTXOView) Reserved() map[string]string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]string, len(v.reserved))
	for k, t := range v.reserved {
		out[k] = t
	}
	return out
}

// utxoSnapshot is a view's JSON form.
type utxoSnapshot struct {
	V        int               `json:"v"`
	Network  string            `json:"network"`
	Tip      uint64            `json:"tip"`
	TipHash  string            `json:"tip_hash"`
	UTXOs    []UTXO            `json:"utxos"`
	Undo     []undo            `json:"undo"`
	Reserved map[string]string `json:"reserved"`
}

const snapshotVersion = 1

// MaxSnapshot bounds a snapshot's size (bytes) on restore.
const MaxSnapshot = 64 << 20

// Snapshot is the view as JSON, for Restore after a restart.
func (v *UTXOView) Snapshot() ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := utxoSnapshot{V: snapshotVersion, Network: v.network, Tip: v.tip, TipHash: v.tipHash,
		UTXOs: v.sorted(func(UTXO) bool { return true }), Undo: v.undos, Reserved: v.reserved}
	return json.Marshal(s)
}

// Restore replaces the view's state by a snapshot, which it checks
// strictly (it comes from Kafka): a wrong network or version, unknown
// fields, a malformed outpoint or an undo record that does not agree
// with the outputs is refused, and the view is left as it was.
func (v *UTXOView) Restore(b []byte) error {
	var s utxoSnapshot
	if err := decodeStrict(b, &s); err != nil {
		return fmt.Errorf("restore utxo view: %w", err)
	}
	if s.V != snapshotVersion || s.Network != v.network {
		return fmt.Errorf("restore utxo view: version %d of network %q, want %d of %q", s.V, s.Network, snapshotVersion, v.network)
	}
	if s.TipHash != "" && !isHash(s.TipHash) {
		return fmt.Errorf("restore utxo view: tip hash %q", s.TipHash)
	}
	utxos := make(map[string]UTXO, len(s.UTXOs))
	check := func(u UTXO) error {
		if !isHash(u.TxHash) || u.Value < 0 || u.Value > btcutil.MaxSatoshi || !v.own[u.Address] || u.Height > s.Tip {
			return fmt.Errorf("restore utxo view: output %+v", u)
		}
		return nil
	}
	for _, u := range s.UTXOs {
		if err := check(u); err != nil {
			return err
		}
		k := opKey(u.TxHash, u.Vout)
		if _, dup := utxos[k]; dup {
			return fmt.Errorf("restore utxo view: output %s twice", k)
		}
		utxos[k] = u
	}
	if len(s.Undo) > v.depth {
		return fmt.Errorf("restore utxo view: %d undo records, the window is %d", len(s.Undo), v.depth)
	}
	for i, u := range s.Undo {
		if !isHash(u.Hash) || u.Height > s.Tip || (i > 0 && u.Height != s.Undo[i-1].Height+1) {
			return fmt.Errorf("restore utxo view: undo record %d (%s at %d)", i, u.Hash, u.Height)
		}
		for _, k := range u.Created {
			if _, ok := utxos[k]; !ok {
				// Created and since spent: then a later record holds it as spent.
				if !spentLater(s.Undo[i:], k) {
					return fmt.Errorf("restore utxo view: undo record %d created %s, which is neither unspent nor spent later", i, k)
				}
			}
		}
		for _, sp := range u.Spent {
			if err := check(sp); err != nil {
				return err
			}
		}
	}
	if n := len(s.Undo); n > 0 && (s.Undo[n-1].Hash != s.TipHash || s.Undo[n-1].Height != s.Tip) {
		return fmt.Errorf("restore utxo view: the newest undo record is %s, the tip %s", s.Undo[n-1].Hash, s.TipHash)
	}
	reserved := make(map[string]string, len(s.Reserved))
	for k, t := range s.Reserved {
		h, vout, ok := strings.Cut(k, ":")
		if _, err := strconv.ParseUint(vout, 10, 32); !ok || err != nil || !isHash(h) || !isHash(t) {
			return fmt.Errorf("restore utxo view: reservation %q by %q", k, t)
		}
		reserved[k] = t
	}
	if s.Undo == nil {
		s.Undo = []undo{}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.tip, v.tipHash, v.utxos, v.undos, v.reserved = s.Tip, s.TipHash, utxos, s.Undo, reserved
	return nil
}

func spentLater(us []undo, k string) bool {
	for _, u := range us {
		for _, s := range u.Spent {
			if opKey(s.TxHash, s.Vout) == k {
				return true
			}
		}
	}
	return false
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// decodeStrict decodes exactly one JSON value of at most MaxSnapshot
// bytes, refusing unknown fields.
func decodeStrict(b []byte, v any) error {
	if len(b) > MaxSnapshot {
		return fmt.Errorf("%d bytes, more than %d", len(b), MaxSnapshot)
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("data after the snapshot")
	}
	return nil
}

package rules

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/cordonhq/cordon/internal/chain"
)

// Registry tells whether an address is one of the exchange's own and of
// which kind ("deposit", "hot", "cold"); declared here, wired in cmd to
// the address registry.
type Registry interface {
	Kind(c chain.Chain, network, addr string) (kind string, ok bool)
}

// Screener returns the indicators' hits of an address (intel.Index.Hits).
type Screener interface {
	Hits(c chain.Chain, network, addr string) []chain.Hit
}

// Kinds of registered addresses the rules tell apart.
const (
	KindDeposit = "deposit"
	KindHot     = "hot"
	KindCold    = "cold"
)

// Engine evaluates the rules over the block stream.
type Engine struct {
	cfg    Config
	reg    Registry
	screen Screener
	custom []*customProg
	// wallets are the hot and cold wallets seen, by wallet key.
	wallets map[string]*wallet
	// owner is the wallet holding a Bitcoin outpoint ("txid:vout").
	owner map[string]string
	// undo is the recent added blocks of each stream, oldest first.
	undo map[string][]*undoRec
	// dirty are the state records changed since TakeState.
	dirty map[string]bool
	cel   celCtx
	// contracts reads the contract wallets' state; cstate is what they
	// held at the tip, by contractKey.
	contracts ContractReader
	cstate    map[string]contractState
	// CustomErrors counts custom rule evaluations that failed (a rule
	// that errs raises nothing).
	CustomErrors int
}

// wallet is one hot or cold wallet's state.
type wallet struct {
	Stream  string `json:"stream"`
	Address string `json:"address"`
	// Balances by asset, as far as the stream showed them (negative when
	// the wallet's history began before it).
	Balances map[string]*big.Int `json:"balances,omitempty"`
	// Flows are the recent outflows, oldest first: kept in chunk records
	// (flows.go), FlowBase the absolute position of the first, FlowCount
	// how many (a record from before the chunks has them inline here).
	Flows     []flow `json:"flows,omitempty"`
	FlowBase  uint64 `json:"flow_base,omitzero"`
	FlowCount int    `json:"flow_count,omitzero"`
	// Parties are the counterparties the wallet paid, oldest first.
	Parties []party `json:"parties,omitempty"`
	// UTXOs are a Bitcoin wallet's unspent outputs by outpoint.
	UTXOs map[string]utxo `json:"utxos,omitempty"`
	// idx indexes Parties (nil: built when next needed).
	idx *partyIndex
	// dirtyFrom is the first flow position changed since the last
	// records; storedLo and storedHi the chunks the records hold.
	dirtyFrom, storedLo, storedHi uint64
	dirtySet, storedSet           bool
}

type flow struct {
	Block  string   `json:"block"`
	Time   int64    `json:"time"`
	Asset  string   `json:"asset"`
	Amount *big.Int `json:"amount"`
}

type party struct {
	Address string `json:"address"`
	Block   string `json:"block"`
}

type utxo struct {
	Amount *big.Int `json:"amount"`
	Block  string   `json:"block"`
}

// undoRec is what an added block did, to undo when it is removed.
type undoRec struct {
	Hash   string        `json:"hash"`
	Height uint64        `json:"height"`
	Alerts []chain.Alert `json:"alerts,omitempty"`
	// Deltas are the balance changes by wallet and asset.
	Deltas map[string]map[string]*big.Int `json:"deltas,omitempty"`
	// Spent are the outpoints the block spent, by wallet.
	Spent map[string]map[string]utxo `json:"spent,omitempty"`
	// Touched are the wallets whose flows, parties or outputs the block
	// added to.
	Touched []string `json:"touched,omitempty"`
	// Contracts are the contract wallets' states before the block, of
	// those it changed.
	Contracts map[string]contractState `json:"contracts,omitempty"`
}

// maxFlows bounds the outflows a wallet remembers.
const maxFlows = 4096

// New returns an engine with empty state. The config must have passed
// Validate.
func New(cfg Config, reg Registry, screen Screener) (*Engine, error) {
	cfg.Defaults()
	e := &Engine{cfg: cfg, reg: reg, screen: screen}
	e.cel.e = e
	for _, r := range cfg.Custom {
		p, err := compileCustomWith(r, &e.cel)
		if err != nil {
			return nil, fmt.Errorf("detect: custom rule %q: %w", r.Name, err)
		}
		e.custom = append(e.custom, p)
	}
	e.reset()
	return e, nil
}

func (e *Engine) reset() {
	e.wallets, e.owner, e.undo, e.dirty = map[string]*wallet{}, map[string]string{}, map[string][]*undoRec{}, map[string]bool{}
	e.cstate = map[string]contractState{}
}

// SetContracts gives the engine the reader of the contract wallets'
// state (without one, the contract-wallet rule is off).
func (e *Engine) SetContracts(r ContractReader) { e.contracts = r }

func walletKey(stream, addr string) string { return stream + "/" + addr }

func (e *Engine) kind(c chain.Chain, network, addr string) string {
	if e.reg == nil || addr == "" {
		return ""
	}
	k, ok := e.reg.Kind(c, network, addr)
	if !ok {
		return ""
	}
	return k
}

func isWallet(kind string) bool { return kind == KindHot || kind == KindCold }

// hits are addr's indicator hits of enough confidence.
func (e *Engine) hits(c chain.Chain, network, addr string) []chain.Hit {
	if e.screen == nil || addr == "" || e.cfg.Flagged.Disabled {
		return nil
	}
	var out []chain.Hit
	for _, h := range e.screen.Hits(c, network, addr) {
		if h.Confidence >= e.cfg.Flagged.MinConfidence {
			out = append(out, h)
		}
	}
	return out
}

func (e *Engine) walletOf(stream, addr string) *wallet {
	k := walletKey(stream, addr)
	w := e.wallets[k]
	if w == nil {
		w = &wallet{Stream: stream, Address: addr, Balances: map[string]*big.Int{}}
		e.wallets[k] = w
	}
	return w
}

// Apply applies one update of the canonical stream and returns the
// alerts it raises (a removed block: its alerts, retracted).
func (e *Engine) Apply(u chain.Update) []chain.Alert {
	if u.Block == nil {
		return e.remove(u.Event)
	}
	b := newBlockRun(e, u.Block)
	switch u.Block.Chain {
	case chain.BTC:
		b.bitcoin()
	default:
		b.account()
		b.contracts()
		b.approvals()
	}
	b.windows()
	alerts := b.finish()
	stream := u.Block.Stream()
	list := append(e.undo[stream], b.undo)
	e.dirty[undoKey(stream, b.undo.Hash)] = true
	if n := len(list) - e.cfg.UndoDepth; n > 0 {
		for _, r := range list[:n] {
			e.dirty[undoKey(stream, r.Hash)] = true // out of the window: deleted
		}
		list = slices.Clone(list[n:])
	}
	e.undo[stream] = list
	return alerts
}

// remove undoes a removed block (it must be the stream's newest; one not
// in the undo log is too old to undo and is ignored).
func (e *Engine) remove(ev chain.BlockEvent) []chain.Alert {
	stream := ev.Stream()
	list := e.undo[stream]
	i := slices.IndexFunc(list, func(r *undoRec) bool { return r.Hash == ev.Hash })
	if i < 0 {
		return nil
	}
	// Blocks above it are removed first by the stream's order; should
	// any still be here, they go with it.
	var out []chain.Alert
	for j := len(list) - 1; j >= i; j-- {
		out = append(out, e.undoBlock(list[j])...)
		e.dirty[undoKey(stream, list[j].Hash)] = true
	}
	e.undo[stream] = list[:i]
	return out
}

func (e *Engine) undoBlock(r *undoRec) []chain.Alert {
	for wk, d := range r.Deltas {
		w := e.wallets[wk]
		if w == nil {
			continue
		}
		for asset, v := range d {
			bal := w.balance(asset)
			bal.Sub(bal, v)
		}
		e.dirty["wallet/"+wk] = true
	}
	for _, wk := range r.Touched {
		w := e.wallets[wk]
		if w == nil {
			continue
		}
		w.dropWhere(func(f flow) bool { return f.Block == r.Hash })
		w.Parties = slices.DeleteFunc(w.Parties, func(p party) bool { return p.Block == r.Hash })
		w.idx = nil
		for op, u := range w.UTXOs {
			if u.Block == r.Hash {
				delete(w.UTXOs, op)
				delete(e.owner, op)
			}
		}
		e.dirty["wallet/"+wk] = true
	}
	for wk, spent := range r.Spent {
		w := e.wallets[wk]
		if w == nil {
			continue
		}
		if w.UTXOs == nil {
			w.UTXOs = map[string]utxo{}
		}
		for op, u := range spent {
			w.UTXOs[op] = u
			e.owner[op] = wk
		}
		e.dirty["wallet/"+wk] = true
	}
	for k, st := range r.Contracts {
		if st.Seen {
			e.cstate[k] = st
		} else {
			delete(e.cstate, k)
		}
		e.dirty[k] = true
	}
	out := make([]chain.Alert, len(r.Alerts))
	for i, a := range r.Alerts {
		a.Retracted = true
		a.Message = "retracted (the block left the canonical chain): " + a.Message
		out[i] = a
	}
	return out
}

func (w *wallet) balance(asset string) *big.Int {
	if w.Balances == nil {
		w.Balances = map[string]*big.Int{}
	}
	b := w.Balances[asset]
	if b == nil {
		b = new(big.Int)
		w.Balances[asset] = b
	}
	return b
}

// Record is one record of the engine's state: its key and JSON value, or
// a nil value for a record to delete.
type Record struct {
	Key   string
	Value []byte
}

// TakeState returns the state records changed since the last call.
func (e *Engine) TakeState() []Record {
	keys := make([]string, 0, len(e.dirty))
	for k := range e.dirty {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Record, 0, len(keys))
	for _, k := range keys {
		var v any
		switch {
		case strings.HasPrefix(k, "wallet/"):
			wk := strings.TrimPrefix(k, "wallet/")
			if w := e.wallets[wk]; w != nil {
				recs, err := w.flowRecords(wk)
				if err != nil {
					panic(err) // flows of big.Int amounts always encode
				}
				out = append(out, recs...)
				c := *w
				c.Flows, c.FlowCount = nil, len(w.Flows)
				v = &c
			}
		case strings.HasPrefix(k, "undo/"):
			stream, hash := splitUndoKey(k)
			if i := slices.IndexFunc(e.undo[stream], func(r *undoRec) bool { return r.Hash == hash }); i >= 0 {
				v = e.undo[stream][i]
			}
		case strings.HasPrefix(k, "contract/"):
			if st, ok := e.cstate[k]; ok {
				v = st
			}
		}
		r := Record{Key: k}
		if v != nil {
			r.Value, _ = json.Marshal(v)
		}
		out = append(out, r)
	}
	clear(e.dirty)
	return out
}

// Restore replaces the state with records (the newest value of each key,
// as TakeState wrote them).
func (e *Engine) Restore(recs map[string][]byte) error {
	e.reset()
	chunks := map[string]map[uint64]chunkRec{}
	for k, v := range recs {
		switch {
		case strings.HasPrefix(k, "flows/"):
			wk, c, ok := splitFlowKey(k)
			var ch chunkRec
			if !ok {
				return fmt.Errorf("detect: state %s: not a flow chunk's key", k)
			}
			if err := json.Unmarshal(v, &ch); err != nil {
				return fmt.Errorf("detect: state %s: %w", k, err)
			}
			if chunks[wk] == nil {
				chunks[wk] = map[uint64]chunkRec{}
			}
			chunks[wk][c] = ch
		case strings.HasPrefix(k, "wallet/"):
			var w wallet
			if err := json.Unmarshal(v, &w); err != nil {
				return fmt.Errorf("detect: state %s: %w", k, err)
			}
			wk := strings.TrimPrefix(k, "wallet/")
			e.wallets[wk] = &w
			for op := range w.UTXOs {
				e.owner[op] = wk
			}
		case strings.HasPrefix(k, "undo/"):
			var r undoRec
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("detect: state %s: %w", k, err)
			}
			stream, hash := splitUndoKey(k)
			if r.Hash != hash {
				return fmt.Errorf("detect: state %s: holds block %s", k, r.Hash)
			}
			e.undo[stream] = append(e.undo[stream], &r)
		case strings.HasPrefix(k, "contract/"):
			var st contractState
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("detect: state %s: %w", k, err)
			}
			e.cstate[k] = st
		default:
			return fmt.Errorf("detect: state %s: unknown record", k)
		}
	}
	for _, l := range e.undo {
		slices.SortFunc(l, func(a, b *undoRec) int { return cmp.Compare(a.Height, b.Height) })
	}
	for wk, w := range e.wallets {
		if err := w.restoreFlows(wk, chunks[wk]); err != nil {
			return err
		}
		delete(chunks, wk)
	}
	for wk := range chunks {
		return fmt.Errorf("detect: state: flow chunks of wallet %s, which has no record", wk)
	}
	return nil
}

// undoKey is the state key of a block's undo record: one record per
// block, so a round writes only what it changed.
func undoKey(stream, hash string) string { return "undo/" + stream + "/" + hash }

func splitUndoKey(k string) (stream, hash string) {
	k = strings.TrimPrefix(k, "undo/")
	i := strings.LastIndexByte(k, '/')
	if i < 0 {
		return k, ""
	}
	return k[:i], k[i+1:]
}

// Wallets is how many hot and cold wallets the engine follows.
func (e *Engine) Wallets() int { return len(e.wallets) }

// Balance is a wallet's balance of an asset as the stream showed it.
func (e *Engine) Balance(c chain.Chain, network, addr, asset string) *big.Int {
	w := e.wallets[walletKey(chain.StreamKey(c, network), addr)]
	if w == nil || w.Balances[asset] == nil {
		return new(big.Int)
	}
	return new(big.Int).Set(w.Balances[asset])
}

func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

package credit

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/registry"
)

// Hit is an active indicator matching a deposit's sender.
type Hit = chain.Hit

// holdReason is the hold reason a hit gives.
func holdReason(h Hit) string {
	return fmt.Sprintf("sender %s matches %s (%s, from %s, confidence %d)", h.Address, h.Indicator, h.Category, h.Source, h.Confidence)
}

// Screener returns the active indicators an address matches; none means
// clean.
type Screener func(c chain.Chain, network, addr string) []Hit

// screen adds the hits of sender to c.
func (c *Candidate) screen(screen Screener, sender string) {
	if screen == nil {
		return
	}
	for _, h := range screen(c.Chain, c.Network, sender) {
		c.Hits = append(c.Hits, h)
		c.Holds = append(c.Holds, holdReason(h))
	}
}

// Outpoint is a spent Bitcoin output.
type Outpoint struct {
	Tx   string
	Vout uint32
}

// SenderResolver finds the addresses of spent outputs (Bitcoin's senders
// are the addresses of the outputs a transaction spends, which the block
// itself does not say). Outputs it cannot resolve are left out; outputs
// whose copies disagree are left out and reported in a *ConflictError
// returned with the rest.
type SenderResolver interface {
	Resolve(ctx context.Context, c chain.Chain, network string, ops []Outpoint) (map[Outpoint]string, error)
}

// LoadTracker is a SenderResolver that can say how far its data goes:
// the newest block event seq of a stream it holds.
type LoadTracker interface {
	Loaded(ctx context.Context, c chain.Chain, network string) (uint64, error)
}

// recentOutputs remembers the addresses of the outputs of a stream's
// newest blocks, so the senders of a deposit spending them are known
// without waiting for ClickHouse to load them.
//
// A block record naming another address for an outpoint already known
// (a forged block: a transaction's hash commits to its outputs) does not
// overwrite it: the outpoint is left to the next resolver, ClickHouse,
// which holds both copies and reports the conflict.
type recentOutputs struct {
	limit    int
	addr     map[Outpoint]string
	conflict map[Outpoint]bool
	blocks   [][]Outpoint // oldest first
}

func newRecentOutputs(limit int) *recentOutputs {
	return &recentOutputs{limit: limit, addr: map[Outpoint]string{}, conflict: map[Outpoint]bool{}}
}

func (r *recentOutputs) add(b *chain.Block) {
	ops := make([]Outpoint, 0, len(b.Outputs))
	for i := range b.Outputs {
		o := &b.Outputs[i]
		op := Outpoint{o.TxHash, o.Vout}
		addr := ""
		if o.Address != nil {
			addr = *o.Address
		}
		if have, ok := r.addr[op]; (ok && have != addr) || r.conflict[op] {
			delete(r.addr, op)
			r.conflict[op] = true
			ops = append(ops, op)
			continue
		}
		if o.Address != nil {
			r.addr[op] = addr
			ops = append(ops, op)
		}
	}
	r.blocks = append(r.blocks, ops)
	for len(r.blocks) > r.limit {
		for _, op := range r.blocks[0] {
			delete(r.addr, op)
			delete(r.conflict, op)
		}
		r.blocks = r.blocks[1:]
	}
}

// chained resolves from the recent outputs first, then from next.
type chained struct {
	recent *recentOutputs
	next   SenderResolver
}

func (c chained) Resolve(ctx context.Context, ch chain.Chain, network string, ops []Outpoint) (map[Outpoint]string, error) {
	out := map[Outpoint]string{}
	var rest []Outpoint
	for _, op := range ops {
		if a, ok := c.recent.addr[op]; ok {
			out[op] = a
		} else {
			rest = append(rest, op)
		}
	}
	if len(rest) == 0 || c.next == nil {
		return out, nil
	}
	found, err := c.next.Resolve(ctx, ch, network, rest)
	var conflict *ConflictError
	if err != nil && !errors.As(err, &conflict) {
		return nil, err
	}
	for op, a := range found {
		out[op] = a
	}
	return out, err
}

// Tokens says which token contracts the exchange credits, by chain.
type Tokens map[chain.Chain]map[string]bool

// ETHCandidates are the transfers of an Ethereum block that pay a
// registered deposit address accepting their asset. ERC-721 transfers and
// tokens not in tokens are candidates of unknown assets (recorded, never
// credited).
//
// Each is screened on every address that paid it: the transfer's sender,
// and the transaction's sender and recipient (a sanctioned account
// calling a router or a token contract that pays the deposit address is
// no less the payer).
func ETHCandidates(b *chain.Block, reg *registry.Index, tokens Tokens, screen Screener) []Candidate {
	var out []Candidate
	txs := make(map[string]*chain.Transaction, len(b.Transactions))
	for i := range b.Transactions {
		txs[b.Transactions[i].Hash] = &b.Transactions[i]
	}
	for i := range b.Transfers {
		t := &b.Transfers[i]
		e, ok := reg.Lookup(t.Chain, t.Network, t.To)
		if !ok || e.Kind != registry.KindDeposit || (e.Asset != "*" && e.Asset != t.Asset) {
			continue
		}
		index := "native"
		if t.LogIndex != nil {
			index = strconv.FormatUint(uint64(*t.LogIndex), 10)
		}
		amt, ok := new(big.Int).SetString(t.Amount.String(), 10)
		if !ok {
			continue
		}
		c := Candidate{ID: DepositID(t.Chain, t.Network, t.TxHash, index), Chain: t.Chain, Network: t.Network, TxHash: t.TxHash,
			Index: index, Address: t.To, Account: e.Account, Asset: t.Asset, Amount: amt, BlockHash: t.BlockHash, Height: t.BlockHeight,
			Senders:    []string{t.From},
			KnownAsset: t.Asset == chain.AssetNative || (t.Standard == chain.StandardERC20 && tokens[t.Chain][t.Asset])}
		payers := []string{t.From}
		tx := txs[t.TxHash]
		if tx == nil {
			// Without its transaction the deposit's payer cannot be
			// screened whole: held, as a Bitcoin deposit whose spent
			// outputs are unknown.
			c.Holds = append(c.Holds, "transaction "+t.TxHash+" is not in the block's records: its sender cannot be screened")
		}
		if tx != nil {
			for _, a := range []string{tx.From, tx.To} {
				if a != "" && !slices.ContainsFunc(payers, func(p string) bool { return strings.EqualFold(p, a) }) && !strings.EqualFold(a, t.To) {
					payers = append(payers, a)
				}
			}
			if tx.From != "" && !strings.EqualFold(tx.From, t.From) {
				c.Senders = append(c.Senders, tx.From)
			}
		}
		for _, a := range payers {
			c.screen(screen, a)
		}
		out = append(out, c)
	}
	return out
}

// BTCCandidates are the outputs of a Bitcoin block that pay a registered
// deposit address. Their senders are the addresses of the outputs their
// transaction spends, found in the block itself or through resolve; a
// deposit whose senders cannot all be found is held ("sender unknown"):
// it cannot be screened; one spending an output whose copies disagree
// (a *ConflictError from resolve) is held with the conflict as reason.
func BTCCandidates(ctx context.Context, b *chain.Block, reg *registry.Index, resolve SenderResolver, screen Screener) ([]Candidate, error) {
	var out []Candidate
	paid := map[string]bool{}
	for i := range b.Outputs {
		o := &b.Outputs[i]
		if o.Address == nil || o.Coinbase {
			continue
		}
		e, ok := reg.Lookup(o.Chain, o.Network, *o.Address)
		if !ok || e.Kind != registry.KindDeposit || (e.Asset != "*" && e.Asset != chain.AssetNative) {
			continue
		}
		amt, ok := new(big.Int).SetString(o.Amount.String(), 10)
		if !ok {
			continue
		}
		out = append(out, Candidate{ID: DepositID(o.Chain, o.Network, o.TxHash, VoutIndex(o.Vout)), Chain: o.Chain, Network: o.Network,
			TxHash: o.TxHash, Index: VoutIndex(o.Vout), Address: *o.Address, Account: e.Account, Asset: chain.AssetNative, Amount: amt,
			BlockHash: o.BlockHash, Height: o.BlockHeight, KnownAsset: true})
		paid[o.TxHash] = true
	}
	if len(out) == 0 {
		return nil, nil
	}
	// The spends of the paying transactions, and who owned what they spend.
	inputs := map[string][]Outpoint{}
	var need []Outpoint
	for i := range b.Spends {
		s := &b.Spends[i]
		if paid[s.TxHash] {
			op := Outpoint{s.PrevTxHash, s.PrevVout}
			inputs[s.TxHash] = append(inputs[s.TxHash], op)
			need = append(need, op)
		}
	}
	owners := map[Outpoint]string{}
	for i := range b.Outputs { // spent within the same block
		o := &b.Outputs[i]
		if o.Address != nil {
			owners[Outpoint{o.TxHash, o.Vout}] = *o.Address
		}
	}
	var missing []Outpoint
	for _, op := range need {
		if _, ok := owners[op]; !ok {
			missing = append(missing, op)
		}
	}
	var conflict *ConflictError
	if len(missing) > 0 && resolve != nil {
		found, err := resolve.Resolve(ctx, b.Chain, b.Network, missing)
		if err != nil && !errors.As(err, &conflict) {
			return nil, fmt.Errorf("credit: resolve the senders of block %d: %w", b.Height, err)
		}
		for op, a := range found {
			owners[op] = a
		}
	}
	for i := range out {
		c := &out[i]
		unknown := false
		for _, op := range inputs[c.TxHash] {
			a, ok := owners[op]
			if !ok && conflict.has(op) {
				c.Holds = append(c.Holds, conflict.Reason(op))
				c.Conflicts = append(c.Conflicts, conflict.Reason(op))
				continue
			}
			if !ok {
				unknown = true
				continue
			}
			if !slices.Contains(c.Senders, a) {
				c.Senders = append(c.Senders, a)
			}
		}
		for _, s := range c.Senders {
			c.screen(screen, s)
		}
		if unknown {
			c.Holds = append(c.Holds, "sender unknown: a spent output is not in the data; it cannot be screened")
		}
	}
	return out, nil
}

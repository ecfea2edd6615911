package credit

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"

	"github.com/cordonhq/cordon/internal/chain"
)

// Deposit statuses on cordon.deposits.
const (
	StatusPending  = "pending"  // seen in a canonical block, not deep enough yet
	StatusCredited = "credited" // deep enough: the ledger credits it
	StatusHeld     = "held"     // not credited until an operator releases it (reasons say why)
	StatusDropped  = "dropped"  // its block left the chain before it was credited
	StatusReverted = "reverted" // credited, then its block left the chain: the ledger takes it back; an alert
	StatusDust     = "dust"     // below the minimum amount: recorded, never credited
	StatusUnknown  = "unknown_token"
	StatusRejected = "rejected" // held, then rejected by an operator
)

// Tier raises the confirmations of amounts at or above Min.
type Tier struct {
	Min           *big.Int
	Confirmations uint64
}

// Policy is the confirmation policy of one chain and asset.
type Policy struct {
	// Confirmations a deposit needs (the block that holds it counts as
	// one); Tiers raise it for larger amounts.
	Confirmations uint64
	Tiers         []Tier
	// Dust: deposits below it are recorded as dust. Review: deposits at or
	// above it are held for review.
	Dust, Review *big.Int
}

// Required is the confirmations an amount needs.
func (p Policy) Required(amount *big.Int) uint64 {
	req := max(p.Confirmations, 1)
	for _, t := range p.Tiers {
		if t.Min != nil && amount.Cmp(t.Min) >= 0 && t.Confirmations > req {
			req = t.Confirmations
		}
	}
	return req
}

// Candidate is a transfer or output paying a registered deposit address,
// as found in an added block.
type Candidate struct {
	// ID is chain/network/tx_hash/index (log index, "native", or vout).
	ID        string
	Chain     chain.Chain
	Network   string
	TxHash    string
	Index     string
	Address   string
	Account   string
	Asset     string
	Amount    *big.Int
	BlockHash string
	Height    uint64
	// Senders are the paying addresses (Bitcoin: the spent outputs'),
	// Holds the reasons to hold it (screening hits), KnownAsset whether
	// the token is one the exchange credits.
	Senders    []string
	Holds      []string
	KnownAsset bool
}

// DepositEvent is one record of cordon.deposits, keyed by ID.
type DepositEvent struct {
	V             int         `json:"v"`
	ID            string      `json:"id"`
	Status        string      `json:"status"`
	Chain         chain.Chain `json:"chain"`
	Network       string      `json:"network"`
	TxHash        string      `json:"tx_hash"`
	Index         string      `json:"index"`
	Address       string      `json:"address"`
	Account       string      `json:"account"`
	Asset         string      `json:"asset"`
	Amount        string      `json:"amount"`
	BlockHash     string      `json:"block_hash"`
	BlockNumber   uint64      `json:"block_number"`
	Confirmations uint64      `json:"confirmations"`
	Required      uint64      `json:"required"`
	Reasons       []string    `json:"reasons,omitempty"`
	// Credits counts the credited events of this deposit so far, this one
	// included: the ledger applies a credited event only when it is one
	// more than it has applied (see docs/credit.md).
	Credits int `json:"credits"`
}

type deposit struct {
	c        Candidate
	status   string
	required uint64
	released bool
	credits  int
}

// Engine decides deposits from a stream's block events. It is
// deterministic: the same events give the same decisions, and its state is
// what its emitted events say (Restore), so it needs no database.
type Engine struct {
	policy   func(c chain.Chain, asset string) Policy
	heights  map[string]uint64 // stream → tip height
	deposits map[string]*deposit
	byBlock  map[string][]string // block hash → deposit ids seen in it
}

// NewEngine returns an engine with the given policies.
func NewEngine(policy func(c chain.Chain, asset string) Policy) *Engine {
	return &Engine{policy: policy, heights: map[string]uint64{}, deposits: map[string]*deposit{}, byBlock: map[string][]string{}}
}

func (e *Engine) event(d *deposit, stream string) DepositEvent {
	c := d.c
	conf := uint64(0)
	if tip := e.heights[stream]; d.status != StatusDropped && d.status != StatusReverted && tip >= c.Height {
		conf = tip - c.Height + 1
	}
	return DepositEvent{V: chain.SchemaVersion, ID: c.ID, Status: d.status, Chain: c.Chain, Network: c.Network, TxHash: c.TxHash,
		Index: c.Index, Address: c.Address, Account: c.Account, Asset: c.Asset, Amount: c.Amount.String(), BlockHash: c.BlockHash,
		BlockNumber: c.Height, Confirmations: conf, Required: d.required, Reasons: slices.Clone(c.Holds), Credits: d.credits}
}

// Added applies a block_added event with the deposit candidates in the
// block and returns the deposit events it causes, in a deterministic
// order.
func (e *Engine) Added(ev chain.BlockEvent, cands []Candidate) []DepositEvent {
	stream := ev.Stream()
	e.heights[stream] = ev.Height
	var out []DepositEvent
	for _, c := range cands {
		d := e.deposits[c.ID]
		if d != nil && d.status != StatusDropped && d.status != StatusReverted {
			// Already known from a live block: a replayed event of the same
			// block, or (impossible on one chain) the transaction in two
			// live blocks — the first stands.
			continue
		}
		p := e.policy(c.Chain, c.Asset)
		if d == nil {
			d = &deposit{}
			e.deposits[c.ID] = d
		}
		credits, released := d.credits, d.released
		*d = deposit{c: c, required: p.Required(c.Amount), credits: credits, released: released}
		switch {
		case !c.KnownAsset:
			d.status = StatusUnknown
		case p.Dust != nil && c.Amount.Cmp(p.Dust) < 0:
			d.status = StatusDust
		case !released && (len(c.Holds) > 0 || (p.Review != nil && c.Amount.Cmp(p.Review) >= 0)):
			if p.Review != nil && c.Amount.Cmp(p.Review) >= 0 {
				d.c.Holds = append(slices.Clone(c.Holds), "amount at or above the review threshold")
			}
			d.status = StatusHeld
		default:
			d.status = StatusPending
		}
		e.byBlock[c.BlockHash] = append(e.byBlock[c.BlockHash], c.ID)
		out = append(out, e.event(d, stream))
	}
	return append(out, e.ripen(stream)...)
}

// ripen credits the pending (and released held) deposits of stream that
// reached their depth.
func (e *Engine) ripen(stream string) []DepositEvent {
	var ids []string
	for id, d := range e.deposits {
		if chain.StreamKey(d.c.Chain, d.c.Network) != stream {
			continue
		}
		if d.status == StatusPending || (d.status == StatusHeld && d.released) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []DepositEvent
	tip := e.heights[stream]
	for _, id := range ids {
		d := e.deposits[id]
		if tip >= d.c.Height && tip-d.c.Height+1 >= d.required {
			d.status = StatusCredited
			d.credits++
			out = append(out, e.event(d, stream))
		}
	}
	return out
}

// Removed applies a block_removed event: its deposits are dropped, or
// reverted if credited.
func (e *Engine) Removed(ev chain.BlockEvent) []DepositEvent {
	stream := ev.Stream()
	if ev.Height > 0 {
		e.heights[stream] = ev.Height - 1
	}
	ids := e.byBlock[ev.Hash]
	delete(e.byBlock, ev.Hash)
	slices.Sort(ids)
	var out []DepositEvent
	for _, id := range slices.Compact(ids) {
		d := e.deposits[id]
		if d == nil || d.c.BlockHash != ev.Hash {
			continue
		}
		switch d.status {
		case StatusCredited:
			d.status = StatusReverted
		case StatusPending, StatusHeld, StatusDust, StatusUnknown:
			d.status = StatusDropped
		default:
			continue
		}
		out = append(out, e.event(d, stream))
	}
	return out
}

// Decide applies an operator's decision on a held deposit: release (it is
// credited once deep enough) or reject.
func (e *Engine) Decide(id string, release bool) ([]DepositEvent, error) {
	d := e.deposits[id]
	if d == nil || d.status != StatusHeld {
		return nil, fmt.Errorf("deposit %s is not held", id)
	}
	stream := chain.StreamKey(d.c.Chain, d.c.Network)
	if !release {
		d.status = StatusRejected
		return []DepositEvent{e.event(d, stream)}, nil
	}
	d.released = true
	out := e.ripen(stream)
	if len(out) == 0 {
		ev := e.event(d, stream)
		ev.Reasons = append(ev.Reasons, "released by an operator")
		out = append(out, ev)
	}
	return out, nil
}

// Restore rebuilds the engine's deposits from the events it emitted (the
// cordon.deposits topic, read in order) and the stream tips.
func (e *Engine) Restore(events []DepositEvent, tips map[string]uint64) {
	for _, ev := range events {
		amt, _ := new(big.Int).SetString(ev.Amount, 10)
		if amt == nil {
			amt = new(big.Int)
		}
		d := e.deposits[ev.ID]
		if d == nil {
			d = &deposit{}
			e.deposits[ev.ID] = d
		}
		d.c = Candidate{ID: ev.ID, Chain: ev.Chain, Network: ev.Network, TxHash: ev.TxHash, Index: ev.Index, Address: ev.Address,
			Account: ev.Account, Asset: ev.Asset, Amount: amt, BlockHash: ev.BlockHash, Height: ev.BlockNumber, Holds: ev.Reasons, KnownAsset: true}
		d.status, d.required, d.credits = ev.Status, ev.Required, ev.Credits
		if ev.Status == StatusCredited && len(ev.Reasons) > 0 {
			d.released = true
		}
		if ev.Status != StatusDropped && ev.Status != StatusReverted {
			e.byBlock[ev.BlockHash] = append(e.byBlock[ev.BlockHash], ev.ID)
		}
	}
	for s, h := range tips {
		e.heights[s] = h
	}
}

// DepositID is the identity of a deposit: chain, network, transaction and
// index within it.
func DepositID(c chain.Chain, network, tx string, index string) string {
	return string(c) + "/" + network + "/" + tx + "/" + index
}

// VoutIndex is a Bitcoin output's index string.
func VoutIndex(vout uint32) string { return strconv.FormatUint(uint64(vout), 10) }

// Counts are the deposits by status.
func (e *Engine) Counts() map[string]int {
	out := map[string]int{}
	for _, d := range e.deposits {
		out[d.status]++
	}
	return out
}

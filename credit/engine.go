package credit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"

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
	StatusReleased = "released" // held, then released by an operator: credited once deep enough
)

// Decision actions.
const (
	ActionRelease = "release"
	ActionReject  = "reject"
)

// Decision is an operator's decision on a held deposit, as written to the
// decisions topic and carried by every later event of the deposit.
type Decision struct {
	V int `json:"v"`
	// ID names the request (idempotency: the same id decided twice is
	// one decision); Deposit is the deposit's id.
	ID       string `json:"id"`
	Deposit  string `json:"deposit"`
	Action   string `json:"action"`
	Operator string `json:"operator"`
	Reason   string `json:"reason"`
	Time     string `json:"time"`
	// Content is the deposit's content digest (DepositEvent.Content) the
	// operator decided on: a decision applies only to that content.
	Content string `json:"content"`
}

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
	// Finalized also waits for the node's finalized block to reach the
	// deposit's block (Ethereum's "finalized" tag, carried by the
	// watcher's block events).
	Finalized bool
	// Quorum is how many of the chain's endpoints must report the
	// deposit's block at its height before it is credited (0: the
	// chain's own quorum, a majority of three or more endpoints).
	Quorum int
	// A release needs two distinct operators when the amount is at least
	// DualAbove, a screening hit is of one of DualCategories, or a hit's
	// confidence is at least DualConfidence (0: no such rule).
	DualAbove      *big.Int
	DualCategories []string
	DualConfidence int
}

// dual tells whether releasing c takes two operators under p.
func (p Policy) dual(c *Candidate) bool {
	if p.DualAbove != nil && c.Amount.Cmp(p.DualAbove) >= 0 {
		return true
	}
	for _, h := range c.Hits {
		if slices.Contains(p.DualCategories, h.Category) || (p.DualConfidence > 0 && h.Confidence >= p.DualConfidence) {
			return true
		}
	}
	return false
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
	Hits       []Hit
	KnownAsset bool
	// Conflicts are the spent outputs whose copies in ClickHouse disagree
	// (also hold reasons): each raises an alert.
	Conflicts []string
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
	// Indicators are the screening hits of a held deposit's senders.
	Indicators []Hit `json:"indicators,omitempty"`
	// Finalized is set when the policy also waits for finality: whether
	// the deposit's block is final on the node.
	Finalized *bool `json:"finalized,omitempty"`
	// Credits counts the credited events of this deposit so far, this one
	// included: the ledger applies a credited event only when it is one
	// more than it has applied (see docs/credit.md).
	Credits int `json:"credits"`
	// Decision is the operator's decision on the deposit, once there is
	// one; Approvals the first operator's release of a deposit whose
	// release takes two (the second is the Decision).
	Decision  *Decision  `json:"decision,omitempty"`
	Approvals []Decision `json:"approvals,omitempty"`
	// Senders are the addresses that paid the deposit (Bitcoin: of the
	// outputs its transaction spends; Ethereum: the transfer's and the
	// transaction's senders).
	Senders []string `json:"senders,omitempty"`
	// Content is the digest of what the deposit is (ContentOf): an
	// operator's decision names it, and applies to nothing else.
	Content string `json:"content"`
}

// ContentOf is the digest of a deposit's content: what it pays (chain,
// transaction, index, address, account, asset, amount), who paid it and
// why it is held (senders, reasons, screening hits) — everything an
// operator's decision rests on, and nothing that changes when the same
// deposit is mined again unchanged in another block.
func ContentOf(ev *DepositEvent) string {
	c := struct {
		ID, Chain, Network, Tx, Index, Address, Account, Asset, Amount string
		Senders, Reasons                                               []string
		Hits                                                           []Hit
	}{ev.ID, string(ev.Chain), ev.Network, ev.TxHash, ev.Index, ev.Address, ev.Account, ev.Asset, ev.Amount,
		slices.Sorted(slices.Values(ev.Senders)), slices.Sorted(slices.Values(ev.Reasons)), slices.Clone(ev.Indicators)}
	slices.SortFunc(c.Hits, func(a, b Hit) int { return strings.Compare(a.Indicator+"\x00"+a.Address, b.Indicator+"\x00"+b.Address) })
	b, _ := json.Marshal(&c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

type deposit struct {
	c        Candidate
	status   string
	required uint64
	final    bool // wait for finality too
	credits  int
	decision *Decision
	// approvals are first releases waiting for a second operator.
	approvals []Decision
}

func (d *deposit) released() bool { return d.decision != nil && d.decision.Action == ActionRelease }

// waiting tells whether the deposit waits to be credited.
func (d *deposit) waiting() bool {
	return d.status == StatusPending || d.status == StatusReleased
}

// Engine decides deposits from a stream's block events. It is
// deterministic: the same events give the same decisions, and its state is
// what its emitted events say (Restore), so it needs no database.
type Engine struct {
	policy    func(c chain.Chain, asset string) Policy
	heights   map[string]uint64 // stream → tip height
	finalized map[string]uint64 // stream → the node's finalized height
	deposits  map[string]*deposit
	byBlock   map[string][]string // block hash → deposit ids seen in it
	// waiting are the pending and released deposits by stream: the only
	// ones a new block can credit.
	waiting map[string]map[string]*deposit
	counts  map[string]int
	// Retain, when set, forgets settled deposits (credited, rejected,
	// dust, unknown token) whose block is more than Retain blocks below
	// the tip: no reorg reaches them (the watcher refuses reorgs deeper
	// than its max_reorg_depth) and their transaction cannot be mined
	// again, so memory holds only what can still change. Held, released,
	// pending, dropped and reverted deposits are always kept (a dropped or
	// reverted transaction may be mined again, much later).
	Retain uint64
	// pruned are the deposits forgotten since TakePruned.
	pruned []string
	// Confirm, when set, asks the chain's nodes about a deposit that
	// reached its depth (see Judge): Confirmed credits it, Unconfirmed
	// leaves it waiting for the next block, Disputed holds it with the
	// verdict's reason.
	Confirm func(c Candidate, p Policy) Verdict
}

// NewEngine returns an engine with the given policies.
func NewEngine(policy func(c chain.Chain, asset string) Policy) *Engine {
	return &Engine{policy: policy, heights: map[string]uint64{}, finalized: map[string]uint64{}, deposits: map[string]*deposit{},
		byBlock: map[string][]string{}, waiting: map[string]map[string]*deposit{}, counts: map[string]int{}}
}

// set changes a deposit's status, keeping the counts and the waiting set.
func (e *Engine) set(id string, d *deposit, status string) {
	if d.status != "" {
		e.counts[d.status]--
	}
	stream := chain.StreamKey(d.c.Chain, d.c.Network)
	was := d.waiting()
	d.status = status
	e.counts[status]++
	switch now := d.waiting(); {
	case now && !was:
		w := e.waiting[stream]
		if w == nil {
			w = map[string]*deposit{}
			e.waiting[stream] = w
		}
		w[id] = d
	case was && !now:
		delete(e.waiting[stream], id)
	}
}

func (e *Engine) event(d *deposit, stream string) DepositEvent {
	c := d.c
	conf := uint64(0)
	if tip := e.heights[stream]; d.status != StatusDropped && d.status != StatusReverted && tip >= c.Height {
		conf = tip - c.Height + 1
	}
	ev := DepositEvent{V: chain.SchemaVersion, ID: c.ID, Status: d.status, Chain: c.Chain, Network: c.Network, TxHash: c.TxHash,
		Index: c.Index, Address: c.Address, Account: c.Account, Asset: c.Asset, Amount: c.Amount.String(), BlockHash: c.BlockHash,
		BlockNumber: c.Height, Confirmations: conf, Required: d.required, Reasons: slices.Clone(c.Holds), Indicators: c.Hits, Credits: d.credits,
		Decision: d.decision, Approvals: slices.Clone(d.approvals), Senders: slices.Clone(c.Senders)}
	ev.Content = ContentOf(&ev)
	if d.final {
		f := e.finalized[stream] >= c.Height && conf > 0
		ev.Finalized = &f
	}
	return ev
}

// Added applies a block_added event with the deposit candidates in the
// block and returns the deposit events it causes, in a deterministic
// order.
func (e *Engine) Added(ev chain.BlockEvent, cands []Candidate) []DepositEvent {
	stream := ev.Stream()
	e.heights[stream] = ev.Height
	e.finalized[stream] = max(e.finalized[stream], ev.Finalized)
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
		// A deposit seen again after its block left the chain keeps its
		// credits count and the operator's decision.
		d.c, d.required, d.final = c, p.Required(c.Amount), p.Finalized
		if p.Review != nil && c.Amount.Cmp(p.Review) >= 0 {
			d.c.Holds = append(slices.Clone(c.Holds), "amount at or above the review threshold")
		}
		if d.decision != nil || len(d.approvals) > 0 {
			// The deposit mined again: a decision stands only on the
			// content it was made on.
			ev := e.event(d, stream)
			if d.decision != nil && d.decision.Content != ev.Content && d.decision.Action == ActionRelease {
				d.c.Holds = append(slices.Clone(d.c.Holds), fmt.Sprintf(
					"mined again with other content (amount, asset, senders or screening hits): the release by %s was cancelled", d.decision.Operator))
				d.decision = nil
			}
			if len(d.approvals) > 0 && d.approvals[0].Content != ev.Content {
				d.approvals = nil
			}
		}
		var status string
		switch {
		case !c.KnownAsset:
			status = StatusUnknown
		case c.Amount.Sign() == 0 || (p.Dust != nil && c.Amount.Cmp(p.Dust) < 0):
			// Zero is dust under every policy: zero-value transfers cost
			// an attacker nothing (address poisoning), and a held one would
			// ask an operator to look at nothing.
			status = StatusDust
		case len(d.c.Holds) > 0 && d.released():
			status = StatusReleased
		case len(d.c.Holds) > 0:
			status = StatusHeld
		default:
			status = StatusPending
		}
		e.set(c.ID, d, status)
		e.byBlock[c.BlockHash] = append(e.byBlock[c.BlockHash], c.ID)
		out = append(out, e.event(d, stream))
	}
	out = append(out, e.ripen(stream)...)
	if every := min(max(e.Retain/4, 1), 256); e.Retain > 0 && ev.Height%every == 0 {
		e.prune(stream)
	}
	return out
}

// prune forgets the settled deposits of stream below the retained depth.
func (e *Engine) prune(stream string) {
	tip := e.heights[stream]
	if tip <= e.Retain {
		return
	}
	floor := tip - e.Retain
	for id, d := range e.deposits {
		switch d.status {
		case StatusCredited, StatusRejected, StatusDust, StatusUnknown:
		default:
			continue
		}
		if d.c.Height >= floor || chain.StreamKey(d.c.Chain, d.c.Network) != stream {
			continue
		}
		e.counts[d.status]--
		delete(e.deposits, id)
		e.pruned = append(e.pruned, id)
		ids := slices.DeleteFunc(e.byBlock[d.c.BlockHash], func(x string) bool { return x == id })
		if len(ids) == 0 {
			delete(e.byBlock, d.c.BlockHash)
		} else {
			e.byBlock[d.c.BlockHash] = ids
		}
	}
}

// ripen credits the pending (and released held) deposits of stream that
// reached their depth.
func (e *Engine) ripen(stream string) []DepositEvent {
	tip, final := e.heights[stream], e.finalized[stream]
	var ids []string
	for id, d := range e.waiting[stream] {
		if tip >= d.c.Height && tip-d.c.Height+1 >= d.required && (!d.final || final >= d.c.Height) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]DepositEvent, 0, len(ids))
	for _, id := range ids {
		d := e.deposits[id]
		if e.Confirm != nil {
			switch v := e.Confirm(d.c, e.policy(d.c.Chain, d.c.Asset)); v.Outcome {
			case Unconfirmed:
				continue
			case Disputed:
				d.c.Holds = append(slices.Clone(d.c.Holds), v.Reason(d.c.Height, d.c.BlockHash))
				e.set(id, d, StatusHeld)
				out = append(out, e.event(d, stream))
				continue
			}
		}
		d.credits++
		e.set(id, d, StatusCredited)
		out = append(out, e.event(d, stream))
	}
	return out
}

// Ripen credits, on every stream, the deposits waiting at their depth
// (Added does it for its stream with each block): the service calls it
// when a round left deposits unconfirmed for want of time, so they do not
// wait for their chain's next block.
func (e *Engine) Ripen() []DepositEvent {
	streams := slices.Sorted(maps.Keys(e.waiting))
	out := make([]DepositEvent, 0, len(e.waiting))
	for _, st := range streams {
		out = append(out, e.ripen(st)...)
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
			e.set(id, d, StatusReverted)
		case StatusPending, StatusHeld, StatusReleased, StatusDust, StatusUnknown:
			e.set(id, d, StatusDropped)
		default:
			continue
		}
		out = append(out, e.event(d, stream))
	}
	return out
}

// TakePruned returns the deposits forgotten since the last call.
func (e *Engine) TakePruned() []string {
	p := e.pruned
	e.pruned = nil
	slices.Sort(p)
	return p
}

// Decide applies an operator's decision on a held deposit: release (it is
// credited once deep enough: a released event, and the credited one if it
// already is) or reject (final). A deposit that is not held is refused.
func (e *Engine) Decide(dec Decision) ([]DepositEvent, error) {
	d := e.deposits[dec.Deposit]
	if d == nil {
		return nil, fmt.Errorf("deposit %s is unknown", dec.Deposit)
	}
	if d.decision != nil && d.decision.ID == dec.ID {
		return nil, nil // this decision, read again
	}
	for _, a := range d.approvals {
		if a.ID == dec.ID {
			return nil, nil // this first approval, read again
		}
	}
	if d.status != StatusHeld {
		return nil, fmt.Errorf("deposit %s is %s, not held", dec.Deposit, d.status)
	}
	stream := chain.StreamKey(d.c.Chain, d.c.Network)
	if cur := e.event(d, stream); dec.Content != cur.Content {
		return nil, fmt.Errorf("decision %s was made on other content of deposit %s (%q, now %q): it changed since (mined again, screened again, or disputed by the nodes); decide again",
			dec.ID, dec.Deposit, trunc(dec.Content), cur.Content)
	}
	switch dec.Action {
	case ActionReject:
		d.decision, d.approvals = &dec, nil
		e.set(dec.Deposit, d, StatusRejected)
		return []DepositEvent{e.event(d, stream)}, nil
	case ActionRelease:
		if e.policy(d.c.Chain, d.c.Asset).dual(&d.c) {
			if len(d.approvals) > 0 && d.approvals[0].Content != dec.Content {
				d.approvals = nil // the first release was of other content
			}
			switch {
			case len(d.approvals) == 0:
				// The first of two: recorded, the deposit stays held.
				d.approvals = []Decision{dec}
				return []DepositEvent{e.event(d, stream)}, nil
			case d.approvals[0].Operator == dec.Operator:
				return nil, fmt.Errorf("deposit %s needs a second operator's release: %s released it already", dec.Deposit, dec.Operator)
			}
		}
		d.decision = &dec
		e.set(dec.Deposit, d, StatusReleased)
		return append([]DepositEvent{e.event(d, stream)}, e.ripen(stream)...), nil
	}
	return nil, fmt.Errorf("decision %s: unknown action %q", dec.ID, dec.Action)
}

// content is deposit id's content digest as the engine holds it ("" for
// an unknown deposit).
func (e *Engine) content(id string) string {
	d := e.deposits[id]
	if d == nil {
		return ""
	}
	return e.event(d, chain.StreamKey(d.c.Chain, d.c.Network)).Content
}

// Restore rebuilds the engine's deposits from the events it emitted (the
// cordon.deposits topic, read in order) and the stream tips.
func (e *Engine) Restore(events []DepositEvent, tips, finalized map[string]uint64) {
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
			Account: ev.Account, Asset: ev.Asset, Amount: amt, BlockHash: ev.BlockHash, Height: ev.BlockNumber, Holds: ev.Reasons, Hits: ev.Indicators,
			Senders: ev.Senders, KnownAsset: true}
		d.required, d.credits, d.decision, d.approvals = ev.Required, ev.Credits, ev.Decision, ev.Approvals
		d.final = ev.Finalized != nil
		e.set(ev.ID, d, ev.Status)
		if ev.Status != StatusDropped && ev.Status != StatusReverted {
			e.byBlock[ev.BlockHash] = append(e.byBlock[ev.BlockHash], ev.ID)
		}
	}
	for s, h := range tips {
		e.heights[s] = h
	}
	for s, h := range finalized {
		e.finalized[s] = h
	}
	if e.Retain > 0 {
		for s := range tips {
			e.prune(s)
		}
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
	out := make(map[string]int, len(e.counts))
	for k, v := range e.counts {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

package gate

import (
	"context"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
	"github.com/cordonhq/cordon/signer/risk"
)

// The statuses of a withdrawal. pending_approval, cooling and paused
// are open; approved is released to signing; denied, rejected and
// expired are final.
const (
	StatusPending  = "pending_approval"
	StatusCooling  = "cooling"
	StatusPaused   = "paused"
	StatusApproved = "approved"
	StatusDenied   = "denied"
	StatusRejected = "rejected"
	StatusExpired  = "expired"
	// The signing stage (signing.go): handed to the signer, signed,
	// broadcast, mined, and confirmed at the chain's depth, or failed
	// (the signer refused it, or its transaction could not be made).
	StatusSigning   = "signing"
	StatusSigned    = "signed"
	StatusBroadcast = "broadcast"
	StatusMined     = "mined"
	StatusConfirmed = "confirmed"
	StatusFailed    = "failed"
)

// Statuses lists every status, in the order of the status line.
var Statuses = []string{StatusPending, StatusCooling, StatusPaused, StatusApproved, StatusSigning, StatusSigned, StatusBroadcast,
	StatusMined, StatusConfirmed, StatusDenied, StatusRejected, StatusExpired, StatusFailed}

// final tells whether status s never changes again.
func final(s string) bool {
	return s == StatusDenied || s == StatusRejected || s == StatusExpired || s == StatusConfirmed || s == StatusFailed
}

// handedOn tells whether a withdrawal of status s left the gate's hands:
// its transaction is with the signer or on its way to the chain. Neither
// the clock nor the breaker change it any more.
func handedOn(s string) bool {
	return s == StatusSigning || s == StatusSigned || s == StatusBroadcast || s == StatusMined
}

// Risk is the online risk layer (*risk.Risk).
type Risk interface {
	Assess(ctx context.Context, q risk.Query, now time.Time) (risk.Result, error)
	Add(r risk.Record) error
	Remove(id string) bool
	// Warm fills the caches an assessment of a withdrawal to destination
	// reads (counterparties), outside the gate's loop.
	Warm(ctx context.Context, c chain.Chain, network, destination string)
}

// Withdrawal is one withdrawal's whole state, as the gate keeps it in
// cordon.gate-state and shows it in the API.
type Withdrawal struct {
	Intent intent.Intent `json:"intent"`
	// Hash is the intent's hash: what approvers sign.
	Hash    string         `json:"intent_hash"`
	Context intent.Context `json:"context"`
	// Body is the hash of the request's normal form: a repeated request
	// id with another body is refused.
	Body       string            `json:"body_hash"`
	Status     string            `json:"status"`
	Reason     string            `json:"reason"`
	USD        string            `json:"usd"`
	Findings   []intent.Finding  `json:"findings,omitempty"`
	Decision   policy.Decision   `json:"decision"`
	Approvals  []intent.Approval `json:"approvals,omitempty"`
	Rejections []intent.Approval `json:"rejections,omitempty"`
	// Needs says what the quorum still needs.
	Needs string `json:"needs,omitempty"`
	// WindowEnds is when an open withdrawal without its quorum expires;
	// QuorumAt when the quorum was reached; CoolingUntil when cooling
	// ends; Expires when an approved withdrawal's approvals become void.
	WindowEnds   *time.Time `json:"window_ends,omitempty"`
	QuorumAt     *time.Time `json:"quorum_at,omitempty"`
	CoolingUntil *time.Time `json:"cooling_until,omitempty"`
	Expires      *time.Time `json:"expires,omitempty"`
	// PausedSince is when the breaker began to hold it; its deadlines
	// move on by the time it was held.
	PausedSince *time.Time `json:"paused_since,omitempty"`
	// Tx is its transaction once handed to signing.
	Tx      *Tx       `json:"tx,omitempty"`
	Updated time.Time `json:"updated"`
	// Version counts its changes.
	Version int `json:"version"`
}

// Event is a withdrawal's record in cordon.withdrawals: what the
// exchange's withdrawal service acts on.
type Event struct {
	V           int      `json:"v"`
	ID          string   `json:"id"`
	Request     string   `json:"request"`
	Account     string   `json:"account"`
	Chain       string   `json:"chain"`
	Network     string   `json:"network"`
	Asset       string   `json:"asset"`
	Amount      string   `json:"amount"`
	Destination string   `json:"destination"`
	Status      string   `json:"status"`
	Reason      string   `json:"reason"`
	Rule        string   `json:"rule"`
	IntentHash  string   `json:"intent_hash"`
	USD         string   `json:"usd"`
	Findings    []string `json:"findings,omitempty"`
	Approvals   []string `json:"approvals,omitempty"`
	Needs       string   `json:"needs,omitempty"`
	Cooling     string   `json:"cooling_until,omitempty"`
	// TxID is its transaction's id once signed (Bitcoin txid, Ethereum
	// transaction hash), Block and Height where it was mined.
	TxID    string    `json:"txid,omitempty"`
	Block   string    `json:"block,omitempty"`
	Height  uint64    `json:"height,omitempty"`
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
}

// Event is w's record for cordon.withdrawals.
func (w *Withdrawal) Event() Event {
	ev := Event{V: 1, ID: w.Intent.ID, Request: w.Intent.Request, Account: w.Intent.Account, Chain: w.Intent.Chain,
		Network: w.Intent.Network, Asset: w.Intent.Asset, Amount: w.Intent.Amount, Destination: w.Intent.Destination,
		Status: w.Status, Reason: w.Reason, Rule: w.Decision.Rule, IntentHash: w.Hash, USD: w.USD, Version: w.Version, Time: w.Updated}
	for _, f := range w.Findings {
		ev.Findings = append(ev.Findings, f.Code)
	}
	for _, a := range w.Approvals {
		ev.Approvals = append(ev.Approvals, a.Approver)
	}
	if w.Status == StatusPending {
		ev.Needs = w.Needs
	}
	if w.Tx != nil {
		ev.TxID, ev.Block, ev.Height = w.Tx.TxID, w.Tx.Block, w.Tx.Height
	}
	if w.CoolingUntil != nil && w.Status == StatusCooling {
		ev.Cooling = w.CoolingUntil.UTC().Format(time.RFC3339)
	}
	return ev
}

func at(t time.Time) *time.Time { t = t.UTC(); return &t }

package gate

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Tx is a withdrawal's transaction in the signing stage, as the
// dispatcher (signer/dispatch) hands it on and follows it: kept in the
// gate's state with the withdrawal, so a new leader's dispatcher knows
// every transaction the one before it made.
type Tx struct {
	// Request is the signing request's id on cordon.sign-requests, Wallet
	// the hot wallet, Batch every withdrawal of the transaction (this
	// one among them).
	Request string   `json:"request"`
	Wallet  string   `json:"wallet"`
	Batch   []string `json:"batch"`
	// Unsigned is the hex SHA-256 of the unsigned transaction, Inputs the
	// wallet's outputs it spends ("txid:vout", Bitcoin) and Nonce its
	// nonce (Ethereum).
	Unsigned string `json:"unsigned_hash"`
	// Sighash is an Ethereum transaction's signing hash (hex): what its
	// signed form must be the signature of.
	Sighash string   `json:"sighash,omitempty"`
	Inputs  []string `json:"inputs,omitempty"`
	Nonce   *uint64  `json:"nonce,omitempty"`
	// TxID and Raw are the signed transaction, once the signer returned
	// it.
	TxID string `json:"txid,omitempty"`
	Raw  []byte `json:"raw,omitempty"`
	// Broadcasts counts the times it was sent to the chain's nodes.
	Broadcasts int `json:"broadcasts,omitempty"`
	// Block and Height are the canonical block that mined it.
	Block  string `json:"block,omitempty"`
	Height uint64 `json:"height,omitempty"`
}

// Outgoing is a record an operation writes with the batch that commits
// it (a signing request, to cordon.sign-requests).
type Outgoing struct {
	Topic, Key, Type string
	Value            []byte
}

// transitions are the signing stage's moves: a re-broadcast keeps the
// status; a mined transaction reorganized out is broadcast again.
var transitions = map[string][]string{
	StatusSigning:   {StatusSigned, StatusFailed},
	StatusSigned:    {StatusBroadcast, StatusMined},
	StatusBroadcast: {StatusBroadcast, StatusMined},
	StatusMined:     {StatusMined, StatusBroadcast, StatusConfirmed},
}

// Dispatch hands the approved withdrawals ids, one transaction's, to
// signing at now: each becomes signing with tx, and out is written in
// the same batch. It refuses unless every one is approved (not paused,
// its approvals not void) and none is listed twice: a withdrawal is
// handed on once.
func (c *Core) Dispatch(ids []string, tx Tx, out Outgoing, now time.Time) error {
	if len(ids) == 0 || tx.Request == "" {
		return refuse(http.StatusBadRequest, "bad_dispatch", "a dispatch needs withdrawals and a request id")
	}
	ws := make([]*Withdrawal, 0, len(ids))
	for i, id := range ids {
		w, ok := c.ws[id]
		switch {
		case !ok:
			return refuse(http.StatusNotFound, "not_found", "no withdrawal %s", id)
		case slices.Contains(ids[:i], id):
			return refuse(http.StatusBadRequest, "bad_dispatch", "withdrawal %s listed twice", id)
		case w.Status != StatusApproved:
			return refuse(http.StatusConflict, "not_approved", "withdrawal %s is %s, not approved", id, w.Status)
		case w.Expires != nil && !now.Before(*w.Expires):
			return refuse(http.StatusConflict, "expired", "withdrawal %s: its approvals became void at %s", id, w.Expires.Format(time.RFC3339))
		case c.covering(&w.Intent) != nil:
			return refuse(http.StatusConflict, "paused", "withdrawal %s is held by the circuit breaker", id)
		case len(ws) > 0 && (w.Intent.Chain != ws[0].Intent.Chain || w.Intent.Network != ws[0].Intent.Network):
			return refuse(http.StatusBadRequest, "bad_dispatch", "withdrawals %s and %s are on different chains", ws[0].Intent.ID, id)
		}
		ws = append(ws, w)
	}
	tx.Batch = slices.Clone(ids)
	for _, w := range ws {
		t := tx
		t.Inputs, t.Batch = slices.Clone(tx.Inputs), slices.Clone(tx.Batch)
		w.Tx, w.Status, w.Reason = &t, StatusSigning, "handed to the signer: request "+tx.Request
		c.touch(w, now)
		c.log("status", w.Intent.ID, "dispatcher", map[string]any{"status": w.Status, "request": tx.Request, "wallet": tx.Wallet,
			"unsigned_hash": tx.Unsigned, "batch": tx.Batch})
	}
	c.outbox = append(c.outbox, out)
	return nil
}

// Advance moves the withdrawals ids of one transaction to status at now
// with reason, update changing their Tx (its TxID, Raw, Block…): only
// along the signing stage's transitions, and only for withdrawals of
// that transaction (request).
func (c *Core) Advance(ids []string, request, status, reason string, update func(*Tx), now time.Time) error {
	for _, id := range ids {
		w, ok := c.ws[id]
		switch {
		case !ok:
			return refuse(http.StatusNotFound, "not_found", "no withdrawal %s", id)
		case w.Tx == nil || w.Tx.Request != request:
			return refuse(http.StatusConflict, "other_request", "withdrawal %s is not of request %s", id, request)
		case !slices.Contains(transitions[w.Status], status):
			return refuse(http.StatusConflict, "bad_transition", "withdrawal %s is %s: it cannot become %s", id, w.Status, status)
		}
	}
	for _, id := range ids {
		w := c.ws[id]
		prevBlock := w.Tx.Block
		if update != nil {
			update(w.Tx)
		}
		was := w.Status
		w.Status, w.Reason = status, reason
		c.touch(w, now)
		body := map[string]any{"status": status, "reason": reason, "request": request, "txid": w.Tx.TxID}
		if w.Tx.Block != "" {
			body["block"], body["height"] = w.Tx.Block, w.Tx.Height
		}
		c.log("status", id, "dispatcher", body)
		if status == StatusFailed {
			c.Risk.Remove(id)
		}
		if was == StatusBroadcast && status == StatusBroadcast {
			c.alert(alert("withdrawal_rebroadcast", "warning", fmt.Sprintf("%s/%d", id, w.Tx.Broadcasts),
				fmt.Sprintf("withdrawal %s: its transaction %s was broadcast again: %s", id, w.Tx.TxID, reason),
				map[string]string{"withdrawal": id, "txid": w.Tx.TxID}, now), w.Intent.Chain, w.Intent.Network)
		}
		if was == StatusMined && status == StatusBroadcast {
			c.alert(alert("withdrawal_reorged_out", "warning", id+"/"+prevBlock,
				fmt.Sprintf("withdrawal %s: the block that mined its transaction %s left the chain; the same transaction is broadcast again", id, w.Tx.TxID),
				map[string]string{"withdrawal": id, "txid": w.Tx.TxID, "block": prevBlock}, now), w.Intent.Chain, w.Intent.Network)
		}
		if status == StatusFailed {
			c.alert(alert("withdrawal_signing_failed", "critical", id,
				fmt.Sprintf("withdrawal %s was not signed: %s", id, reason), map[string]string{"withdrawal": id, "request": request}, now),
				w.Intent.Chain, w.Intent.Network)
		}
	}
	return nil
}

// InSigning are the withdrawals the dispatcher acts on: the approved
// ones not held by the breaker, and those in the signing stage.
func (c *Core) InSigning() []Withdrawal {
	return c.List(func(w *Withdrawal) bool {
		return (w.Status == StatusApproved && c.covering(&w.Intent) == nil) || handedOn(w.Status)
	}, 0)
}

// Dispatch hands withdrawals to signing (Core.Dispatch), writing out in
// the same Kafka transaction.
func (s *Service) Dispatch(ctx context.Context, ids []string, tx Tx, out Outgoing) error {
	_, err := s.do(ctx, func(c *Core, now time.Time) (any, error) { return nil, c.Dispatch(ids, tx, out, now) })
	return err
}

// Advance moves one transaction's withdrawals on (Core.Advance).
func (s *Service) Advance(ctx context.Context, ids []string, request, status, reason string, update func(*Tx)) error {
	_, err := s.do(ctx, func(c *Core, now time.Time) (any, error) {
		return nil, c.Advance(ids, request, status, reason, update, now)
	})
	return err
}

// InSigning lists what the dispatcher acts on (Core.InSigning), as of
// a committed batch.
func (s *Service) InSigning(ctx context.Context) ([]Withdrawal, error) {
	v, err := s.do(ctx, func(c *Core, _ time.Time) (any, error) { return c.InSigning(), nil })
	if err != nil {
		return nil, err
	}
	return v.([]Withdrawal), nil
}

// Trip pulls the breaker (Core.Trip): the dispatcher's, when a signer
// returned a transaction other than the one requested.
func (s *Service) Trip(ctx context.Context, t Trip) (Trip, error) {
	v, err := s.do(ctx, func(c *Core, now time.Time) (any, error) { return c.Trip(t, now) })
	if err != nil {
		return Trip{}, err
	}
	return v.(Trip), nil
}

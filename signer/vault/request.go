package vault

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cordonhq/cordon/signer/intent"
)

// Limits of a request.
const (
	// MaxRequestBytes bounds a request record.
	MaxRequestBytes = 1 << 20
	// MaxBatch bounds the withdrawals of one Bitcoin transaction.
	MaxBatch = 100
	// MaxApprovals bounds the approvals of one withdrawal.
	MaxApprovals = 32
)

// Request is what the builder asks the signer to sign: one unsigned
// transaction of one of the exchange's hot wallets, the withdrawals it
// carries out and their approvals. It is the value of a record on
// cordon.sign-requests, keyed by ID.
type Request struct {
	V int `json:"v"`
	// ID is the builder's id of the request; a request id is signed for
	// once, and asked again only with the same bytes.
	ID      string `json:"id"`
	Chain   string `json:"chain"`
	Network string `json:"network"`
	// Wallet names the hot wallet (the signer's own config must have it).
	Wallet string `json:"wallet"`
	// Unsigned is the transaction: a binary PSBT (Bitcoin) or an unsigned
	// EIP-1559 payload (Ethereum), base64 in JSON.
	Unsigned    []byte       `json:"unsigned"`
	Withdrawals []Withdrawal `json:"withdrawals"`
	Created     time.Time    `json:"created"`
}

// Withdrawal is one withdrawal a request carries out: its intent, as the
// approvers signed it, and their approvals.
type Withdrawal struct {
	Intent    intent.Intent     `json:"intent"`
	Approvals []intent.Approval `json:"approvals"`
}

// ErrBadRequest is wrapped by every error of DecodeRequest.
var ErrBadRequest = errors.New("vault: bad signing request")

// DecodeRequest reads a request strictly: at most MaxRequestBytes, no
// unknown fields, nothing after it, version 1, every field present and
// bounded. It says what was wrong.
func DecodeRequest(b []byte) (*Request, error) {
	if len(b) > MaxRequestBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadRequest, len(b), MaxRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r Request
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the request", ErrBadRequest)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return &r, nil
}

func (r *Request) check() error {
	switch {
	case r.V != 1:
		return fmt.Errorf("version %d: want 1", r.V)
	case r.ID == "" || len(r.ID) > 200:
		return fmt.Errorf("id %q: want 1 to 200 bytes", trunc(r.ID))
	case r.Chain != "btc" && r.Chain != "eth":
		return fmt.Errorf("chain %q: want btc or eth", trunc(r.Chain))
	case r.Network == "" || len(r.Network) > 64:
		return fmt.Errorf("network %q", trunc(r.Network))
	case r.Wallet == "" || len(r.Wallet) > 64:
		return fmt.Errorf("wallet %q", trunc(r.Wallet))
	case len(r.Unsigned) == 0:
		return errors.New("no unsigned transaction")
	case len(r.Withdrawals) == 0:
		return errors.New("no withdrawals")
	case len(r.Withdrawals) > MaxBatch:
		return fmt.Errorf("%d withdrawals: at most %d", len(r.Withdrawals), MaxBatch)
	case r.Chain == "eth" && len(r.Withdrawals) != 1:
		return fmt.Errorf("%d withdrawals in one Ethereum transaction: want 1", len(r.Withdrawals))
	case r.Created.IsZero():
		return errors.New("no creation time")
	}
	seen := map[string]bool{}
	for i := range r.Withdrawals {
		w := &r.Withdrawals[i]
		switch id := w.Intent.ID; {
		case id == "" || len(id) > 100:
			return fmt.Errorf("withdrawals[%d]: intent id %q", i, trunc(id))
		case seen[id]:
			return fmt.Errorf("withdrawals[%d]: withdrawal %s listed twice", i, id)
		case len(w.Approvals) > MaxApprovals:
			return fmt.Errorf("withdrawals[%d]: %d approvals, at most %d", i, len(w.Approvals), MaxApprovals)
		}
		seen[w.Intent.ID] = true
	}
	return nil
}

// TxHash is the hex SHA-256 of the unsigned transaction's bytes: what a
// claim holds a withdrawal to.
func (r *Request) TxHash() string {
	s := sha256.Sum256(r.Unsigned)
	return hex.EncodeToString(s[:])
}

// IDs are the request's withdrawal ids, in its order.
func (r *Request) IDs() []string {
	out := make([]string, len(r.Withdrawals))
	for i := range r.Withdrawals {
		out[i] = r.Withdrawals[i].Intent.ID
	}
	return out
}

// The statuses of an entry (and a result).
const (
	// StatusSigning: admitted and claimed, recorded before any plugin is
	// asked; not signed yet (or signed and not recorded: then the same
	// transaction is signed again).
	StatusSigning = "signing"
	// StatusSigned: the signed transaction is recorded.
	StatusSigned = "signed"
	// StatusRefused: refused before signing; nothing is claimed.
	StatusRefused = "refused"
	// StatusFailed: admitted, and then a plugin refused or the
	// signatures did not make a valid transaction. The withdrawals stay
	// claimed: they need new withdrawals (new approvals).
	StatusFailed = "failed"
)

// Entry is the vault's record of one request, kept in the signer's own
// state (keyed by request id).
type Entry struct {
	Request Request `json:"request"`
	// TxHash is Request.TxHash().
	TxHash string `json:"tx_hash"`
	Status string `json:"status"`
	// Code and Reason say why a request was refused or failed.
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	// TxID is the transaction's id (Bitcoin txid; Ethereum transaction
	// hash once signed); Raw the signed transaction.
	TxID     string    `json:"txid,omitempty"`
	Raw      []byte    `json:"raw,omitempty"`
	Admitted time.Time `json:"admitted"`
	Updated  time.Time `json:"updated"`
}

// Result is the signer's answer to a request, on cordon.sign-results
// keyed by request id: what the builder broadcasts, or why not.
type Result struct {
	V           int       `json:"v"`
	ID          string    `json:"id"`
	Status      string    `json:"status"`
	Code        string    `json:"code,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Withdrawals []string  `json:"withdrawals"`
	Chain       string    `json:"chain"`
	Network     string    `json:"network"`
	TxID        string    `json:"txid,omitempty"`
	Raw         []byte    `json:"raw,omitempty"`
	Time        time.Time `json:"time"`
}

// Result is e's result.
func (e *Entry) Result() Result {
	return Result{V: 1, ID: e.Request.ID, Status: e.Status, Code: e.Code, Reason: e.Reason, Withdrawals: e.Request.IDs(),
		Chain: e.Request.Chain, Network: e.Request.Network, TxID: e.TxID, Raw: e.Raw, Time: e.Updated}
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

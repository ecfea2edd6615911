package gate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"

	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/jcs"
	"github.com/cordonhq/cordon/signer/intent"
)

// Request is the body of POST /v1/withdrawals: the exchange's own id of
// the withdrawal, what to send where, and what the exchange knows of the
// request.
type Request struct {
	ID          string         `json:"id"`
	Account     string         `json:"account"`
	Chain       string         `json:"chain"`
	Network     string         `json:"network"`
	Asset       string         `json:"asset"`
	Amount      string         `json:"amount"`
	Destination string         `json:"destination"`
	Initiator   string         `json:"initiator,omitempty"`
	Context     intent.Context `json:"context"`
}

// MaxRequestBytes bounds a request body.
const MaxRequestBytes = 8192

// ErrBadRequest is wrapped by every refusal of a request's content.
var ErrBadRequest = errors.New("bad withdrawal request")

var (
	idRe     = regexp.MustCompile(`^[A-Za-z0-9._:@/-]{1,128}$`)
	deviceRe = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)
	scoreRe  = regexp.MustCompile(`^(100(\.0+)?|[0-9]{1,2}(\.[0-9]{1,6})?)$`)
)

// Asset is a token the gate accepts withdrawals of: its chain, network,
// contract and decimals (the config file's gate.assets).
type Asset struct {
	Chain    string `yaml:"chain" json:"chain"`
	Network  string `yaml:"network" json:"network"`
	Contract string `yaml:"contract" json:"contract"`
	Symbol   string `yaml:"symbol" json:"symbol"`
	Decimals int    `yaml:"decimals" json:"decimals"`
}

// Assets answers which assets a withdrawal may move, and their decimals.
type Assets interface {
	// Decimals returns the decimals of asset (intent.Native or a token
	// contract in normal form) on chain and network, false when the gate
	// does not accept it.
	Decimals(c, network, asset string) (int, bool)
	// Networks tells whether the gate takes withdrawals on c and network.
	Network(c, network string) bool
}

// DecodeRequest reads and checks a request body: JSON of at most
// MaxRequestBytes, no unknown fields, no trailing data; every field is
// validated and put in its normal form (addresses per chain, the token
// contract among the configured assets, the amount an exact positive
// integer). It returns the request and the hash of its normal form, which
// decides whether a repeated id is the same withdrawal.
func DecodeRequest(r io.Reader, assets Assets) (Request, string, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxRequestBytes+1))
	if err != nil {
		return Request{}, "", fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if len(b) > MaxRequestBytes {
		return Request{}, "", fmt.Errorf("%w: the body is longer than %d bytes", ErrBadRequest, MaxRequestBytes)
	}
	if err := exactMembers(b); err != nil {
		return Request{}, "", fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var q Request
	if err := d.Decode(&q); err != nil {
		return Request{}, "", fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if d.More() {
		return Request{}, "", fmt.Errorf("%w: data after the request", ErrBadRequest)
	}
	if err := q.normalize(assets); err != nil {
		return Request{}, "", err
	}
	h, err := q.hash()
	return q, h, err
}

var (
	requestMembers = []string{"id", "account", "chain", "network", "asset", "amount", "destination", "initiator", "context"}
	contextMembers = []string{"client_ip", "device_id", "session_age_seconds", "device_age_seconds", "account_changed_seconds", "risk_score"}
)

// exactMembers refuses a body that encoding/json would read otherwise than
// a strict parser: a member twice (the last one wins) or a member's name
// in another case (encoding/json matches names case-insensitively).
func exactMembers(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := members(d, requestMembers, "", true); err != nil {
		return err
	}
	// Nothing may follow the object: Decoder.More is false before a
	// stray '}' or ']', so the decode below would not see one.
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the request")
	}
	return nil
}

// members reads one object from d, refusing a name not in names (exact
// case) or given twice; the member "context" (when nested) is an object
// read the same way, other values are skipped whole. A null is no object.
func members(d *json.Decoder, names []string, where string, nested bool) error {
	t, err := d.Token()
	if err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if t != json.Delim('{') {
		return fmt.Errorf("%swant an object", where)
	}
	seen := make([]bool, len(names))
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		i := slices.Index(names, k)
		if i < 0 {
			return fmt.Errorf("member %s%q: want one of %s, spelt so", where, trunc(k), strings.Join(names, ", "))
		}
		if seen[i] {
			return fmt.Errorf("member %s%q appears twice", where, k)
		}
		seen[i] = true
		if nested && k == "context" {
			if err := members(d, contextMembers, "context.", false); err != nil {
				return fmt.Errorf("context: %w", err)
			}
			continue
		}
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return err
		}
	}
	_, err = d.Token() // the closing brace
	return err
}

func bad(field, f string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadRequest, field, fmt.Sprintf(f, args...))
}

func (q *Request) normalize(assets Assets) error {
	if !idRe.MatchString(q.ID) {
		return bad("id", "%q: want the exchange's id of the withdrawal, 1 to 128 of A-Z a-z 0-9 . _ : @ / -", trunc(q.ID))
	}
	if !idRe.MatchString(q.Account) {
		return bad("account", "%q: want 1 to 128 of A-Z a-z 0-9 . _ : @ / -", trunc(q.Account))
	}
	if q.Initiator != "" && !idRe.MatchString(q.Initiator) {
		return bad("initiator", "%q: want 1 to 128 of A-Z a-z 0-9 . _ : @ / -", trunc(q.Initiator))
	}
	q.Chain = strings.ToLower(strings.TrimSpace(q.Chain))
	if q.Chain != string(chain.ETH) && q.Chain != string(chain.BTC) {
		return bad("chain", "%q: want eth or btc", trunc(q.Chain))
	}
	q.Network = strings.ToLower(strings.TrimSpace(q.Network))
	if q.Network == "" {
		q.Network = "mainnet"
	}
	if !assets.Network(q.Chain, q.Network) {
		return bad("network", "%s/%s: the gate takes no withdrawals on this network", q.Chain, trunc(q.Network))
	}
	q.Asset = strings.TrimSpace(q.Asset)
	if q.Asset == "" || strings.EqualFold(q.Asset, intent.Native) {
		q.Asset = intent.Native
	} else {
		if q.Chain != string(chain.ETH) {
			return bad("asset", "%q: only eth has tokens; want native", trunc(q.Asset))
		}
		a, err := address.Normalize(chain.ETH, q.Network, q.Asset)
		if err != nil {
			return bad("asset", "%v", err)
		}
		q.Asset = strings.ToLower(a)
	}
	if _, ok := assets.Decimals(q.Chain, q.Network, q.Asset); !ok {
		return bad("asset", "%s is not a configured asset on %s/%s (gate.assets)", q.Asset, q.Chain, q.Network)
	}
	amt, err := chain.ParseAmount(q.Amount)
	switch {
	case err != nil:
		return bad("amount", "%v: want the amount in base units as a decimal string", err)
	case amt.IsZero():
		return bad("amount", "zero: nothing to withdraw")
	case len(q.Amount) > 78:
		return bad("amount", "%d digits, more than any supply", len(q.Amount))
	}
	dst, err := address.Normalize(chain.Chain(q.Chain), q.Network, q.Destination)
	if err != nil {
		return bad("destination", "%v", err)
	}
	q.Destination = dst
	c := &q.Context
	if c.ClientIP != "" {
		ip := net.ParseIP(c.ClientIP)
		if ip == nil {
			return bad("context.client_ip", "%q: not an IP address", trunc(c.ClientIP))
		}
		c.ClientIP = ip.String()
	}
	if c.DeviceID != "" && !deviceRe.MatchString(c.DeviceID) {
		return bad("context.device_id", "want 1 to 128 printable ASCII characters")
	}
	for name, v := range map[string]*int64{"session_age_seconds": c.SessionAge, "device_age_seconds": c.DeviceAge,
		"account_changed_seconds": c.AccountChanged} {
		if v != nil && *v < 0 {
			return bad("context."+name, "%d: negative", *v)
		}
	}
	if c.RiskScore != "" && !scoreRe.MatchString(c.RiskScore) {
		return bad("context.risk_score", "%q: want a decimal from 0 to 100", trunc(c.RiskScore))
	}
	return nil
}

// hash is the hex SHA-256 of the request's normal form (RFC 8785).
func (q *Request) hash() (string, error) {
	b, err := jcs.Marshal(q)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// WithdrawalID is cordon's id of the exchange's withdrawal id: the same
// request id always names the same withdrawal.
func WithdrawalID(request string) string {
	s := sha256.Sum256([]byte("cordon-withdrawal/v1\x00" + request))
	return "wd_" + hex.EncodeToString(s[:12])
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

package intent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/cordonhq/cordon/internal/jcs"
)

// Native is the asset of a chain's own coin; any other asset is a token
// contract's address.
const Native = "native"

// Intent is one withdrawal as the exchange asked for it and cordon
// accepted it: what every approval signs (through Hash) and what the
// signing stage later checks the transaction against. Amounts are
// decimal strings of base units; addresses are in their normal form
// (internal/address).
type Intent struct {
	// ID is cordon's withdrawal id (wd_…), derived from Request.
	ID string `json:"id"`
	// Request is the exchange's own id of the withdrawal.
	Request string `json:"request"`
	// Requester is the API token that asked for it; Initiator the
	// exchange's own person who started it, when one did (a sweep, a
	// manual payout): neither may approve it.
	Requester   string `json:"requester"`
	Initiator   string `json:"initiator,omitempty"`
	Account     string `json:"account"`
	Chain       string `json:"chain"`
	Network     string `json:"network"`
	Asset       string `json:"asset"`
	Amount      string `json:"amount"`
	Destination string `json:"destination"`
	// Rule is the policy rule that matched, and Policy the hash of the
	// policy it belongs to: an approval for one rule is no approval under
	// another.
	Rule   string `json:"rule"`
	Policy string `json:"policy"`
	// Requested is when cordon accepted it (UTC, RFC 3339 with nanoseconds).
	Requested time.Time `json:"requested"`
}

// Context is what the exchange knows about the request, given with it;
// the risk layer reads it. Absent fields are unknown, never "fine".
type Context struct {
	ClientIP string `json:"client_ip,omitempty"`
	DeviceID string `json:"device_id,omitempty"`
	// SessionAge is the age of the user's session in seconds.
	SessionAge *int64 `json:"session_age_seconds,omitempty"`
	// DeviceAge is how long ago this device was first seen on the
	// account, in seconds.
	DeviceAge *int64 `json:"device_age_seconds,omitempty"`
	// AccountChanged is how long ago the account's credentials, 2FA or
	// contact details last changed, in seconds.
	AccountChanged *int64 `json:"account_changed_seconds,omitempty"`
	// RiskScore is the exchange's own score, 0 to 100, as a decimal string.
	RiskScore string `json:"risk_score,omitempty"`
}

// Canonical returns the intent's canonical bytes: RFC 8785 JSON of its
// fields (every value a string).
func (in *Intent) Canonical() ([]byte, error) {
	// The members in increasing order of their names (RFC 8785's order).
	b, err := jcs.Members(
		"account", in.Account, "amount", in.Amount, "asset", in.Asset, "chain", in.Chain,
		"destination", in.Destination, "id", in.ID, "initiator", in.Initiator, "network", in.Network,
		"policy", in.Policy, "request", in.Request, "requested", in.Requested.UTC().Format(time.RFC3339Nano),
		"requester", in.Requester, "rule", in.Rule, "v", "cordon-intent/v1",
	)
	if err != nil {
		return nil, fmt.Errorf("canonical intent %s: %w", in.ID, err)
	}
	return b, nil
}

// Hash is the hex SHA-256 of the intent's canonical bytes: what an
// approver is shown and signs.
func (in *Intent) Hash() (string, error) {
	b, err := in.Canonical()
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// Finding is one thing the risk layer found about a withdrawal: a
// machine-readable code (FlaggedDestination…), a sentence for people,
// and details (indicator, source, window, counts) as strings.
type Finding struct {
	Code    string            `json:"code"`
	Reason  string            `json:"reason"`
	Details map[string]string `json:"details,omitempty"`
}

// The findings' codes.
const (
	// FlaggedDestination: the destination is an indicator.
	FlaggedDestination = "flagged_destination"
	// FlaggedCounterparty: an earlier counterparty of the destination is.
	FlaggedCounterparty = "flagged_counterparty"
	// Velocity: a window's count or value is over its limit (details say
	// which: scope account, asset or global; window; count; value).
	Velocity = "velocity"
	// NewDestination: the account never withdrew to it before.
	NewDestination = "new_destination"
	// Lookalike: the destination shares its leading and trailing
	// characters with one the account used, and is another address
	// (address poisoning).
	Lookalike = "lookalike_destination"
	// AboveHistory: the amount is far above the account's own history.
	AboveHistory = "above_history"
	// AccountChanged / DeviceNew / SessionNew: from the request context.
	AccountChanged = "account_changed"
	DeviceNew      = "device_new"
	SessionNew     = "session_new"
	// InternalTransfer: the destination is one of the exchange's own
	// deposit addresses.
	InternalTransfer = "internal_transfer"
	// ExchangeRisk: the exchange's own risk score is at or above its
	// threshold.
	ExchangeRisk = "exchange_risk"
	// PriceUnknown: no fresh price for the asset, so its dollar value is
	// unknown (and counts as the highest tier).
	PriceUnknown = "price_unknown"
	// CounterpartiesUnknown: the destination's earlier counterparties
	// could not be read (the lookup failed or timed out), so they were
	// not screened.
	CounterpartiesUnknown = "counterparties_unknown"
)

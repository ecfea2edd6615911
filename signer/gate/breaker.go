package gate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/jcs"
	"github.com/cordonhq/cordon/signer/intent"
)

// Breaker scopes.
const (
	ScopeAll   = "all"
	ScopeChain = "chain"
	ScopeAsset = "asset"
)

// Trip is one pull of the circuit breaker: what it pauses, why, who
// pulled it and when, and the approvals collected to reset it.
type Trip struct {
	ID      string    `json:"id"`
	Scope   string    `json:"scope"`
	Chain   string    `json:"chain,omitempty"`
	Network string    `json:"network,omitempty"`
	Asset   string    `json:"asset,omitempty"`
	Reason  string    `json:"reason"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	// Resets are the approvals of resetting it.
	Resets []intent.Approval `json:"resets,omitempty"`
}

// Covers tells whether the trip pauses a withdrawal of chain, network
// and asset.
func (t *Trip) Covers(in *intent.Intent) bool {
	switch t.Scope {
	case ScopeAll:
		return true
	case ScopeChain:
		return t.Chain == in.Chain && (t.Network == "" || t.Network == in.Network)
	case ScopeAsset:
		return t.Chain == in.Chain && (t.Network == "" || t.Network == in.Network) && t.Asset == in.Asset
	}
	return true // an unknown scope pauses everything: fail closed
}

// Subject is what a reset approval names as its withdrawal: breaker/ID.
func (t *Trip) Subject() string { return "breaker/" + t.ID }

// Hash is what a reset approval signs: the hex SHA-256 of the trip's
// canonical bytes (RFC 8785 of its id, scope, reason, who and when).
func (t *Trip) Hash() string {
	b, _ := jcs.Marshal(map[string]string{ //nolint:errcheck // a map of strings always canonicalizes
		"v": "cordon-breaker/v1", "id": t.ID, "scope": t.Scope, "chain": t.Chain, "network": t.Network, "asset": t.Asset,
		"reason": t.Reason, "by": t.By, "at": t.At.UTC().Format(time.RFC3339Nano),
	})
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// describe says what the trip pauses.
func (t *Trip) describe() string {
	switch t.Scope {
	case ScopeAll:
		return "every withdrawal"
	case ScopeChain:
		return "withdrawals on " + strings.TrimSuffix(t.Chain+"/"+t.Network, "/")
	}
	return "withdrawals of " + t.Asset + " on " + strings.TrimSuffix(t.Chain+"/"+t.Network, "/")
}

// BreakerConfig is gate.breaker: who may reset a trip.
type BreakerConfig struct {
	// ResetQuorum approvers of ResetGroups must sign a reset.
	ResetQuorum int      `yaml:"reset_quorum"`
	ResetGroups []string `yaml:"reset_groups"`
}

// resetMet counts the distinct approvers of the reset groups whose reset
// approvals of t verify now: signed by a known, enabled approver (one
// disabled since no longer counts).
func (c BreakerConfig) resetMet(approvers *intent.Approvers, t *Trip) (bool, string) {
	n := 0
	seen := map[string]bool{}
	for i := range t.Resets {
		a, err := verifyReset(approvers, t, &t.Resets[i])
		if err != nil || seen[a.Name] || !slices.ContainsFunc(c.ResetGroups, a.In) {
			continue
		}
		seen[a.Name] = true
		n++
	}
	if n >= c.ResetQuorum {
		return true, ""
	}
	return false, fmt.Sprintf("%d of %d approvers of %s", n, c.ResetQuorum, strings.Join(c.ResetGroups, ", "))
}

// verifyReset checks a reset approval of trip t the way withdrawal
// approvals are checked: signed by a known, enabled approver over the
// trip's hash.
func verifyReset(approvers *intent.Approvers, t *Trip, a *intent.Approval) (*intent.Approver, error) {
	if err := a.Check(); err != nil {
		return nil, err
	}
	if a.Withdrawal != t.Subject() || a.Intent != t.Hash() {
		return nil, fmt.Errorf("%w: it signs %s %s, and trip %s is %s", intent.ErrWrongIntent, trunc(a.Withdrawal), a.Intent, t.ID, t.Hash())
	}
	return intent.VerifySigned(approvers, a)
}

package vault

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/jcs"
	"github.com/cordonhq/cordon/signer/intent"
)

// Trip is one pull of the signer's breaker: a refusal meaning that
// someone upstream lied. It holds every request of its chain and network
// until ResetQuorum approvers of ResetGroups sign its reset.
type Trip struct {
	ID      string    `json:"id"`
	Chain   string    `json:"chain"`
	Network string    `json:"network"`
	Request string    `json:"request"`
	Code    string    `json:"code"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
	// Resets are the reset approvals collected so far.
	Resets []intent.Approval `json:"resets,omitempty"`
}

// Subject is what a reset approval names as its withdrawal.
func (t *Trip) Subject() string { return "signer-breaker/" + t.ID }

// Hash is what a reset approval signs: the hex SHA-256 of the trip's
// canonical bytes.
func (t *Trip) Hash() string {
	b, _ := jcs.Marshal(map[string]string{ //nolint:errcheck // a map of strings always canonicalizes
		"v": "cordon-signer-breaker/v1", "id": t.ID, "chain": t.Chain, "network": t.Network, "request": t.Request,
		"code": t.Code, "reason": t.Reason, "at": t.At.UTC().Format(time.RFC3339Nano),
	})
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (v *Vault) covering(c, network string) *Trip {
	var first *Trip
	for _, t := range v.trips {
		if t.Chain == c && t.Network == network && (first == nil || t.At.Before(first.At)) {
			first = t
		}
	}
	return first
}

func (v *Vault) trip(req *Request, r *Refusal, now time.Time) *Trip {
	var b [8]byte
	_, _ = rand.Read(b[:])
	t := &Trip{ID: "st_" + hex.EncodeToString(b[:]), Chain: req.Chain, Network: req.Network, Request: req.ID, Code: r.Code,
		Reason: r.Reason, At: now.UTC()}
	v.trips[t.ID] = t
	v.log.Error("signer: breaker tripped", "trip", t.ID, "chain", t.Chain, "network", t.Network, "request", req.ID, "code", r.Code)
	return t
}

// Trips are the breaker's open trips.
func (v *Vault) Trips() []*Trip {
	out := make([]*Trip, 0, len(v.trips))
	for _, t := range v.trips {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *Trip) int { return a.At.Compare(b.At) })
	return out
}

// RestoreTrip puts back a trip read from the signer's state (nil
// resets: a tombstone).
func (v *Vault) RestoreTrip(id string, t *Trip) {
	if t == nil {
		delete(v.trips, id)
		return
	}
	v.trips[id] = t
}

// Reset adds a reset approval to trip id. It returns the trip, and
// whether the reset quorum is now met (then the trip is gone). An
// approval that does not verify is refused.
func (v *Vault) Reset(id string, a intent.Approval) (*Trip, bool, error) {
	t, ok := v.trips[id]
	if !ok {
		return nil, false, fmt.Errorf("vault: no open trip %s", id)
	}
	if a.Decision != intent.Approve {
		return nil, false, fmt.Errorf("vault: a reset is an approval, not %q", a.Decision)
	}
	ap, err := verifyReset(v.approvers, t, &a)
	if err != nil {
		return nil, false, err
	}
	if !slices.ContainsFunc(v.cfg.Breaker.ResetGroups, ap.In) {
		return nil, false, fmt.Errorf("vault: %s is not in %s", ap.Name, strings.Join(v.cfg.Breaker.ResetGroups, ", "))
	}
	if !slices.ContainsFunc(t.Resets, func(r intent.Approval) bool { return r.Approver == a.Approver }) {
		t.Resets = append(t.Resets, a)
	}
	n := 0
	for i := range t.Resets {
		if ap, err := verifyReset(v.approvers, t, &t.Resets[i]); err == nil && slices.ContainsFunc(v.cfg.Breaker.ResetGroups, ap.In) {
			n++
		}
	}
	if n < v.cfg.Breaker.ResetQuorum {
		return t, false, nil
	}
	delete(v.trips, id)
	v.log.Warn("signer: breaker reset", "trip", id, "chain", t.Chain, "network", t.Network)
	return t, true, nil
}

func verifyReset(approvers *intent.Approvers, t *Trip, a *intent.Approval) (*intent.Approver, error) {
	if err := a.Check(); err != nil {
		return nil, err
	}
	if a.Withdrawal != t.Subject() || a.Intent != t.Hash() {
		return nil, fmt.Errorf("%w: it signs %s %s, and trip %s is %s", intent.ErrWrongIntent, trunc(a.Withdrawal), a.Intent, t.ID, t.Hash())
	}
	return intent.VerifySigned(approvers, a)
}

package intent

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Canonicalization attacks on what approvers sign: values that smuggle
// JSON, fields swapped, the same instant in another zone, and the
// approval's own fields.
func TestAttackCanonicalIntent(t *testing.T) {
	at := time.Date(2026, 12, 2, 9, 0, 0, 123, time.UTC)
	base := Intent{ID: "wd_1", Request: "r1", Requester: "exchange", Account: "acct", Chain: "eth", Network: "mainnet", Asset: Native,
		Amount: "1000", Destination: "0x" + strings.Repeat("ab", 20), Rule: "below-1m", Policy: strings.Repeat("0", 64), Requested: at}
	h0, err := base.Hash()
	require.NoError(t, err)
	variants := map[string]func(*Intent){
		"account smuggles a field": func(in *Intent) { in.Account = `acct","amount":"1` },
		"request and account swapped": func(in *Intent) {
			in.Request, in.Account = in.Account, in.Request
		},
		"initiator empty vs absent-like": func(in *Intent) { in.Initiator = " " },
		"amount leading zero":            func(in *Intent) { in.Amount = "01000" },
		"one nanosecond later":           func(in *Intent) { in.Requested = at.Add(time.Nanosecond) },
		"another rule":                   func(in *Intent) { in.Rule = "above-5m" },
		"another policy":                 func(in *Intent) { in.Policy = strings.Repeat("1", 64) },
		"unicode lookalike destination":  func(in *Intent) { in.Destination = "0x" + strings.Repeat("ab", 19) + "аb" },
	}
	seen := map[string]string{h0: "base"}
	for name, mod := range variants {
		in := base
		mod(&in)
		h, err := in.Hash()
		require.NoError(t, err, name)
		require.NotContains(t, seen, h, "%s hashes as %s", name, seen[h])
		seen[h] = name
	}
	// The same instant in another zone, or with a monotonic reading, is
	// the same intent.
	in := base
	in.Requested = at.In(time.FixedZone("X", 3600))
	h, err := in.Hash()
	require.NoError(t, err)
	require.Equal(t, h0, h)
	in.Requested = time.Now()
	in2 := in
	in2.Requested = in.Requested.Round(0)
	ha, _ := in.Hash()
	hb, _ := in2.Hash()
	require.Equal(t, ha, hb)
}

func TestAttackApprovalFields(t *testing.T) {
	k := ed25519.NewKeyFromSeed(make([]byte, 32))
	a := Approval{Withdrawal: "wd_1", Intent: strings.Repeat("a", 64), Approver: "alice", Decision: Reject, Reason: `x","decision":"approve`,
		Signed: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	a.Sign(k)
	b := a
	b.Decision, b.Reason = Approve, ""
	require.NotEqual(t, string(a.SignedBytes()), string(b.SignedBytes()))
	// Upper-case hex, or a hash with a prefix, is malformed.
	for _, h := range []string{strings.Repeat("A", 64), "0x" + strings.Repeat("a", 62), strings.Repeat("a", 63)} {
		c := a
		c.Intent = h
		require.ErrorIs(t, c.Check(), ErrMalformed, h)
	}
	// Duplicate keys, unknown fields, trailing data: refused.
	for _, body := range []string{
		`{"withdrawal":"wd_1","intent":"` + a.Intent + `","approver":"alice","decision":"reject","reason":"r","signed":"2026-12-02T09:00:00Z","signature":"` + a.Signature + `","extra":1}`,
		`{"withdrawal":"wd_1"} {}`,
		strings.Repeat(" ", MaxApprovalBytes+1),
	} {
		_, err := DecodeApproval(strings.NewReader(body))
		require.ErrorIs(t, err, ErrMalformed)
	}
}

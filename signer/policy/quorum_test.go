package policy

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/signer/intent"
)

type signer struct {
	tb   testing.TB
	keys map[string]ed25519.PrivateKey
	in   intent.Intent
}

// sign is name's approval (or rejection) of s.in, signed after the
// request.
func (s signer) sign(name, decision string, after time.Duration) intent.Approval {
	s.tb.Helper()
	h, err := s.in.Hash()
	require.NoError(s.tb, err)
	a := intent.Approval{Withdrawal: s.in.ID, Intent: h, Approver: name, Decision: decision,
		Signed: s.in.Requested.Add(after)}
	if decision == intent.Reject {
		a.Reason = "not expected"
	}
	key := s.keys[name]
	require.NotNil(s.tb, key, name)
	a.Sign(key)
	return a
}

func (s signer) yes(name string, after time.Duration) intent.Approval {
	return s.sign(name, intent.Approve, after)
}

func TestCheckQuorum(t *testing.T) {
	as, keys := testApprovers(t,
		intent.Approver{Name: "zed", Groups: []string{"ops"}},
		intent.Approver{Name: "frank", Groups: []string{"security", "finance"}},
		intent.Approver{Name: "gone", Groups: []string{"security"}, Disabled: true})
	in := testIntent()
	s := signer{t, keys, in}
	two := Terms{Quorum: Quorum{N: 2, Groups: []string{"security", "finance"}}, Window: 15 * time.Minute, Expiry: 2 * time.Hour, RejectVeto: true}
	top := Terms{Quorum: Quorum{N: 4, Groups: []string{"security", "finance"}, MinPerGroup: map[string]int{"security": 1, "finance": 1}},
		Window: 24 * time.Hour, Cooling: 2 * time.Hour, Expiry: 2 * time.Hour, RejectVeto: true}
	pair := Terms{Quorum: Quorum{N: 2, Groups: []string{"security", "finance"}, MinPerGroup: map[string]int{"security": 1, "finance": 1}},
		Window: time.Hour, Expiry: time.Hour, RejectVeto: true}
	other := in
	other.Amount = "1"
	forOther := signer{t, keys, other}.yes("bob", time.Minute)

	cases := []struct {
		name      string
		terms     Terms
		approvals []intent.Approval
		now       time.Duration
		met       bool
		ready     bool
		rejected  bool
		closed    bool
		counted   []string
		missing   string
		ignored   []string
	}{
		{name: "two of five", terms: two, approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("dave", 3*time.Minute)},
			now: 4 * time.Minute, met: true, ready: true, counted: []string{"alice", "dave"}},
		{name: "none", terms: two, now: time.Minute, missing: "0 of 2: needs 2 more from security or finance"},
		{name: "the same approver twice counts once", terms: two, approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("alice", 2*time.Minute)},
			now: 3 * time.Minute, counted: []string{"alice"}, missing: "1 of 2 (alice): needs 1 more from security or finance"},
		{name: "outside the groups", terms: two, approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("zed", 2*time.Minute)},
			now: 3 * time.Minute, counted: []string{"alice"}, missing: "1 of 2", ignored: []string{"zed: not in security or finance"}},
		{name: "a disabled approver", terms: two, approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("gone", 2*time.Minute)},
			now: 3 * time.Minute, counted: []string{"alice"}, missing: "1 of 2", ignored: []string{"gone: approver disabled"}},
		{name: "an approval of another intent", terms: two, approvals: []intent.Approval{s.yes("alice", time.Minute), forOther},
			now: 3 * time.Minute, counted: []string{"alice"}, missing: "1 of 2", ignored: []string{"bob: approval of another intent"}},
		{name: "a forged signature", terms: two, approvals: []intent.Approval{s.yes("alice", time.Minute), forge(s.yes("bob", time.Minute), "carol")},
			now: 3 * time.Minute, counted: []string{"alice"}, missing: "1 of 2", ignored: []string{"carol: bad approval signature"}},
		{name: "signed after the window", terms: two, approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("bob", 16*time.Minute)},
			now: 17 * time.Minute, counted: []string{"alice"}, closed: true, missing: "the approval window closed",
			ignored: []string{"bob: signed after the approval window closed"}},
		{name: "signed in the future", terms: two, approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("bob", 10*time.Minute)},
			now: 2 * time.Minute, counted: []string{"alice"}, missing: "1 of 2", ignored: []string{"bob: signed in the future"}},
		{name: "an expired approval", terms: Terms{Quorum: two.Quorum, Window: 24 * time.Hour, Expiry: 2 * time.Hour, RejectVeto: true},
			approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("bob", 3*time.Hour)},
			now:       3*time.Hour + time.Minute, counted: []string{"bob"}, missing: "1 of 2 (bob)"},
		{name: "both within expiry of each other", terms: Terms{Quorum: two.Quorum, Window: 24 * time.Hour, Expiry: 2 * time.Hour, RejectVeto: true},
			approvals: []intent.Approval{s.yes("alice", time.Hour), s.yes("bob", 2*time.Hour+59*time.Minute)},
			now:       5 * time.Hour, met: true, ready: true, counted: []string{"alice", "bob"}},
		{name: "a rejection vetoes", terms: two, approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("dave", 2*time.Minute), s.sign("erin", intent.Reject, 3*time.Minute)},
			now: 4 * time.Minute, met: true, rejected: true, counted: []string{"alice", "dave"}},
		{name: "a rejection without the veto withdraws its approver's approval",
			terms:     Terms{Quorum: two.Quorum, Window: two.Window, Expiry: two.Expiry},
			approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("dave", 2*time.Minute), s.sign("alice", intent.Reject, 3*time.Minute)},
			now:       4 * time.Minute, counted: []string{"dave"}, missing: "1 of 2 (dave)", ignored: []string{"alice: rejected"}},
		{name: "a rejection from outside the groups does not veto", terms: two,
			approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("dave", 2*time.Minute), s.sign("zed", intent.Reject, 3*time.Minute)},
			now:       4 * time.Minute, met: true, ready: true, counted: []string{"alice", "dave"}},
		{name: "an approver of both groups fills the second", terms: top,
			approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("bob", 2*time.Minute), s.yes("carol", 3*time.Minute), s.yes("frank", 4*time.Minute)},
			now:       5 * time.Minute, met: true, counted: []string{"alice", "bob", "carol", "frank"}},
		{name: "four without finance", terms: Terms{Quorum: Quorum{N: 4, Groups: []string{"security", "finance", "ops"}, MinPerGroup: map[string]int{"finance": 1}}, Window: time.Hour, Expiry: time.Hour},
			approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("bob", 2*time.Minute), s.yes("carol", 3*time.Minute), s.yes("zed", 4*time.Minute)},
			now:       5 * time.Minute, counted: []string{"alice", "bob", "carol", "zed"}, missing: "4 of 4 (alice, bob, carol, zed): needs 1 more from finance"},
		{name: "four with finance, cooling", terms: top,
			approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("bob", 2*time.Minute), s.yes("carol", 3*time.Minute), s.yes("dave", 4*time.Minute)},
			now:       time.Hour, met: true, counted: []string{"alice", "bob", "carol", "dave"}},
		{name: "four with finance, cooled", terms: top,
			approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("bob", 2*time.Minute), s.yes("carol", 3*time.Minute), s.yes("dave", 4*time.Minute)},
			now:       4*time.Minute + 2*time.Hour, met: true, ready: true, counted: []string{"alice", "bob", "carol", "dave"}},
		{name: "approvals that expire while cooling do not undo the quorum", terms: top,
			approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("bob", 2*time.Minute), s.yes("carol", 3*time.Minute), s.yes("dave", 4*time.Minute)},
			now:       10 * time.Hour, met: true, ready: true, counted: []string{"alice", "bob", "carol", "dave"}},
		{name: "a rejection while cooling rejects", terms: top,
			approvals: []intent.Approval{s.yes("alice", time.Minute), s.yes("bob", 2*time.Minute), s.yes("carol", 3*time.Minute), s.yes("dave", 4*time.Minute),
				s.sign("erin", intent.Reject, time.Hour)},
			now: 3 * time.Hour, met: true, rejected: true, counted: []string{"alice", "bob", "carol", "dave"}},
		{name: "one approver in both groups fills one minimum", terms: pair, approvals: []intent.Approval{s.yes("frank", time.Minute)},
			now: 2 * time.Minute, counted: []string{"frank"}, missing: "1 of 2 (frank): needs 1 more from security"},
		{name: "a two-group approver with a security one", terms: pair, approvals: []intent.Approval{s.yes("frank", time.Minute), s.yes("alice", 2*time.Minute)},
			now: 3 * time.Minute, met: true, ready: true, counted: []string{"alice", "frank"}},
		{name: "two security lack finance", terms: pair, approvals: []intent.Approval{s.yes("bob", time.Minute), s.yes("alice", 2*time.Minute)},
			now: 3 * time.Minute, counted: []string{"alice", "bob"}, missing: "2 of 2 (alice, bob): needs 1 more from finance"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tl := CheckQuorum(c.terms, as, &in, c.approvals, in.Requested.Add(c.now))
			require.Equal(t, c.met, tl.Met, "met: %+v", tl)
			require.Equal(t, c.ready, tl.Ready, "ready: %+v", tl)
			require.Equal(t, c.rejected, tl.Rejected, "rejected: %+v", tl)
			require.Equal(t, c.closed, tl.Closed, "closed: %+v", tl)
			require.Equal(t, c.counted, tl.Counted)
			if c.met {
				require.Empty(t, tl.Missing)
				require.False(t, tl.ReachedAt.IsZero())
				require.Equal(t, tl.ReachedAt.Add(c.terms.Cooling), tl.CoolingUntil)
			} else {
				require.NotEmpty(t, tl.Missing)
				require.Contains(t, tl.Missing, c.missing)
			}
			for _, ig := range c.ignored {
				found := false
				for _, g := range tl.Ignored {
					found = found || g.Approver+": "+g.Why == ig || (len(ig) > len(g.Approver)+2 && ig[:len(g.Approver)+2] == g.Approver+": " && contains(g.Why, ig[len(g.Approver)+2:]))
				}
				require.True(t, found, "want ignored %q in %+v", ig, tl.Ignored)
			}
		})
	}
	// The four-of-one-group case says what is missing.
	tl := CheckQuorum(top, as, &in, []intent.Approval{s.yes("alice", time.Minute), s.yes("bob", 2*time.Minute), s.yes("carol", 3*time.Minute)}, in.Requested.Add(time.Hour))
	require.Equal(t, "3 of 4 (alice, bob, carol): needs 1 more from finance", tl.Missing)
	// The quorum is reached by the approval that completes it.
	tl = CheckQuorum(two, as, &in, []intent.Approval{s.yes("dave", 5*time.Minute), s.yes("alice", time.Minute), s.yes("bob", 9*time.Minute)}, in.Requested.Add(10*time.Minute))
	require.Equal(t, in.Requested.Add(5*time.Minute), tl.ReachedAt)
	// No terms, no quorum.
	require.False(t, CheckQuorum(Terms{}, as, &in, []intent.Approval{s.yes("alice", time.Minute)}, in.Requested.Add(time.Hour)).Met)
}

// forge puts another approver's name on a, keeping its signature.
func forge(a intent.Approval, name string) intent.Approval {
	a.Approver = name
	return a
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestTermsJSONRoundTrip(t *testing.T) {
	in := Terms{Quorum: Quorum{N: 4, Groups: []string{"security", "finance"}, MinPerGroup: map[string]int{"finance": 1}},
		Window: 24 * time.Hour, Cooling: 2 * time.Hour, Expiry: 2 * time.Hour, RejectVeto: true}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	var out Terms
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, in, out)
	require.Error(t, json.Unmarshal([]byte(`{"window":"soon"}`), &out))
}

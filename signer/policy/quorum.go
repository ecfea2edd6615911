package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cordonhq/cordon/signer/intent"
)

// MaxClockSkew is how far in the future an approval may be signed (the
// approver's clock ahead of cordon's) and still count.
const MaxClockSkew = time.Minute

// Tally is what CheckQuorum found.
type Tally struct {
	// Met: the quorum was reached, at ReachedAt (the signing time of the
	// approval that completed it).
	Met       bool      `json:"met"`
	ReachedAt time.Time `json:"reached_at,omitzero"`
	// CoolingUntil is when the cooling period after the quorum ends.
	CoolingUntil time.Time `json:"cooling_until,omitzero"`
	// Rejected: an approver of the rule's groups rejected and the terms
	// give a rejection the veto; RejectedBy names them.
	Rejected   bool     `json:"rejected"`
	RejectedBy []string `json:"rejected_by,omitempty"`
	// Ready: met, not rejected and the cooling period is over — the
	// withdrawal may go on to signing.
	Ready bool `json:"ready"`
	// Closed: the approval window ended before the quorum was reached.
	Closed bool `json:"closed"`
	// Counted are the approvers counted: those that reached the quorum,
	// or, while it is not met, those counting now.
	Counted []string `json:"counted"`
	// Missing says what the quorum still needs ("" once met).
	Missing string `json:"missing,omitempty"`
	// Ignored are the approvals that did not count, and why.
	Ignored []Ignored `json:"ignored,omitempty"`
}

// Ignored is an approval that does not count.
type Ignored struct {
	Approver string `json:"approver"`
	Why      string `json:"why"`
}

type vote struct {
	approver string
	signed   time.Time
}

// CheckQuorum tells whether approvals meet the terms for the withdrawal
// in, now. It verifies each approval itself against approvers (the
// checker's own list, not the gate's word), so the signing stage can
// call it on the approvals it was handed. An approval counts when it is
// a valid signature over in's hash by an enabled approver of the terms'
// groups, signed no earlier than the request and within the window, and
// was not void (older than Expiry) when the quorum was reached. Each
// approver counts once. Once reached, the quorum stays reached: approvals
// that expire during the cooling period do not undo it.
func CheckQuorum(t Terms, approvers *intent.Approvers, in *intent.Intent, approvals []intent.Approval, now time.Time) Tally {
	var tl Tally
	if t.N < 1 {
		tl.Missing = "the decision asks for no approvals"
		return tl
	}
	var votes []vote
	rejecters := map[string]bool{}
	for i := range approvals {
		a := &approvals[i]
		ap, err := a.Verify(approvers, in)
		switch {
		case err != nil:
			tl.Ignored = append(tl.Ignored, Ignored{a.Approver, err.Error()})
			continue
		case !t.eligible(ap):
			tl.Ignored = append(tl.Ignored, Ignored{a.Approver, "not in " + strings.Join(t.Groups, " or ")})
			continue
		case a.Signed.After(now.Add(MaxClockSkew)):
			tl.Ignored = append(tl.Ignored, Ignored{a.Approver, "signed in the future, at " + a.Signed.UTC().Format(time.RFC3339)})
			continue
		case a.Signed.Before(in.Requested.Add(-MaxClockSkew)):
			tl.Ignored = append(tl.Ignored, Ignored{a.Approver, "signed before the withdrawal was requested"})
			continue
		}
		if a.Decision == intent.Reject {
			rejecters[a.Approver] = true
			continue
		}
		if t.Window > 0 && a.Signed.After(in.Requested.Add(t.Window)) {
			tl.Ignored = append(tl.Ignored, Ignored{a.Approver, "signed after the approval window closed"})
			continue
		}
		votes = append(votes, vote{a.Approver, a.Signed})
	}
	if len(rejecters) > 0 {
		tl.RejectedBy = slices.Sorted(maps.Keys(rejecters))
		tl.Rejected = t.RejectVeto
		if !t.RejectVeto {
			// A rejection without the veto withdraws the approver's own
			// approvals.
			votes = slices.DeleteFunc(votes, func(v vote) bool { return rejecters[v.approver] })
			for _, r := range tl.RejectedBy {
				tl.Ignored = append(tl.Ignored, Ignored{r, "rejected"})
			}
		}
	}
	slices.SortStableFunc(votes, func(a, b vote) int { return a.signed.Compare(b.signed) })
	for _, v := range votes {
		members := live(votes, v.signed, t.Expiry)
		if t.missing(members, approvers) == "" {
			tl.Met, tl.ReachedAt, tl.Counted = true, v.signed, members
			tl.CoolingUntil = v.signed.Add(t.Cooling)
			break
		}
	}
	if !tl.Met {
		tl.Counted = live(votes, now.Add(MaxClockSkew), t.Expiry)
		tl.Missing = t.missing(tl.Counted, approvers)
		if end := in.Requested.Add(t.Window); t.Window > 0 && now.After(end) {
			tl.Closed = true
			tl.Missing += "; the approval window closed at " + end.UTC().Format(time.RFC3339)
		}
	}
	tl.Ready = tl.Met && !tl.Rejected && !now.Before(tl.CoolingUntil)
	return tl
}

// live are the distinct approvers with an approval signed at or before
// at and not void then, sorted.
func live(votes []vote, at time.Time, expiry time.Duration) []string {
	var out []string
	for _, v := range votes {
		if v.signed.After(at) || (expiry > 0 && !v.signed.After(at.Add(-expiry))) {
			continue
		}
		if !slices.Contains(out, v.approver) {
			out = append(out, v.approver)
		}
	}
	slices.Sort(out)
	return out
}

// missing says what the distinct eligible approvers members lack to meet
// q ("2 of 4 (alice, bob): needs 2 more from security or finance, at
// least 1 of them from finance"), or "" when they meet it.
func (q Quorum) missing(members []string, approvers *intent.Approvers) string {
	short := q.shortByGroup(members, approvers)
	deficit := 0
	for _, n := range short {
		deficit += n
	}
	need := max(q.N-len(members), deficit)
	if need <= 0 {
		return ""
	}
	who := ""
	if len(members) > 0 {
		who = " (" + strings.Join(members, ", ") + ")"
	}
	var parts []string
	for _, g := range slices.Sorted(maps.Keys(short)) {
		if short[g] > 0 {
			parts = append(parts, fmt.Sprintf("%d from %s", short[g], g))
		}
	}
	s := fmt.Sprintf("%d of %d%s: needs ", len(members), q.N, who)
	switch {
	case need == deficit && len(parts) == 1:
		s += strings.Replace(parts[0], " from ", " more from ", 1)
	default:
		s += fmt.Sprintf("%d more from %s", need, strings.Join(q.Groups, " or "))
		if len(parts) > 0 {
			s += ", of them at least " + strings.Join(parts, " and ")
		}
	}
	return s
}

// shortByGroup assigns distinct members to the per-group minimums (a
// maximum bipartite matching: a member of two groups fills one slot) and
// returns how many slots of each group stay empty.
func (q Quorum) shortByGroup(members []string, approvers *intent.Approvers) map[string]int {
	var slots []string
	for _, g := range slices.Sorted(maps.Keys(q.MinPerGroup)) {
		for range q.MinPerGroup[g] {
			slots = append(slots, g)
		}
	}
	if len(slots) == 0 {
		return nil
	}
	in := func(m, g string) bool {
		a, ok := approvers.Get(m)
		return ok && a.In(g)
	}
	holder := make([]int, len(slots)) // slot -> member index + 1
	var try func(m int, seen []bool) bool
	try = func(m int, seen []bool) bool {
		for s, g := range slots {
			if seen[s] || !in(members[m], g) {
				continue
			}
			seen[s] = true
			if holder[s] == 0 || try(holder[s]-1, seen) {
				holder[s] = m + 1
				return true
			}
		}
		return false
	}
	for m := range members {
		try(m, make([]bool, len(slots)))
	}
	short := map[string]int{}
	for s, g := range slots {
		if holder[s] == 0 {
			short[g]++
		}
	}
	return short
}

package policy

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/intent"
)

// Config is the gate.policy section of cordon's configuration: where the
// policy file and its approval record are, the quorum that approves a
// policy, and the prices. The rules themselves are only ever read from
// the approved policy file (or are the shipped default when File is
// empty): a rule written in the main configuration would change the
// policy without the quorum.
type Config struct {
	// File is the policy file (YAML: rules); empty for the default
	// policy (DefaultYAML).
	File string `yaml:"file"`
	// Approvals is the policy file's approval record: JSON approvals of
	// its SHA-256 (ApprovePolicy), one a line. Required with File.
	Approvals string `yaml:"approvals"`
	// PolicyQuorum is who must have approved the policy file.
	PolicyQuorum Quorum `yaml:"policy_quorum"`
	// Prices value withdrawals in dollars.
	Prices PricesConfig `yaml:"prices"`
}

// Validate records every problem of c in p, each named by its key under
// base ("gate.policy"). approvers are the gate's approvers, whom the
// policy quorum must be able to meet.
func (c Config) Validate(p *config.Problems, base string, approvers *intent.Approvers) {
	switch {
	case c.File == "" && c.Approvals != "":
		p.Add(base+".approvals", "set without file")
	case c.File != "" && c.Approvals == "":
		p.Add(base+".approvals", "empty: a policy file is loaded only with its approval record")
	}
	if c.File != "" || c.PolicyQuorum.N != 0 || len(c.PolicyQuorum.Groups) > 0 {
		c.PolicyQuorum.validate(p, base+".policy_quorum", approvers)
	}
	c.Prices.Validate(p, base+".prices")
}

// Action is what a rule decides.
type Action string

// The actions.
const (
	// Allow lets the withdrawal through without approvals.
	Allow Action = "allow"
	// Approve holds it for a quorum of approvers.
	Approve Action = "approve"
	// Deny refuses it.
	Deny Action = "deny"
)

// Quorum is how many approvers of which groups must approve: N distinct
// enabled approvers, each a member of at least one of Groups, among them
// at least MinPerGroup[g] members of group g for each g (an approver fills
// one group's minimum, never two). Approvers outside Groups do not count.
type Quorum struct {
	N           int            `yaml:"quorum" json:"quorum"`
	Groups      []string       `yaml:"groups" json:"groups"`
	MinPerGroup map[string]int `yaml:"min_per_group" json:"min_per_group,omitempty"`
}

// Rule is one rule of a policy. Rules are evaluated top-down and the
// first whose When holds decides.
type Rule struct {
	// Name names the rule in decisions, intents and approvals.
	Name string `yaml:"name"`
	// When is the condition in CEL (docs/gate/policy.md); empty is always.
	When string `yaml:"when"`
	// Action is allow, approve or deny.
	Action Action `yaml:"action"`
	// Reason says, for people, why the rule decides as it does.
	Reason string `yaml:"reason"`
	// Quorum (approve only): quorum, groups, min_per_group.
	Quorum `yaml:",inline"`
	// Window (approve): the quorum must be reached within this long of
	// the request; approvals signed later do not count.
	Window time.Duration `yaml:"window"`
	// Cooling (approve): the withdrawal waits this long after the quorum
	// is reached; a rejection in that time still rejects.
	Cooling time.Duration `yaml:"cooling"`
	// Expiry (approve): an approval is void this long after it was
	// signed; the quorum counts only approvals that were not void when
	// it was reached.
	Expiry time.Duration `yaml:"expiry"`
	// RejectVeto (approve; default true): one rejection by an approver of
	// the rule's groups rejects the withdrawal. When false a rejection
	// only withdraws that approver's approval.
	RejectVeto *bool `yaml:"reject_veto"`
	// RequireWhitelisted: when the rule matches and the destination is
	// not whitelisted, the withdrawal is denied.
	RequireWhitelisted bool `yaml:"require_whitelisted"`
}

// File is a policy file.
type File struct {
	Rules []Rule `yaml:"rules"`
}

// Terms are what an approve decision asks: the quorum, its window, the
// cooling period after it, how long an approval lasts, and whether one
// rejection rejects. The signing stage re-checks them with CheckQuorum.
type Terms struct {
	Quorum
	Window     time.Duration
	Cooling    time.Duration
	Expiry     time.Duration
	RejectVeto bool
}

// MarshalJSON writes the durations as Go durations ("15m0s").
func (t Terms) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Quorum
		Window     string `json:"window"`
		Cooling    string `json:"cooling,omitempty"`
		Expiry     string `json:"expiry"`
		RejectVeto bool   `json:"reject_veto"`
	}{t.Quorum, t.Window.String(), durString(t.Cooling), t.Expiry.String(), t.RejectVeto})
}

// UnmarshalJSON reads what MarshalJSON wrote (the gate keeps a decision's
// terms in its state).
func (t *Terms) UnmarshalJSON(b []byte) error {
	var v struct {
		Quorum
		Window     string `json:"window"`
		Cooling    string `json:"cooling"`
		Expiry     string `json:"expiry"`
		RejectVeto bool   `json:"reject_veto"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	out := Terms{Quorum: v.Quorum, RejectVeto: v.RejectVeto}
	for _, d := range []struct {
		s   string
		dst *time.Duration
	}{{v.Window, &out.Window}, {v.Cooling, &out.Cooling}, {v.Expiry, &out.Expiry}} {
		if d.s == "" {
			continue
		}
		x, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("terms: %w", err)
		}
		*d.dst = x
	}
	*t = out
	return nil
}

func durString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// Bounds on a policy.
const (
	MaxRules    = 100
	MaxDuration = 7 * 24 * time.Hour
	maxReason   = 300
)

var (
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	decimalRe = regexp.MustCompile(`^(0|[1-9][0-9]{0,77})$`)
)

// validate records the problems of a rule's or the policy's quorum at
// key: at least one approver, groups that exist, minimums within the
// quorum, and enough enabled approvers to meet it.
func (q Quorum) validate(p *config.Problems, key string, approvers *intent.Approvers) {
	if q.N < 1 || q.N > 64 {
		p.Add(key+".quorum", "%d: want 1 to 64 approvers", q.N)
	}
	if len(q.Groups) == 0 {
		p.Add(key+".groups", "empty: name the approver groups whose members count")
	}
	known := map[string]bool{}
	if approvers != nil {
		for _, a := range approvers.List() {
			for _, g := range a.Groups {
				known[g] = true
			}
		}
	}
	for i, g := range q.Groups {
		switch {
		case !known[g]:
			p.Add(fmt.Sprintf("%s.groups[%d]", key, i), "%q: no approver is in this group", g)
		case slices.Index(q.Groups, g) != i:
			p.Add(fmt.Sprintf("%s.groups[%d]", key, i), "%q is listed twice", g)
		}
	}
	sum := 0
	for _, g := range slices.Sorted(maps.Keys(q.MinPerGroup)) {
		n := q.MinPerGroup[g]
		if !slices.Contains(q.Groups, g) {
			p.Add(key+".min_per_group."+g, "%q is not one of groups", g)
		}
		if n < 1 {
			p.Add(key+".min_per_group."+g, "%d: want at least 1 (or leave the group out)", n)
		}
		sum += n
	}
	if sum > q.N {
		p.Add(key+".min_per_group", "the minimums add up to %d, more than the quorum of %d", sum, q.N)
	}
	if approvers == nil || q.N < 1 {
		return
	}
	var eligible []string
	for _, a := range approvers.List() {
		if q.eligible(a) {
			eligible = append(eligible, a.Name)
		}
	}
	if missing := q.missing(eligible, approvers); missing != "" {
		p.Add(key, "cannot be met by the enabled approvers of %s: all %s", strings.Join(q.Groups, ", "), missing)
	}
}

// eligible tells whether a counts for q: enabled and in one of its groups.
func (q Quorum) eligible(a *intent.Approver) bool {
	if a.Disabled {
		return false
	}
	return slices.ContainsFunc(q.Groups, a.In)
}

// validate records the problems of rule i at key (rules[i]).
func (r *Rule) validate(p *config.Problems, key string, approvers *intent.Approvers) {
	if !nameRe.MatchString(r.Name) {
		p.Add(key+".name", "%q: want 1 to 64 letters, digits, '.', '_' or '-'", trunc(r.Name))
	}
	if strings.TrimSpace(r.Reason) == "" || len(r.Reason) > maxReason {
		p.Add(key+".reason", "want a sentence of 1 to %d bytes saying why the rule decides so", maxReason)
	}
	switch r.Action {
	case Approve:
		r.Quorum.validate(p, key, approvers)
		durations := []struct {
			k    string
			d    time.Duration
			zero bool
		}{{"window", r.Window, false}, {"cooling", r.Cooling, true}, {"expiry", r.Expiry, false}}
		for _, d := range durations {
			if (d.d <= 0 && !d.zero) || d.d < 0 || d.d > MaxDuration {
				p.Add(key+"."+d.k, "%s: want more than 0 and at most %s", d.d, MaxDuration)
			}
		}
	case Allow, Deny:
		unset := []struct {
			k   string
			set bool
		}{
			{"quorum", r.N != 0}, {"groups", len(r.Groups) > 0}, {"min_per_group", len(r.MinPerGroup) > 0},
			{"window", r.Window != 0}, {"cooling", r.Cooling != 0}, {"expiry", r.Expiry != 0},
			{"reject_veto", r.RejectVeto != nil},
		}
		for _, u := range unset {
			if u.set {
				p.Add(key+"."+u.k, "only for approve rules")
			}
		}
		if r.RequireWhitelisted && r.Action == Deny {
			p.Add(key+".require_whitelisted", "a deny rule denies whatever the destination")
		}
	default:
		p.Add(key+".action", "%q: want allow, approve or deny", trunc(string(r.Action)))
	}
}

// catchAll tells whether r matches every withdrawal.
func (r *Rule) catchAll() bool {
	w := strings.TrimSpace(r.When)
	return w == "" || w == "true"
}

// terms are r's approval terms (approve rules only).
func (r *Rule) terms() *Terms {
	if r.Action != Approve {
		return nil
	}
	veto := r.RejectVeto == nil || *r.RejectVeto
	q := Quorum{N: r.N, Groups: slices.Clone(r.Groups)}
	if len(r.MinPerGroup) > 0 {
		q.MinPerGroup = map[string]int{}
		for g, n := range r.MinPerGroup {
			q.MinPerGroup[g] = n
		}
	}
	return &Terms{Quorum: q, Window: r.Window, Cooling: r.Cooling, Expiry: r.Expiry, RejectVeto: veto}
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

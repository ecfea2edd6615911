package gate

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
	"github.com/cordonhq/cordon/signer/risk"
)

// Refusal is a request the gate refuses: the HTTP status, a
// machine-readable code and a sentence saying what was wrong.
type Refusal struct {
	Status int
	Code   string
	Reason string
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Reason }

func refuse(status int, code, f string, args ...any) *Refusal {
	return &Refusal{Status: status, Code: code, Reason: fmt.Sprintf(f, args...)}
}

// Entry is one audit-log entry of a change: its kind (request, findings,
// decision, approval, rejection, status, breaker), what it is about, who
// did it, and the event itself.
type Entry struct {
	Kind, Subject, Actor string
	Body                 any
}

// MaxSkew is how far an approval's signing time may be from the gate's
// clock when it arrives: an approval is signed just before it is sent.
const MaxSkew = 5 * time.Minute

// Core is the gate's state and the rules of its transitions, with no
// I/O: the service feeds it requests, approvals and the clock, and
// writes what changed. Not safe for concurrent use: one goroutine (the
// service's loop) owns it.
type Core struct {
	Approvers *intent.Approvers
	Policy    *policy.Policy
	Prices    *policy.Prices
	Risk      Risk
	Assets    Assets
	Breaker   BreakerConfig
	Book      AddressBookConfig
	// PolicySource says where Policy came from (a file, or the shipped
	// default) and PolicyApprovedBy who approved it (its approval
	// record's approvers): the audit log's policy record names both.
	PolicySource     string
	PolicyApprovedBy []string
	// RetainFinished is how long a finished withdrawal is kept whole
	// (0: forever); see Config.RetainFinished.
	RetainFinished time.Duration

	ws map[string]*Withdrawal
	// policyAudited is the hash of the last policy the audit log
	// recorded; policyChanged that this term's policy is to be recorded.
	policyAudited string
	policyChanged bool
	archivedNow   []Archived
	trips         []*Trip
	book          book
	// open are the withdrawals that may still change (what Tick looks
	// at), counts the withdrawals by status and status each one's, all
	// as of the last Take: kept as they change, so neither a tick nor the
	// counts walk every withdrawal ever held.
	open   map[string]*Withdrawal
	counts map[string]int
	status map[string]string
	// finished are the final withdrawals in the order they finished
	// (what archiving looks at, from the front); archived the summaries
	// of those archived.
	finished []*Withdrawal
	archived map[string]Archived

	// What changed since the last Take.
	changed      map[string]*Withdrawal
	bookChanged  map[string]bool
	tripsChanged bool
	entries      []Entry
	alerts       []chain.Alert
	outbox       []Outgoing
}

// NewCore returns an empty core.
func NewCore() *Core {
	return &Core{ws: map[string]*Withdrawal{}, changed: map[string]*Withdrawal{}, bookChanged: map[string]bool{},
		book: book{entries: map[string]*BookEntry{}, byDst: map[string][]*BookEntry{}}, open: map[string]*Withdrawal{}, counts: map[string]int{}, status: map[string]string{},
		archived: map[string]Archived{}}
}

// Changes are what a batch of operations changed: the withdrawals, the
// breaker (when BreakerChanged) and the audit entries, in order.
type Changes struct {
	Withdrawals    []*Withdrawal
	BreakerChanged bool
	Trips          []*Trip
	Entries        []Entry
	Alerts         []chain.Alert
	// Book are the address-book entries that changed.
	Book []BookEntry
	// Policy is the hash of a policy newly in force (recorded in the
	// audit log by this batch), "" when it did not change.
	Policy string
	// Archived are the withdrawals archived: their whole records are
	// dropped from the gate's state, their summaries kept.
	Archived []Archived
	// Outgoing are records to write with the batch (Dispatch).
	Outgoing []Outgoing
}

// Archived is what the gate keeps of a finished withdrawal after
// RetainFinished: enough to recognize its request id again.
type Archived struct {
	ID      string    `json:"id"`
	Request string    `json:"request"`
	Body    string    `json:"body_hash"`
	Status  string    `json:"status"`
	Reason  string    `json:"reason"`
	Updated time.Time `json:"updated"`
	Version int       `json:"version"`
}

// Withdrawal is the summary as a withdrawal: its id, status and
// reason, the reason saying it was archived.
func (a *Archived) Withdrawal() Withdrawal {
	return Withdrawal{Intent: intent.Intent{ID: a.ID, Request: a.Request}, Body: a.Body, Status: a.Status, Updated: a.Updated, Version: a.Version,
		Reason: a.Reason + " (archived: the whole withdrawal is in the audit log and on cordon.withdrawals)"}
}

// Take returns and clears what changed.
func (c *Core) Take() Changes {
	ch := Changes{BreakerChanged: c.tripsChanged, Trips: slices.Clone(c.trips), Entries: c.entries, Alerts: c.alerts}
	if c.policyChanged {
		ch.Policy, c.policyChanged = c.policyAudited, false
	}
	ch.Archived, c.archivedNow = c.archivedNow, nil
	ch.Outgoing, c.outbox = c.outbox, nil
	for _, w := range c.changed {
		ch.Withdrawals = append(ch.Withdrawals, w)
		c.track(w)
	}
	slices.SortFunc(ch.Withdrawals, func(a, b *Withdrawal) int { return strings.Compare(a.Intent.ID, b.Intent.ID) })
	c.book.mu.RLock()
	for id := range c.bookChanged {
		ch.Book = append(ch.Book, *c.book.entries[id])
	}
	c.book.mu.RUnlock()
	c.changed, c.bookChanged, c.tripsChanged, c.entries, c.alerts = map[string]*Withdrawal{}, map[string]bool{}, false, nil, nil
	return ch
}

// track keeps open, counts and status current for w.
func (c *Core) track(w *Withdrawal) {
	id := w.Intent.ID
	if old, ok := c.status[id]; ok {
		c.counts[old]--
	}
	c.counts[w.Status]++
	was := c.status[id]
	c.status[id] = w.Status
	if final(w.Status) || handedOn(w.Status) {
		delete(c.open, id)
	}
	switch {
	case final(w.Status):
		if !final(was) && c.RetainFinished > 0 {
			c.finished = append(c.finished, w)
		}
	case !handedOn(w.Status):
		c.open[id] = w
	}
}

func (c *Core) touch(w *Withdrawal, now time.Time) {
	w.Updated = now.UTC()
	w.Version++
	c.changed[w.Intent.ID] = w
}

func (c *Core) log(kind, subject, actor string, body any) {
	c.entries = append(c.entries, Entry{Kind: kind, Subject: subject, Actor: actor, Body: body})
}

// Get returns the withdrawal id (a copy), false when there is none.
func (c *Core) Get(id string) (Withdrawal, bool) {
	w, ok := c.ws[id]
	if !ok {
		if a, ok := c.archived[id]; ok {
			return a.Withdrawal(), true
		}
		return Withdrawal{}, false
	}
	return *w, true
}

// archive archives the withdrawals finished RetainFinished before now,
// from the front of finished.
func (c *Core) archive(now time.Time) {
	if c.RetainFinished <= 0 {
		return
	}
	n := 0
	for ; n < len(c.finished); n++ {
		w := c.finished[n]
		if now.Sub(w.Updated) < c.RetainFinished {
			break
		}
		id := w.Intent.ID
		if c.ws[id] != w || !final(w.Status) {
			continue
		}
		if _, pending := c.changed[id]; pending {
			break // its last change is not written yet: archive it next time
		}
		a := Archived{ID: id, Request: w.Intent.Request, Body: w.Body, Status: w.Status, Reason: w.Reason, Updated: w.Updated, Version: w.Version}
		delete(c.ws, id)
		delete(c.status, id)
		c.counts[w.Status]--
		c.archived[id] = a
		c.archivedNow = append(c.archivedNow, a)
	}
	c.finished = c.finished[n:]
}

// List returns the withdrawals that keep returns true for (copies),
// newest first, at most limit (0: all).
func (c *Core) List(keep func(*Withdrawal) bool, limit int) []Withdrawal {
	var out []Withdrawal
	for _, w := range c.ws {
		if keep(w) {
			out = append(out, *w)
		}
	}
	slices.SortFunc(out, func(a, b Withdrawal) int {
		if n := b.Intent.Requested.Compare(a.Intent.Requested); n != 0 {
			return n
		}
		return strings.Compare(a.Intent.ID, b.Intent.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Counts are the withdrawals by status, as of the last Take.
func (c *Core) Counts() map[string]int {
	n := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		if v > 0 {
			n[k] = v
		}
	}
	return n
}

// Trips returns the breaker's trips in force.
func (c *Core) Trips() []Trip {
	out := make([]Trip, len(c.trips))
	for i, t := range c.trips {
		out[i] = *t
	}
	return out
}

// Assessment is what the gate makes of a request before anything is
// stored: the intent, its value, the risk layer's findings and the
// policy's decision. A dry run returns it as is.
type Assessment struct {
	Intent   intent.Intent    `json:"intent"`
	USD      string           `json:"usd"`
	Findings []intent.Finding `json:"findings"`
	Decision policy.Decision  `json:"decision"`
	usd      intent.USD
}

// Assess evaluates q as requested by requester at now, changing nothing.
func (c *Core) Assess(ctx context.Context, q *Request, requester string, now time.Time) (Assessment, error) {
	if _, ok := c.Assets.Decimals(q.Chain, q.Network, q.Asset); !ok {
		return Assessment{}, refuse(http.StatusUnprocessableEntity, "unknown_asset", "%s is not a configured asset on %s/%s", q.Asset, q.Chain, q.Network)
	}
	amount, _ := new(big.Int).SetString(q.Amount, 10)
	in := intent.Intent{ID: WithdrawalID(q.ID), Request: q.ID, Requester: requester, Initiator: q.Initiator, Account: q.Account,
		Chain: q.Chain, Network: q.Network, Asset: q.Asset, Amount: q.Amount, Destination: q.Destination, Requested: now.UTC()}
	usd, why := c.Prices.Value(q.Chain, q.Network, q.Asset, amount, now)
	rq, err := risk.QueryOf(&in, usd, q.Context)
	if err != nil {
		return Assessment{}, refuse(http.StatusBadRequest, "bad_request", "%v", err)
	}
	res, err := c.Risk.Assess(ctx, rq, now)
	if err != nil {
		return Assessment{}, refuse(http.StatusServiceUnavailable, "risk_unavailable", "the risk layer could not assess the withdrawal: %v", err)
	}
	findings := res.Findings
	velocity := map[string]policy.Accumulation{}
	for k, v := range res.Accumulations {
		velocity[k] = policy.Accumulation{Count: v.Count, USD: v.USD}
	}
	wl := c.book.whitelisted(in.Account, in.Chain, in.Network, in.Destination, now)
	d := c.Policy.Evaluate(policy.Input{Intent: in, Context: q.Context, USD: usd, USDReason: why, Findings: findings, Velocity: velocity,
		Whitelisted: wl})
	in.Rule, in.Policy = d.Rule, d.Policy
	return Assessment{Intent: in, USD: usd.String(), Findings: findings, Decision: d, usd: usd}, nil
}

// Request takes a withdrawal request (already decoded and normalized,
// bodyHash its normal form's hash) from requester at now. A repeated
// request id with the same body returns the withdrawal it made (created
// false); with another body it is refused (409).
func (c *Core) Request(ctx context.Context, q *Request, bodyHash, requester string, now time.Time) (Withdrawal, bool, error) {
	id := WithdrawalID(q.ID)
	if a, ok := c.archived[id]; ok {
		if a.Body == bodyHash {
			return a.Withdrawal(), false, nil
		}
		return Withdrawal{}, false, refuse(http.StatusConflict, "id_reused",
			"request id %q was already used for withdrawal %s (archived) with another body: a new withdrawal needs a new id", q.ID, id)
	}
	if w, ok := c.ws[id]; ok {
		if w.Body == bodyHash {
			return *w, false, nil
		}
		return Withdrawal{}, false, refuse(http.StatusConflict, "id_reused",
			"request id %q was already used for withdrawal %s with another body: a new withdrawal needs a new id", q.ID, id)
	}
	a, err := c.Assess(ctx, q, requester, now)
	if err != nil {
		return Withdrawal{}, false, err
	}
	h, err := a.Intent.Hash()
	if err != nil {
		return Withdrawal{}, false, err
	}
	w := &Withdrawal{Intent: a.Intent, Hash: h, Context: q.Context, Body: bodyHash, USD: a.USD, Findings: a.Findings,
		Decision: a.Decision, Reason: a.Decision.Reason}
	c.ws[id] = w
	// One record holds the request, the intent it became, the risk
	// layer's findings and the policy's decision: they happen together,
	// and one record (one signature, one link of the chain) is a third of
	// the cost of three.
	c.log("request", id, requester, map[string]any{"request": q, "body_hash": bodyHash, "intent": w.Intent, "intent_hash": h,
		"findings": a.Findings, "usd": a.USD, "decision": a.Decision})
	if a.Decision.Action != policy.Deny {
		rec, err := risk.RecordOf(&w.Intent, a.usd)
		if err == nil {
			err = c.Risk.Add(rec)
		}
		if err != nil {
			return Withdrawal{}, false, fmt.Errorf("count withdrawal %s: %w", id, err)
		}
	}
	switch a.Decision.Action {
	case policy.Allow:
		c.release(w, now)
	case policy.Approve:
		w.Status = StatusPending
		if a.Decision.Terms.Window > 0 {
			w.WindowEnds = at(now.Add(a.Decision.Terms.Window))
		}
		w.Needs = policy.CheckQuorum(*a.Decision.Terms, c.Approvers, &w.Intent, nil, now).Missing
		c.touch(w, now)
	default:
		w.Status = StatusDenied
		c.touch(w, now)
		if flagged(a.Findings) {
			d := map[string]string{"withdrawal": id, "account": w.Intent.Account, "destination": w.Intent.Destination,
				"amount": w.Intent.Amount, "asset": w.Intent.Asset, "rule": a.Decision.Rule}
			for _, f := range a.Findings {
				if f.Code == intent.FlaggedDestination || f.Code == intent.FlaggedCounterparty {
					d[f.Code] = f.Details["indicator"]
				}
			}
			c.alert(alert("withdrawal_flagged", "critical", id, "a withdrawal to a flagged address was requested and denied", d, now), w.Intent.Chain, w.Intent.Network)
		}
	}
	c.pauseIfCovered(w, now)
	return *w, true, nil
}

// release approves w into signing, or pauses it when the breaker covers
// it.
func (c *Core) release(w *Withdrawal, now time.Time) {
	if t := w.Decision.Terms; w.Decision.Action == policy.Approve && t != nil {
		// The approvals are checked again with the approvers as they are
		// now: one disabled, removed or given a new key since (a stolen
		// key) no longer counts.
		tl := policy.CheckQuorum(*t, c.Approvers, &w.Intent, append(slices.Clone(w.Approvals), w.Rejections...), now)
		if tl.Rejected || !tl.Met {
			w.Status, w.QuorumAt, w.CoolingUntil, w.Needs = StatusPending, nil, nil, tl.Missing
			w.Reason = "the quorum no longer holds: " + tl.Missing
			if tl.Rejected {
				w.Status, w.Reason, w.Needs = StatusRejected, "rejected by "+strings.Join(tl.RejectedBy, ", "), ""
				c.Risk.Remove(w.Intent.ID)
			}
			c.touch(w, now)
			c.log("status", w.Intent.ID, "gate", map[string]string{"status": w.Status, "reason": w.Reason})
			return
		}
	}
	if c.covering(&w.Intent) != nil {
		w.Status, w.Reason = StatusPaused, "approved, and held by the circuit breaker: "+c.covering(&w.Intent).Reason
		if w.PausedSince == nil {
			w.PausedSince = at(now)
		}
	} else {
		w.Status = StatusApproved
		if w.Decision.Action == policy.Approve {
			w.Reason = "approved by " + strings.Join(approvers(w.Approvals), ", ")
		}
		if t := w.Decision.Terms; t != nil && t.Expiry > 0 {
			w.Expires = at(now.Add(t.Expiry))
		}
	}
	c.touch(w, now)
	c.log("status", w.Intent.ID, "gate", map[string]string{"status": w.Status, "reason": w.Reason})
}

func approvers(as []intent.Approval) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.Approver)
	}
	return out
}

func (c *Core) covering(in *intent.Intent) *Trip {
	for _, t := range c.trips {
		if t.Covers(in) {
			return t
		}
	}
	return nil
}

// open tells whether w may still change.
func open(w *Withdrawal) bool { return !final(w.Status) && !handedOn(w.Status) }

// pauseIfCovered starts holding an open withdrawal the breaker covers.
func (c *Core) pauseIfCovered(w *Withdrawal, now time.Time) {
	t := c.covering(&w.Intent)
	if t == nil || !open(w) || w.PausedSince != nil {
		return
	}
	w.PausedSince = at(now)
	if w.Status == StatusApproved {
		w.Status, w.Reason = StatusPaused, "held by the circuit breaker: "+t.Reason
		c.log("status", w.Intent.ID, "gate", map[string]string{"status": w.Status, "reason": w.Reason, "trip": t.ID})
	}
	c.touch(w, now)
}

// Approve takes one approver's signed approval or rejection of
// withdrawal id at now.
func (c *Core) Approve(id string, a intent.Approval, now time.Time) (Withdrawal, error) {
	w, ok := c.ws[id]
	if !ok {
		return Withdrawal{}, refuse(http.StatusNotFound, "not_found", "no withdrawal %s", id)
	}
	ap, err := a.Verify(c.Approvers, &w.Intent)
	if err != nil {
		if !errors.Is(err, intent.ErrMalformed) {
			// A signature over something else, or by someone else: the
			// shape of a tampered front end or a stolen session.
			c.alert(alert("approval_refused", "critical", id+"/"+a.Approver+"/"+a.Signed.UTC().Format(time.RFC3339Nano),
				"an approval that does not verify was presented", map[string]string{"withdrawal": id, "approver": a.Approver,
					"intent": a.Intent, "expected_intent": w.Hash, "error": err.Error()}, now), w.Intent.Chain, w.Intent.Network)
		}
		code := "bad_approval"
		switch {
		case errors.Is(err, intent.ErrWrongIntent):
			code = "wrong_intent"
		case errors.Is(err, intent.ErrUnknownApprover):
			code = "unknown_approver"
		case errors.Is(err, intent.ErrDisabled):
			code = "approver_disabled"
		case errors.Is(err, intent.ErrBadSignature):
			code = "bad_signature"
		}
		return Withdrawal{}, refuse(http.StatusForbidden, code, "%v", err)
	}
	t := w.Decision.Terms
	switch {
	case w.Decision.Action != policy.Approve || t == nil:
		return Withdrawal{}, refuse(http.StatusConflict, "no_approval_needed", "withdrawal %s was %s by rule %s: it takes no approvals", id, w.Status, w.Decision.Rule)
	case final(w.Status):
		return Withdrawal{}, refuse(http.StatusConflict, "closed", "withdrawal %s is %s: %s", id, w.Status, w.Reason)
	case w.Status == StatusApproved || handedOn(w.Status):
		return Withdrawal{}, refuse(http.StatusConflict, "released", "withdrawal %s is approved and released to signing; trip the breaker to stop it", id)
	case a.Decision == intent.Approve && w.Status != StatusPending:
		return Withdrawal{}, refuse(http.StatusConflict, "quorum_reached", "withdrawal %s already has its quorum (%s); only a rejection can still change it", id, w.Status)
	case strings.EqualFold(ap.Name, w.Intent.Requester) || (w.Intent.Initiator != "" && strings.EqualFold(ap.Name, w.Intent.Initiator)):
		return Withdrawal{}, refuse(http.StatusForbidden, "own_withdrawal", "%s requested withdrawal %s and cannot approve or reject it", ap.Name, id)
	case slices.ContainsFunc(append(slices.Clone(w.Approvals), w.Rejections...), func(x intent.Approval) bool { return x.Approver == ap.Name }):
		return Withdrawal{}, refuse(http.StatusConflict, "already_decided", "%s already approved or rejected withdrawal %s", ap.Name, id)
	case !slices.ContainsFunc(t.Groups, ap.In):
		return Withdrawal{}, refuse(http.StatusForbidden, "wrong_group", "%s is in %s; rule %s takes approvals of %s", ap.Name,
			strings.Join(ap.Groups, ", "), w.Decision.Rule, strings.Join(t.Groups, ", "))
	case a.Signed.Before(now.Add(-MaxSkew)) || a.Signed.After(now.Add(MaxSkew)):
		return Withdrawal{}, refuse(http.StatusUnprocessableEntity, "signed_time", "signed at %s, more than %s from the gate's clock (%s): sign and send at once",
			a.Signed.UTC().Format(time.RFC3339), MaxSkew, now.UTC().Format(time.RFC3339))
	case a.Decision == intent.Approve && w.WindowEnds != nil && now.After(*w.WindowEnds) && w.PausedSince == nil:
		return Withdrawal{}, refuse(http.StatusConflict, "window_closed", "the approval window of withdrawal %s closed at %s", id, w.WindowEnds.Format(time.RFC3339))
	}
	// An approval the quorum would not count is refused, not stored: a
	// stored one makes its approver "already decided", and a rejection
	// kept but not counted would be a veto silently lost.
	for _, ig := range policy.CheckQuorum(*t, c.Approvers, &w.Intent, []intent.Approval{a}, now).Ignored {
		if ig.Why != "rejected" {
			return Withdrawal{}, refuse(http.StatusUnprocessableEntity, "not_counted", "the %s of %s would not count: %s; sign again with the gate's time (%s)",
				a.Decision, ap.Name, ig.Why, now.UTC().Format(time.RFC3339))
		}
	}
	if a.Decision == intent.Reject {
		w.Rejections = append(w.Rejections, a)
		c.log("rejection", id, ap.Name, a)
	} else {
		w.Approvals = append(w.Approvals, a)
		c.log("approval", id, ap.Name, a)
	}
	c.touch(w, now)
	tl := policy.CheckQuorum(*t, c.Approvers, &w.Intent, append(slices.Clone(w.Approvals), w.Rejections...), now)
	switch {
	case tl.Rejected:
		w.Status, w.Reason = StatusRejected, fmt.Sprintf("rejected by %s: %s", ap.Name, a.Reason)
		c.Risk.Remove(id)
		c.log("status", id, "gate", map[string]string{"status": w.Status, "reason": w.Reason})
	case tl.Met && w.Status == StatusPending:
		w.QuorumAt, w.Needs = at(now), ""
		if t.Cooling > 0 {
			w.Status, w.CoolingUntil = StatusCooling, at(now.Add(t.Cooling))
			w.Reason = fmt.Sprintf("quorum reached (%s); cooling until %s", strings.Join(tl.Counted, ", "), w.CoolingUntil.Format(time.RFC3339))
			c.log("status", id, "gate", map[string]string{"status": w.Status, "reason": w.Reason})
		} else {
			c.release(w, now)
		}
	case w.Status == StatusPending:
		w.Needs = tl.Missing
	}
	return *w, nil
}

// Tick moves every open withdrawal on to now: the breaker holds or lets
// go, cooling ends, windows close, approvals become void.
func (c *Core) Tick(now time.Time) {
	defer c.archive(now)
	for _, w := range c.open {
		if !open(w) {
			continue
		}
		if c.covering(&w.Intent) != nil {
			c.pauseIfCovered(w, now)
			continue
		}
		if w.PausedSince != nil {
			held := now.Sub(*w.PausedSince)
			for _, d := range []**time.Time{&w.WindowEnds, &w.CoolingUntil, &w.Expires} {
				if *d != nil {
					*d = at((*d).Add(held))
				}
			}
			w.PausedSince = nil
			c.touch(w, now)
			if w.Status == StatusPaused {
				c.release(w, now)
				continue
			}
		}
		switch {
		case w.Status == StatusPending && w.WindowEnds != nil && !now.Before(*w.WindowEnds):
			c.expire(w, now, "the approval window closed without the quorum: needed "+w.Needs)
		case w.Status == StatusCooling && w.CoolingUntil != nil && !now.Before(*w.CoolingUntil):
			c.release(w, now)
		case w.Status == StatusApproved && w.Expires != nil && !now.Before(*w.Expires):
			c.expire(w, now, "approved, and not signed before its approvals became void at "+w.Expires.Format(time.RFC3339))
		}
	}
}

func (c *Core) expire(w *Withdrawal, now time.Time, reason string) {
	w.Status, w.Reason = StatusExpired, reason
	c.Risk.Remove(w.Intent.ID)
	c.touch(w, now)
	c.log("status", w.Intent.ID, "gate", map[string]string{"status": w.Status, "reason": w.Reason})
}

// Trip pulls the breaker for scope at now: every open withdrawal it
// covers is held at once (none is rejected).
func (c *Core) Trip(t Trip, now time.Time) (Trip, error) {
	t.Chain, t.Network, t.Asset = strings.ToLower(strings.TrimSpace(t.Chain)), strings.ToLower(strings.TrimSpace(t.Network)), strings.TrimSpace(t.Asset)
	switch t.Scope {
	case ScopeAll:
		t.Chain, t.Network, t.Asset = "", "", ""
	case ScopeChain:
		if t.Chain == "" {
			return Trip{}, refuse(http.StatusBadRequest, "bad_trip", "scope chain needs the chain")
		}
		t.Asset = ""
	case ScopeAsset:
		if t.Chain == "" || t.Asset == "" {
			return Trip{}, refuse(http.StatusBadRequest, "bad_trip", "scope asset needs the chain and the asset")
		}
	default:
		return Trip{}, refuse(http.StatusBadRequest, "bad_trip", "scope %q: want all, chain or asset", trunc(t.Scope))
	}
	if t.Scope != ScopeAll {
		// A trip naming what no withdrawal is would hold nothing: refused.
		if t.Chain != string(chain.ETH) && t.Chain != string(chain.BTC) {
			return Trip{}, refuse(http.StatusBadRequest, "bad_trip", "chain %q: want eth or btc", trunc(t.Chain))
		}
		if t.Network != "" && !c.Assets.Network(t.Chain, t.Network) {
			return Trip{}, refuse(http.StatusBadRequest, "bad_trip", "%s/%s: the gate takes no withdrawals on this network", t.Chain, trunc(t.Network))
		}
	}
	if t.Scope == ScopeAsset {
		if strings.EqualFold(t.Asset, intent.Native) {
			t.Asset = intent.Native
		} else {
			a, err := address.Normalize(chain.ETH, cmp.Or(t.Network, "mainnet"), t.Asset)
			if t.Chain != string(chain.ETH) || err != nil {
				return Trip{}, refuse(http.StatusBadRequest, "bad_trip", "asset %q: want native or a token contract", trunc(t.Asset))
			}
			t.Asset = strings.ToLower(a)
		}
		if _, ok := c.Assets.Decimals(t.Chain, cmp.Or(t.Network, "mainnet"), t.Asset); t.Network != "" && !ok {
			return Trip{}, refuse(http.StatusBadRequest, "bad_trip", "%s is not a configured asset on %s/%s", t.Asset, t.Chain, t.Network)
		}
	}
	if strings.TrimSpace(t.Reason) == "" || len(t.Reason) > intent.MaxReason {
		return Trip{}, refuse(http.StatusBadRequest, "bad_trip", "a trip needs a reason of at most %d bytes", intent.MaxReason)
	}
	t.At, t.Resets = now.UTC(), nil
	s := sha256.Sum256([]byte(t.Scope + "\x00" + t.Chain + "\x00" + t.Network + "\x00" + t.Asset + "\x00" + t.By + "\x00" + t.At.Format(time.RFC3339Nano)))
	t.ID = "br_" + hex.EncodeToString(s[:8])
	if i := slices.IndexFunc(c.trips, func(x *Trip) bool { return x.ID == t.ID }); i >= 0 {
		// The same trip pulled twice in one batch: one trip, or the
		// resets of one would reset the other too.
		return *c.trips[i], nil
	}
	c.trips = append(c.trips, &t)
	c.tripsChanged = true
	c.log("breaker", t.ID, t.By, map[string]any{"action": "trip", "trip": t, "pauses": t.describe()})
	c.alert(alert("breaker_tripped", "critical", t.ID, "the circuit breaker holds "+t.describe()+": "+t.Reason,
		map[string]string{"trip": t.ID, "scope": t.Scope, "by": t.By, "reason": t.Reason}, now), t.Chain, t.Network)
	c.Tick(now)
	return t, nil
}

// Reset takes one approver's signed approval of resetting trip id; the
// trip ends when the reset quorum is met.
func (c *Core) Reset(id string, a intent.Approval, now time.Time) (Trip, bool, error) {
	i := slices.IndexFunc(c.trips, func(t *Trip) bool { return t.ID == id })
	if i < 0 {
		return Trip{}, false, refuse(http.StatusNotFound, "not_found", "no trip %s in force", id)
	}
	t := c.trips[i]
	ap, err := verifyReset(c.Approvers, t, &a)
	switch {
	case err != nil:
		return Trip{}, false, refuse(http.StatusForbidden, "bad_approval", "%v", err)
	case a.Decision != intent.Approve:
		return Trip{}, false, refuse(http.StatusUnprocessableEntity, "bad_approval", "a reset is approved, not rejected: leave the trip in force")
	case !slices.ContainsFunc(c.Breaker.ResetGroups, ap.In):
		return Trip{}, false, refuse(http.StatusForbidden, "wrong_group", "%s is not in %s, who reset the breaker", ap.Name, strings.Join(c.Breaker.ResetGroups, ", "))
	case slices.ContainsFunc(t.Resets, func(x intent.Approval) bool { return x.Approver == ap.Name }):
		return Trip{}, false, refuse(http.StatusConflict, "already_decided", "%s already approved resetting %s", ap.Name, id)
	case a.Signed.Before(now.Add(-MaxSkew)) || a.Signed.After(now.Add(MaxSkew)):
		return Trip{}, false, refuse(http.StatusUnprocessableEntity, "signed_time", "signed at %s, more than %s from the gate's clock", a.Signed.UTC().Format(time.RFC3339), MaxSkew)
	}
	t.Resets = append(t.Resets, a)
	c.tripsChanged = true
	c.log("breaker", id, ap.Name, map[string]any{"action": "reset_approval", "approval": a})
	met, _ := c.Breaker.resetMet(c.Approvers, t)
	if met {
		c.trips = slices.Delete(c.trips, i, i+1)
		c.log("breaker", id, "gate", map[string]any{"action": "reset", "by": approvers(t.Resets)})
		c.alert(alert("breaker_reset", "warning", id, "the circuit breaker no longer holds "+t.describe(),
			map[string]string{"trip": t.ID, "by": strings.Join(approvers(t.Resets), ", ")}, now), t.Chain, t.Network)
		c.Tick(now)
	}
	return *t, met, nil
}

// PolicyInForce records in the audit log that the core's policy is in
// force, unless the last policy recorded (audited, from the gate's
// state) is the same: a policy change is an audit record naming the
// policy's hash, its rules, its source and its approvers.
func (c *Core) PolicyInForce(audited string) {
	c.policyAudited = audited
	if c.Policy == nil || c.Policy.Hash() == audited {
		return
	}
	rules := make([]string, 0, len(c.Policy.Rules()))
	for _, r := range c.Policy.Rules() {
		rules = append(rules, r.Name)
	}
	c.log("policy", c.Policy.Hash(), "gate", map[string]any{"action": "in_force", "policy": c.Policy.Hash(), "previous": audited,
		"source": c.PolicySource, "approved_by": c.PolicyApprovedBy, "rules": rules})
	c.policyAudited, c.policyChanged = c.Policy.Hash(), true
}

// Restore replaces the state with ws, trips, the address book and the
// archived summaries (from cordon.gate-state) and replays the risk
// layer's counts.
func (c *Core) Restore(ws []*Withdrawal, trips []*Trip, entries []*BookEntry, archived []Archived) {
	c.ws, c.trips = map[string]*Withdrawal{}, trips
	c.finished, c.archived, c.archivedNow = nil, map[string]Archived{}, nil
	for _, a := range archived {
		c.archived[a.ID] = a
	}
	c.open, c.counts, c.status = map[string]*Withdrawal{}, map[string]int{}, map[string]string{}
	c.book.mu.Lock()
	c.book.entries, c.book.byDst = map[string]*BookEntry{}, map[string][]*BookEntry{}
	for _, e := range entries {
		c.book.put(e)
	}
	c.book.mu.Unlock()
	slices.SortFunc(ws, func(a, b *Withdrawal) int { return a.Intent.Requested.Compare(b.Intent.Requested) })
	for _, w := range ws {
		if _, ok := c.archived[w.Intent.ID]; ok {
			continue
		}
		c.ws[w.Intent.ID] = w
		c.track(w)
		if w.Status == StatusDenied {
			continue
		}
		usd := intent.USD{}
		if u, err := intent.ParseUSD(w.USD); err == nil {
			usd = u
		}
		if rec, err := risk.RecordOf(&w.Intent, usd); err == nil {
			_ = c.Risk.Add(rec) //nolint:errcheck // a withdrawal restored from the gate's own state was counted once already
		}
		if w.Status == StatusRejected || w.Status == StatusExpired || w.Status == StatusFailed {
			c.Risk.Remove(w.Intent.ID)
		}
	}
	// Archiving takes the finished in the order they finished.
	slices.SortStableFunc(c.finished, func(a, b *Withdrawal) int { return a.Updated.Compare(b.Updated) })
	c.changed, c.bookChanged, c.tripsChanged, c.entries, c.alerts = map[string]*Withdrawal{}, map[string]bool{}, false, nil, nil
	c.outbox = nil
}

func (c *Core) alert(a chain.Alert, ch, network string) {
	a.Chain, a.Network = chain.Chain(ch), network
	c.alerts = append(c.alerts, a)
}

func flagged(fs []intent.Finding) bool {
	return slices.ContainsFunc(fs, func(f intent.Finding) bool {
		return f.Code == intent.FlaggedDestination || f.Code == intent.FlaggedCounterparty
	})
}

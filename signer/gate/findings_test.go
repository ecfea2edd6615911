package gate

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/audit"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
	"github.com/cordonhq/cordon/signer/risk"
)

// F1: a rejection whose signing time the gate accepts (within MaxSkew,
// 5 minutes) but CheckQuorum ignores (more than policy.MaxClockSkew, 1
// minute, in the future, or more than 1 minute before the request) is
// stored, answered 200, and does not reject; the approver cannot send it
// again (already_decided) and two others release the withdrawal.
func TestAttackSkewedRejectionSwallowed(t *testing.T) {
	for name, skew := range map[string]time.Duration{"ahead": 3 * time.Minute, "behind": -3 * time.Minute} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			id := f.request("skew-"+name, eth(10), dst(1))["id"].(string)
			f.clock.Add(30 * time.Second)
			w := f.get(id)
			code, c := f.post(id, f.signAt(w, "dave", intent.Reject, f.clock.Now().Add(skew)))
			if code == http.StatusOK {
				require.Equal(t, StatusRejected, f.get(id).Status, "a rejection the gate took must reject")
			} else {
				require.Contains(t, []string{"signed_time", "not_counted"}, c)
				// Refused: dave may sign again, with the right time.
				code, _ = f.post(id, f.signAt(w, "dave", intent.Reject, f.clock.Now()))
				require.Equal(t, http.StatusOK, code)
			}
			f.approve(id, "alice")
			f.approve(id, "bob")
			require.Equal(t, StatusRejected, f.get(id).Status, "one rejection rejects")
		})
	}
}

// F2: an approver disabled (their key stolen) after approving: the
// withdrawal they approved into cooling is released when cooling ends,
// on the disabled approver's approval.
func TestAttackDisabledApproverReleasesFromCooling(t *testing.T) {
	f := newFixture(t)
	id := f.request("dis", eth(600), dst(1))["id"].(string) // $1.2M: 3 of 5, 2h cooling
	f.approved(id, "alice", "bob", "dave")
	require.Equal(t, StatusCooling, f.get(id).Status)
	// bob's key was phished: security disables him and restarts the gate.
	f.stop()
	list, _ := approverList(t)
	for i := range list {
		if list[i].Name == "bob" {
			list[i].Disabled = true
		}
	}
	var err error
	f.approvers, err = intent.NewApprovers("gate.approvers", list)
	require.NoError(t, err)
	f.start()
	f.clock.Add(2*time.Hour + time.Second)
	time.Sleep(300 * time.Millisecond)
	w := f.get(id)
	tl := policy.CheckQuorum(*w.Decision.Terms, f.approvers, &w.Intent, w.Approvals, f.clock.Now())
	require.False(t, tl.Met, "the quorum without bob is not met")
	require.NotEqual(t, StatusApproved, w.Status, "released on a disabled approver's approval")
}

// F3: a breaker reset counts a reset approval of an approver disabled
// since they gave it.
func TestAttackDisabledApproverResetsBreaker(t *testing.T) {
	f := newFixture(t)
	code, out := f.call("POST", "/v1/breaker", opToken, map[string]any{"scope": "all", "reason": "drain"})
	require.Equal(t, http.StatusCreated, code, out)
	tr := Trip{ID: out["id"].(string), Scope: "all", Reason: "drain", By: out["by"].(string)}
	tr.At, _ = time.Parse(time.RFC3339Nano, out["at"].(string))
	reset := func(who string) (int, map[string]any) {
		a := intent.Approval{Withdrawal: tr.Subject(), Intent: tr.Hash(), Approver: who, Decision: intent.Approve, Signed: f.clock.Now()}
		a.Sign(f.keys[who])
		return f.call("POST", "/v1/breaker/"+tr.ID+"/resets", approverToken, a)
	}
	code, out = reset("alice")
	require.Equal(t, http.StatusOK, code, out)
	f.stop()
	list, _ := approverList(t)
	for i := range list {
		if list[i].Name == "alice" {
			list[i].Disabled = true
		}
	}
	var err error
	f.approvers, err = intent.NewApprovers("gate.approvers", list)
	require.NoError(t, err)
	f.start()
	code, out = reset("bob")
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, false, out["reset"], "alice is disabled: bob alone is 1 of 2")
}

// F4: a trip naming a chain, network or asset the gate does not know
// (a symbol, a typo, a padded name) is accepted (201) and holds nothing.
func TestAttackBreakerTripThatHoldsNothing(t *testing.T) {
	f := newFixture(t)
	for _, body := range []map[string]any{
		{"scope": "chain", "chain": "ethereum", "reason": "drain"},
		{"scope": "chain", "chain": " eth", "reason": "drain"},
		{"scope": "chain", "chain": "eth", "network": "main", "reason": "drain"},
		{"scope": "asset", "chain": "eth", "asset": "ETH", "reason": "drain"},
		{"scope": "asset", "chain": "eth", "asset": "USDT", "reason": "drain"},
	} {
		code, out := f.call("POST", "/v1/breaker", opToken, body)
		if code == http.StatusCreated {
			id := f.request("hold-"+strings.ReplaceAll(out["id"].(string), "_", ""), eth(1), dst(1))["id"].(string)
			f.approved(id, "alice", "dave")
			require.Equal(t, StatusPaused, f.get(id).Status, "trip %v was accepted: it must hold eth withdrawals", body)
		} else {
			require.Equal(t, http.StatusBadRequest, code, "%v: %v", body, out)
		}
	}
}

// F5: the initiator written in another case approves their own
// withdrawal.
func TestAttackInitiatorCaseVariant(t *testing.T) {
	f := newFixture(t)
	code, out := f.call("POST", "/v1/withdrawals", exchangeToken, map[string]any{"id": "own-case", "account": "acct", "chain": "eth",
		"amount": eth(1), "destination": dst(3), "initiator": "Carol"})
	require.Equal(t, http.StatusAccepted, code, out)
	id := out["id"].(string)
	_, c := f.post(id, f.sign(f.get(id), "carol", intent.Approve))
	require.Equal(t, "own_withdrawal", c)
}

// F6: a request with a member twice (or in another case) is taken, the
// last one winning: what the exchange's own parser reads may differ.
func TestAttackDuplicateJSONMembers(t *testing.T) {
	f := newFixture(t)
	for _, body := range []string{
		`{"id":"dup1","account":"a","chain":"eth","amount":"1","amount":"` + eth(100000) + `","destination":"` + dst(1) + `"}`,
		`{"id":"dup2","account":"a","chain":"eth","amount":"1","AMOUNT":"` + eth(100000) + `","destination":"` + dst(1) + `"}`,
		`{"id":"dup3","account":"a","chain":"eth","amount":"1","destination":"` + dst(1) + `","Destination":"` + dst(2) + `"}`,
	} {
		code, out := f.raw("POST", "/v1/withdrawals", exchangeToken, "application/json", body)
		require.Equal(t, http.StatusBadRequest, code, "%s: %v", body, out)
	}
}

// F7: the counterparties lookup failing (ClickHouse down or slow past
// counterparties.timeout) leaves counterparties_unknown, which no policy
// can name (has_finding refuses the code), so a withdrawal to an address
// whose counterparty is flagged is decided as if it were clean.
func TestAttackCounterpartyTimeoutFailsOpen(t *testing.T) {
	c, now := coreAt(t)
	cfg := risk.Defaults()
	cfg.Counterparties.Timeout = 20 * time.Millisecond
	r, err := risk.New(cfg, risk.Deps{
		Screener: risk.ScreenerFunc(func(_ chain.Chain, _, addr string) []chain.Hit {
			if addr == flaggedAddr {
				return []chain.Hit{{Address: addr, Indicator: "ofac/1", Category: "sanctions", Source: "ofac", Confidence: 100}}
			}
			return nil
		}),
		Registry: risk.RegistryFunc(func(chain.Chain, string, string) (string, string, bool) { return "", "", false }),
		Counterparties: counterpartiesFunc(func(ctx context.Context) ([]string, error) {
			<-ctx.Done() // the attacker's destination has a history too long to read in time
			return []string{flaggedAddr}, nil
		})})
	require.NoError(t, err)
	c.Risk = r
	q, h, err := DecodeRequest(strings.NewReader(`{"id":"cp","account":"a","chain":"eth","amount":"`+eth(10)+`","destination":"`+dst(1)+`"}`), c.Assets)
	require.NoError(t, err)
	w, _, err := c.Request(context.Background(), &q, h, "exchange", now)
	require.NoError(t, err)
	require.Contains(t, codes(w.Findings), risk.CounterpartiesUnknown)
	require.NotEqual(t, "below-1m", w.Decision.Rule, "unscreened counterparties are unknown, never clean")
	_, err = policy.New([]policy.Rule{
		{Name: "cp", When: `has_finding("counterparties_unknown")`, Action: policy.Deny, Reason: "unscreened"},
		{Name: "end", Action: policy.Deny, Reason: "end"}}, c.Approvers, "h")
	require.NoError(t, err, "a policy can name counterparties_unknown")
}

type counterpartiesFunc func(ctx context.Context) ([]string, error)

func (f counterpartiesFunc) Counterparties(ctx context.Context, _ chain.Chain, _, _ string, _ int) ([]string, error) {
	return f(ctx)
}

func codes(fs []intent.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}

// F8: the leader's one loop does I/O: a counterparties lookup that fails
// is not cached, so the loop looks again (up to counterparties.timeout)
// for each request. While ClickHouse is slow, a burst of requests holds
// every other operation, the breaker's trip included.
func TestAttackSlowCounterpartiesStallTheLoop(t *testing.T) {
	f := newFixture(t)
	f.stop()
	slow := func(c *Core) {
		cfg := risk.Defaults()
		cfg.Counterparties.Timeout = 200 * time.Millisecond
		r, err := risk.New(cfg, risk.Deps{
			Screener: risk.ScreenerFunc(func(chain.Chain, string, string) []chain.Hit { return nil }),
			Registry: risk.RegistryFunc(func(chain.Chain, string, string) (string, string, bool) { return "", "", false }),
			Counterparties: counterpartiesFunc(func(ctx context.Context) ([]string, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			})})
		require.NoError(t, err)
		c.Risk = r
	}
	f.startWith(slow)
	const n = 20
	done := make(chan struct{}, n)
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			f.call("POST", "/v1/withdrawals", exchangeToken, map[string]any{"id": "flood-" + string(rune('a'+i)), "account": "a",
				"chain": "eth", "amount": "1", "destination": dst(100 + i)})
		}()
	}
	time.Sleep(250 * time.Millisecond) // the burst's warm-ups time out; the requests reach the loop
	start := time.Now()
	code, out := f.call("POST", "/v1/breaker", opToken, map[string]any{"scope": "all", "reason": "drain in progress"})
	took := time.Since(start)
	require.Equal(t, http.StatusCreated, code, out)
	for range n {
		<-done
	}
	require.Less(t, took, time.Second, "the breaker's trip waited %s behind %d lookups", took, n)
}

// F9: two trips of the same scope and reason by the same person in one
// batch share their id and hash: the reset approvals of the first reset
// the second too, replayed.
func TestAttackTripIDCollision(t *testing.T) {
	list, keys := approverList(t)
	approvers, err := intent.NewApprovers("gate.approvers", list)
	require.NoError(t, err)
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	c := newCore(t, approvers, now)
	t1, err := c.Trip(Trip{Scope: ScopeAll, Reason: "drain", By: "ann"}, now)
	require.NoError(t, err)
	_, err = c.Trip(Trip{Scope: ScopeAll, Reason: "drain", By: "ann"}, now)
	require.NoError(t, err)
	if len(c.Trips()) == 1 {
		return // one trip: nothing to replay
	}
	var resets []intent.Approval
	for _, who := range []string{"alice", "bob"} {
		a := intent.Approval{Withdrawal: t1.Subject(), Intent: t1.Hash(), Approver: who, Decision: intent.Approve, Signed: now}
		a.Sign(keys[who])
		_, _, err := c.Reset(t1.ID, a, now)
		require.NoError(t, err)
		resets = append(resets, a)
	}
	require.Len(t, c.Trips(), 1, "the first trip was reset")
	for _, a := range resets { // the same approvals again, for the second trip of that id
		_, _, _ = c.Reset(t1.ID, a, now)
	}
	require.NotEmpty(t, c.Trips(), "the second trip was reset by the first one's approvals")
}

// startWith stops nothing; it starts an instance whose cores mod changes.
func (f *fixture) startWith(mod func(*Core)) {
	f.t.Helper()
	chn, err := audit.New(audit.Config{CheckpointEvery: 10}, testAuditKey(), f.clock)
	require.NoError(f.t, err)
	svc, err := NewService(ServiceConfig{Kafka: f.kc, Clock: f.clock, Tick: 20 * time.Millisecond,
		Audit: &ChainAuditor{Chain: chn, Topic: f.kc.Topics.Audit},
		NewCore: func() (*Core, error) {
			c := newCore(f.t, f.approvers, f.clock.Now())
			mod(c)
			return c, nil
		}})
	require.NoError(f.t, err)
	auth, err := apiauth.New([]apiauth.Token{
		{Name: "exchange", Token: config.SecretValue(exchangeToken), Scopes: []string{"withdraw"}},
		{Name: "approvals", Token: config.SecretValue(approverToken), Scopes: []string{"approve"}}},
		[]apiauth.Operator{{Name: "ann", Token: config.SecretValue(opToken)}}, apiauth.Options{})
	require.NoError(f.t, err)
	mux := http.NewServeMux()
	(&API{Auth: auth, Service: svc, Assets: assetsWith(f.t)}).Handle(mux)
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	f.t.Cleanup(func() { cancel(); <-done; srv.Close() })
	f.svc, f.srv = svc, srv
	require.Eventually(f.t, svc.Leader, 30*time.Second, 10*time.Millisecond, "the gate leads")
}

package gate

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/audit"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
	"github.com/cordonhq/cordon/signer/risk"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	exchangeToken = "exchange-token-0123456789"
	approverToken = "approver-token-0123456789"
	opToken       = "operator-token-0123456789"
	flaggedAddr   = "0x00000000000000000000000000000000000bad01"
)

// fixture is a gate on kfake behind its API, with five approvers in two
// groups (security: alice, bob, carol; finance: dave, erin), frank of
// ops (no rule takes ops), mallory (disabled), and ETH at $2,000.
type fixture struct {
	t         *testing.T
	kc        kafka.Config
	clock     *testClock
	approvers *intent.Approvers
	keys      map[string]ed25519.PrivateKey
	srv       *httptest.Server
	svc       *Service
	stop      func()
	policySrc []byte
}

func approverList(t testing.TB) ([]intent.Approver, map[string]ed25519.PrivateKey) {
	var list []intent.Approver
	keys := map[string]ed25519.PrivateKey{}
	for _, a := range []struct {
		name, group string
	}{{"alice", "security"}, {"bob", "security"}, {"carol", "security"}, {"dave", "finance"}, {"erin", "finance"}, {"frank", "ops"}, {"mallory", "security"}} {
		seed := make([]byte, ed25519.SeedSize)
		copy(seed, a.name)
		k := ed25519.NewKeyFromSeed(seed)
		keys[a.name] = k
		list = append(list, intent.Approver{Name: a.name, Groups: []string{a.group}, Key: b64(k.Public().(ed25519.PublicKey)), Disabled: a.name == "mallory"})
	}
	return list, keys
}

func newCore(t testing.TB, approvers *intent.Approvers, now time.Time) *Core {
	return newCoreWith(t, approvers, now, nil)
}

func newCoreWith(t testing.TB, approvers *intent.Approvers, now time.Time, policySrc []byte) *Core {
	pol, err := policy.Default(approvers)
	if policySrc != nil {
		pol, err = policy.Parse(policySrc, approvers)
	}
	require.NoError(t, err)
	prices, err := policy.NewPrices(policy.PricesConfig{Assets: []policy.AssetPrice{
		{Chain: "eth", Asset: "native", Decimals: 18, USD: "2000", Static: true}}}, now)
	require.NoError(t, err)
	r, err := risk.New(risk.Defaults(), risk.Deps{
		Screener: risk.ScreenerFunc(func(_ chain.Chain, _, addr string) []chain.Hit {
			if addr == flaggedAddr {
				return []chain.Hit{{Address: addr, Indicator: "ofac/1", Category: "sanctions", Source: "ofac", Confidence: 100}}
			}
			return nil
		}),
		Registry: risk.RegistryFunc(func(chain.Chain, string, string) (string, string, bool) { return "", "", false })})
	require.NoError(t, err)
	var p config.Problems
	c := NewCore()
	c.Approvers, c.Policy, c.Prices, c.Risk = approvers, pol, prices, r
	c.Assets = NewAssetList(&p, "gate.assets", []string{"eth/mainnet", "btc/mainnet"}, nil)
	c.Breaker = BreakerConfig{ResetQuorum: 2, ResetGroups: []string{"security"}}
	c.Book = AddressBookConfig{Quorum: 2, Groups: []string{"security"}, TimeLock: 48 * time.Hour}
	c.RetainFinished = DefaultConfig().RetainFinished
	require.NoError(t, p.Err())
	return c
}

// coreAt is a core over the fixture's approvers at a fixed time, for
// tests of the core alone.
func coreAt(t testing.TB) (*Core, time.Time) {
	list, _ := approverList(t)
	approvers, err := intent.NewApprovers("gate.approvers", list)
	require.NoError(t, err)
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	return newCore(t, approvers, now), now
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, nil) }

// newFixtureWith is a fixture whose gate runs the policy policySrc (nil:
// the default).
func newFixtureWith(t *testing.T, policySrc []byte) *fixture {
	t.Helper()
	list, keys := approverList(t)
	approvers, err := intent.NewApprovers("gate.approvers", list)
	require.NoError(t, err)
	f := &fixture{t: t, kc: kafka.Config{Brokers: kafkatest.Brokers(t), Auth: kafkatest.Keys(), CreateTopics: true}, approvers: approvers, keys: keys,
		clock: &testClock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}, policySrc: policySrc}
	f.kc.Topics.Fill()
	f.start()
	return f
}

// start runs a gate instance with its own API server.
func (f *fixture) start() *httptest.Server {
	chn, err := audit.New(audit.Config{CheckpointEvery: 10}, testAuditKey(), f.clock)
	require.NoError(f.t, err)
	svc, err := NewService(ServiceConfig{Kafka: f.kc, Clock: f.clock, Tick: 20 * time.Millisecond,
		Audit:   &ChainAuditor{Chain: chn, Topic: f.kc.Topics.Audit},
		NewCore: func() (*Core, error) { return newCoreWith(f.t, f.approvers, f.clock.Now(), f.policySrc), nil }})
	require.NoError(f.t, err)
	auth, err := apiauth.New([]apiauth.Token{
		{Name: "exchange", Token: config.SecretValue(exchangeToken), Scopes: []string{"withdraw"}},
		{Name: "approvals", Token: config.SecretValue(approverToken), Scopes: []string{"approve"}}},
		[]apiauth.Operator{{Name: "ann", Token: config.SecretValue(opToken)}}, apiauth.Options{})
	require.NoError(f.t, err)
	mux := http.NewServeMux()
	var p config.Problems
	(&API{Auth: auth, Service: svc, Assets: NewAssetList(&p, "gate.assets", []string{"eth/mainnet", "btc/mainnet"}, nil)}).Handle(mux)
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stop := func() {
		cancel()
		require.NoError(f.t, <-done)
		srv.Close()
	}
	f.t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	f.svc, f.srv, f.stop = svc, srv, stop
	require.Eventually(f.t, svc.Leader, 30*time.Second, 10*time.Millisecond, "the gate leads")
	return srv
}

func (f *fixture) call(method, path, token string, body any) (int, map[string]any) {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	require.NoError(f.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func eth(n int64) string { return fmt.Sprintf("%d000000000000000000", n) }

func (f *fixture) request(id, amount, dst string) map[string]any {
	f.t.Helper()
	code, out := f.call("POST", "/v1/withdrawals", exchangeToken, map[string]any{"id": id, "account": "acct-" + id, "chain": "eth",
		"asset": "native", "amount": amount, "destination": dst})
	require.Equal(f.t, http.StatusAccepted, code, out)
	return out
}

func (f *fixture) get(id string) Withdrawal {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+"/v1/withdrawals/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+exchangeToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	require.Equal(f.t, http.StatusOK, resp.StatusCode)
	var w Withdrawal
	require.NoError(f.t, json.NewDecoder(resp.Body).Decode(&w))
	return w
}

// sign is what cordon withdrawals approve does on the approver's
// machine: hash the intent it was shown, sign.
func (f *fixture) sign(w Withdrawal, who, decision string) intent.Approval {
	f.t.Helper()
	h, err := w.Intent.Hash()
	require.NoError(f.t, err)
	require.Equal(f.t, w.Hash, h, "the intent hashes to what the gate says")
	a := intent.Approval{Withdrawal: w.Intent.ID, Intent: h, Approver: who, Decision: decision, Signed: f.clock.Now()}
	if decision == intent.Reject {
		a.Reason = "not what the customer asked for"
	}
	a.Sign(f.keys[who])
	return a
}

func (f *fixture) approve(id, who string) (int, map[string]any) {
	f.t.Helper()
	return f.call("POST", "/v1/withdrawals/"+id+"/approvals", approverToken, f.sign(f.get(id), who, intent.Approve))
}

func (f *fixture) approved(id string, who ...string) {
	f.t.Helper()
	for _, a := range who {
		code, out := f.approve(id, a)
		require.Equal(f.t, http.StatusOK, code, out)
	}
}

func (f *fixture) waitStatus(id, status string) Withdrawal {
	f.t.Helper()
	var w Withdrawal
	require.Eventually(f.t, func() bool { w = f.get(id); return w.Status == status }, 10*time.Second, 10*time.Millisecond,
		"withdrawal %s to be %s", id, status)
	return w
}

func dst(n int) string { return fmt.Sprintf("0x%040x", 0xd00000+n) }

func TestTiers(t *testing.T) {
	f := newFixture(t)
	// Tier 1 (below $1,000,000): 2 of 5, no cooling.
	w1 := f.request("t1", eth(10), dst(1))
	require.Equal(t, StatusPending, w1["status"])
	require.Equal(t, "below-1m", w1["rule"])
	id1 := w1["id"].(string)
	f.approved(id1, "alice")
	require.Equal(t, StatusPending, f.get(id1).Status, "one approval is not a quorum")
	f.approved(id1, "dave")
	require.Equal(t, StatusApproved, f.get(id1).Status)

	// Tier 2 ($1,000,000 to $5,000,000): 3 of 5, then 2 hours of cooling.
	w2 := f.request("t2", eth(500), dst(2)) // $1,000,000 exactly
	require.Equal(t, "1m-to-5m", w2["rule"])
	id2 := w2["id"].(string)
	f.approved(id2, "alice", "bob")
	require.Equal(t, StatusPending, f.get(id2).Status)
	f.approved(id2, "erin")
	w := f.get(id2)
	require.Equal(t, StatusCooling, w.Status)
	require.Equal(t, f.clock.Now().Add(2*time.Hour), *w.CoolingUntil)
	f.clock.Add(2*time.Hour - time.Second)
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, StatusCooling, f.get(id2).Status, "cooling holds it until its time")
	f.clock.Add(time.Second)
	f.waitStatus(id2, StatusApproved)

	// Tier 3 (above $5,000,000): 4 of 5, one of each group.
	w3 := f.request("t3", eth(2501), dst(3))
	require.Equal(t, "above-5m", w3["rule"])
	id3 := w3["id"].(string)
	f.approved(id3, "alice", "bob", "carol")
	f.approved(id3, "dave")
	require.Equal(t, StatusCooling, f.get(id3).Status)

	// A flaggedAddr destination is denied, and alerted.
	w4 := f.request("t4", eth(1), flaggedAddr)
	require.Equal(t, StatusDenied, w4["status"])
	require.Equal(t, "flagged-destination", w4["rule"])
	// The counts follow every change (kept as they change, not counted):
	// the first one expired when the clock passed its 2-hour expiry.
	require.Equal(t, map[string]int{StatusApproved: 1, StatusCooling: 1, StatusDenied: 1, StatusExpired: 1}, f.svc.Counts())
	f.stop()
	f.start()
	require.Equal(t, map[string]int{StatusApproved: 1, StatusCooling: 1, StatusDenied: 1, StatusExpired: 1}, f.svc.Counts(), "and are rebuilt on restore")
}

func TestIdempotentIntake(t *testing.T) {
	f := newFixture(t)
	a := f.request("same", eth(1), dst(1))
	b := f.request("same", eth(1), dst(1))
	require.Equal(t, a["id"], b["id"])
	require.Equal(t, true, b["repeated"])
	code, out := f.call("POST", "/v1/withdrawals", exchangeToken, map[string]any{"id": "same", "account": "acct-same", "chain": "eth",
		"asset": "native", "amount": eth(2), "destination": dst(1)})
	require.Equal(t, http.StatusConflict, code, out)
	require.Equal(t, "id_reused", out["code"])
	for name, body := range map[string]map[string]any{
		"bad destination": {"id": "x1", "account": "a", "chain": "eth", "amount": "1", "destination": "0x1234"},
		"unknown token":   {"id": "x2", "account": "a", "chain": "eth", "asset": dst(9), "amount": "1", "destination": dst(1)},
		"zero":            {"id": "x3", "account": "a", "chain": "eth", "amount": "0", "destination": dst(1)},
		"float amount":    {"id": "x4", "account": "a", "chain": "eth", "amount": "1.5", "destination": dst(1)},
		"unknown field":   {"id": "x5", "account": "a", "chain": "eth", "amount": "1", "destination": dst(1), "priority": "high"},
	} {
		code, out := f.call("POST", "/v1/withdrawals", exchangeToken, body)
		require.Equal(t, http.StatusBadRequest, code, name)
		require.Equal(t, "bad_request", out["code"], name)
	}
	code, _ = f.call("POST", "/v1/withdrawals", approverToken, map[string]any{"id": "x6"})
	require.Equal(t, http.StatusForbidden, code, "the approvals token cannot request withdrawals")
}

func TestApprovalRefusals(t *testing.T) {
	f := newFixture(t)
	idA := f.request("a", eth(10), dst(1))["id"].(string)
	idB := f.request("b", eth(10), dst(2))["id"].(string)
	wA, wB := f.get(idA), f.get(idB)
	idC := f.request("c", eth(10), dst(4))["id"].(string)
	post := func(id string, a intent.Approval) (int, string) {
		code, out := f.call("POST", "/v1/withdrawals/"+id+"/approvals", approverToken, a)
		return code, fmt.Sprint(out["code"])
	}
	// An approval of intent A presented for intent B.
	a := f.sign(wA, "alice", intent.Approve)
	code, c := post(idB, a)
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, "wrong_intent", c)
	// The same signature with B's hash written in: the signature fails.
	forged := a
	forged.Withdrawal, forged.Intent = idB, wB.Hash
	code, c = post(idB, forged)
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, "bad_signature", c)
	// Unknown and disabled approvers.
	stranger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	s := intent.Approval{Withdrawal: idA, Intent: wA.Hash, Approver: "eve", Decision: intent.Approve, Signed: f.clock.Now()}
	s.Sign(stranger)
	_, c = post(idA, s)
	require.Equal(t, "unknown_approver", c)
	_, c = post(idA, f.sign(wA, "mallory", intent.Approve))
	require.Equal(t, "approver_disabled", c)
	// Outside the rule's groups.
	_, c = post(idA, f.sign(wA, "frank", intent.Approve))
	require.Equal(t, "wrong_group", c)
	// The same approver twice.
	code, _ = post(idA, f.sign(wA, "alice", intent.Approve))
	require.Equal(t, http.StatusOK, code)
	_, c = post(idA, f.sign(wA, "alice", intent.Approve))
	require.Equal(t, "already_decided", c)
	// A stale signature (signed long before it arrives).
	old := f.sign(wA, "bob", intent.Approve)
	f.clock.Add(MaxSkew + time.Second)
	_, c = post(idA, old)
	require.Equal(t, "signed_time", c)
	// After the window (15 minutes): refused, and the withdrawal expires.
	f.clock.Add(15 * time.Minute)
	_, c = post(idA, f.sign(f.get(idA), "bob", intent.Approve))
	require.Contains(t, []string{"window_closed", "closed"}, c)
	f.waitStatus(idA, StatusExpired)

	// The requester's own person may not approve it.
	code, out := f.call("POST", "/v1/withdrawals", exchangeToken, map[string]any{"id": "own", "account": "acct", "chain": "eth",
		"amount": eth(1), "destination": dst(3), "initiator": "carol"})
	require.Equal(t, http.StatusAccepted, code, out)
	_, c = post(out["id"].(string), f.sign(f.get(out["id"].(string)), "carol", intent.Approve))
	require.Equal(t, "own_withdrawal", c)

	// One rejection rejects.
	idB = f.request("b2", eth(10), dst(5))["id"].(string)
	f.approved(idB, "alice")
	code, _ = post(idB, f.sign(f.get(idB), "dave", intent.Reject))
	require.Equal(t, http.StatusOK, code)
	w := f.get(idB)
	require.Equal(t, StatusExpired, f.get(idC).Status, "c expired with its window")
	require.Equal(t, StatusRejected, w.Status)
	require.Contains(t, w.Reason, "rejected by dave")
	_, c = post(idB, f.sign(w, "bob", intent.Approve))
	require.Equal(t, "closed", c)
}

func TestBreaker(t *testing.T) {
	f := newFixture(t)
	done := f.request("done", eth(10), dst(1))["id"].(string)
	f.approved(done, "alice", "bob")
	require.Equal(t, StatusApproved, f.get(done).Status)
	pend := f.request("pend", eth(10), dst(2))["id"].(string)

	code, _ := f.call("POST", "/v1/breaker", exchangeToken, map[string]any{"scope": "all", "reason": "drill"})
	require.Equal(t, http.StatusForbidden, code, "the exchange's token cannot trip")
	code, out := f.call("POST", "/v1/breaker", opToken, map[string]any{"scope": "chain", "chain": "eth", "reason": "hot wallet drain"})
	require.Equal(t, http.StatusCreated, code, out)
	trip := out["id"].(string)
	f.waitStatus(done, StatusPaused)
	// A pending one waits: it still takes approvals, and stays held
	// when its quorum is reached; its window does not run out.
	f.approved(pend, "alice", "dave")
	require.Equal(t, StatusPaused, f.get(pend).Status)
	f.clock.Add(time.Hour)
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, StatusPaused, f.get(pend).Status, "paused, not expired nor rejected")
	// A new withdrawal on the chain is held too; a BTC one is not.
	code, btc := f.call("POST", "/v1/withdrawals", exchangeToken, map[string]any{"id": "btc-1", "account": "acct-b", "chain": "btc",
		"amount": "100000", "destination": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"})
	require.Equal(t, http.StatusAccepted, code, btc)
	require.Equal(t, StatusPending, btc["status"], "the breaker holds eth only")
	held := f.request("eth-new", eth(1), dst(7))["id"].(string)
	f.approved(held, "alice", "dave")
	require.Equal(t, StatusPaused, f.get(held).Status, "a new withdrawal on the chain is held at its quorum")

	// One approver cannot reset it; two of security can.
	var tr Trip
	_, out = f.call("GET", "/v1/breaker", opToken, nil)
	b, _ := json.Marshal(out["trips"].([]any)[0])
	require.NoError(t, json.Unmarshal(b, &tr))
	reset := func(who string) (int, map[string]any) {
		a := intent.Approval{Withdrawal: tr.Subject(), Intent: tr.Hash(), Approver: who, Decision: intent.Approve, Signed: f.clock.Now()}
		a.Sign(f.keys[who])
		return f.call("POST", "/v1/breaker/"+trip+"/resets", approverToken, a)
	}
	code, out = reset("dave")
	require.Equal(t, http.StatusForbidden, code, out)
	code, out = reset("alice")
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, false, out["reset"])
	require.Equal(t, StatusPaused, f.get(done).Status)
	code, out = reset("bob")
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, true, out["reset"])
	w := f.waitStatus(done, StatusApproved)
	require.Nil(t, w.PausedSince)
	f.waitStatus(pend, StatusApproved)
}

// Restart mid-approval: a new instance restores the same state and the
// approvals go on where they were.
func TestRestartMidApproval(t *testing.T) {
	f := newFixture(t)
	id := f.request("r1", eth(600), dst(1))["id"].(string) // tier 2
	f.approved(id, "alice", "dave")
	before := f.get(id)
	idle := f.request("r2", eth(1), dst(2))["id"].(string)
	f.stop()
	f.start()
	after := f.get(id)
	require.Equal(t, before, after, "the state is identical after a restart")
	require.Equal(t, StatusPending, f.get(idle).Status)
	code, out := f.approve(id, "alice")
	require.Equal(t, http.StatusConflict, code, "alice's approval was kept: %v", out)
	f.approved(id, "bob")
	require.Equal(t, StatusCooling, f.get(id).Status)
}

// Two instances: one leads, the other answers 503 until it takes over
// with the same state.
func TestTwoInstancesOneLeader(t *testing.T) {
	f := newFixture(t)
	first, firstStop, firstSvc := f.srv, f.stop, f.svc
	id := f.request("l1", eth(10), dst(1))["id"].(string)
	f.approved(id, "alice")
	second := f.start2()
	time.Sleep(500 * time.Millisecond)
	require.True(t, firstSvc.Leader())
	require.False(t, f.svc.Leader(), "one leader")
	f.srv = second
	code, out := f.call("GET", "/v1/withdrawals/"+id, exchangeToken, nil)
	require.Equal(t, http.StatusServiceUnavailable, code, out)
	require.Equal(t, "not_leader", out["code"])
	code, out = f.call("GET", LeaderEndpoint, "", nil)
	require.Equal(t, http.StatusServiceUnavailable, code, "a load balancer's health check: the standby")
	require.Equal(t, false, out["leader"])
	f.srv = first
	code, out = f.call("GET", LeaderEndpoint, "", nil)
	require.Equal(t, http.StatusOK, code, "the leader")
	require.Equal(t, true, out["leader"])
	firstStop()
	f.srv = second
	require.Eventually(t, f.svc.Leader, 60*time.Second, 20*time.Millisecond, "the standby takes over")
	code, _ = f.call("GET", LeaderEndpoint, "", nil)
	require.Equal(t, http.StatusOK, code)
	w := f.get(id)
	require.Len(t, w.Approvals, 1)
	f.approved(id, "bob")
	require.Equal(t, StatusApproved, f.get(id).Status)
}

// start2 starts another instance without waiting for it to lead.
func (f *fixture) start2() *httptest.Server {
	svc, err := NewService(ServiceConfig{Kafka: f.kc, Clock: f.clock, Tick: 20 * time.Millisecond,
		NewCore: func() (*Core, error) { return newCore(f.t, f.approvers, f.clock.Now()), nil }})
	require.NoError(f.t, err)
	auth, err := apiauth.New([]apiauth.Token{{Name: "exchange", Token: config.SecretValue(exchangeToken), Scopes: []string{"withdraw"}},
		{Name: "approvals", Token: config.SecretValue(approverToken), Scopes: []string{"approve"}}}, nil, apiauth.Options{})
	require.NoError(f.t, err)
	mux := http.NewServeMux()
	var p config.Problems
	(&API{Auth: auth, Service: svc, Assets: NewAssetList(&p, "gate.assets", []string{"eth/mainnet"}, nil)}).Handle(mux)
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	f.t.Cleanup(func() { cancel(); <-done; srv.Close() })
	f.svc = svc
	return srv
}

func testAuditKey() *audit.Key {
	return audit.KeyOf(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)))
}

// Every request, finding, decision, approval, rejection and breaker
// change is in the audit log, which verifies across a restart of the
// leader.
func TestAuditLog(t *testing.T) {
	f := newFixture(t)
	id := f.request("au1", eth(10), dst(1))["id"].(string)
	f.approved(id, "alice")
	f.stop()
	f.start()
	f.approved(id, "bob")
	rej := f.request("au2", eth(10), dst(2))["id"].(string)
	code, _ := f.call("POST", "/v1/withdrawals/"+rej+"/approvals", approverToken, f.sign(f.get(rej), "dave", intent.Reject))
	require.Equal(t, http.StatusOK, code)
	code, _ = f.call("POST", "/v1/breaker", opToken, map[string]any{"scope": "all", "reason": "drill"})
	require.Equal(t, http.StatusCreated, code)
	keys, err := audit.NewKeys(testAuditKey().Public())
	require.NoError(t, err)
	f.kc.Topics.Fill()
	var kinds, bodies map[string]int
	require.Eventually(t, func() bool {
		kinds, bodies = map[string]int{}, map[string]int{}
		require.NoError(t, audit.ReadTopic(context.Background(), f.kc, func(e audit.Entry) error {
			r, err := audit.DecodeRecord(e.Value)
			require.NoError(t, err)
			kinds[r.Kind]++
			var body struct {
				Findings json.RawMessage `json:"findings"`
				Decision struct {
					Rule   string `json:"rule"`
					Action string `json:"action"`
				} `json:"decision"`
				IntentHash string `json:"intent_hash"`
			}
			if r.Kind == "request" && json.Unmarshal(r.Body, &body) == nil && body.Decision.Rule != "" && body.Decision.Action != "" &&
				len(body.Findings) > 0 && len(body.IntentHash) == 64 {
				bodies[r.Kind]++
			}
			return nil
		}))
		return kinds["breaker"] == 1
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, 2, kinds["request"])
	require.Equal(t, 2, bodies["request"], "each request record holds its findings and decision")
	require.Zero(t, kinds["findings"]+kinds["decision"])
	require.Equal(t, 1, kinds["policy"], "the policy in force is recorded once, not again by the restart")
	require.Equal(t, 2, kinds["approval"])
	require.Equal(t, 1, kinds["rejection"])
	rep, err := audit.VerifyTopic(context.Background(), f.kc, keys)
	require.NoError(t, err, rep.Text())
	require.True(t, rep.OK)
	require.Positive(t, kinds["checkpoint"], "the leader signs checkpoints")
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// A policy comes into force as an audit record naming it, once: a core
// whose state already recorded the same policy records nothing.
func TestPolicyInForce(t *testing.T) {
	as, _ := approverList(t)
	approvers, err := intent.NewApprovers("", as)
	require.NoError(t, err)
	c := newCore(t, approvers, time.Now())
	c.PolicySource, c.PolicyApprovedBy = "policy.yaml", []string{"alice", "dave"}
	c.PolicyInForce("")
	ch := c.Take()
	require.Equal(t, c.Policy.Hash(), ch.Policy)
	require.Len(t, ch.Entries, 1)
	e := ch.Entries[0]
	require.Equal(t, "policy", e.Kind)
	require.Equal(t, c.Policy.Hash(), e.Subject)
	body := e.Body.(map[string]any)
	require.Equal(t, []string{"alice", "dave"}, body["approved_by"])
	require.Equal(t, "policy.yaml", body["source"])
	require.Empty(t, c.Take().Policy, "recorded once")

	c2 := newCore(t, approvers, time.Now())
	c2.PolicyInForce(c.Policy.Hash())
	ch = c2.Take()
	require.Empty(t, ch.Policy)
	require.Empty(t, ch.Entries)
}

// A finished withdrawal is archived RetainFinished after its last
// change: its whole record leaves the state (a tombstone), its summary
// stays, so its request id is still the same withdrawal (and another
// body still 409), across restarts; an open one is never archived.
func TestArchiveFinished(t *testing.T) {
	f := newFixture(t)
	rej := f.request("ar1", eth(10), dst(1))["id"].(string)
	code, _ := f.call("POST", "/v1/withdrawals/"+rej+"/approvals", approverToken, f.sign(f.get(rej), "dave", intent.Reject))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, StatusRejected, f.get(rej).Status)
	f.clock.Add(700 * time.Hour)
	open := f.request("ar2", eth(10), dst(2))["id"].(string)
	f.clock.Add(20*time.Hour + time.Minute) // ar1 finished 720h01m ago
	require.Eventually(t, func() bool { return f.svc.Counts()[StatusRejected] == 0 }, 10*time.Second, 20*time.Millisecond, "archived")
	w := f.get(rej)
	require.Equal(t, StatusRejected, w.Status)
	require.Contains(t, w.Reason, "archived")
	require.Empty(t, w.Approvals, "only the summary is kept")
	require.Equal(t, StatusExpired, f.get(open).Status, "the open one expired when its window closed, 20h ago: not archived yet")
	again := func() (int, map[string]any) {
		return f.call("POST", "/v1/withdrawals", exchangeToken, map[string]any{"id": "ar1", "account": "acct-ar1", "chain": "eth",
			"asset": "native", "amount": eth(10), "destination": dst(1)})
	}
	code, out := again()
	require.Equal(t, http.StatusAccepted, code, out)
	require.Equal(t, rej, out["id"])
	require.Equal(t, StatusRejected, out["status"])
	require.Equal(t, true, out["repeated"])
	code, out = f.call("POST", "/v1/withdrawals", exchangeToken, map[string]any{"id": "ar1", "account": "acct-ar1", "chain": "eth",
		"asset": "native", "amount": eth(11), "destination": dst(1)})
	require.Equal(t, http.StatusConflict, code, out)

	f.stop()
	f.start()
	w = f.get(rej)
	require.Equal(t, StatusRejected, w.Status)
	require.Contains(t, w.Reason, "archived", "archived across a restart")
	code, out = again()
	require.Equal(t, http.StatusAccepted, code, out)
	require.Equal(t, true, out["repeated"])
	require.Zero(t, f.svc.Counts()[StatusRejected])
	require.Equal(t, 1, f.svc.Counts()[StatusExpired])
}

package gate

// Attacks on the withdrawal gate (issue 14): each test plays an attacker
// against the real code (kfake for Kafka) and requires the gate to hold.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/recordauth"
	"github.com/cordonhq/cordon/internal/testkit"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
)

// raw posts body as is.
func (f *fixture) raw(method, path, token, contentType, body string) (int, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	require.NoError(f.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// signAt signs a decision on w by who at signed.
func (f *fixture) signAt(w Withdrawal, who, decision string, signed time.Time) intent.Approval {
	a := intent.Approval{Withdrawal: w.Intent.ID, Intent: w.Hash, Approver: who, Decision: decision, Signed: signed}
	if decision == intent.Reject {
		a.Reason = "not what the customer asked for"
	}
	a.Sign(f.keys[who])
	return a
}

func (f *fixture) post(id string, a intent.Approval) (int, string) {
	f.t.Helper()
	code, out := f.call("POST", "/v1/withdrawals/"+id+"/approvals", approverToken, a)
	return code, toString(out["code"])
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// Scope confusion: each token does only what its scope says.
func TestAttackScopeConfusion(t *testing.T) {
	f := newFixture(t)
	body := map[string]any{"id": "sc1", "account": "a", "chain": "eth", "amount": eth(1), "destination": dst(1)}
	code, _ := f.call("POST", "/v1/withdrawals", approverToken, body)
	require.Equal(t, http.StatusForbidden, code, "the approvals token cannot request")
	code, _ = f.call("POST", "/v1/withdrawals:dry-run", approverToken, body)
	require.Equal(t, http.StatusForbidden, code, "nor dry-run")
	code, _ = f.call("POST", "/v1/breaker", approverToken, map[string]any{"scope": "all", "reason": "x"})
	require.Equal(t, http.StatusForbidden, code, "the approvals token cannot trip")
	id := f.request("sc2", eth(1), dst(2))["id"].(string)
	a := f.sign(f.get(id), "alice", intent.Approve)
	code, _ = f.call("POST", "/v1/withdrawals/"+id+"/approvals", exchangeToken, a)
	require.Equal(t, http.StatusForbidden, code, "the exchange's token cannot post approvals")
	code, _ = f.call("GET", "/v1/withdrawals", "nope-not-a-token-000000000", nil)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Empty(t, f.get(id).Approvals)
}

// Intake games: non-canonical amounts, oversized bodies, a wrong
// content type, address case variants (same withdrawal), dry runs
// (no state).
func TestAttackIntakeCanonicalization(t *testing.T) {
	f := newFixture(t)
	for _, amt := range []string{"01", "+1", "-1", " 1", "1 ", "1e18", "0x10", "１", "1.0", strings.Repeat("9", 79)} {
		code, out := f.call("POST", "/v1/withdrawals", exchangeToken, map[string]any{"id": "amt", "account": "a", "chain": "eth",
			"amount": amt, "destination": dst(1)})
		require.Equal(t, http.StatusBadRequest, code, "amount %q: %v", amt, out)
	}
	code, out := f.raw("POST", "/v1/withdrawals", exchangeToken, "application/json",
		`{"id":"n1","account":"a","chain":"eth","amount":1000,"destination":"`+dst(1)+`"}`)
	require.Equal(t, http.StatusBadRequest, code, "a JSON number is not an amount: %v", out)
	code, _ = f.raw("POST", "/v1/withdrawals", exchangeToken, "text/plain",
		`{"id":"ct","account":"a","chain":"eth","amount":"1","destination":"`+dst(1)+`"}`)
	require.Equal(t, http.StatusUnsupportedMediaType, code)
	big := `{"id":"big","account":"a","chain":"eth","amount":"1","destination":"` + dst(1) + `","context":{"device_id":"` + strings.Repeat("x", MaxRequestBytes) + `"}}`
	code, _ = f.raw("POST", "/v1/withdrawals", exchangeToken, "application/json", big)
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = f.raw("POST", "/v1/withdrawals", exchangeToken, "application/json",
		`{"id":"trail","account":"a","chain":"eth","amount":"1","destination":"`+dst(1)+`"} {"id":"x"}`)
	require.Equal(t, http.StatusBadRequest, code, "data after the request")

	// The same withdrawal written with a checksummed destination, an
	// upper-case chain and an explicit network is the same withdrawal.
	lower := "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
	a := f.request("case", eth(1), lower)
	code, b := f.call("POST", "/v1/withdrawals", exchangeToken, map[string]any{"id": "case", "account": "acct-case", "chain": " ETH ",
		"network": "MainNet", "asset": "NATIVE", "amount": eth(1), "destination": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"})
	require.Equal(t, http.StatusAccepted, code, b)
	require.Equal(t, a["id"], b["id"])
	require.Equal(t, true, b["repeated"])
	// A wrong EIP-55 checksum is refused, not lower-cased into another address.
	code, _ = f.call("POST", "/v1/withdrawals", exchangeToken, map[string]any{"id": "badsum", "account": "a", "chain": "eth",
		"amount": "1", "destination": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"})
	require.Equal(t, http.StatusBadRequest, code)

	// A dry run creates nothing: the id stays free.
	code, dry := f.call("POST", "/v1/withdrawals:dry-run", exchangeToken, map[string]any{"id": "dry", "account": "a", "chain": "eth",
		"amount": eth(1), "destination": dst(3)})
	require.Equal(t, http.StatusOK, code, dry)
	code, _ = f.call("GET", "/v1/withdrawals/"+WithdrawalID("dry"), exchangeToken, nil)
	require.Equal(t, http.StatusNotFound, code, "a dry run stores nothing")
	got := f.request("dry", eth(2), dst(3))
	require.NotEqual(t, true, got["repeated"], "the dry run's id was not taken")
}

// Unknown value: a configured token without a price lands in the
// highest tier, never the lowest.
func TestAttackUnknownPriceIsHighestTier(t *testing.T) {
	c, now := coreAt(t)
	usdc := "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
	c.Assets = assetsWith(t, usdc)
	q, h, err := DecodeRequest(strings.NewReader(`{"id":"tok","account":"a","chain":"eth","asset":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48","amount":"1","destination":"`+dst(1)+`"}`), c.Assets)
	require.NoError(t, err)
	require.Equal(t, usdc, q.Asset)
	w, _, err := c.Request(context.Background(), &q, h, "exchange", now)
	require.NoError(t, err)
	require.Equal(t, "unknown", w.USD)
	require.Equal(t, "above-5m", w.Decision.Rule, "one base unit of an unpriced token is of unknown value: the highest tier")
	// A stale price is unknown too.
	c2 := newCore(t, c.Approvers, now)
	c2.Prices = mustPrices(t, now, false)
	q2, h2, err := DecodeRequest(strings.NewReader(`{"id":"stale","account":"a","chain":"eth","amount":"1","destination":"`+dst(1)+`"}`), c2.Assets)
	require.NoError(t, err)
	w2, _, err := c2.Request(context.Background(), &q2, h2, "exchange", now.Add(11*time.Minute))
	require.NoError(t, err)
	require.Equal(t, "above-5m", w2.Decision.Rule, "a stale price is unknown, not the last price")
}

// Signatures over something else, in every disguise.
func TestAttackApprovalReplayAndForgery(t *testing.T) {
	f := newFixture(t)
	idA := f.request("fa", eth(10), dst(1))["id"].(string)
	idB := f.request("fb", eth(10), dst(2))["id"].(string)
	wA, wB := f.get(idA), f.get(idB)
	// A rejection turned into an approval: the signature fails.
	rej := f.sign(wA, "alice", intent.Reject)
	flipped := rej
	flipped.Decision, flipped.Reason = intent.Approve, ""
	_, c := f.post(idA, flipped)
	require.Equal(t, "bad_signature", c)
	// An approver's name in another case is nobody.
	up := f.sign(wA, "alice", intent.Approve)
	up.Approver = "Alice"
	_, c = f.post(idA, up)
	require.Equal(t, "unknown_approver", c)
	// Another approver's signature claimed by bob.
	claimed := f.sign(wA, "alice", intent.Approve)
	claimed.Approver = "bob"
	_, c = f.post(idA, claimed)
	require.Equal(t, "bad_signature", c)
	// A's approval sent to B's URL, with A's ids in it.
	_, c = f.post(idB, f.sign(wA, "alice", intent.Approve))
	require.Equal(t, "wrong_intent", c)
	// B's withdrawal id with A's hash (the front end showing A, sending B).
	mixed := intent.Approval{Withdrawal: idB, Intent: wA.Hash, Approver: "alice", Decision: intent.Approve, Signed: f.clock.Now()}
	mixed.Sign(f.keys["alice"])
	_, c = f.post(idB, mixed)
	require.Equal(t, "wrong_intent", c)
	// An intent that differs from B's only in the amount hashes otherwise.
	in := wB.Intent
	in.Amount = eth(1000)
	h, err := in.Hash()
	require.NoError(t, err)
	require.NotEqual(t, wB.Hash, h)
	// A signature by a key that is not alice's.
	stranger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	s := intent.Approval{Withdrawal: idA, Intent: wA.Hash, Approver: "alice", Decision: intent.Approve, Signed: f.clock.Now()}
	s.Sign(stranger)
	_, c = f.post(idA, s)
	require.Equal(t, "bad_signature", c)
	// A reset approval of a trip is no approval of a withdrawal.
	code, out := f.call("POST", "/v1/breaker", opToken, map[string]any{"scope": "asset", "chain": "btc", "asset": "native", "reason": "drill"})
	require.Equal(t, http.StatusCreated, code, out)
	var tr Trip
	b, _ := json.Marshal(out)
	require.NoError(t, json.Unmarshal(b, &tr))
	ra := intent.Approval{Withdrawal: tr.Subject(), Intent: tr.Hash(), Approver: "alice", Decision: intent.Approve, Signed: f.clock.Now()}
	ra.Sign(f.keys["alice"])
	_, c = f.post(idA, ra)
	require.Equal(t, "wrong_intent", c)
	// Nothing counted.
	require.Empty(t, f.get(idA).Approvals)
	require.Empty(t, f.get(idB).Approvals)
	require.Equal(t, StatusPending, f.get(idA).Status)
}

// Breaker: reset approvals of one trip replayed on the next trip of the
// same scope are refused; one approver cannot reset alone; the tripper's
// scope does not let approvals through.
func TestAttackBreakerResetReplay(t *testing.T) {
	f := newFixture(t)
	trip := func() Trip {
		code, out := f.call("POST", "/v1/breaker", opToken, map[string]any{"scope": "all", "reason": "drill"})
		require.Equal(t, http.StatusCreated, code, out)
		var tr Trip
		b, _ := json.Marshal(out)
		require.NoError(t, json.Unmarshal(b, &tr))
		return tr
	}
	resetOf := func(tr Trip, who string) intent.Approval {
		a := intent.Approval{Withdrawal: tr.Subject(), Intent: tr.Hash(), Approver: who, Decision: intent.Approve, Signed: f.clock.Now()}
		a.Sign(f.keys[who])
		return a
	}
	post := func(tr Trip, a intent.Approval) (int, map[string]any) {
		return f.call("POST", "/v1/breaker/"+tr.ID+"/resets", approverToken, a)
	}
	t1 := trip()
	ra, rb := resetOf(t1, "alice"), resetOf(t1, "bob")
	code, out := post(t1, ra)
	require.Equal(t, http.StatusOK, code, out)
	code, out = post(t1, ra)
	require.Equal(t, http.StatusConflict, code, "the same approver twice: %v", out)
	code, out = post(t1, rb)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, true, out["reset"])

	f.clock.Add(time.Second)
	t2 := trip()
	require.NotEqual(t, t1.ID, t2.ID)
	// t1's approvals, sent for t2.
	code, out = post(t2, ra)
	require.Equal(t, http.StatusForbidden, code, out)
	// t1's approvals with t2's id in the path and subject rewritten: the
	// signature fails.
	forged := ra
	forged.Withdrawal, forged.Intent = t2.Subject(), t2.Hash()
	code, out = post(t2, forged)
	require.Equal(t, http.StatusForbidden, code, out)
	// A rejection cannot reset, nor can a disabled approver, nor finance.
	rej := intent.Approval{Withdrawal: t2.Subject(), Intent: t2.Hash(), Approver: "carol", Decision: intent.Reject, Reason: "no", Signed: f.clock.Now()}
	rej.Sign(f.keys["carol"])
	code, _ = post(t2, rej)
	require.NotEqual(t, http.StatusOK, code)
	code, _ = post(t2, resetOf(t2, "mallory"))
	require.Equal(t, http.StatusForbidden, code)
	code, _ = post(t2, resetOf(t2, "dave"))
	require.Equal(t, http.StatusForbidden, code)
	_, out = f.call("GET", "/v1/breaker", opToken, nil)
	require.Len(t, out["trips"], 1, "t2 holds")
	// While it holds, a withdrawal reaching its quorum is held.
	id := f.request("held", eth(1), dst(1))["id"].(string)
	f.approved(id, "alice", "dave")
	require.Equal(t, StatusPaused, f.get(id).Status)
}

// State games: a forged gate-state record (unsigned, or signed by another
// role) and a replayed genuine old record are refused on restore; the
// state after a restart is the state before it.
func TestAttackForgedAndReplayedGateState(t *testing.T) {
	f := newFixture(t)
	id := f.request("st1", eth(10), dst(1))["id"].(string)
	pendingRecord := readGateState(t, f, wPrefix+id) // the record of the pending withdrawal
	require.Len(t, pendingRecord, 1)
	f.approved(id, "alice")
	code, _ := f.post(id, f.sign(f.get(id), "dave", intent.Reject))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, StatusRejected, f.get(id).Status)
	before := f.get(id)

	// The forgery: the same withdrawal, approved.
	forged := before
	forged.Status, forged.Reason, forged.Rejections = StatusApproved, "approved by alice, dave", nil
	fv, err := json.Marshal(&forged)
	require.NoError(t, err)
	topic, key := f.kc.Topics.GateState, wPrefix+id
	produce := func(value string, headers ...string) {
		testkit.Kcat(t, f.kc.Brokers, topic, key, value, false, append([]string{"cordon-type=gate-state"}, headers...)...)
	}
	// Unsigned.
	produce(string(fv))
	// Signed by another role (the API's key).
	apiSigner, ok := f.kc.Auth.Signer(recordauth.API)
	require.True(t, ok)
	produce(string(fv), "cordon-sig="+string(apiSigner.Sign("gate-state", []byte(key), fv)))
	// A genuine signature of the gate, on another value.
	pr := pendingRecord[0]
	sig := ""
	for _, h := range pr.Headers {
		if h.Key == recordauth.Header {
			sig = string(h.Value)
		}
	}
	require.NotEmpty(t, sig)
	produce(string(fv), "cordon-sig="+sig)
	// The genuine pending record, replayed as is.
	produce(string(pr.Value), "cordon-sig="+sig)
	// And an unsigned breaker record.
	testkit.Kcat(t, f.kc.Brokers, topic, breakerKey, `{"trips":[]}`, false, "cordon-type=gate-state")

	var mu sync.Mutex
	var refused []error
	f.kc.Refused = func(r kafka.Refusal) {
		if r.Topic == topic {
			mu.Lock()
			refused = append(refused, r.Err)
			mu.Unlock()
		}
	}
	f.stop()
	f.start()
	mu.Lock()
	require.GreaterOrEqual(t, len(refused), 4, "the restore read and refused the forgeries: %v", refused)
	mu.Unlock()
	after := f.get(id)
	require.Equal(t, before, after, "the restored state is the committed one")
	require.Equal(t, StatusRejected, after.Status)
	code, c := f.post(id, f.sign(after, "bob", intent.Approve))
	require.Equal(t, http.StatusConflict, code)
	require.Equal(t, "closed", c)
}

func readGateState(t *testing.T, f *fixture, key string) []*kafka.Record {
	t.Helper()
	var out []*kafka.Record
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, kafka.ReadLog(ctx, f.kc, f.kc.Topics.GateState, kafka.LogOptions{ClientID: "attack"}, func(r *kafka.Record) error {
		if string(r.Key) == key {
			out = append(out, r)
		}
		return nil
	}))
	return out
}

// assetsWith accepts eth and btc coins and the tokens (6 decimals).
func assetsWith(t *testing.T, tokens ...string) *AssetList {
	t.Helper()
	var p config.Problems
	var as []Asset
	for _, tk := range tokens {
		as = append(as, Asset{Chain: "eth", Network: "mainnet", Contract: tk, Symbol: "TOK", Decimals: 6})
	}
	l := NewAssetList(&p, "gate.assets", []string{"eth/mainnet", "btc/mainnet"}, as)
	require.NoError(t, p.Err())
	return l
}

// mustPrices prices ether at $2,000, published at now (static or not).
func mustPrices(t *testing.T, now time.Time, static bool) *policy.Prices {
	t.Helper()
	ps, err := policy.NewPrices(policy.PricesConfig{Assets: []policy.AssetPrice{
		{Chain: "eth", Asset: "native", Decimals: 18, USD: "2000", Static: static}}}, now)
	require.NoError(t, err)
	return ps
}

// A withdrawal approved and then held by the breaker can still be
// rejected, and the reset does not release a rejected one; an approval
// collected before a rejection does not outweigh it.
func TestAttackRejectWhileHeld(t *testing.T) {
	f := newFixture(t)
	id := f.request("hr", eth(10), dst(1))["id"].(string)
	f.approved(id, "alice", "dave")
	require.Equal(t, StatusApproved, f.get(id).Status)
	code, out := f.call("POST", "/v1/breaker", opToken, map[string]any{"scope": "chain", "chain": "eth", "reason": "drain"})
	require.Equal(t, http.StatusCreated, code, out)
	f.waitStatus(id, StatusPaused)
	code, c := f.post(id, f.sign(f.get(id), "bob", intent.Reject))
	require.Equal(t, http.StatusOK, code, c)
	require.Equal(t, StatusRejected, f.get(id).Status)
	var tr Trip
	b, _ := json.Marshal(out)
	require.NoError(t, json.Unmarshal(b, &tr))
	for _, who := range []string{"alice", "bob"} {
		a := intent.Approval{Withdrawal: tr.Subject(), Intent: tr.Hash(), Approver: who, Decision: intent.Approve, Signed: f.clock.Now()}
		a.Sign(f.keys[who])
		code, out := f.call("POST", "/v1/breaker/"+tr.ID+"/resets", approverToken, a)
		require.Equal(t, http.StatusOK, code, out)
	}
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, StatusRejected, f.get(id).Status, "the reset releases no rejected withdrawal")

	// Cooling: three approvals, then one rejection, rejects.
	id2 := f.request("hr2", eth(600), dst(2))["id"].(string)
	f.approved(id2, "alice", "bob", "dave")
	require.Equal(t, StatusCooling, f.get(id2).Status)
	code, _ = f.post(id2, f.sign(f.get(id2), "erin", intent.Reject))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, StatusRejected, f.get(id2).Status)
	f.clock.Add(3 * time.Hour)
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, StatusRejected, f.get(id2).Status)
}

// Found by the second session's review: a body with a stray '}' or ']'
// after the request was taken (json.Decoder.More is false before one).
func TestRequestTrailingData(t *testing.T) {
	var p config.Problems
	assets := NewAssetList(&p, "gate.assets", []string{"eth/mainnet"}, nil)
	body := `{"id":"t1","account":"a1","chain":"eth","asset":"native","amount":"1","destination":"0x00000000000000000000000000000000000d0001"}`
	_, _, err := DecodeRequest(strings.NewReader(body), assets)
	require.NoError(t, err)
	for _, tail := range []string{"}", "]", "]]]}", "}{", "{}", " 1"} {
		_, _, err := DecodeRequest(strings.NewReader(body+tail), assets)
		require.ErrorIs(t, err, ErrBadRequest, "trailing %q", tail)
	}
}

// Found by the second session's review: a removal's reason carried
// terminal escapes to an operator's `cordon addressbook list`.
func TestRemovalReasonIsText(t *testing.T) {
	c, now := coreAt(t)
	e, err := c.Propose(EntryRequest{Account: "a1", Chain: "eth", Destination: "0x00000000000000000000000000000000000d0001"}, "exchange", now)
	require.NoError(t, err)
	for _, r := range []string{"x\x1b[2K\ractive from 2026-12-01T00:00:00Z", "a\nb", "\xff\xfe"} {
		_, err = c.RemoveEntry(e.ID, RemoveRequest{Reason: r}, "exchange", now)
		require.Error(t, err, "%q", r)
	}
	got, err := c.RemoveEntry(e.ID, RemoveRequest{Reason: "the customer closed the account — per ticket 12"}, "exchange", now)
	require.NoError(t, err)
	require.NotNil(t, got.Removed)
	ch := c.Take()
	require.Len(t, ch.Alerts, 1)
	require.Equal(t, "addressbook_removed", ch.Alerts[0].Type)
}

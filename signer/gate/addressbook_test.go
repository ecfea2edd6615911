package gate

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
)

// A destination in the address book counts only once a quorum approved
// it and the time lock passed; a rule can then let small withdrawals to
// it through without approvals.
func TestAddressBook(t *testing.T) {
	def := policy.DefaultYAML()
	rest := def[bytes.Index(def, []byte("rules:\n"))+len("rules:\n"):]
	src := append([]byte("rules:\n  - name: whitelisted-small\n    when: whitelisted && usd < 5000\n    action: allow\n"+
		"    reason: a small withdrawal to an approved destination\n"), rest...)
	f := newFixtureWith(t, src)
	keys := f.keys

	code, out := f.call("POST", "/v1/addressbook", exchangeToken, map[string]any{"account": "acct-wl", "chain": "eth", "destination": dst(1), "label": "cold storage"})
	require.Equal(t, http.StatusCreated, code, out)
	var e BookEntry
	b, _ := json.Marshal(out)
	require.NoError(t, json.Unmarshal(b, &e))
	withdraw := func(id string) map[string]any {
		code, out := f.call("POST", "/v1/withdrawals", exchangeToken, map[string]any{"id": id, "account": "acct-wl", "chain": "eth",
			"amount": eth(1), "destination": dst(1)})
		require.Equal(t, http.StatusAccepted, code, out)
		return out
	}
	require.Equal(t, "below-1m", withdraw("wl-1")["rule"], "proposed is not whitelisted")

	sign := func(who string, hash string) intent.Approval {
		a := intent.Approval{Withdrawal: e.Subject(), Intent: hash, Approver: who, Decision: intent.Approve, Signed: f.clock.Now()}
		a.Sign(keys[who])
		return a
	}
	post := func(a intent.Approval) (int, map[string]any) {
		return f.call("POST", "/v1/addressbook/"+e.ID+"/approvals", approverToken, a)
	}
	code, out = post(sign("alice", e.Hash()))
	require.Equal(t, http.StatusOK, code, out)
	code, out = post(sign("dave", e.Hash()))
	require.Equal(t, http.StatusForbidden, code, out)
	require.Equal(t, "wrong_group", out["code"])
	other := e
	other.Destination = dst(2)
	code, out = post(sign("bob", other.Hash()))
	require.Equal(t, http.StatusForbidden, code, "an approval of another destination: %v", out)
	require.Equal(t, "wrong_intent", out["code"])
	code, out = post(sign("alice", e.Hash()))
	require.Equal(t, "already_decided", out["code"], code)
	code, out = post(sign("bob", e.Hash()))
	require.Equal(t, http.StatusOK, code, out)
	require.NotNil(t, out["active_at"])
	require.Equal(t, "below-1m", withdraw("wl-2")["rule"], "approved, but inside its time lock")

	f.clock.Add(48*time.Hour - time.Second)
	require.Equal(t, "below-1m", withdraw("wl-3")["rule"], "a second before the time lock ends")
	f.clock.Add(time.Second)
	w := withdraw("wl-4")
	require.Equal(t, "whitelisted-small", w["rule"])
	require.Equal(t, StatusApproved, w["status"])

	// The book survives a restart.
	f.stop()
	f.start()
	require.Equal(t, "whitelisted-small", withdraw("wl-5")["rule"])
	// Another account's withdrawal to the same address is not whitelisted.
	code, out = f.call("POST", "/v1/withdrawals", exchangeToken, map[string]any{"id": "wl-6", "account": "acct-other", "chain": "eth",
		"amount": eth(1), "destination": dst(1)})
	require.Equal(t, http.StatusAccepted, code, out)
	require.Equal(t, "below-1m", out["rule"])

	// A removal needs a reason, takes effect at once, survives a
	// restart, and a removed entry takes no more approvals.
	code, out = f.call("POST", "/v1/addressbook/"+e.ID+"/removal", exchangeToken, map[string]any{"reason": " "})
	require.Equal(t, http.StatusBadRequest, code, out)
	code, out = f.call("POST", "/v1/addressbook/"+e.ID+"/removal", "no-such-token", map[string]any{"reason": "stolen session"})
	require.Equal(t, http.StatusUnauthorized, code, out)
	code, out = f.call("POST", "/v1/addressbook/ab_0000000000000000/removal", exchangeToken, map[string]any{"reason": "x"})
	require.Equal(t, http.StatusNotFound, code, out)
	code, out = f.call("POST", "/v1/addressbook/"+e.ID+"/removal", exchangeToken, map[string]any{"reason": "the customer no longer owns it"})
	require.Equal(t, http.StatusOK, code, out)
	require.NotNil(t, out["removed"])
	require.Equal(t, "below-1m", withdraw("wl-7")["rule"], "removed: no longer whitelisted")
	code, out = post(sign("carol", e.Hash()))
	require.Equal(t, http.StatusConflict, code, out)
	f.stop()
	f.start()
	require.Equal(t, "below-1m", withdraw("wl-8")["rule"], "the removal survives a restart")
}

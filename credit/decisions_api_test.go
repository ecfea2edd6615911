package credit

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/testkit"
)

func TestDecisionsAPI(t *testing.T) {
	const (
		ann    = "ann-token-0123456789"
		bob    = "bob-token-0123456789"
		client = "client-token-0123456789"
	)
	var published []Decision
	fail := false
	ops := []apiauth.Operator{{Name: "ann", Token: config.SecretValue(ann)}, {Name: "bob", Token: config.SecretValue(bob)}}
	auth, err := apiauth.New([]apiauth.Token{{Name: "exchange", Token: config.SecretValue(client), Scopes: []string{"screen", "register", "deposits:read"}}},
		ops, apiauth.Options{})
	require.NoError(t, err)
	dep := "eth/mainnet/0x" + strings.Repeat("ab", 32) + "/native"
	btcDep := "btc/mainnet/" + strings.Repeat("cd", 32) + "/3"
	view := heldView(dep, btcDep)
	h := NewDecisionsHandler(auth, 4096, view, func(_ context.Context, d Decision) error {
		if fail {
			return errors.New("broker down")
		}
		published = append(published, d)
		return nil
	}, func() time.Time { return time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC) })
	do := func(auth, body string) (int, string) { return testkit.PostJSON(h, "/v1/decisions", auth, body) }
	code, body := do(bob, `{"id":"req-1","deposit":"`+dep+`","action":"release","reason":"partner confirmed a false positive"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	require.Len(t, published, 1)
	require.Equal(t, Decision{V: 1, ID: "req-1", Deposit: dep, Action: ActionRelease, Operator: "bob",
		Reason: "partner confirmed a false positive", Time: "2026-11-22T05:00:00Z", Content: view.open[dep].Content}, published[0],
		"the operator is the token's holder; the decision names the content it was made on")
	code, body = do(ann, `{"deposit":"btc/mainnet/`+strings.Repeat("cd", 32)+`/3","action":"reject","reason":"stolen funds"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	require.Len(t, published[1].ID, 32, "an id is made up when none is given")
	require.Equal(t, "ann", published[1].Operator)

	for _, tc := range []struct {
		auth, body string
		code       int
		msg        string
	}{
		{"", `{}`, 401, "bearer token"},
		{"nope-nope-nope-nope", `{}`, 401, "bearer token"},
		{client, `{"deposit":"` + dep + `","action":"release","reason":"x"}`, 403, `lacks the scope decide, which POST /v1/decisions needs: use an operator's token`},
		{ann, `{"deposit":"` + dep + `","action":"approve","reason":"x"}`, 400, `want release or reject`},
		{ann, `{"deposit":"` + dep + `","action":"release","reason":"  "}`, 400, "reason: empty"},
		{ann, `{"deposit":"eth/mainnet/0x12/native","action":"release","reason":"x"}`, 400, "bad transaction hash"},
		{ann, `{"deposit":"btc/mainnet/` + strings.Repeat("cd", 32) + `/native","action":"release","reason":"x"}`, 400, "bad index"},
		{ann, `{"deposit":"doge/mainnet/x/1","action":"release","reason":"x"}`, 400, "want eth or btc"},
		{ann, `{"deposit":"` + dep + `","action":"release","reason":"x","operator":"eve"}`, 400, "unknown field"},
		{ann, `{"id":"a b","deposit":"` + dep + `","action":"release","reason":"x"}`, 400, "decision id"},
		{ann, `{"reason":"` + strings.Repeat("a", 5000) + `"}`, 413, "4096"},
	} {
		code, body := do(tc.auth, tc.body)
		require.Equal(t, tc.code, code, tc.body+" → "+body)
		require.Contains(t, body, tc.msg)
	}
	require.Len(t, published, 2, "nothing refused was published")
	fail = true
	code, body = do(ann, `{"id":"req-9","deposit":"`+dep+`","action":"reject","reason":"x"}`)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "not recorded, retry with the same id")
}

// heldView is a deposits view holding the deposits ids, held.
func heldView(ids ...string) *View {
	v := &View{open: map[string]DepositEvent{}}
	for _, id := range ids {
		ev := DepositEvent{ID: id, Status: StatusHeld, Amount: "100", Reasons: []string{"listed sender"}}
		ev.Content = ContentOf(&ev)
		v.open[id] = ev
	}
	v.ready.Store(true)
	return v
}

// TestDecisionsBoundToContent: a decision names the content of the
// deposit it was made on; one on a deposit that is not held, or that
// changed since the operator looked (content given and different), is
// refused with 409 and not written.
func TestDecisionsBoundToContent(t *testing.T) {
	ops := []apiauth.Operator{{Name: "ann", Token: config.SecretValue("ann-token-0123456789")}}
	auth, err := apiauth.New(nil, ops, apiauth.Options{})
	require.NoError(t, err)
	dep := "eth/mainnet/0x" + strings.Repeat("ab", 32) + "/native"
	other := "eth/mainnet/0x" + strings.Repeat("ef", 32) + "/native"
	view := heldView(dep, other)
	ev := view.open[other]
	ev.Status = StatusPending
	view.open[other] = ev
	var published []Decision
	h := NewDecisionsHandler(auth, 4096, view, func(_ context.Context, d Decision) error { published = append(published, d); return nil }, nil)
	do := func(body string) (int, string) {
		return testkit.PostJSON(h, "/v1/decisions", "ann-token-0123456789", body)
	}
	code, body := do(`{"deposit":"` + dep + `","action":"release","reason":"ok","content":"0123"}`)
	require.Equal(t, http.StatusConflict, code, body)
	require.Contains(t, body, "changed since you saw it")
	code, body = do(`{"deposit":"` + other + `","action":"release","reason":"ok"}`)
	require.Equal(t, http.StatusConflict, code, body)
	require.Contains(t, body, "is pending, not held")
	code, body = do(`{"deposit":"eth/mainnet/0x` + strings.Repeat("11", 32) + `/native","action":"release","reason":"ok"}`)
	require.Equal(t, http.StatusConflict, code, body)
	require.Empty(t, published)
	code, body = do(`{"deposit":"` + dep + `","action":"release","reason":"ok","content":"` + view.open[dep].Content + `"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	require.Equal(t, view.open[dep].Content, published[0].Content)
}

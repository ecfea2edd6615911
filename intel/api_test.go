package intel

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/testkit"
)

func TestScreenAPI(t *testing.T) {
	st := &Store{Index: NewIndex()}
	flagged := ind("ofac", ethAddr(9), CategorySanctions)
	st.Index.Put(flagged)
	st.Index.Put(ind("partner-x", ethAddr(9), CategoryHack))
	const token = "0123456789abcdef0123"
	auth, err := apiauth.New([]apiauth.Token{{Name: "exchange", Token: config.SecretValue(token), Scopes: []string{"screen", "screen:details"}},
		{Name: "ledger", Token: config.SecretValue("ledger-token-0123456789"), Scopes: []string{"deposits:read"}}}, nil, apiauth.Options{})
	require.NoError(t, err)
	h := NewScreenHandler(APIConfig{MaxBodyBytes: 2048, MaxBatch: 3}, auth, st, nil)
	do := func(method, auth, ctype, body string) (int, string) {
		req := httptest.NewRequest(method, "/v1/screen", strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	ok := `{"addresses":[{"chain":"eth","address":"` + strings.ToUpper(ethAddr(9)[2:]) + `"}]}`
	code, body := do("POST", "Bearer "+token, "application/json", ok)
	require.Equal(t, http.StatusServiceUnavailable, code, "not loaded yet: %s", body)
	st.ready.Store(true)

	code, body = do("POST", "Bearer "+token, "application/json; charset=utf-8",
		`{"addresses":[{"chain":"eth","address":"`+ethAddr(9)+`"},{"chain":"eth","address":"`+ethAddr(10)+`"},{"chain":"btc","address":"nope"}]}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"verdict":"flagged","category":"sanctions","confidence":80`, "the strongest category")
	require.Contains(t, body, `"source":"partner-x"`)
	require.Contains(t, body, `"verdict":"clean"`)
	require.Contains(t, body, `"verdict":"invalid"`)

	for _, tc := range []struct {
		method, auth, ctype, body string
		code                      int
		msg                       string
	}{
		{"POST", "", "application/json", ok, 401, "bearer token"},
		{"POST", "Bearer wrong-token-000000000", "application/json", ok, 401, "bearer token"},
		{"POST", "Basic " + token, "application/json", ok, 401, "bearer token"},
		{"POST", "Bearer ledger-token-0123456789", "application/json", ok, 403, `"missing_scope":"screen"`},
		{"GET", "Bearer " + token, "", "", 405, "POST"},
		{"POST", "Bearer " + token, "text/plain", ok, 415, "application/json"},
		{"POST", "Bearer " + token, "application/json", `{"addresses":[`, 400, "body"},
		{"POST", "Bearer " + token, "application/json", `{"addresses":[],"x":1}`, 400, "unknown field"},
		{"POST", "Bearer " + token, "application/json", `{"addresses":[]}`, 400, "empty"},
		{"POST", "Bearer " + token, "application/json", `{"addresses":[]} {}`, 400, "one JSON object"},
		{"POST", "Bearer " + token, "application/json", `{"addresses":[{},{},{},{}]}`, 413, "at most 3"},
		{"POST", "Bearer " + token, "application/json", `{"addresses":[{"address":"` + strings.Repeat("a", 3000) + `"}]}`, 413, "2048"},
	} {
		code, body := do(tc.method, tc.auth, tc.ctype, tc.body)
		require.Equal(t, tc.code, code, "%+v: %s", tc, body)
		require.Contains(t, body, tc.msg)
		require.Contains(t, body, `"error"`)
	}
	v := Screen(st.Index, chain.ETH, "mainnet", ethAddr(9), time.Now())
	require.Len(t, v.Matches, 2)
}

// TestScreenWithholdsRestricted: an integration token screening an
// address listed under TLP:AMBER learns that it is flagged and why (the
// category), not by whom nor which indicator; TLP:CLEAR and GREEN
// matches, and everything for operators and screen:details tokens, are
// shown in full.
func TestScreenWithholdsRestricted(t *testing.T) {
	st := &Store{Index: NewIndex()}
	amber := Indicator{Kind: KindAddress, Chain: chain.ETH, Value: ethAddr(7), Category: CategoryHack, Source: "partner-x", Feed: "partner-x",
		Confidence: 90, TLP: TLPAmber, ValidFrom: time.Unix(1_600_000_000, 0), Description: "wallet of the X heist, shared under TLP:AMBER"}
	red := amber
	red.Source, red.Feed, red.TLP, red.Category = "partner-y", "partner-y", TLPRed, CategoryScam
	green := amber
	green.Source, green.Feed, green.TLP, green.Category, green.Confidence = "community", "community", TLPGreen, CategoryScam, 40
	for _, in := range []*Indicator{&amber, &red, &green} {
		require.NoError(t, in.Validate())
		st.Index.Put(in)
	}
	st.ready.Store(true)
	const integration, details, ann = "integration-token-0123", "compliance-token-0123", "ann-operator-token-0123"
	auth, err := apiauth.New([]apiauth.Token{{Name: "exchange", Token: config.SecretValue(integration), Scopes: []string{"screen"}},
		{Name: "compliance", Token: config.SecretValue(details), Scopes: []string{"screen", "screen:details"}}},
		[]apiauth.Operator{{Name: "ann", Token: config.SecretValue(ann)}}, apiauth.Options{})
	require.NoError(t, err)
	h := NewScreenHandler(APIConfig{}, auth, st, nil)
	screen := func(token string) ScreenResult {
		code, body := testkit.PostJSON(h, Endpoint, token, `{"addresses":[{"chain":"eth","address":"`+ethAddr(7)+`"}]}`)
		require.Equal(t, http.StatusOK, code, body)
		var resp ScreenResponse
		require.NoError(t, json.Unmarshal([]byte(body), &resp))
		require.Len(t, resp.Results, 1)
		if token == integration {
			for _, secret := range []string{amber.ID, red.ID, "partner-x", "partner-y", "heist"} {
				require.NotContains(t, body, secret)
			}
		}
		return resp.Results[0]
	}
	r := screen(integration)
	require.Equal(t, "flagged", r.Verdict.Verdict)
	require.Equal(t, CategoryHack, r.Category, "the verdict counts the withheld matches")
	require.Len(t, r.Matches, 1)
	require.Equal(t, "community", r.Matches[0].Source, "TLP:GREEN is shown")
	require.ElementsMatch(t, []Withheld{{Category: CategoryHack, TLP: TLPAmber}, {Category: CategoryScam, TLP: TLPRed}}, r.Withheld)
	for _, token := range []string{details, ann} {
		r := screen(token)
		require.Empty(t, r.Withheld)
		require.Len(t, r.Matches, 3)
		var sources []string
		for _, m := range r.Matches {
			sources = append(sources, m.Source)
		}
		require.ElementsMatch(t, []string{"partner-x", "partner-y", "community"}, sources)
	}
}

package intel

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
)

func TestScreenAPI(t *testing.T) {
	st := &Store{Index: NewIndex()}
	flagged := ind("ofac", ethAddr(9), CategorySanctions)
	st.Index.Put(flagged)
	st.Index.Put(ind("partner-x", ethAddr(9), CategoryHack))
	const token = "0123456789abcdef0123"
	h := NewScreenHandler(APIConfig{Tokens: []config.Secret{config.SecretValue(token)}, MaxBodyBytes: 2048, MaxBatch: 3}, st, nil)
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

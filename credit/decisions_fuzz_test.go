package credit

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/config"
)

// FuzzDecisionsAPI: any body from an operator gets 202 with a decision
// that validates, or a 4xx naming the problem; never a panic or a 5xx.
// Whatever is accepted is what a service reading the topic accepts.
func FuzzDecisionsAPI(f *testing.F) {
	dep := "eth/mainnet/0x" + strings.Repeat("ab", 32) + "/native"
	for _, s := range []string{
		`{"deposit":"` + dep + `","action":"release","reason":"ok"}`,
		`{"id":"x","deposit":"btc/regtest/` + strings.Repeat("cd", 32) + `/4","action":"reject","reason":"r"}`,
		`{"deposit":"eth/mainnet/0x/native","action":"release","reason":"r"}`,
		`{"deposit":"` + dep + `","action":"release","reason":"\u0000"}`,
		`[]`, `{"deposit":1}`, `{} {}`, ``,
	} {
		f.Add(s)
	}
	var got []Decision
	auth, err := apiauth.New(nil, []apiauth.Operator{{Name: "op", Token: config.SecretValue("op-token-0123456789")}}, apiauth.Options{})
	if err != nil {
		f.Fatal(err)
	}
	h := NewDecisionsHandler(auth, 4096, heldView(dep), func(_ context.Context, d Decision) error {
		got = append(got, d)
		return nil
	}, time.Now)
	f.Fuzz(func(t *testing.T, body string) {
		got = got[:0]
		req := httptest.NewRequest(http.MethodPost, "/v1/decisions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer op-token-0123456789")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusAccepted:
			if len(got) != 1 {
				t.Fatalf("202 but %d decisions published", len(got))
			}
			// What the service reads back from the topic validates too.
			raw, _ := json.Marshal(&got[0])
			var back Decision
			if err := json.Unmarshal(raw, &back); err != nil || back.Validate() != nil || back != got[0] {
				t.Fatalf("published %+v does not read back valid: %v", got[0], back.Validate())
			}
		case rec.Code >= 400 && rec.Code < 500:
			if len(got) != 0 || !strings.Contains(rec.Body.String(), `"error"`) {
				t.Fatalf("%d with %d published: %s", rec.Code, len(got), rec.Body.String())
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}

// FuzzDecisionRecord: records read from the decisions topic (anything a
// hostile writer could put there) never panic the service's reader, and
// a valid one names a well-formed deposit id.
func FuzzDecisionRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"a","deposit":"eth/mainnet/0x` + strings.Repeat("ab", 32) + `/7","action":"release","operator":"o","reason":"r"}`))
	f.Add([]byte(`{"deposit":"btc/x/y/z"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var d Decision
		if json.Unmarshal(raw, &d) != nil || d.Validate() != nil {
			return
		}
		if err := ValidDepositID(d.Deposit); err != nil {
			t.Fatalf("valid decision with a bad deposit id: %v", err)
		}
		if len(strings.Split(d.Deposit, "/")) != 4 {
			t.Fatalf("deposit id %q", d.Deposit)
		}
	})
}

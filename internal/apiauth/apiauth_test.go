package apiauth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
)

type alerts struct {
	got  []chain.Alert
	fail bool
}

func (a *alerts) Alert(_ context.Context, al chain.Alert) error {
	if a.fail {
		return errors.New("broker down")
	}
	a.got = append(a.got, al)
	return nil
}

func request(token string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/screen", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// TestRequire: unknown tokens get 401, known ones without the scope 403
// naming it; each refusal is counted by endpoint and reason, logged with
// the holder's name (never the token) and, for known holders, alerted at
// most once a minute per holder, endpoint and reason.
func TestRequire(t *testing.T) {
	const ledger, ann = "ledger-token-0123456789", "ann-operator-token-0123"
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	al := &alerts{}
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	a, err := New([]Token{{Name: "ledger", Token: config.SecretValue(ledger), Scopes: []string{"deposits:read", "withdraw"}}},
		[]Operator{{Name: "ann", Token: config.SecretValue(ann)}},
		Options{Registerer: reg, Log: slog.New(slog.NewTextHandler(&logs, nil)), Alerter: al, Now: func() time.Time { return now }})
	require.NoError(t, err)

	who, code := a.Require(httptest.NewRecorder(), request(ledger), "/v1/deposits", DepositsRead)
	require.Zero(t, code)
	require.Equal(t, Principal{Name: "ledger", scopes: []Scope{DepositsRead, Withdraw}}, who)
	who, code = a.Require(httptest.NewRecorder(), request(ann), "/v1/decisions", Decide)
	require.Zero(t, code)
	require.True(t, who.Operator)
	require.Equal(t, "ann", who.Name)
	for _, s := range OperatorScopes {
		require.True(t, who.Has(s), s)
	}
	require.False(t, who.Has(Withdraw), "reserved scopes are not operators'")

	for _, tc := range []struct {
		name, token string
		scope       Scope
		code        int
		body        string
		reason      string
	}{
		{"no token", "", Screen, 401, "missing or unknown bearer token", ReasonNoToken},
		{"unknown token", "ledger-token-0123456780", Screen, 401, "missing or unknown bearer token", ReasonUnknownToken},
		{"a prefix of a token", ledger[:16], Screen, 401, "missing or unknown bearer token", ReasonUnknownToken},
		{"missing scope", ledger, Screen, 403, `the token \"ledger\" lacks the scope screen, which POST /v1/screen needs`, ReasonMissingScope},
		{"operator's scope", ledger, Decide, 403, `use an operator's token (api.operators)`, ReasonMissingScope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			_, code := a.Require(rec, request(tc.token), "/v1/screen", tc.scope)
			require.Equal(t, tc.code, code)
			require.Equal(t, tc.code, rec.Code)
			require.Contains(t, rec.Body.String(), tc.body)
			if tc.code == 401 {
				require.Equal(t, `Bearer realm="cordon"`, rec.Header().Get("WWW-Authenticate"))
			} else {
				require.Contains(t, rec.Body.String(), `"missing_scope":"`+string(tc.scope)+`"`)
			}
		})
	}
	require.InDelta(t, 1, testutil.ToFloat64(a.denied.WithLabelValues("/v1/screen", ReasonNoToken)), 0)
	require.InDelta(t, 2, testutil.ToFloat64(a.denied.WithLabelValues("/v1/screen", ReasonUnknownToken)), 0)
	require.InDelta(t, 2, testutil.ToFloat64(a.denied.WithLabelValues("/v1/screen", ReasonMissingScope)), 0)
	require.Contains(t, logs.String(), "token=ledger")
	require.NotContains(t, logs.String(), ledger[:16], "the token is never logged")

	require.Len(t, al.got, 1, "one alert a minute per holder, endpoint and reason")
	require.Equal(t, "api_refused", al.got[0].Type)
	require.Equal(t, "high", al.got[0].Severity)
	require.Equal(t, "ledger", al.got[0].Details["token"])
	require.Equal(t, "screen", al.got[0].Details["scope"])
	require.Contains(t, al.got[0].Message, `token "ledger"`)

	now = now.Add(time.Minute)
	a.Require(httptest.NewRecorder(), request(ledger), "/v1/screen", Screen)
	require.Len(t, al.got, 2, "a minute later, another")
	a.Refuse(context.Background(), "/v1/addresses", ReasonNeedsOperator, Principal{Name: "ledger"}, "", "x", nil)
	require.Len(t, al.got, 3, "another endpoint or reason, another")

	al.fail = true
	now = now.Add(time.Minute)
	rec := httptest.NewRecorder()
	_, code = a.Require(rec, request(ledger), "/v1/screen", Screen)
	require.Equal(t, http.StatusForbidden, code, "refused whether or not the alert was written")
	require.Contains(t, logs.String(), "writing the alert of a refused request failed")
}

func TestNewRefusesWhatValidateRefuses(t *testing.T) {
	_, err := New([]Token{{Name: "x", Token: config.SecretValue("0123456789abcdef"), Scopes: []string{"decide"}}}, nil, Options{})
	require.ErrorContains(t, err, `scope "decide" may not be given to a token`)
	_, err = New([]Token{{bare: true}}, nil, Options{})
	require.ErrorContains(t, err, "api.tokens[0]: a bare token string")
}

// TestValidate: every problem names its key; the old plain-string form
// is refused with how to migrate, never read as a token with every scope.
func TestValidate(t *testing.T) {
	var file struct {
		Tokens    []Token    `yaml:"tokens"`
		Operators []Operator `yaml:"operators"`
	}
	dec := yaml.NewDecoder(strings.NewReader(`
tokens:
  - "env:CORDON_API_TOKEN"
  - {name: exchange, token: "0123456789abcdef", scopes: [screen, register]}
  - {name: exchange, token: "0123456789abcdef", scopes: [screen, approve, nope, decide, register:reassign, screen]}
  - {name: "bad name", token: short, scopes: []}
operators:
  - {name: ann, token: "ann-token-0123456789"}
  - {name: ann, token: "ann-token-0123456789"}
`))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&file))
	require.NoError(t, config.ResolveSecrets(&file), "the bare string is not resolved: CORDON_API_TOKEN is not set")
	require.True(t, file.Tokens[0].bare)
	var p config.Problems
	Validate(&p, "api", file.Tokens, file.Operators)
	err := p.Err()
	require.Error(t, err)
	for _, want := range []string{
		"api.tokens[0]: a bare token string is no longer accepted (it would hold every scope): write {name: NAME, token: \"env:VAR\", scopes: [screen, screen:details, register, deposits:read, withdraw, approve, breaker, prices, share]}",
		`api.tokens[2].name: "exchange" is also api.tokens[1]'s name`,
		"api.tokens[2].token: used twice",
		`api.tokens[2].scopes[2]: "nope": want one of screen, screen:details, register, deposits:read, withdraw, approve`,
		`api.tokens[2].scopes[3]: "decide" is an operator's scope: add the person under api.operators`,
		`api.tokens[2].scopes[4]: "register:reassign" is an operator's scope`,
		`api.tokens[2].scopes[5]: "screen" is listed twice`,
		`api.tokens[3].name: "bad name": want 1 to 64 letters`,
		"api.tokens[3].token: shorter than 16 characters",
		"api.tokens[3].scopes: empty",
		`api.operators[1].name: "ann" is also api.operators[0]'s name`,
		"api.operators[1].token: used twice",
	} {
		require.ErrorContains(t, err, want)
	}
	require.Len(t, strings.Split(err.Error(), "\n"), 12, err.Error())
	require.NotContains(t, err.Error(), "approve\"", "reserved scopes are accepted")
}

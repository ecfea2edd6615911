package apiauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/internal/chain"
)

// Principal is the holder of an accepted token: an integration (api.tokens)
// or an operator (api.operators), with its scopes.
type Principal struct {
	// Name is the token's or the operator's name.
	Name string
	// Operator is set for the named people of api.operators.
	Operator bool
	scopes   []Scope
}

// Has tells whether p holds scope s.
func (p Principal) Has(s Scope) bool { return slices.Contains(p.scopes, s) }

// Role is "operator" or "token", for logs and alerts.
func (p Principal) Role() string {
	if p.Operator {
		return "operator"
	}
	return "token"
}

// Alerter writes an alert to the alerts topic (the Kafka producer).
type Alerter interface {
	Alert(ctx context.Context, a chain.Alert) error
}

// Options are Auth's dependencies, each optional.
type Options struct {
	// Registerer gets cordon_api_denied_total (nil: unregistered).
	Registerer prometheus.Registerer
	// Log gets a line per denied request (nil: discarded).
	Log *slog.Logger
	// Alerter gets an alert when a known token is used beyond its scopes
	// (nil: none), at most one a minute per token, endpoint and reason.
	Alerter Alerter
	// Now is the clock of the alerts (nil: time.Now).
	Now func() time.Time
}

// Auth checks the API's bearer tokens and their scopes, and reports
// refusals: counted, logged with the holder's name (never the token) and,
// for known tokens, alerted.
type Auth struct {
	ids    []identity
	denied *prometheus.CounterVec
	log    *slog.Logger
	alert  Alerter
	now    func() time.Time

	mu      sync.Mutex
	alerted map[string]time.Time
}

type identity struct {
	sum [32]byte
	who Principal
}

// Denial reasons, the reason label of cordon_api_denied_total.
const (
	ReasonNoToken       = "no_token"
	ReasonUnknownToken  = "unknown_token"
	ReasonMissingScope  = "missing_scope"
	ReasonNeedsOperator = "needs_operator"
)

// alertEvery bounds the alerts of one token, endpoint and reason.
const alertEvery = time.Minute

// New returns the Auth of tokens and operators (validated by Validate).
func New(tokens []Token, operators []Operator, o Options) (*Auth, error) {
	a := &Auth{log: o.Log, alert: o.Alerter, now: o.Now, alerted: map[string]time.Time{},
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_api_denied_total",
			Help: "API requests refused: no or unknown token, a scope the token lacks, or a change only an operator may make."},
			[]string{"endpoint", "reason"})}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	for i, t := range tokens {
		if t.bare {
			return nil, fmt.Errorf("api.tokens[%d]: a bare token string has no name or scopes", i)
		}
		who := Principal{Name: t.Name}
		for _, s := range t.Scopes {
			if !slices.Contains(TokenScopes, Scope(s)) {
				return nil, fmt.Errorf("api.tokens[%d] (%s): scope %q may not be given to a token", i, t.Name, s)
			}
			who.scopes = append(who.scopes, Scope(s))
		}
		a.ids = append(a.ids, identity{sum: sha256.Sum256([]byte(t.Token.Value())), who: who})
	}
	for _, op := range operators {
		a.ids = append(a.ids, identity{sum: sha256.Sum256([]byte(op.Token.Value())),
			who: Principal{Name: op.Name, Operator: true, scopes: OperatorScopes}})
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(a.denied); err != nil {
			return nil, fmt.Errorf("register cordon_api_denied_total: %w", err)
		}
	}
	return a, nil
}

// Authenticate returns the holder of r's "Authorization: Bearer" token.
// Every accepted token is compared, in constant time over the hashes, so
// neither the match nor the lengths leak through timing.
func (a *Auth) Authenticate(r *http.Request) (Principal, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return Principal{}, false
	}
	sum := sha256.Sum256([]byte(tok))
	found := -1
	for i := range a.ids {
		if subtle.ConstantTimeCompare(sum[:], a.ids[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Principal{}, false
	}
	return a.ids[found].who, true
}

// Require authenticates r and checks that its holder has scope, and
// returns the holder and 0. When not, it answers — 401 for no or an
// unknown token, 403 naming the missing scope — counts, logs, alerts (403)
// and returns the status code, as ReadJSON does. endpoint is the route
// ("/v1/screen"), a bounded metric label.
func (a *Auth) Require(w http.ResponseWriter, r *http.Request, endpoint string, scope Scope) (Principal, int) {
	who, ok := a.Authenticate(r)
	if !ok {
		reason := ReasonUnknownToken
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			reason = ReasonNoToken
		}
		a.denied.WithLabelValues(endpoint, reason).Inc()
		a.log.Info("api: request without an accepted token", "endpoint", endpoint, "reason", reason, "remote", r.RemoteAddr)
		Deny(w)
		return Principal{}, http.StatusUnauthorized
	}
	if who.Has(scope) {
		return who, 0
	}
	a.Refuse(r.Context(), endpoint, ReasonMissingScope, who, r.RemoteAddr, fmt.Sprintf("%s %s without the scope %s", r.Method, endpoint, scope),
		map[string]string{"scope": string(scope)})
	msg := fmt.Sprintf("the token %q lacks the scope %s, which %s %s needs", who.Name, scope, r.Method, endpoint)
	if slices.Contains(operatorOnly, scope) {
		msg += ": use an operator's token (api.operators)"
	}
	return Principal{}, WriteJSON(w, http.StatusForbidden, map[string]string{"error": msg, "missing_scope": string(scope)})
}

// Refuse records a refusal of a known holder's request (a missing scope,
// or a change a handler keeps for operators, reason ReasonNeedsOperator):
// counted, logged with the holder's name, and alerted (high) at most once
// a minute per holder, endpoint and reason. what says what was tried;
// details are added to the alert's. The caller answers the request.
func (a *Auth) Refuse(ctx context.Context, endpoint, reason string, who Principal, remote, what string, details map[string]string) {
	a.denied.WithLabelValues(endpoint, reason).Inc()
	a.log.Warn("api: request refused", "endpoint", endpoint, "reason", reason, "token", who.Name, "role", who.Role(), "remote", remote,
		"tried", what)
	if a.alert == nil {
		return
	}
	now := a.now()
	key := who.Name + "\x00" + endpoint + "\x00" + reason
	a.mu.Lock()
	last, seen := a.alerted[key]
	if seen && now.Sub(last) < alertEvery {
		a.mu.Unlock()
		return
	}
	a.alerted[key] = now
	a.mu.Unlock()
	d := map[string]string{"token": who.Name, "role": who.Role(), "endpoint": endpoint, "reason": reason, "remote": remote}
	for k, v := range details {
		d[k] = v
	}
	al := chain.Alert{V: chain.SchemaVersion, ID: fmt.Sprintf("api_refused/%s/%s/%s/%d", who.Name, endpoint, reason, now.UnixNano()),
		Type: "api_refused", Severity: "high", Time: now.UTC(), Details: d,
		Message: fmt.Sprintf("API %s refused (%s): %s, by %s %q — a token used beyond its job may be stolen", endpoint, reason, what, who.Role(), who.Name)}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := a.alert.Alert(actx, al); err != nil {
		a.log.Error("api: writing the alert of a refused request failed", "endpoint", endpoint, "token", who.Name, "err", err)
	}
}

// Deny answers 401 with the challenge header.
func Deny(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="cordon"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"error":"missing or unknown bearer token"}` + "\n"))
}

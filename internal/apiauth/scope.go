package apiauth

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cordonhq/cordon/internal/config"
)

// Scope names one thing a bearer token may do. A token holds only the
// scopes it is configured with; operators hold OperatorScopes.
type Scope string

// The scopes. docs/security/tokens.md says who should hold which.
const (
	// Screen is POST /v1/screen.
	Screen Scope = "screen"
	// ScreenDetails shows the matches of TLP:AMBER and TLP:RED indicators
	// (id, source, confidence, validity) in screening replies; without it
	// they are withheld: the verdict and the category only.
	ScreenDetails Scope = "screen:details"
	// Register is POST /v1/addresses for new addresses and identical
	// re-sends of registered ones.
	Register Scope = "register"
	// RegisterReassign also changes the account, kind or asset of a
	// registered address, or removes it. Operators only.
	RegisterReassign Scope = "register:reassign"
	// DepositsRead is GET /v1/deposits.
	DepositsRead Scope = "deposits:read"
	// Decide is POST /v1/decisions (release, reject). Operators only:
	// a decision names the person who made it.
	Decide Scope = "decide"
	// Withdraw is POST /v1/withdrawals (and its dry run) and reading
	// withdrawals: the exchange's withdrawal service.
	Withdraw Scope = "withdraw"
	// Approve is posting approvers' signed approvals (of withdrawals and
	// of breaker resets) and reading withdrawals. The signature, not the
	// token, is what counts: the token only carries it.
	Approve Scope = "approve"
	// Prices is POST /v1/prices: the exchange's price feed, which sets
	// the gate's dollar tiers.
	Prices Scope = "prices"
	// Breaker trips the circuit breaker (POST /v1/breaker): operators,
	// and the detection system's token.
	Breaker Scope = "breaker"
	// Share publishes and revokes our listings to partner exchanges and
	// reads each partner's sync figures (/v1/share/…): operators, and
	// the incident-response system's token.
	Share Scope = "share"
)

// TokenScopes are the scopes api.tokens may hold.
var TokenScopes = []Scope{Screen, ScreenDetails, Register, DepositsRead, Withdraw, Approve, Breaker, Prices, Share}

// OperatorScopes are what every operator holds: deciding and changing
// registered addresses (the acts a person answers for) and every read.
var OperatorScopes = []Scope{Decide, RegisterReassign, Register, DepositsRead, Screen, ScreenDetails, Breaker, Approve, Share}

// operatorOnly are the scopes api.tokens may not hold.
var operatorOnly = []Scope{Decide, RegisterReassign}

// Token is one integration's bearer token: the config file's api.tokens
// entries, {name, token, scopes}. Its name is what logs, metrics and
// alerts show; the token itself is never shown.
type Token struct {
	Name   string        `yaml:"name"`
	Token  config.Secret `yaml:"token"`
	Scopes []string      `yaml:"scopes"`
	// bare is set when the file gave a plain string, the form before
	// scopes: refused by Validate, never granted anything.
	bare bool
}

// UnmarshalYAML reads {name, token, scopes}, and notes a plain string
// (the old form) so that Validate can say how to migrate it.
func (t *Token) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if unmarshal(&s) == nil {
		*t = Token{bare: true}
		return nil
	}
	type plain Token
	return unmarshal((*plain)(t))
}

// Operator is a named person: the config file's api.operators entries.
// Operators hold OperatorScopes; their names are recorded with what they
// do (decisions, reassigned addresses).
type Operator struct {
	Name  string        `yaml:"name"`
	Token config.Secret `yaml:"token"`
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// MinTokenLength is the shortest accepted token.
const MinTokenLength = 16

// Validate checks api.tokens and api.operators (key is "api"), adding a
// problem naming the key for each: names well formed and unique across
// tokens and operators, tokens long enough and each used once, every
// token with known scopes that are not operators' only.
func Validate(p *config.Problems, key string, tokens []Token, operators []Operator) {
	names, values := map[string]string{}, map[string]bool{}
	name := func(k, n string) {
		switch {
		case n == "":
			p.Add(k+".name", "required: it names the token's holder in logs and alerts")
		case !nameRe.MatchString(n):
			p.Add(k+".name", "%q: want 1 to 64 letters, digits, '.', '_', '-' or '@'", n)
		case names[n] != "":
			p.Add(k+".name", "%q is also %s's name: names must be unique across api.tokens and api.operators", n, names[n])
		default:
			names[n] = k
		}
	}
	secret := func(k string, s config.Secret) {
		switch v := s.Value(); {
		case len(v) < MinTokenLength:
			p.Add(k+".token", "shorter than %d characters", MinTokenLength)
		case values[v]:
			p.Add(k+".token", "used twice (by another token or operator): each holder needs a token of their own")
		default:
			values[v] = true
		}
	}
	for i, t := range tokens {
		k := fmt.Sprintf("%s.tokens[%d]", key, i)
		if t.bare {
			p.Add(k, "a bare token string is no longer accepted (it would hold every scope): write {name: NAME, token: \"env:VAR\", scopes: [%s]} "+
				"with the scopes of the system that holds it (docs/security/tokens.md)", joinScopes(TokenScopes))
			continue
		}
		name(k, t.Name)
		secret(k, t.Token)
		if len(t.Scopes) == 0 {
			p.Add(k+".scopes", "empty: give the token the scopes of its job, some of %s", joinScopes(TokenScopes))
		}
		seen := map[string]bool{}
		for j, s := range t.Scopes {
			sk := fmt.Sprintf("%s.scopes[%d]", k, j)
			switch {
			case slices.Contains(operatorOnly, Scope(s)):
				p.Add(sk, "%q is an operator's scope: add the person under %s.operators (what they do is recorded under their name)", s, key)
			case !slices.Contains(TokenScopes, Scope(s)):
				p.Add(sk, "%q: want one of %s", s, joinScopes(TokenScopes))
			case seen[s]:
				p.Add(sk, "%q is listed twice", s)
			}
			seen[s] = true
		}
	}
	for i, o := range operators {
		k := fmt.Sprintf("%s.operators[%d]", key, i)
		name(k, o.Name)
		secret(k, o.Token)
	}
}

func joinScopes(s []Scope) string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = string(s[i])
	}
	return strings.Join(out, ", ")
}

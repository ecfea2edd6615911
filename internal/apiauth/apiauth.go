package apiauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/cordonhq/cordon/internal/config"
)

// Tokens are the accepted bearer tokens, kept as hashes.
type Tokens struct{ sums [][32]byte }

// New returns the accepted tokens (the config file's api.tokens; code
// uses config.SecretValue).
func New(tokens []config.Secret) *Tokens {
	t := &Tokens{}
	for _, tok := range tokens {
		t.sums = append(t.sums, sha256.Sum256([]byte(tok.Value())))
	}
	return t
}

// Operator is a named person allowed to decide on held deposits; the
// config file's api.operators entries decode into it.
type Operator struct {
	Name  string        `yaml:"name"`
	Token config.Secret `yaml:"token"`
}

// OperatorTokens returns the tokens of ops.
func OperatorTokens(ops []Operator) []config.Secret {
	out := make([]config.Secret, len(ops))
	for i, o := range ops {
		out[i] = o.Token
	}
	return out
}

// OK tells whether r carries "Authorization: Bearer <token>" with an
// accepted token. Every accepted token is compared, in constant time over
// the hashes, so neither the match nor the lengths leak through timing.
func (t *Tokens) OK(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	match := 0
	for _, s := range t.sums {
		match |= subtle.ConstantTimeCompare(sum[:], s[:])
	}
	return match == 1
}

// Named are tokens that name who holds them (operators).
type Named struct {
	names []string
	sums  [][32]byte
}

// NewNamed returns the tokens of ops, each naming its operator.
func NewNamed(ops []Operator) *Named {
	n := &Named{}
	for _, o := range ops {
		n.names = append(n.names, o.Name)
		n.sums = append(n.sums, sha256.Sum256([]byte(o.Token.Value())))
	}
	return n
}

// Who returns the name of the holder of r's bearer token, compared as in
// Tokens.OK: every token, in constant time over the hashes.
func (n *Named) Who(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(tok))
	found := -1
	for i, s := range n.sums {
		if subtle.ConstantTimeCompare(sum[:], s[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return n.names[found], true
}

// Deny answers 401 with the challenge header.
func Deny(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="cordon"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"error":"missing or unknown bearer token"}` + "\n"))
}

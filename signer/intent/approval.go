package intent

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/jcs"
)

// Decisions an approver signs.
const (
	Approve = "approve"
	Reject  = "reject"
)

// Approval is one approver's signed decision on one intent. The
// signature covers SignedBytes: the withdrawal id, the intent's hash,
// the approver, the decision, the reason and the signing time, so an
// approval of one intent is none of another, and a rejection cannot be
// turned into an approval.
type Approval struct {
	Withdrawal string `json:"withdrawal"`
	// Intent is the hex SHA-256 of the intent's canonical bytes, which the
	// approver's own tool computed from the intent it showed.
	Intent    string    `json:"intent"`
	Approver  string    `json:"approver"`
	Decision  string    `json:"decision"`
	Reason    string    `json:"reason,omitempty"`
	Signed    time.Time `json:"signed"`
	Signature string    `json:"signature"`
}

// MaxApprovalBytes bounds an approval as a request body.
const MaxApprovalBytes = 4096

// MaxReason bounds a reason.
const MaxReason = 500

// SignedBytes are what the approver signs: RFC 8785 JSON of every field
// but the signature, with the format's name.
func (a *Approval) SignedBytes() []byte {
	// The members in increasing order of their names (RFC 8785's order).
	b, _ := jcs.Members( //nolint:errcheck // its names are fixed, ASCII and in order: it always canonicalizes
		"approver", a.Approver, "decision", a.Decision, "intent", a.Intent, "reason", a.Reason,
		"signed", a.Signed.UTC().Format(time.RFC3339Nano), "v", "cordon-approval/v1", "withdrawal", a.Withdrawal,
	)
	return b
}

// Sign fills in the signature with key.
func (a *Approval) Sign(key ed25519.PrivateKey) {
	a.Signed = a.Signed.UTC()
	a.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, a.SignedBytes()))
}

// Errors of Verify; each is wrapped with what was found.
var (
	ErrMalformed       = errors.New("malformed approval")
	ErrUnknownApprover = errors.New("unknown approver")
	ErrDisabled        = errors.New("approver disabled")
	ErrWrongIntent     = errors.New("approval of another intent")
	ErrBadSignature    = errors.New("bad approval signature")
)

var hashRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Check verifies a's form alone: a known decision, a hash, a reason
// within bounds, a signature of the right size.
func (a *Approval) Check() error {
	switch {
	case a.Decision != Approve && a.Decision != Reject:
		return fmt.Errorf("%w: decision %q: want approve or reject", ErrMalformed, a.Decision)
	case !hashRe.MatchString(a.Intent):
		return fmt.Errorf("%w: intent %q: want the 64 hex digits of the intent's SHA-256", ErrMalformed, trunc(a.Intent))
	case !nameRe.MatchString(a.Approver):
		return fmt.Errorf("%w: approver %q: want 1 to 64 letters, digits, '.', '_', '-' or '@'", ErrMalformed, trunc(a.Approver))
	case a.Withdrawal == "" || len(a.Withdrawal) > 100:
		return fmt.Errorf("%w: withdrawal %q", ErrMalformed, trunc(a.Withdrawal))
	case len(a.Reason) > MaxReason:
		return fmt.Errorf("%w: reason longer than %d bytes", ErrMalformed, MaxReason)
	case a.Decision == Reject && strings.TrimSpace(a.Reason) == "":
		return fmt.Errorf("%w: a rejection needs a reason", ErrMalformed)
	case a.Signed.IsZero():
		return fmt.Errorf("%w: no signing time", ErrMalformed)
	}
	sig, err := base64.StdEncoding.DecodeString(a.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature: want the base64 of a %d-byte Ed25519 signature", ErrMalformed, ed25519.SignatureSize)
	}
	return nil
}

// Verify checks that a is a well-formed approval of in, signed by a
// known, enabled approver of approvers.
func (a *Approval) Verify(approvers *Approvers, in *Intent) (*Approver, error) {
	if err := a.Check(); err != nil {
		return nil, err
	}
	if a.Withdrawal != in.ID {
		return nil, fmt.Errorf("%w: it names withdrawal %s, not %s", ErrWrongIntent, trunc(a.Withdrawal), in.ID)
	}
	h, err := in.Hash()
	if err != nil {
		return nil, err
	}
	if a.Intent != h {
		return nil, fmt.Errorf("%w: it signs intent %s, and withdrawal %s is intent %s", ErrWrongIntent, a.Intent, in.ID, h)
	}
	return VerifySigned(approvers, a)
}

// VerifySigned checks that a (already checked against what it names) is
// signed by a known, enabled approver of approvers, and returns them. The
// breaker's resets and the policy's approvals use it with their own
// subjects.
func VerifySigned(approvers *Approvers, a *Approval) (*Approver, error) {
	ap, ok := approvers.byName[a.Approver]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownApprover, a.Approver)
	}
	if ap.Disabled {
		return nil, fmt.Errorf("%w: %q", ErrDisabled, a.Approver)
	}
	sig, err := base64.StdEncoding.DecodeString(a.Signature)
	if err != nil || !ed25519.Verify(ap.key, a.SignedBytes(), sig) {
		return nil, fmt.Errorf("%w: %s's key did not sign this approval", ErrBadSignature, a.Approver)
	}
	return ap, nil
}

// DecodeApproval reads one approval from a request body: JSON, at most
// MaxApprovalBytes, no unknown fields, no trailing data, well formed.
func DecodeApproval(r io.Reader) (Approval, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxApprovalBytes+1))
	if err != nil {
		return Approval{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(b) > MaxApprovalBytes {
		return Approval{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxApprovalBytes)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var a Approval
	if err := d.Decode(&a); err != nil {
		return Approval{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if d.More() {
		return Approval{}, fmt.Errorf("%w: data after the approval", ErrMalformed)
	}
	if err := a.Check(); err != nil {
		return Approval{}, err
	}
	return a, nil
}

// Approver is a person allowed to approve: a name, the groups they
// belong to, their Ed25519 public key (base64) and whether they are
// disabled. The config file's gate.approvers entries.
type Approver struct {
	Name     string   `yaml:"name" json:"name"`
	Groups   []string `yaml:"groups" json:"groups"`
	Key      string   `yaml:"key" json:"key"`
	Disabled bool     `yaml:"disabled" json:"disabled,omitempty"`
	key      ed25519.PublicKey
}

// In tells whether the approver belongs to group g.
func (a *Approver) In(g string) bool { return slices.Contains(a.Groups, g) }

var nameRe = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// Approvers is the approver list, by name.
type Approvers struct {
	list   []*Approver
	byName map[string]*Approver
}

// NewApprovers checks the list (names well formed and unique, at least
// one group each, keys 32-byte Ed25519 and each used once) and returns it;
// the error names every entry that is wrong, as key[i].field.
func NewApprovers(key string, list []Approver) (*Approvers, error) {
	out := &Approvers{byName: map[string]*Approver{}}
	var problems []string
	bad := func(i int, field, f string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s[%d].%s: %s", key, i, field, fmt.Sprintf(f, args...)))
	}
	keys := map[string]string{}
	for i := range list {
		a := list[i]
		if !nameRe.MatchString(a.Name) {
			bad(i, "name", "%q: want 1 to 64 letters, digits, '.', '_', '-' or '@'", a.Name)
		} else if out.byName[a.Name] != nil {
			bad(i, "name", "%q is listed twice", a.Name)
		}
		if len(a.Groups) == 0 {
			bad(i, "groups", "empty: name the groups whose approvals %s counts for", a.Name)
		}
		for j, g := range a.Groups {
			if !nameRe.MatchString(g) {
				bad(i, fmt.Sprintf("groups[%d]", j), "%q: want 1 to 64 letters, digits, '.', '_', '-' or '@'", g)
			}
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.Key))
		switch {
		case err != nil || len(raw) != ed25519.PublicKeySize:
			bad(i, "key", "want the base64 of a %d-byte Ed25519 public key (cordon approver keygen)", ed25519.PublicKeySize)
		case keys[string(raw)] != "":
			bad(i, "key", "also %s's key: each approver signs with a key of their own", keys[string(raw)])
		default:
			keys[string(raw)] = a.Name
			a.key = raw
		}
		a.Groups = slices.Clone(a.Groups)
		out.list = append(out.list, &a)
		if a.Name != "" && out.byName[a.Name] == nil {
			out.byName[a.Name] = &a
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

// Get returns the approver named name.
func (as *Approvers) Get(name string) (*Approver, bool) {
	a, ok := as.byName[name]
	return a, ok
}

// List returns the approvers in config order.
func (as *Approvers) List() []*Approver { return slices.Clone(as.list) }

// KeyFile is what cordon approver keygen writes: the approver's name
// and private key (the base64 Ed25519 seed). Kept by the approver, 0600;
// it never reaches the server.
type KeyFile struct {
	Approver string `json:"approver"`
	Private  string `json:"private_key"`
	Public   string `json:"public_key"`
}

// GenerateKey makes a key file for approver name.
func GenerateKey(name string) (KeyFile, error) {
	if !nameRe.MatchString(name) {
		return KeyFile{}, fmt.Errorf("approver name %q: want 1 to 64 letters, digits, '.', '_', '-' or '@'", name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return KeyFile{}, err
	}
	return KeyFile{Approver: name, Private: base64.StdEncoding.EncodeToString(priv.Seed()),
		Public: base64.StdEncoding.EncodeToString(pub)}, nil
}

// Key returns the key file's private key, checked against its public key.
func (k KeyFile) Key() (ed25519.PrivateKey, error) {
	seed, err := base64.StdEncoding.DecodeString(k.Private)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("key file of %s: private_key: want the base64 of a %d-byte Ed25519 seed", k.Approver, ed25519.SeedSize)
	}
	key := ed25519.NewKeyFromSeed(seed)
	if base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)) != k.Public {
		return nil, fmt.Errorf("key file of %s: public_key does not belong to private_key", k.Approver)
	}
	return key, nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

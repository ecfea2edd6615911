// Package recordauth authenticates the Kafka records that carry authority
// (operators' decisions, crediting's deposits and state, indicators,
// registry entries): each is signed with Ed25519 by the role allowed to
// write it, and every reader verifies the signature against the public
// keys it trusts for that role. A record that fails is refused; it never
// changes state. See docs/security.md.
//
// The signed bytes are
//
//	"cordon-record/v1" 0x00 role 0x00 len(kind) kind at len(key) key len(value) value
//
// with each len a 4-byte big-endian length, kind the record's cordon-type
// header (empty when it has none), at the signing time in Unix
// nanoseconds as 8 bytes big-endian (strictly increasing per signer: a
// reader refuses a record of a key older than one it has read, a replay)
// and value empty for a tombstone. The signature travels in the
// cordon-sig header as
//
//	v1 <role> <key id> <at> <base64 signature>
//
// where the key id is the first 8 bytes of SHA-256 of the public key, in
// hex, and at is decimal. Outside readers (the exchange's ledger) verify deposit events the
// same way with crediting's public key.
package recordauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cordonhq/cordon/internal/config"
)

// Role is a component allowed to write some topics.
type Role string

// The roles whose records are signed.
const (
	// API writes registry entries and operators' decisions.
	API Role = "api"
	// Credit writes deposit events and its own state.
	Credit Role = "credit"
	// Intel (the importer) writes indicators.
	Intel Role = "intel"
	// Gate (the withdrawal gate) writes withdrawal events, its state and
	// the audit log.
	Gate Role = "gate"
	// Vault (the second risk layer: cordon signer, signer/vault) writes
	// its own state and the signing results.
	Vault Role = "signer"
	// Detect (detection, detect/live) writes its own state.
	Detect Role = "detect"
)

// Roles are the signing roles, in a fixed order.
var Roles = []Role{API, Credit, Intel, Gate, Vault, Detect}

// Header is the record header carrying the signature.
const Header = "cordon-sig"

const domain = "cordon-record/v1"

// Errors a verification can wrap.
var (
	ErrUnsigned  = errors.New("record is not signed")
	ErrMalformed = errors.New("signature header is malformed")
	ErrWrongRole = errors.New("record is signed by another role")
	ErrUnknown   = errors.New("record is signed by a key that is not trusted")
	ErrBad       = errors.New("signature does not verify")
	ErrNoTrust   = errors.New("no key is trusted for the role")
	// ErrReplayed: a genuine record of a key older than one already read
	// (a copy of an earlier record written again).
	ErrReplayed = errors.New("record is older than one already read for its key: a replay")
)

// Message returns the bytes a record's signature covers.
func Message(role Role, kind string, at int64, key, value []byte) []byte {
	b := make([]byte, 0, len(domain)+len(role)+len(kind)+len(key)+len(value)+26)
	b = append(b, domain...)
	b = append(b, 0)
	b = append(b, role...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(kind)))
	b = append(b, kind...)
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	return append(b, value...)
}

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// Signer signs records as one role.
type Signer struct {
	role Role
	key  ed25519.PrivateKey
	id   string
	last atomic.Int64 // the last signing time given
}

// NewSigner returns role's signer for a private key given as the base64
// of its 32-byte seed (what GenerateKey prints).
func NewSigner(role Role, seed string) (*Signer, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(seed))
	if err != nil || len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s key: want the base64 of a %d-byte Ed25519 seed (cordon keys generate)", role, ed25519.SeedSize)
	}
	k := ed25519.NewKeyFromSeed(b)
	return &Signer{role: role, key: k, id: KeyID(k.Public().(ed25519.PublicKey))}, nil
}

// Role is the signer's role.
func (s *Signer) Role() Role { return s.role }

// ID is the key's id, as signatures name it.
func (s *Signer) ID() string { return s.id }

// Public is the signer's public key in the form the trust lists take.
func (s *Signer) Public() string {
	return base64.StdEncoding.EncodeToString(s.key.Public().(ed25519.PublicKey))
}

// Sign returns the cordon-sig header value of a record.
func (s *Signer) Sign(kind string, key, value []byte) []byte {
	return s.SignAt(s.Stamp(), kind, key, value)
}

// Stamp reserves the signer's next signing time: later than every time
// it stamped or observed before. A writer signing a batch in parallel
// stamps its records in order first, so a later record of a key is
// never signed earlier than the one before it.
func (s *Signer) Stamp() int64 { return s.now() }

// SignAt is Sign with a signing time Stamp reserved.
func (s *Signer) SignAt(at int64, kind string, key, value []byte) []byte {
	sig := ed25519.Sign(s.key, Message(s.role, kind, at, key, value))
	out := make([]byte, 0, 24+len(s.role)+len(s.id)+base64.StdEncoding.EncodedLen(len(sig)))
	out = append(out, "v1 "...)
	out = append(out, s.role...)
	out = append(out, ' ')
	out = append(out, s.id...)
	out = append(out, ' ')
	out = strconv.AppendInt(out, at, 10)
	out = append(out, ' ')
	return base64.StdEncoding.AppendEncode(out, sig)
}

// Observe tells the signer a signing time read from its role's records:
// its next records are signed later than it, so another instance of the
// role with a clock ahead (a crediting failover, several API instances)
// never makes this one's records look like replays.
func (s *Signer) Observe(at int64) {
	for {
		last := s.last.Load()
		if at <= last || s.last.CompareAndSwap(last, at) {
			return
		}
	}
}

// now is the signing time: the clock, but always after the last one
// given, so one signer's records of a key are strictly ordered.
func (s *Signer) now() int64 {
	for {
		last, t := s.last.Load(), time.Now().UnixNano()
		if t <= last {
			t = last + 1
		}
		if s.last.CompareAndSwap(last, t) {
			return t
		}
	}
}

// GenerateKey returns a new private key (the base64 seed NewSigner takes)
// and its public key.
func GenerateKey() (private, public string, err error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return "", "", err
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	return base64.StdEncoding.EncodeToString(seed), base64.StdEncoding.EncodeToString(pub), nil
}

// Keyring holds the signers of the roles this process writes as and the
// public keys it trusts for each role. A nil Keyring signs nothing and
// trusts nothing.
type Keyring struct {
	signers map[Role]*Signer
	trust   map[Role]map[string]ed25519.PublicKey
}

// NewKeyring returns an empty keyring.
func NewKeyring() *Keyring {
	return &Keyring{signers: map[Role]*Signer{}, trust: map[Role]map[string]ed25519.PublicKey{}}
}

// AddSigner lets the keyring sign as s's role; its public key is trusted
// too (a process reads back what it writes).
func (k *Keyring) AddSigner(s *Signer) {
	k.signers[s.role] = s
	if err := k.Trust(s.role, s.Public()); err != nil {
		panic(err) // a signer's own public key always parses
	}
}

// Trust accepts pub (base64, 32 bytes) as a key of role.
func (k *Keyring) Trust(role Role, pub string) error {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(pub))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return fmt.Errorf("%s public key %q: want the base64 of a %d-byte Ed25519 public key", role, trunc(pub), ed25519.PublicKeySize)
	}
	if k.trust[role] == nil {
		k.trust[role] = map[string]ed25519.PublicKey{}
	}
	k.trust[role][KeyID(b)] = b
	return nil
}

// Signer returns the signer of role, if the keyring holds its key.
func (k *Keyring) Signer(role Role) (*Signer, bool) {
	if k == nil {
		return nil, false
	}
	s, ok := k.signers[role]
	return s, ok
}

// Trusts tells whether any key of role is trusted.
func (k *Keyring) Trusts(role Role) bool { return k != nil && len(k.trust[role]) > 0 }

// Verify checks a record's cordon-sig header value sig: signed by a
// trusted key of role over kind, key and value. It returns the signing
// time; the error says why not.
func (k *Keyring) Verify(role Role, kind string, key, value, sig []byte) (at int64, err error) {
	if k == nil || len(k.trust[role]) == 0 {
		return 0, fmt.Errorf("%w: %s", ErrNoTrust, role)
	}
	if sig == nil {
		return 0, ErrUnsigned
	}
	f := strings.Fields(string(sig))
	if len(f) != 5 || f[0] != "v1" {
		return 0, ErrMalformed
	}
	if Role(f[1]) != role {
		return 0, fmt.Errorf("%w: %q, want %q", ErrWrongRole, trunc(f[1]), role)
	}
	pub, ok := k.trust[role][f[2]]
	if !ok {
		return 0, fmt.Errorf("%w: %s key %q", ErrUnknown, role, trunc(f[2]))
	}
	at, err = strconv.ParseInt(f[3], 10, 64)
	if err != nil || at <= 0 {
		return 0, ErrMalformed
	}
	raw, err := base64.StdEncoding.DecodeString(f[4])
	if err != nil || len(raw) != ed25519.SignatureSize {
		return 0, ErrMalformed
	}
	if !ed25519.Verify(pub, Message(role, kind, at, key, value), raw) {
		return 0, ErrBad
	}
	return at, nil
}

// Generate returns a keyring holding new keys for roles (every role when
// none is named): for cordon dev and tests.
func Generate(roles ...Role) *Keyring {
	if len(roles) == 0 {
		roles = Roles
	}
	k := NewKeyring()
	for _, r := range roles {
		priv, _, err := GenerateKey()
		if err != nil {
			panic(err)
		}
		s, err := NewSigner(r, priv)
		if err != nil {
			panic(err)
		}
		k.AddSigner(s)
	}
	return k
}

// Readers returns a keyring that trusts what k trusts and signs nothing:
// what a process holding none of the keys sees.
func (k *Keyring) Readers() *Keyring {
	out := NewKeyring()
	for r, keys := range k.trust {
		out.trust[r] = keys
	}
	return out
}

func trunc(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

// Config is the record_auth section: the private keys of the roles this
// process writes as (secret references) and the public keys readers
// trust for each role (several during a key rotation).
type Config struct {
	Keys  Keys  `yaml:"keys"`
	Trust Trust `yaml:"trust"`
}

// Keys are private keys by role (the base64 seed cordon keys generate
// prints, as env:NAME, file:PATH or a literal).
type Keys struct {
	API    config.Secret `yaml:"api"`
	Credit config.Secret `yaml:"credit"`
	Intel  config.Secret `yaml:"intel"`
	Gate   config.Secret `yaml:"gate"`
	Signer config.Secret `yaml:"signer"`
	Detect config.Secret `yaml:"detect"`
}

// Trust are public keys by role (base64).
type Trust struct {
	API    []string `yaml:"api"`
	Credit []string `yaml:"credit"`
	Intel  []string `yaml:"intel"`
	Gate   []string `yaml:"gate"`
	Signer []string `yaml:"signer"`
	Detect []string `yaml:"detect"`
}

func (k *Keys) of(r Role) config.Secret {
	switch r {
	case API:
		return k.API
	case Credit:
		return k.Credit
	case Gate:
		return k.Gate
	case Vault:
		return k.Signer
	case Detect:
		return k.Detect
	}
	return k.Intel
}

func (t *Trust) of(r Role) []string {
	switch r {
	case API:
		return t.API
	case Credit:
		return t.Credit
	case Gate:
		return t.Gate
	case Vault:
		return t.Signer
	case Detect:
		return t.Detect
	}
	return t.Intel
}

// HasKey tells whether the config holds role's private key.
func (c *Config) HasKey(r Role) bool { return c.Keys.of(r).Value() != "" }

// Keyring builds the keyring, reporting each bad key under base (the
// section's key, "record_auth").
func (c *Config) Keyring(p *config.Problems, base string) *Keyring {
	k := NewKeyring()
	for _, r := range Roles {
		for i, pub := range c.Trust.of(r) {
			if err := k.Trust(r, pub); err != nil {
				p.Add(fmt.Sprintf("%s.trust.%s[%d]", base, r, i), "%v", err)
			}
		}
	}
	for _, r := range Roles {
		v := c.Keys.of(r).Value()
		if v == "" {
			continue
		}
		s, err := NewSigner(r, v)
		if err != nil {
			p.Add(fmt.Sprintf("%s.keys.%s", base, r), "%v", err)
			continue
		}
		if len(c.Trust.of(r)) > 0 && !k.trusted(r, s) {
			p.Add(fmt.Sprintf("%s.keys.%s", base, r), "its public key %s is not in %s.trust.%s: readers would refuse what this process writes", s.Public(), base, r)
		}
		k.AddSigner(s)
	}
	return k
}

func (k *Keyring) trusted(r Role, s *Signer) bool {
	_, ok := k.trust[r][s.id]
	return ok
}

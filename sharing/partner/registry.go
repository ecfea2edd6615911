package partner

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/recordauth"
	"github.com/cordonhq/cordon/sharing/taxii"
)

// ErrNoCertificate is Identify's error for a request that came over plain
// HTTP or without a client certificate.
var ErrNoCertificate = fmt.Errorf("plain HTTP: %w", taxii.ErrUnauthenticated)

// UnknownCertError is the error for a client certificate that is no
// partner's: neither pinned nor issued by a partner's CA to that
// partner's subject.
type UnknownCertError struct {
	Subject string // the certificate's subject, RFC 2253 form
	// Fingerprint is the hex SHA-256 of the certificate's DER.
	Fingerprint string
	// Reason says why, when the certificate is a pinned one that is not
	// valid now.
	Reason string
}

func (e *UnknownCertError) Error() string {
	s := fmt.Sprintf("client certificate %q (sha256 %s) is no partner's", e.Subject, e.Fingerprint)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Options are the registry's dependencies.
type Options struct {
	// Clock tells the time for certificate validity and rate budgets
	// (default: the system clock).
	Clock clock.Clock
	// AllowHTTP lets a partner's url be http:// (Config.AllowHTTP).
	AllowHTTP bool
}

// Registry is the set of partners: who a TLS client is, what it may read
// and write, what may be sent to it, whose keys sign what, and how fast
// it may ask. It implements taxii.Access and stix.KeyLookup. Safe for
// concurrent use.
type Registry struct {
	clock      clock.Clock
	byName     map[string]*entry
	byIdentity map[string]*entry
	byPin      map[[sha256.Size]byte]*entry
	bySubject  map[string][]*entry // CA partners by required CommonName
	clientCAs  *x509.CertPool      // nil: no hint (see ServerTLS)

	mu   sync.RWMutex
	keys map[string]signingKey // by recordauth.KeyID
}

type signingKey struct {
	identity string
	pub      ed25519.PublicKey
}

type entry struct {
	Partner
	pin    *x509.Certificate // pinned certificate, or
	cas    *x509.CertPool    // the CA pool and Subject
	maxTLP intel.TLP
	read   map[string]bool
	write  map[string]bool
	relay  map[string]bool
	bucket *bucket
}

// New checks the partners (as Config.Validate does, keys under
// "partners") and loads their certificate and CA files.
func New(partners []Partner, opts Options) (*Registry, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	ps := make([]Partner, len(partners))
	for i, p := range partners {
		p.Read, p.Write, p.Relay, p.Pull = slices.Clone(p.Read), slices.Clone(p.Write), slices.Clone(p.Relay), slices.Clone(p.Pull)
		ps[i] = p
	}
	var probs config.Problems
	validate(&probs, "partners", ps, opts.AllowHTTP)
	if err := probs.Err(); err != nil {
		return nil, err
	}
	r := &Registry{
		clock:      opts.Clock,
		byName:     map[string]*entry{},
		byIdentity: map[string]*entry{},
		byPin:      map[[sha256.Size]byte]*entry{},
		bySubject:  map[string][]*entry{},
		keys:       map[string]signingKey{},
	}
	hint := x509.NewCertPool()
	var caSubjects [][]byte
	var pins []*x509.Certificate
	for i, p := range ps {
		k := fmt.Sprintf("partners[%d]", i)
		e := &entry{Partner: p, read: set(p.Read), write: set(p.Write), relay: set(p.Relay),
			bucket: newBucket(opts.Clock, p.Rate, p.Burst)}
		e.maxTLP, _ = e.Partner.maxTLP() // validated
		if p.Cert != "" {
			certs, err := readCerts(p.Cert)
			if err != nil {
				return nil, fmt.Errorf("%s.cert: %w", k, err)
			}
			e.pin = certs[0]
			fp := sha256.Sum256(e.pin.Raw)
			if o, dup := r.byPin[fp]; dup {
				return nil, fmt.Errorf("%s.cert: %s pins the certificate partner %s pins", k, p.Cert, o.Name)
			}
			r.byPin[fp] = e
			hint.AddCert(e.pin)
			pins = append(pins, e.pin)
		} else {
			certs, err := readCerts(p.CA)
			if err != nil {
				return nil, fmt.Errorf("%s.ca: %w", k, err)
			}
			e.cas = x509.NewCertPool()
			for _, c := range certs {
				if !c.IsCA {
					return nil, fmt.Errorf("%s.ca: %s holds %q, which is not a CA certificate", k, p.CA, c.Subject)
				}
				e.cas.AddCert(c)
				hint.AddCert(c)
				caSubjects = append(caSubjects, c.RawSubject)
			}
			r.bySubject[p.Subject] = append(r.bySubject[p.Subject], e)
		}
		pub, _ := p.publicKey() // validated
		id := recordauth.KeyID(pub)
		if o, dup := r.keys[id]; dup {
			return nil, fmt.Errorf("%s.signing_key: its key id %s is also the key id of %s's key", k, id, o.identity)
		}
		r.keys[id] = signingKey{identity: p.Identity, pub: pub}
		r.byName[p.Name] = e
		r.byIdentity[p.Identity] = e
	}
	// The acceptable CAs the server names are a hint clients choose
	// their certificate by: a Go client sends none whose issuer is not
	// named. A pinned certificate whose issuer is not among them (a leaf
	// of a CA we do not trust) would then never be sent, so the hint is
	// given only when every pinned certificate's issuer is in it.
	r.clientCAs = hint
	for _, c := range pins {
		if !bytes.Equal(c.RawIssuer, c.RawSubject) && !slices.ContainsFunc(caSubjects, func(s []byte) bool { return bytes.Equal(s, c.RawIssuer) }) {
			r.clientCAs = nil
			break
		}
	}
	return r, nil
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// readCerts reads every certificate of a PEM file: at least one.
func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return certs, nil
}

// Fingerprint is the hex SHA-256 of a certificate's DER: what a pin is.
func Fingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

// identify names the partner whose certificate chain (leaf first, as the
// peer sent it) this is: the leaf is pinned (and valid now), or it
// verifies for client authentication against the CA of a partner whose
// subject is the leaf's CommonName.
func (r *Registry) identify(chain []*x509.Certificate) (*entry, error) {
	if len(chain) == 0 {
		return nil, ErrNoCertificate
	}
	leaf := chain[0]
	now := r.clock.Now()
	unknown := &UnknownCertError{Subject: leaf.Subject.String(), Fingerprint: Fingerprint(leaf)}
	if e, ok := r.byPin[sha256.Sum256(leaf.Raw)]; ok {
		if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
			unknown.Reason = fmt.Sprintf("pinned for %s but not valid now (%s to %s)", e.Name, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
			return nil, unknown
		}
		return e, nil
	}
	var inter *x509.CertPool
	for _, e := range r.bySubject[leaf.Subject.CommonName] {
		if inter == nil {
			inter = x509.NewCertPool()
			for _, c := range chain[1:] {
				inter.AddCert(c)
			}
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: e.cas, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err == nil {
			return e, nil
		}
	}
	return nil, unknown
}

// Identify names the partner whose client certificate made req. A request
// without TLS or without a certificate is ErrNoCertificate; a
// certificate of no partner is an *UnknownCertError. Behind ServerTLS the
// latter never reaches a handler: the handshake fails first.
func (r *Registry) Identify(req *http.Request) (taxii.Caller, error) {
	if req.TLS == nil {
		return taxii.Caller{}, ErrNoCertificate
	}
	e, err := r.identify(req.TLS.PeerCertificates)
	if err != nil {
		return taxii.Caller{}, err
	}
	return taxii.Caller{Name: e.Name}, nil
}

// Partner returns the partner named name.
func (r *Registry) Partner(name string) (Partner, bool) {
	e, ok := r.byName[name]
	if !ok {
		return Partner{}, false
	}
	return e.public(), true
}

// ByIdentity returns the partner whose STIX identity is identity.
func (r *Registry) ByIdentity(identity string) (Partner, bool) {
	e, ok := r.byIdentity[identity]
	if !ok {
		return Partner{}, false
	}
	return e.public(), true
}

// NameOf names the partner whose STIX identity is identity.
func (r *Registry) NameOf(identity string) (string, bool) {
	e, ok := r.byIdentity[identity]
	if !ok {
		return "", false
	}
	return e.public().Name, true
}

// IdentityOf is the STIX identity of the partner named name.
func (r *Registry) IdentityOf(name string) (string, bool) {
	e, ok := r.byName[name]
	if !ok {
		return "", false
	}
	return e.Identity, true
}

// Names lists the partners' names, sorted.
func (r *Registry) Names() []string {
	ns := make([]string, 0, len(r.byName))
	for n := range r.byName {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// public is a copy of the partner the caller may change.
func (e *entry) public() Partner {
	p := e.Partner
	p.Read, p.Write, p.Relay, p.Pull = slices.Clone(p.Read), slices.Clone(p.Write), slices.Clone(p.Relay), slices.Clone(p.Pull)
	return p
}

// LookupKey finds a signing key by its id (recordauth.KeyID) with the
// identity it signs for: a partner's, or ours (AddSelf). It implements
// stix.KeyLookup.
func (r *Registry) LookupKey(keyID string) (identity string, pub ed25519.PublicKey, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.keys[keyID]
	if !ok {
		return "", nil, false
	}
	return k.identity, slices.Clone(k.pub), true
}

// AddSelf trusts our own signing key for our identity, so that objects
// we published verify when they come back. It refuses an identity or a
// key a partner has: that partner could otherwise sign as us.
func (r *Registry) AddSelf(identity string, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("own signing key: %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if e, ok := r.byIdentity[identity]; ok {
		return fmt.Errorf("own identity %s is partner %s's", identity, e.Name)
	}
	id := recordauth.KeyID(pub)
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := r.keys[id]; ok && k.identity != identity {
		return fmt.Errorf("own signing key (key id %s) is the key of %s", id, k.identity)
	}
	r.keys[id] = signingKey{identity: identity, pub: slices.Clone(pub)}
	return nil
}

// MayRelay tells whether the partner named sender may pass us an object
// signed for signerIdentity: its own, or one of a partner it may relay.
func (r *Registry) MayRelay(sender, signerIdentity string) bool {
	e, ok := r.byName[sender]
	if !ok {
		return false
	}
	if e.Identity == signerIdentity {
		return true
	}
	s, ok := r.byIdentity[signerIdentity]
	return ok && e.relay[s.Name]
}

// CanRead tells whether c may read the collection alias.
func (r *Registry) CanRead(c taxii.Caller, alias string) bool {
	e, ok := r.byName[c.Name]
	return ok && e.read[alias]
}

// CanWrite tells whether c may post to the collection alias.
func (r *Registry) CanWrite(c taxii.Caller, alias string) bool {
	e, ok := r.byName[c.Name]
	return ok && e.write[alias]
}

// MayReceive tells whether rec, of the collection alias, may be sent to
// c: c may read the collection, and the record's TLP (TLPOf; unmarked is
// AMBER) is not RED, is AMBER+STRICT only for an amber_strict partner,
// AMBER only for an amber or amber_strict one, and never above its
// max_tlp. A record whose markings cannot be read is not sent.
func (r *Registry) MayReceive(c taxii.Caller, alias string, rec *taxii.Record) bool {
	e, ok := r.byName[c.Name]
	if !ok || !e.read[alias] || rec == nil {
		return false
	}
	t, err := TLPOf(rec.Raw)
	if err != nil {
		return false
	}
	return e.receives(t)
}

// receives applies the TLP rules to one partner.
func (e *entry) receives(t intel.TLP) bool {
	switch t {
	case intel.TLPRed:
		return false
	case intel.TLPAmberStrict:
		if !e.AmberStrict {
			return false
		}
	case intel.TLPAmber:
		if !e.Amber && !e.AmberStrict {
			return false
		}
	case intel.TLPClear, intel.TLPGreen:
	default:
		return false
	}
	return rank(t) <= rank(e.maxTLP)
}

// Allow takes one request from c's rate budget (a token bucket of
// burst tokens refilled at rate a second); false for an unknown caller.
func (r *Registry) Allow(c taxii.Caller) bool {
	e, ok := r.byName[c.Name]
	return ok && e.bucket.take()
}

var _ taxii.Access = (*Registry)(nil)

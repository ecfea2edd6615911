package party

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Envelope limits.
const (
	envelopeVersion = 1
	// MaxSessionLen bounds a session id, MaxIDLen a party id.
	MaxSessionLen = 128
	MaxIDLen      = 32
	// MaxRecipients bounds an envelope's To.
	MaxRecipients = Parties - 1
	// MaxWire bounds the tss message an envelope carries (the largest,
	// keygen's round-2 broadcast with its modulus proof, is ~45 KiB).
	MaxWire = 256 << 10
	// MaxEnvelope bounds an encoded envelope.
	MaxEnvelope = 1 + 1 + MaxSessionLen + 1 + MaxIDLen + 1 + MaxRecipients*(1+MaxIDLen) + 8 + 1 + 4 + MaxWire + ed25519.SignatureSize
)

// envelopeDomain separates an envelope's signature from any other use of
// a party's ed25519 key.
const envelopeDomain = "cordon/threshold/envelope/v1\x00"

// Why an envelope is refused.
var (
	ErrMalformed     = errors.New("threshold: malformed envelope")
	ErrWrongSession  = errors.New("threshold: envelope of another session")
	ErrUnknownSender = errors.New("threshold: envelope from a party not in the session")
	ErrFromSelf      = errors.New("threshold: envelope from this party itself")
	ErrReplay        = errors.New("threshold: envelope replayed or out of order")
	// ErrBadSignature: a forged or altered envelope, or one of a sender
	// asked for another key, digest or set of parties in this session.
	ErrBadSignature = errors.New("threshold: envelope signature does not verify (forged, altered, or signed for another key, digest or parties)")
	ErrNotAddressed = errors.New("threshold: envelope not addressed to this party")
)

// Envelope is one protocol message between parties.
type Envelope struct {
	Session string
	From    string
	// To names the recipients of a point-to-point message; empty when
	// Broadcast.
	To []string
	// Seq increases with every envelope its sender sends in a session
	// (from 1; gaps are the envelopes addressed to others).
	Seq       uint64
	Broadcast bool
	// Wire is the tss-lib wire message.
	Wire []byte
	Sig  [ed25519.SignatureSize]byte
}

// body is the canonical encoding of everything but the signature:
//
//	version u8 | len u8, session | len u8, from | n u8, n × (len u8, id) |
//	seq u64 BE | broadcast u8 (0, 1) | len u32 BE, wire
func (e *Envelope) body() ([]byte, error) {
	if err := e.checkFields(); err != nil {
		return nil, err
	}
	n := 1 + 1 + len(e.Session) + 1 + len(e.From) + 1 + 8 + 1 + 4 + len(e.Wire)
	for _, t := range e.To {
		n += 1 + len(t)
	}
	b := make([]byte, 0, n+ed25519.SignatureSize)
	b = append(b, envelopeVersion)
	b = appendStr(b, e.Session)
	b = appendStr(b, e.From)
	b = append(b, byte(len(e.To))) //nolint:gosec // at most MaxRecipients
	for _, t := range e.To {
		b = appendStr(b, t)
	}
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	if e.Broadcast {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Wire))) //nolint:gosec // bounded by MaxWire
	return append(b, e.Wire...), nil
}

func appendStr(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...) //nolint:gosec // checkFields bounds every string to 255 bytes or less
}

// checkFields applies the limits both encoding and decoding enforce.
func (e *Envelope) checkFields() error {
	switch {
	case len(e.Session) == 0 || len(e.Session) > MaxSessionLen:
		return fmt.Errorf("%w: session of %d bytes", ErrMalformed, len(e.Session))
	case len(e.From) == 0 || len(e.From) > MaxIDLen:
		return fmt.Errorf("%w: sender id of %d bytes", ErrMalformed, len(e.From))
	case len(e.To) > MaxRecipients:
		return fmt.Errorf("%w: %d recipients", ErrMalformed, len(e.To))
	case e.Broadcast && len(e.To) != 0:
		return fmt.Errorf("%w: a broadcast with recipients", ErrMalformed)
	case !e.Broadcast && len(e.To) == 0:
		return fmt.Errorf("%w: a point-to-point message without recipients", ErrMalformed)
	case e.Seq == 0:
		return fmt.Errorf("%w: seq 0", ErrMalformed)
	case len(e.Wire) == 0 || len(e.Wire) > MaxWire:
		return fmt.Errorf("%w: tss message of %d bytes", ErrMalformed, len(e.Wire))
	}
	for i, t := range e.To {
		if len(t) == 0 || len(t) > MaxIDLen {
			return fmt.Errorf("%w: recipient id of %d bytes", ErrMalformed, len(t))
		}
		if slices.Index(e.To, t) != i {
			return fmt.Errorf("%w: recipient %q twice", ErrMalformed, t)
		}
	}
	return nil
}

// BindingSize is the size of a session's binding.
const BindingSize = sha256.Size

// signedBytes is what the sender signs: the domain, the session's
// binding (what the session is for, which both sides know and the
// envelope does not carry), then the body.
func signedBytes(binding [BindingSize]byte, body []byte) []byte {
	b := make([]byte, 0, len(envelopeDomain)+BindingSize+len(body))
	b = append(b, envelopeDomain...)
	b = append(b, binding[:]...)
	return append(b, body...)
}

// Seal signs e with key under binding and returns its encoding.
func (e *Envelope) Seal(key ed25519.PrivateKey, binding [BindingSize]byte) ([]byte, error) {
	body, err := e.body()
	if err != nil {
		return nil, err
	}
	copy(e.Sig[:], ed25519.Sign(key, signedBytes(binding, body)))
	return append(body, e.Sig[:]...), nil
}

// Verify checks e's signature with pub under binding.
func (e *Envelope) Verify(pub ed25519.PublicKey, binding [BindingSize]byte) error {
	body, err := e.body()
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, signedBytes(binding, body), e.Sig[:]) {
		return ErrBadSignature
	}
	return nil
}

// bind is a session's binding: SHA-256 of a label and the length-prefixed
// fields (for a signing: the key id, the digest and the parties), so that
// an envelope from a party that was asked for another key, digest or set
// of parties under the same session id does not verify.
func bind(label string, fields ...[]byte) [BindingSize]byte {
	h := sha256.New()
	h.Write([]byte(label))
	for _, f := range fields {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f))) //nolint:gosec // small fields
		h.Write(n[:])
		h.Write(f)
	}
	var out [BindingSize]byte
	copy(out[:], h.Sum(nil))
	return out
}

// DecodeEnvelope parses an encoded envelope strictly: every length
// exact, within the limits, no trailing bytes. It does not verify the
// signature (Verify, or a session's open, does).
func DecodeEnvelope(b []byte) (*Envelope, error) {
	if len(b) > MaxEnvelope {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	r := reader{b: b}
	if v := r.u8(); v != envelopeVersion {
		if r.err != nil {
			return nil, r.err
		}
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, v)
	}
	e := &Envelope{}
	e.Session = r.str(MaxSessionLen)
	e.From = r.str(MaxIDLen)
	n := int(r.u8())
	if n > MaxRecipients {
		return nil, fmt.Errorf("%w: %d recipients", ErrMalformed, n)
	}
	for range n {
		e.To = append(e.To, r.str(MaxIDLen))
	}
	e.Seq = r.u64()
	switch r.u8() {
	case 0:
	case 1:
		e.Broadcast = true
	default:
		if r.err == nil {
			return nil, fmt.Errorf("%w: broadcast flag not 0 or 1", ErrMalformed)
		}
	}
	wl := r.u32()
	if wl > MaxWire {
		return nil, fmt.Errorf("%w: tss message of %d bytes", ErrMalformed, wl)
	}
	e.Wire = r.bytes(int(wl))
	copy(e.Sig[:], r.bytes(ed25519.SignatureSize))
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.b))
	}
	if err := e.checkFields(); err != nil {
		return nil, err
	}
	return e, nil
}

// reader reads the envelope's fields; the first short read sets err and
// every later read returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = fmt.Errorf("%w: truncated", ErrMalformed)
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() byte {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *reader) u64() uint64 {
	b := r.bytes(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (r *reader) str(limit int) string {
	n := int(r.u8())
	if r.err == nil && (n == 0 || n > limit) {
		r.err = fmt.Errorf("%w: a string of %d bytes (1..%d)", ErrMalformed, n, limit)
		return ""
	}
	return string(r.bytes(n))
}

// session is one party's view of a session's envelopes: who may send,
// with which key, and the last seq seen from each.
type session struct {
	id      string
	binding [BindingSize]byte
	self    string
	key     ed25519.PrivateKey
	peers   map[string]ed25519.PublicKey // the other parties of the session
	last    map[string]uint64
	seq     uint64 // ours
}

func newSession(id string, binding [BindingSize]byte, self string, key ed25519.PrivateKey, peers map[string]ed25519.PublicKey) *session {
	return &session{id: id, binding: binding, self: self, key: key, peers: peers, last: map[string]uint64{}}
}

// seal wraps one outgoing tss message.
func (s *session) seal(to []string, broadcast bool, wire []byte) ([]byte, error) {
	s.seq++
	e := Envelope{Session: s.id, From: s.self, To: to, Seq: s.seq, Broadcast: broadcast, Wire: wire}
	return e.Seal(s.key, s.binding)
}

// open decodes and authenticates one incoming envelope, in this order:
// well-formed, this session, a sender of the session other than us,
// addressed to us, signed by the sender, and newer than the sender's
// last (the seq is recorded only once the signature verified).
func (s *session) open(b []byte) (*Envelope, error) {
	e, err := DecodeEnvelope(b)
	if err != nil {
		return nil, err
	}
	if e.Session != s.id {
		return nil, fmt.Errorf("%w: %q, this session is %q", ErrWrongSession, e.Session, s.id)
	}
	if e.From == s.self {
		return nil, ErrFromSelf
	}
	pub, ok := s.peers[e.From]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSender, e.From)
	}
	if !e.Broadcast && !slices.Contains(e.To, s.self) {
		return nil, fmt.Errorf("%w: from %q to %q", ErrNotAddressed, e.From, e.To)
	}
	for _, t := range e.To {
		if _, ok := s.peers[t]; !ok && t != s.self {
			return nil, fmt.Errorf("%w: recipient %q is not in the session", ErrMalformed, t)
		}
	}
	if err := e.Verify(pub, s.binding); err != nil {
		return nil, fmt.Errorf("%w: from %q", err, e.From)
	}
	if e.Seq <= s.last[e.From] {
		return nil, fmt.Errorf("%w: seq %d from %q after %d", ErrReplay, e.Seq, e.From, s.last[e.From])
	}
	s.last[e.From] = e.Seq
	return e, nil
}

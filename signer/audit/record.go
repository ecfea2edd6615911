package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cordonhq/cordon/internal/jcs"
)

// Version is the v member of every record: the format's name.
const Version = "cordon-audit/v1"

// The kinds of record the gate writes. Kind is free among lowercase
// names; Checkpoint is reserved for the chain's own signed checkpoints.
const (
	KindRequest    = "request"
	KindFinding    = "finding"
	KindDecision   = "decision"
	KindApproval   = "approval"
	KindRejection  = "rejection"
	KindBreaker    = "breaker"
	KindPolicy     = "policy"
	KindCheckpoint = "checkpoint"
)

// Limits of a record's fields.
const (
	// MaxSeq is the largest sequence number: 2^53-1, the largest integer
	// every JSON implementation (and RFC 8785's doubles) reads exactly.
	MaxSeq = 1<<53 - 1
	// MaxField bounds the subject and the actor, in bytes.
	MaxField = 256
	// MaxRecordBytes bounds a record's canonical bytes (a Kafka record's
	// value).
	MaxRecordBytes = 512 << 10
)

// ZeroHash is the Prev of the first record.
var ZeroHash = strings.Repeat("0", 64)

// Record is one entry of the audit log.
type Record struct {
	// Seq numbers the records from 1 without gaps; it is the Kafka key.
	Seq uint64 `json:"seq"`
	// Prev is the hex SHA-256 of the previous record's canonical bytes
	// (ZeroHash for seq 1).
	Prev string `json:"prev"`
	// At is when the record was made (UTC; never before the previous
	// record's time).
	At time.Time `json:"at"`
	// Kind says what happened (request, finding, …, checkpoint).
	Kind string `json:"kind"`
	// Subject is what it happened to (a withdrawal id, a policy hash, a
	// breaker's name); may be empty.
	Subject string `json:"subject"`
	// Actor is who made it happen: an API token's name, an approver, an
	// operator, or "gate".
	Actor string `json:"actor"`
	// Body is the event's own JSON, kept as given (compacted, never
	// re-encoded: its numbers keep every digit).
	Body json.RawMessage `json:"body"`
}

// Errors of DecodeRecord, each wrapped with what was found.
var (
	ErrMalformed    = errors.New("malformed audit record")
	ErrNotCanonical = errors.New("audit record is not in canonical form")
)

var (
	kindRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	hexRe  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// check tells what is wrong with r's fields, if anything.
func (r *Record) check() error {
	switch {
	case r.Seq < 1 || r.Seq > MaxSeq:
		return fmt.Errorf("%w: seq %d: want 1 to %d", ErrMalformed, r.Seq, uint64(MaxSeq))
	case !hexRe.MatchString(r.Prev):
		return fmt.Errorf("%w: prev: want the 64 lowercase hex digits of a SHA-256", ErrMalformed)
	case r.Seq == 1 && r.Prev != ZeroHash:
		return fmt.Errorf("%w: seq 1's prev must be all zeros", ErrMalformed)
	case r.At.IsZero():
		return fmt.Errorf("%w: no time", ErrMalformed)
	case !kindRe.MatchString(r.Kind):
		return fmt.Errorf("%w: kind %q: want 1 to 32 lowercase letters, digits or '_', starting with a letter", ErrMalformed, trunc(r.Kind))
	case len(r.Subject) > MaxField || !utf8.ValidString(r.Subject):
		return fmt.Errorf("%w: subject: want at most %d bytes of UTF-8", ErrMalformed, MaxField)
	case len(r.Actor) > MaxField || !utf8.ValidString(r.Actor):
		return fmt.Errorf("%w: actor: want at most %d bytes of UTF-8", ErrMalformed, MaxField)
	case !utf8.Valid(r.Body) || !json.Valid(r.Body):
		return fmt.Errorf("%w: body is not JSON", ErrMalformed)
	}
	return nil
}

// Canonical returns the record's canonical bytes: RFC 8785 JSON of an
// object whose members are all strings but seq, an integer:
//
//	{"actor":…,"at":…,"body":…,"kind":…,"prev":…,"seq":N,"subject":…,"v":"cordon-audit/v1"}
//
// with at in RFC 3339 UTC with nanoseconds and no trailing zeros, and
// body the text of the event's JSON as a string. Every string and
// integer (below 2^53) is written the same by RFC 8785 and by Python's
// json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False),
// so verifying the log needs no JCS library.
func (r *Record) Canonical() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	// RFC 8785 of {v, seq, prev, at, kind, subject, actor, body}, written
	// directly: the names in their canonical (byte) order, every value a
	// string of valid UTF-8 (check) but seq, an integer below 2^53 that
	// ECMAScript prints in decimal. The same bytes as jcs.Marshal of the
	// map (FuzzCanonical), without its round trip through encoding/json.
	var out bytes.Buffer
	out.Grow(len(r.Body) + len(r.Subject) + len(r.Actor) + 220)
	for _, m := range [...]struct{ name, v string }{{`{"actor":`, r.Actor}, {`,"at":`, r.At.UTC().Format(time.RFC3339Nano)},
		{`,"body":`, string(r.Body)}, {`,"kind":`, r.Kind}, {`,"prev":`, r.Prev}} {
		out.WriteString(m.name)
		jcs.WriteString(&out, m.v)
	}
	out.WriteString(`,"seq":`)
	out.WriteString(strconv.FormatUint(r.Seq, 10))
	out.WriteString(`,"subject":`)
	jcs.WriteString(&out, r.Subject)
	out.WriteString(`,"v":`)
	jcs.WriteString(&out, Version)
	out.WriteByte('}')
	b := out.Bytes()
	if len(b) > MaxRecordBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(b), MaxRecordBytes)
	}
	return b, nil
}

// Hash is the hex SHA-256 of the record's canonical bytes: the next
// record's Prev.
func (r *Record) Hash() (string, error) {
	b, err := r.Canonical()
	if err != nil {
		return "", err
	}
	return HashBytes(b), nil
}

// HashBytes is the hex SHA-256 of b.
func HashBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// SeqKey is the Kafka key of the record of seq: its decimal digits.
func SeqKey(seq uint64) []byte { return strconv.AppendUint(nil, seq, 10) }

// wire is a record as its canonical bytes spell it.
type wire struct {
	V       string  `json:"v"`
	Seq     *uint64 `json:"seq"`
	Prev    *string `json:"prev"`
	At      *string `json:"at"`
	Kind    *string `json:"kind"`
	Subject *string `json:"subject"`
	Actor   *string `json:"actor"`
	Body    *string `json:"body"`
}

// DecodeRecord reads a record from its canonical bytes: every member
// present, none unknown, well formed, and b exactly the record's
// canonical bytes (so a record has one spelling, and its hash is the
// SHA-256 of b).
func DecodeRecord(b []byte) (Record, error) {
	if len(b) > MaxRecordBytes {
		return Record{}, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(b), MaxRecordBytes)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var w wire
	if err := d.Decode(&w); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if d.More() {
		return Record{}, fmt.Errorf("%w: data after the record", ErrMalformed)
	}
	if w.V != Version {
		return Record{}, fmt.Errorf("%w: v %q: want %q", ErrMalformed, trunc(w.V), Version)
	}
	for _, m := range []struct {
		name string
		p    *string
	}{{"prev", w.Prev}, {"at", w.At}, {"kind", w.Kind}, {"subject", w.Subject}, {"actor", w.Actor}, {"body", w.Body}} {
		if m.p == nil {
			return Record{}, fmt.Errorf("%w: no %s", ErrMalformed, m.name)
		}
	}
	if w.Seq == nil {
		return Record{}, fmt.Errorf("%w: no seq", ErrMalformed)
	}
	at, err := time.Parse(time.RFC3339Nano, *w.At)
	if err != nil {
		return Record{}, fmt.Errorf("%w: at: %w", ErrMalformed, err)
	}
	r := Record{Seq: *w.Seq, Prev: *w.Prev, At: at.UTC(), Kind: *w.Kind, Subject: *w.Subject, Actor: *w.Actor, Body: json.RawMessage(*w.Body)}
	c, err := r.Canonical()
	if err != nil {
		return Record{}, err
	}
	if !bytes.Equal(c, b) {
		return Record{}, ErrNotCanonical
	}
	return r, nil
}

// encodeBody is body's JSON as given: a json.RawMessage or []byte
// compacted, anything else through encoding/json (without HTML escapes).
func encodeBody(body any) (json.RawMessage, error) {
	var raw []byte
	switch v := body.(type) {
	case json.RawMessage:
		raw = v
	case []byte:
		raw = v
	}
	if raw != nil {
		if !utf8.Valid(raw) || !json.Valid(raw) {
			return nil, fmt.Errorf("%w: body is not JSON in UTF-8", ErrMalformed)
		}
		var out bytes.Buffer
		if err := json.Compact(&out, raw); err != nil {
			return nil, fmt.Errorf("%w: body: %w", ErrMalformed, err)
		}
		return out.Bytes(), nil
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, fmt.Errorf("%w: body: %w", ErrMalformed, err)
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

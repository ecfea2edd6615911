package stix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/jcs"
)

// ErrMalformed is wrapped by every refusal of a bundle or object.
var ErrMalformed = errors.New("malformed STIX")

// Limits bound what DecodeBundle and DecodeObject accept.
type Limits struct {
	MaxBytes       int // the whole bundle
	MaxObjects     int
	MaxObjectBytes int
	MaxDepth       int // nesting of arrays and objects, the bundle counting as 1
}

// DefaultLimits are the limits for a partner's bundle.
var DefaultLimits = Limits{MaxBytes: 16 << 20, MaxObjects: 10000, MaxObjectBytes: 64 << 10, MaxDepth: 16}

// Object is one decoded STIX object: its common properties and its
// bytes exactly as received.
type Object struct {
	Type         string
	ID           string
	SpecVersion  string
	Created      time.Time
	Modified     time.Time // Created for objects without modified (marking definitions)
	CreatedByRef string
	Raw          json.RawMessage
}

// Bundle is a decoded bundle.
type Bundle struct {
	ID      string
	Objects []Object
}

var timestampRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$`)

// ParseTimestamp reads a STIX timestamp: RFC 3339 in UTC with 'Z'.
func ParseTimestamp(s string) (time.Time, error) {
	if !timestampRE.MatchString(s) {
		return time.Time{}, fmt.Errorf("%w: timestamp %q: want RFC 3339 in UTC (…Z)", ErrMalformed, s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: timestamp %q: %w", ErrMalformed, s, err)
	}
	return t, nil
}

// FormatTimestamp writes t as STIX does, in milliseconds.
func FormatTimestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// ValidID tells whether s is a STIX identifier, type--uuid (lowercase).
func ValidID(s string) bool {
	typ, u, ok := strings.Cut(s, "--")
	if !ok || typ == "" || len(u) != 36 {
		return false
	}
	for i := 0; i < len(typ); i++ {
		if c := typ[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	for i := 0; i < 36; i++ {
		c := u[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// depth is the deepest nesting of arrays and objects in JSON text.
func depth(b []byte) int {
	d, maxD, in := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case in:
		case c == '{' || c == '[':
			d++
			maxD = max(maxD, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return maxD
}

// strict refuses JSON that is malformed, not I-JSON (duplicate members,
// lone surrogates, invalid UTF-8) or deeper than maxDepth.
func strict(b []byte, maxDepth int) error {
	if d := depth(b); d > maxDepth {
		return fmt.Errorf("%w: nested %d deep, limit %d", ErrMalformed, d, maxDepth)
	}
	if _, err := jcs.Transform(b); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// DecodeBundle decodes an untrusted bundle: every object is checked by
// DecodeObject; the bundle's type must be "bundle" and its id
// bundle--uuid.
func DecodeBundle(b []byte, lim Limits) (*Bundle, error) {
	if len(b) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: bundle of %d bytes, limit %d", ErrMalformed, len(b), lim.MaxBytes)
	}
	if err := strict(b, lim.MaxDepth); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	var h struct {
		Type    *string           `json:"type"`
		ID      string            `json:"id"`
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("bundle: %w: %w", ErrMalformed, err)
	}
	if h.Type == nil || *h.Type != "bundle" {
		return nil, fmt.Errorf("bundle: %w: type is not \"bundle\"", ErrMalformed)
	}
	if !ValidID(h.ID) || !strings.HasPrefix(h.ID, "bundle--") {
		return nil, fmt.Errorf("bundle: %w: id %q: want bundle--<uuid>", ErrMalformed, h.ID)
	}
	if len(h.Objects) > lim.MaxObjects {
		return nil, fmt.Errorf("bundle %s: %w: %d objects, limit %d", h.ID, ErrMalformed, len(h.Objects), lim.MaxObjects)
	}
	out := &Bundle{ID: h.ID, Objects: make([]Object, 0, len(h.Objects))}
	for i, raw := range h.Objects {
		o, err := decodeObject(raw, lim)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: object %d: %w", h.ID, i, err)
		}
		out.Objects = append(out.Objects, *o)
	}
	return out, nil
}

// DecodeObject decodes one untrusted object: I-JSON within the limits,
// an id of its own type, spec_version "2.1", created (and modified,
// where present) STIX timestamps.
func DecodeObject(raw []byte, lim Limits) (*Object, error) {
	if err := strict(raw, lim.MaxDepth); err != nil {
		return nil, err
	}
	return decodeObject(raw, lim)
}

func decodeObject(raw []byte, lim Limits) (*Object, error) {
	if len(raw) > lim.MaxObjectBytes {
		return nil, fmt.Errorf("%w: object of %d bytes, limit %d", ErrMalformed, len(raw), lim.MaxObjectBytes)
	}
	var h struct {
		Type, ID, SpecVersion, Created, Modified, CreatedByRef *string
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %w", ErrMalformed, err)
	}
	for name, p := range map[string]**string{"type": &h.Type, "id": &h.ID, "spec_version": &h.SpecVersion,
		"created": &h.Created, "modified": &h.Modified, "created_by_ref": &h.CreatedByRef} {
		if v, ok := m[name]; ok {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("%w: %s is not a string", ErrMalformed, name)
			}
			*p = &s
		}
	}
	if h.ID == nil || !ValidID(*h.ID) {
		return nil, fmt.Errorf("%w: id: want type--uuid", ErrMalformed)
	}
	o := &Object{ID: *h.ID, Raw: bytes.Clone(raw)}
	if h.Type == nil || !strings.HasPrefix(o.ID, *h.Type+"--") {
		return nil, fmt.Errorf("object %s: %w: type does not match the id", o.ID, ErrMalformed)
	}
	o.Type = *h.Type
	if h.SpecVersion == nil || *h.SpecVersion != "2.1" {
		return nil, fmt.Errorf("object %s: %w: spec_version: want 2.1", o.ID, ErrMalformed)
	}
	o.SpecVersion = "2.1"
	if h.Created == nil {
		return nil, fmt.Errorf("object %s: %w: created is required", o.ID, ErrMalformed)
	}
	var err error
	if o.Created, err = ParseTimestamp(*h.Created); err != nil {
		return nil, fmt.Errorf("object %s: created: %w", o.ID, err)
	}
	o.Modified = o.Created
	if h.Modified != nil {
		if o.Modified, err = ParseTimestamp(*h.Modified); err != nil {
			return nil, fmt.Errorf("object %s: modified: %w", o.ID, err)
		}
	}
	if h.CreatedByRef != nil {
		if !ValidID(*h.CreatedByRef) || !strings.HasPrefix(*h.CreatedByRef, "identity--") {
			return nil, fmt.Errorf("object %s: %w: created_by_ref %q: want identity--<uuid>", o.ID, ErrMalformed, *h.CreatedByRef)
		}
		o.CreatedByRef = *h.CreatedByRef
	}
	return o, nil
}

// DecodeEnvelope decodes the objects of an untrusted TAXII envelope,
// {"objects":[…]}, as DecodeBundle decodes a bundle's: the whole text
// I-JSON (duplicate members refused) within lim's size and depth, at
// most lim.MaxObjects objects, each checked by DecodeObject. "objects"
// is required (an array, possibly empty); "more" and "next" are ignored;
// a "type" member is refused (a bundle is not an envelope).
func DecodeEnvelope(b []byte, lim Limits) ([]Object, error) {
	if len(b) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: envelope of %d bytes, limit %d", ErrMalformed, len(b), lim.MaxBytes)
	}
	if err := strict(b, lim.MaxDepth); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, fmt.Errorf("envelope: %w: not a JSON object", ErrMalformed)
	}
	if _, ok := m["type"]; ok {
		return nil, fmt.Errorf("envelope: %w: has a type member (a bundle is posted as a bundle)", ErrMalformed)
	}
	field, ok := m["objects"]
	if !ok {
		return nil, fmt.Errorf("envelope: %w: objects is required", ErrMalformed)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(field, &raws); err != nil || raws == nil { // null leaves raws nil; [] does not
		return nil, fmt.Errorf("envelope: %w: objects is not an array", ErrMalformed)
	}
	if len(raws) > lim.MaxObjects {
		return nil, fmt.Errorf("envelope: %w: %d objects, limit %d", ErrMalformed, len(raws), lim.MaxObjects)
	}
	out := make([]Object, 0, len(raws))
	for i, raw := range raws {
		o, err := decodeObject(raw, lim)
		if err != nil {
			return nil, fmt.Errorf("envelope: object %d: %w", i, err)
		}
		out = append(out, *o)
	}
	return out, nil
}

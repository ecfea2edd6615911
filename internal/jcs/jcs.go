package jcs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of arrays and objects.
const MaxDepth = 64

// ErrNotIJSON is wrapped by every refusal of the input.
var ErrNotIJSON = errors.New("not canonicalizable JSON")

// Marshal returns the canonical bytes of v as encoding/json encodes it.
func Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return Transform(b)
}

// Transform returns the canonical form of the JSON text in.
func Transform(in []byte) ([]byte, error) {
	if !utf8.Valid(in) {
		return nil, fmt.Errorf("%w: invalid UTF-8", ErrNotIJSON)
	}
	if err := surrogates(in); err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(in))
	d.UseNumber()
	var out bytes.Buffer
	out.Grow(len(in))
	if err := value(d, &out, 0); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the value", ErrNotIJSON)
	}
	return out.Bytes(), nil
}

func value(d *json.Decoder, out *bytes.Buffer, depth int) error {
	t, err := d.Token()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotIJSON, err)
	}
	return token(d, t, out, depth)
}

type member struct {
	name  string
	key   []uint16
	value []byte
}

func token(d *json.Decoder, t json.Token, out *bytes.Buffer, depth int) error {
	switch v := t.(type) {
	case json.Delim:
		if depth >= MaxDepth {
			return fmt.Errorf("%w: nested deeper than %d", ErrNotIJSON, MaxDepth)
		}
		switch v {
		case '[':
			out.WriteByte('[')
			for i := 0; d.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := value(d, out, depth+1); err != nil {
					return err
				}
			}
			if _, err := d.Token(); err != nil {
				return fmt.Errorf("%w: %w", ErrNotIJSON, err)
			}
			out.WriteByte(']')
		case '{':
			var ms []member
			seen := map[string]bool{}
			for d.More() {
				k, err := d.Token()
				if err != nil {
					return fmt.Errorf("%w: %w", ErrNotIJSON, err)
				}
				name := k.(string)
				if seen[name] {
					return fmt.Errorf("%w: member %q appears twice", ErrNotIJSON, name)
				}
				seen[name] = true
				var b bytes.Buffer
				if err := value(d, &b, depth+1); err != nil {
					return err
				}
				ms = append(ms, member{name: name, key: utf16.Encode([]rune(name)), value: b.Bytes()})
			}
			if _, err := d.Token(); err != nil {
				return fmt.Errorf("%w: %w", ErrNotIJSON, err)
			}
			slices.SortFunc(ms, func(a, b member) int { return slices.Compare(a.key, b.key) })
			out.WriteByte('{')
			for i, m := range ms {
				if i > 0 {
					out.WriteByte(',')
				}
				writeString(out, m.name)
				out.WriteByte(':')
				out.Write(m.value)
			}
			out.WriteByte('}')
		default:
			return fmt.Errorf("%w: unexpected %q", ErrNotIJSON, v)
		}
	case string:
		writeString(out, v)
	case json.Number:
		s, err := Number(string(v))
		if err != nil {
			return err
		}
		out.WriteString(s)
	case bool:
		out.WriteString(strconv.FormatBool(v))
	case nil:
		out.WriteString("null")
	}
	return nil
}

// WriteString writes the string s (valid UTF-8) as RFC 8785 writes it,
// for callers that write an object of known members themselves.
func WriteString(out *bytes.Buffer, s string) { writeString(out, s) }

// writeString writes s with RFC 8785's escapes: \b \t \n \f \r \" \\ by
// name, other controls as \u00xx (lower-case hex), everything else as is.
func writeString(out *bytes.Buffer, s string) {
	out.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			out.WriteString(`\"`)
		case '\\':
			out.WriteString(`\\`)
		case '\b':
			out.WriteString(`\b`)
		case '\t':
			out.WriteString(`\t`)
		case '\n':
			out.WriteString(`\n`)
		case '\f':
			out.WriteString(`\f`)
		case '\r':
			out.WriteString(`\r`)
		default:
			if c < 0x20 {
				fmt.Fprintf(out, `\u%04x`, c)
			} else {
				out.WriteByte(c)
			}
		}
	}
	out.WriteByte('"')
}

// Number returns the JSON number s as ECMAScript's Number.prototype.toString
// prints the IEEE 754 double nearest to it (RFC 8785 §3.2.2.3): integers
// without a fraction, the shortest digits that round-trip, exponents only
// below 1e-6 and from 1e21.
func Number(s string) (string, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "", fmt.Errorf("%w: number %s is outside IEEE 754 double range", ErrNotIJSON, s)
	}
	if f == 0 {
		return "0", nil // -0 too
	}
	// Shortest round-trip digits and the decimal exponent: f = 0.d1d2… × 10^n.
	e := strconv.FormatFloat(math.Abs(f), 'e', -1, 64) // d.ddde±xx
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	n := x + 1 // position of the decimal point after the first n digits
	k := len(digits)
	var b strings.Builder
	if f < 0 {
		b.WriteByte('-')
	}
	switch {
	case k <= n && n <= 21:
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", n-k))
	case 0 < n && n <= 21:
		b.WriteString(digits[:n])
		b.WriteByte('.')
		b.WriteString(digits[n:])
	case -6 < n && n <= 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -n))
		b.WriteString(digits)
	default:
		b.WriteByte(digits[0])
		if k > 1 {
			b.WriteByte('.')
			b.WriteString(digits[1:])
		}
		b.WriteByte('e')
		if n-1 >= 0 {
			b.WriteByte('+')
		}
		b.WriteString(strconv.Itoa(n - 1))
	}
	return b.String(), nil
}

// surrogates refuses a \u escape of a lone UTF-16 surrogate, which
// encoding/json would silently turn into U+FFFD (and so sign a different
// string than the sender meant).
func surrogates(in []byte) error {
	inString := false
	for i := 0; i < len(in); i++ {
		switch c := in[i]; {
		case c == '"':
			inString = !inString
		case c == '\\' && inString:
			if i+1 < len(in) && in[i+1] == 'u' && i+5 < len(in) {
				u, err := strconv.ParseUint(string(in[i+2:i+6]), 16, 16)
				if err == nil && u >= 0xd800 && u <= 0xdfff {
					low := false
					if u < 0xdc00 && i+11 < len(in) && in[i+6] == '\\' && in[i+7] == 'u' {
						v, err := strconv.ParseUint(string(in[i+8:i+12]), 16, 16)
						low = err == nil && v >= 0xdc00 && v <= 0xdfff
					}
					if !low {
						return fmt.Errorf("%w: a lone surrogate \\u%04x in a string", ErrNotIJSON, u)
					}
					i += 6 // the low half's escape is skipped with the pair
				}
			}
			i++ // the escaped character
		}
	}
	return nil
}

// validUTF8 replaces each byte of s that is not part of valid UTF-8 with
// U+FFFD, as encoding/json does when it writes a string.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\ufffd")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Members returns the canonical bytes of the object of string members
// kv (name, value, name, value…) whose names are ASCII and given in
// increasing order: the same bytes as Marshal of a map of those members
// (invalid UTF-8 replaced by U+FFFD byte by byte, as encoding/json
// does), without encoding/json, a map or a sort. Intents and approvals have fixed
// member names; this is their fast path. Names out of order, repeated
// or not ASCII are refused (a programming error in a fixed list, which
// the tests of its callers catch).
func Members(kv ...string) ([]byte, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("%w: %d names and values: want pairs", ErrNotIJSON, len(kv))
	}
	n, prev := 2, ""
	for i, s := range kv {
		n += len(s) + 3
		if i%2 == 1 {
			continue
		}
		for j := 0; j < len(s); j++ {
			if s[j] >= utf8.RuneSelf {
				return nil, fmt.Errorf("%w: member %q: Members takes ASCII names", ErrNotIJSON, s)
			}
		}
		if i > 0 && prev >= s {
			return nil, fmt.Errorf("%w: member %q after %q: want names in increasing order, each once", ErrNotIJSON, s, prev)
		}
		prev = s
	}
	var out bytes.Buffer
	out.Grow(n)
	out.WriteByte('{')
	for i, s := range kv {
		switch {
		case i%2 == 1:
			out.WriteByte(':')
			s = validUTF8(s)
		case i > 0:
			out.WriteByte(',')
		}
		writeString(&out, s)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

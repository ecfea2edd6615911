package kafka

import (
	"bytes"
	"encoding/json"
	"math"

	"github.com/cordonhq/cordon/internal/chain"
)

// decodePartFast reads the frame of a part in the form cordon writes (known
// keys, plain ASCII strings, non-negative integers); items are cut out by
// matching brackets, outside strings, and validated when decoded. It
// reports false for anything else, which encoding/json then decodes.
func decodePartFast(b []byte) (Part, bool) {
	var p Part
	r := frameReader{b: b}
	if !r.byte1('{') {
		return p, false
	}
	for {
		key, ok := r.str()
		if !ok || !r.byte1(':') {
			return p, false
		}
		switch key {
		case "v":
			p.V, ok = r.int()
		case "kind":
			p.Kind, ok = r.str()
		case "chain":
			var c string
			c, ok = r.str()
			p.Chain = chain.Chain(c)
		case "network":
			p.Network, ok = r.str()
		case "block_number":
			var v uint64
			v, ok = r.uint()
			p.BlockHeight = v
		case "block_hash":
			p.BlockHash, ok = r.str()
		case "block_time":
			var v uint64
			v, ok = r.uint()
			p.BlockTime, ok = int64(v), ok && v <= math.MaxInt64
		case "part":
			p.Part, ok = r.int()
		case "parts":
			p.Parts, ok = r.int()
		case "items":
			p.Items, ok = r.items()
		default:
			ok = false
		}
		if !ok {
			return p, false
		}
		if r.byte1(',') {
			continue
		}
		if !r.byte1('}') {
			return p, false
		}
		r.ws()
		return p, r.i == len(r.b)
	}
}

type frameReader struct {
	b []byte
	i int
}

func (r *frameReader) ws() {
	for r.i < len(r.b) && (r.b[r.i] == ' ' || r.b[r.i] == '\t' || r.b[r.i] == '\n' || r.b[r.i] == '\r') {
		r.i++
	}
}

func (r *frameReader) byte1(c byte) bool {
	r.ws()
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

func (r *frameReader) str() (string, bool) {
	if !r.byte1('"') {
		return "", false
	}
	start := r.i
	for ; r.i < len(r.b); r.i++ {
		c := r.b[r.i]
		if c == '"' {
			r.i++
			return string(r.b[start : r.i-1]), true
		}
		if c < 0x20 || c > 0x7e || c == '\\' {
			return "", false
		}
	}
	return "", false
}

func (r *frameReader) uint() (uint64, bool) {
	r.ws()
	start := r.i
	var v uint64
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		v = v*10 + uint64(r.b[r.i]-'0')
		r.i++
	}
	n := r.i - start
	if n == 0 || n > 19 || (n > 1 && r.b[start] == '0') {
		return 0, false
	}
	return v, r.i == len(r.b) || (r.b[r.i] != '.' && r.b[r.i] != 'e' && r.b[r.i] != 'E')
}

func (r *frameReader) int() (int, bool) {
	v, ok := r.uint()
	return int(v), ok && v <= math.MaxInt32
}

// items cuts an array of objects into its elements.
func (r *frameReader) items() ([]json.RawMessage, bool) {
	if !r.byte1('[') {
		return nil, false
	}
	var out []json.RawMessage
	if r.byte1(']') {
		return out, false // empty: let encoding/json and the frame check answer
	}
	for {
		r.ws()
		start := r.i
		if !r.object() {
			return nil, false
		}
		out = append(out, r.b[start:r.i:r.i])
		if r.byte1(',') {
			continue
		}
		return out, r.byte1(']')
	}
}

// object skips one object: brackets balanced outside strings.
func (r *frameReader) object() bool {
	if r.i >= len(r.b) || r.b[r.i] != '{' {
		return false
	}
	depth := 0
	for ; r.i < len(r.b); r.i++ {
		switch r.b[r.i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				r.i++
				return true
			}
		case '"':
			// Jump to the closing quote; a backslash before it means
			// escapes, walked byte by byte.
			end := bytes.IndexByte(r.b[r.i+1:], '"')
			if end < 0 {
				return false
			}
			if bytes.IndexByte(r.b[r.i+1:r.i+1+end], '\\') < 0 {
				r.i += 1 + end
				continue
			}
			for r.i++; r.i < len(r.b) && r.b[r.i] != '"'; r.i++ {
				if r.b[r.i] == '\\' {
					r.i++
				}
			}
		}
	}
	return false
}

package txcheck

import (
	"errors"
	"fmt"
	"math/big"
)

// A strict RLP reader for the one shape the check takes: canonical
// encodings only (a single byte below 0x80 is never wrapped, lengths are
// the shortest, long forms only above 55 bytes, no leading zero bytes in
// a length or an integer), nothing after the value.

var errRLP = errors.New("rlp")

// item is one decoded RLP item: a byte string, or a list of items.
type item struct {
	str  []byte
	list []item
	isL  bool
}

// decodeRLP decodes b, which must be exactly one item.
func decodeRLP(b []byte) (item, error) {
	it, rest, err := next(b, 0)
	if err != nil {
		return item{}, err
	}
	if len(rest) != 0 {
		return item{}, fmt.Errorf("%w: %d bytes after the value", errRLP, len(rest))
	}
	return it, nil
}

const maxRLPDepth = 8

func next(b []byte, depth int) (item, []byte, error) {
	if depth > maxRLPDepth {
		return item{}, nil, fmt.Errorf("%w: nested deeper than %d", errRLP, maxRLPDepth)
	}
	if len(b) == 0 {
		return item{}, nil, fmt.Errorf("%w: unexpected end", errRLP)
	}
	p := b[0]
	switch {
	case p < 0x80:
		return item{str: b[:1]}, b[1:], nil
	case p <= 0xb7:
		n := int(p - 0x80)
		if len(b) < 1+n {
			return item{}, nil, fmt.Errorf("%w: a string of %d bytes, %d left", errRLP, n, len(b)-1)
		}
		if n == 1 && b[1] < 0x80 {
			return item{}, nil, fmt.Errorf("%w: the byte 0x%02x wrapped as a string (not canonical)", errRLP, b[1])
		}
		return item{str: b[1 : 1+n]}, b[1+n:], nil
	case p <= 0xbf:
		n, body, err := longLen(b, int(p-0xb7))
		if err != nil {
			return item{}, nil, err
		}
		return item{str: body[:n]}, body[n:], nil
	case p <= 0xf7:
		n := int(p - 0xc0)
		if len(b) < 1+n {
			return item{}, nil, fmt.Errorf("%w: a list of %d bytes, %d left", errRLP, n, len(b)-1)
		}
		l, err := items(b[1:1+n], depth)
		return l, b[1+n:], err
	default:
		n, body, err := longLen(b, int(p-0xf7))
		if err != nil {
			return item{}, nil, err
		}
		l, err := items(body[:n], depth)
		return l, body[n:], err
	}
}

// longLen reads a long form's length of ll bytes after b[0].
func longLen(b []byte, ll int) (int, []byte, error) {
	if len(b) < 1+ll {
		return 0, nil, fmt.Errorf("%w: truncated length", errRLP)
	}
	lb := b[1 : 1+ll]
	if lb[0] == 0 {
		return 0, nil, fmt.Errorf("%w: a length with a leading zero (not canonical)", errRLP)
	}
	if ll > 4 {
		return 0, nil, fmt.Errorf("%w: a length of %d bytes", errRLP, ll)
	}
	n := 0
	for _, c := range lb {
		n = n<<8 | int(c)
	}
	if n <= 55 {
		return 0, nil, fmt.Errorf("%w: the long form for %d bytes (not canonical)", errRLP, n)
	}
	body := b[1+ll:]
	if len(body) < n {
		return 0, nil, fmt.Errorf("%w: %d bytes announced, %d left", errRLP, n, len(body))
	}
	return n, body, nil
}

func items(b []byte, depth int) (item, error) {
	l := item{isL: true, list: []item{}}
	for len(b) > 0 {
		it, rest, err := next(b, depth+1)
		if err != nil {
			return item{}, err
		}
		l.list = append(l.list, it)
		b = rest
	}
	return l, nil
}

// uint reads a canonical RLP integer (no leading zero byte) of at most
// bits bits.
func (it item) uint(what string, bits int) (*big.Int, error) {
	if it.isL {
		return nil, fmt.Errorf("%w: %s is a list, want an integer", errRLP, what)
	}
	if len(it.str) > 0 && it.str[0] == 0 {
		return nil, fmt.Errorf("%w: %s has a leading zero byte (not canonical)", errRLP, what)
	}
	if len(it.str)*8 > bits {
		return nil, fmt.Errorf("%w: %s has %d bytes, more than %d bits", errRLP, what, len(it.str), bits)
	}
	return new(big.Int).SetBytes(it.str), nil
}

func (it item) bytes(what string) ([]byte, error) {
	if it.isL {
		return nil, fmt.Errorf("%w: %s is a list, want bytes", errRLP, what)
	}
	return it.str, nil
}

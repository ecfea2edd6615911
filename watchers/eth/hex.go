package eth

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/holiman/uint256"
)

var errNotHex = errors.New("not 0x-prefixed hex")

// parseQuantity parses a JSON-RPC QUANTITY (0x-prefixed, no leading zeros
// required) that fits 64 bits.
func parseQuantity(field, s string) (uint64, error) {
	if len(s) < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return 0, fmt.Errorf("%s %q: %w", field, trunc(s), errNotHex)
	}
	v, err := strconv.ParseUint(s[2:], 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: not a 64-bit hex quantity", field, trunc(s))
	}
	return v, nil
}

// parseBigQuantity parses a QUANTITY of up to 256 bits.
func parseBigQuantity(field, s string) (*uint256.Int, error) {
	if len(s) < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return nil, fmt.Errorf("%s %q: %w", field, trunc(s), errNotHex)
	}
	digits := s[2:]
	for len(digits) > 1 && digits[0] == '0' { // some nodes pad quantities
		digits = digits[1:]
	}
	v, err := uint256.FromHex("0x" + digits)
	if err != nil {
		return nil, fmt.Errorf("%s %q: not a 256-bit hex quantity", field, trunc(s))
	}
	return v, nil
}

// normHex checks that s is 0x followed by exactly n hex bytes and returns it
// lowercase.
func normHex(field, s string, n int) (string, error) {
	if len(s) != 2+2*n || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return "", fmt.Errorf("%s %q: want 0x and %d hex bytes", field, trunc(s), n)
	}
	lower := true
	for i := 2; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			lower = false
		default:
			return "", fmt.Errorf("%s %q: invalid hex character %q", field, trunc(s), c)
		}
	}
	if lower && s[1] == 'x' {
		return s, nil
	}
	b := []byte(s)
	b[1] = 'x'
	for i := 2; i < len(b); i++ {
		if b[i] >= 'A' && b[i] <= 'F' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b), nil
}

func normAddress(field, s string) (string, error) { return normHex(field, s, 20) }
func normHash(field, s string) (string, error)    { return normHex(field, s, 32) }

// hexByteLen returns the byte length of 0x-prefixed hex data.
func hexByteLen(field, s string) (int, error) {
	if len(s) < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || len(s)%2 != 0 {
		return 0, fmt.Errorf("%s %q: %w bytes", field, trunc(s), errNotHex)
	}
	return (len(s) - 2) / 2, nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

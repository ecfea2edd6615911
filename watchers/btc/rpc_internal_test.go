package btc

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeReplies(t *testing.T) {
	b, err := decodeHexString("getblock", json.RawMessage(`"00ff10"`), 100)
	require.NoError(t, err)
	require.Equal(t, []byte{0, 0xff, 0x10}, b)
	for _, tc := range []struct{ raw, want string }{
		{`null`, "want a hex string"},
		{`123`, "want a hex string"},
		{`"0g"`, "invalid byte"},
		{`"abc"`, "odd length"},
		{`"` + strings.Repeat("00", 60) + `"`, "more than the 100 allowed"},
		{`"`, "want a hex string"},
	} {
		_, err := decodeHexString("getblock", json.RawMessage(tc.raw), 100)
		require.ErrorContains(t, err, tc.want, tc.raw)
	}
	_, err = decodeUint("getblockcount", json.RawMessage(`-1`))
	require.ErrorContains(t, err, "want a non-negative integer")
	_, err = decodeHash("getblockhash", json.RawMessage(`"zz"`))
	require.ErrorContains(t, err, "64-digit hex hash")
	h, err := decodeHash("getblockhash", json.RawMessage(`"`+strings.Repeat("AB", 32)+`"`))
	require.NoError(t, err)
	require.Equal(t, strings.Repeat("ab", 32), h)
}

// FuzzDecodeReplies: the reply decoders never panic, and a hex string they
// accept is exactly twice as long as its bytes.
func FuzzDecodeReplies(f *testing.F) {
	f.Add([]byte(`"00ff"`))
	f.Add([]byte(`12`))
	f.Add([]byte(`"` + strings.Repeat("a", 64) + `"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if b, err := decodeHexString("x", raw, 1<<20); err == nil {
			require.Equal(t, len(raw)-2, 2*len(b))
		}
		_, _ = decodeUint("x", raw)
		if h, err := decodeHash("x", raw); err == nil {
			require.Len(t, h, 64)
		}
	})
}

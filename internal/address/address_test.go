package address

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		chain   chain.Chain
		network string
		in, out string
		err     string
	}{
		// EIP-55 test vectors.
		{chain.ETH, "", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", ""},
		{chain.ETH, "", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359", ""},
		{chain.ETH, "", "0XFB6916095CA1DF60BB79CE92CE3EA74C37C5D359", "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359", ""},
		{chain.ETH, "", " 0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb\n", "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb", ""},
		{chain.ETH, "", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "", "bad EIP-55 checksum"},
		{chain.ETH, "", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea", "", "38 hex digits"},
		{chain.ETH, "", "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "", "starts with 0x"},
		{chain.ETH, "", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg", "", "not hexadecimal"},
		{chain.BTC, "mainnet", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", ""},
		{chain.BTC, "mainnet", "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", ""},
		{chain.BTC, "mainnet", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", ""},
		{chain.BTC, "mainnet", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "", "not a mainnet address"},
		{chain.BTC, "mainnet", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", "", "mainnet"},
		{chain.BTC, "regtest", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "", "regtest"},
		{chain.BTC, "nosuchnet", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "", "nosuchnet"},
		{chain.ETH, "", "", "", "empty"},
		{chain.ETH, "", strings.Repeat("a", 200), "", "longer than any address"},
		{"sol", "", "x", "", "unknown chain"},
	} {
		got, err := Normalize(tc.chain, tc.network, tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			require.True(t, errors.Is(err, ErrInvalid))
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.out, got)
	}
}

// FuzzNormalize: never panics; a normal form is a fixed point.
func FuzzNormalize(f *testing.F) {
	f.Add("eth", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
	f.Add("btc", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")
	f.Add("btc", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
	f.Fuzz(func(t *testing.T, c, s string) {
		out, err := Normalize(chain.Chain(c), "mainnet", s)
		if err != nil {
			return
		}
		again, err := Normalize(chain.Chain(c), "mainnet", out)
		require.NoError(t, err)
		require.Equal(t, out, again)
	})
}

package stix

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

func TestHashValue(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	const addr = "0x8589427373D6D84E98730D7795D8f6f8731FDA16"
	h, err := HashValue(key, chain.ETH, "mainnet", addr)
	require.NoError(t, err)
	require.Len(t, h, 64)
	same, err := HashValue(key, chain.ETH, "mainnet", strings.ToLower(addr))
	require.NoError(t, err)
	require.Equal(t, h, same, "one normal form: the case does not matter")
	other, err := HashValue(key, chain.ETH, "sepolia", addr)
	require.NoError(t, err)
	require.NotEqual(t, h, other, "another network is another value")
	otherKey, err := HashValue(bytes.Repeat([]byte{8}, 32), chain.ETH, "mainnet", addr)
	require.NoError(t, err)
	require.NotEqual(t, h, otherKey)
	_, err = HashValue(key[:31], chain.ETH, "mainnet", addr)
	require.Error(t, err, "short key")
	_, err = HashValue(key, chain.ETH, "mainnet", "0x1234")
	require.Error(t, err, "not an address")
	_, err = HashValue(key, chain.BTC, "mainnet", addr)
	require.Error(t, err, "not a Bitcoin address")

	// An independent implementation (Python's hmac) agrees.
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	out, err := exec.Command(py, "-c", `import hmac,hashlib,sys
print(hmac.new(bytes([7])*32, b"cordon-privacy/v1\x00eth\x00mainnet\x00"+sys.argv[1].lower().encode(), hashlib.sha256).hexdigest())`, addr).Output()
	require.NoError(t, err)
	require.Equal(t, h, strings.TrimSpace(string(out)))
}

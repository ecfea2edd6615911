package hsm

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/stretchr/testify/require"
)

// finish on raw r‖s as a token returns them, low-S and high-S: the
// recovery id it finds is the one go-ethereum recovers the key with; a
// signature of another digest, or under another key, is refused.
func TestFinishRecoveryID(t *testing.T) {
	other, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	for i := range 200 {
		k, err := btcec.NewPrivateKey()
		require.NoError(t, err)
		digest := sha256.Sum256(fmt.Appendf(nil, "digest %d", i))
		compact, err := ecdsa.SignCompact(k, digest[:], true) // low-S, [V+31] r s
		require.NoError(t, err)
		raw := append([]byte(nil), compact[1:]...)
		if i%2 == 1 { // a high-S reply, as SoftHSM2 often gives
			var s btcec.ModNScalar
			s.SetByteSlice(raw[32:])
			s.Negate()
			b := s.Bytes()
			copy(raw[32:], b[:])
		}
		sig, high, err := finish(raw, digest, k.PubKey())
		require.NoError(t, err)
		require.Equal(t, i%2 == 1, high)
		eth := append(append(sig.R[:], sig.S[:]...), sig.V)
		pub, err := crypto.Ecrecover(digest[:], eth)
		require.NoError(t, err)
		require.Equal(t, k.PubKey().SerializeUncompressed(), pub)

		wrong := digest
		wrong[0] ^= 1
		_, _, err = finish(raw, wrong, k.PubKey())
		require.Error(t, err)
		_, _, err = finish(raw, digest, other.PubKey())
		require.Error(t, err)
	}
}

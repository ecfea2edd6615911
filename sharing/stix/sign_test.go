package stix

import (
	"crypto/ed25519"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/recordauth"
)

type keyring map[string]struct {
	id  string
	pub ed25519.PublicKey
}

func (k keyring) LookupKey(id string) (string, ed25519.PublicKey, bool) {
	e, ok := k[id]
	return e.id, e.pub, ok
}

const (
	idA = "identity--11111111-1111-4111-8111-111111111111"
	idB = "identity--22222222-2222-4222-8222-222222222222"
)

func testKey(seed byte, identity string) SigningKey {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	return SigningKey{Identity: identity, Key: ed25519.NewKeyFromSeed(s)}
}

func ring(ks ...SigningKey) keyring {
	r := keyring{}
	for _, k := range ks {
		pub := k.Key.Public().(ed25519.PublicKey)
		r[recordauth.KeyID(pub)] = struct {
			id  string
			pub ed25519.PublicKey
		}{k.Identity, pub}
	}
	return r
}

const obj = `{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created_by_ref":"` + idA + `","created":"2025-02-21T11:00:00.000Z","modified":"2025-02-21T11:00:00.000Z","x_amount":123456789012345678901234567890}`

func TestSignVerify(t *testing.T) {
	a, b := testKey(1, idA), testKey(2, idB)
	signed, err := Sign([]byte(obj), a)
	require.NoError(t, err)
	require.Contains(t, string(signed), "123456789012345678901234567890"[:5])
	s, err := Verify(signed, ring(a, b))
	require.NoError(t, err)
	require.Equal(t, idA, s.Identity)

	_, err = Verify([]byte(obj), ring(a))
	require.ErrorIs(t, err, ErrUnsigned)
	_, err = Verify(signed, ring(b))
	require.ErrorIs(t, err, ErrUnknownSigner)
	// Key of B claiming identity A.
	_, err = Sign([]byte(obj), SigningKey{Identity: idB, Key: b.Key})
	require.ErrorIs(t, err, ErrIdentityMismatch)
	bAsA, err := Sign([]byte(obj), SigningKey{Identity: idA, Key: b.Key})
	require.NoError(t, err)
	_, err = Verify(bAsA, ring(a, b))
	require.ErrorIs(t, err, ErrIdentityMismatch)
	// A changed byte.
	tampered := []byte(string(signed))
	i := len(`{"created":"2025-02-21T11:00:00.000Z","created_by_ref":"` + idA + `","id":"indicator--8`)
	tampered[i] = '9'
	_, err = Verify(tampered, ring(a))
	require.ErrorIs(t, err, ErrBadSignature)
	// Duplicate members are refused before anything else.
	_, err = Verify([]byte(`{"a":1,"a":2}`), ring(a))
	require.ErrorIs(t, err, ErrMalformed)
}

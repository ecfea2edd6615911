package partner

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/sharing/stix"
)

// TestRegistryVerifiesSignatures: the registry is the key lookup of
// sharing/stix, for partners' objects and our own.
func TestRegistryVerifiesSignatures(t *testing.T) {
	ca := devCA(t)
	_, aPriv, aKey := edKey(t)
	a := Partner{Name: "alpha", Identity: ident(1), SigningKey: aKey, Cert: issue(t, ca, "alpha").file}
	reg, err := New([]Partner{a}, Options{})
	require.NoError(t, err)
	obj := `{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2025-02-21T11:00:00.000Z","modified":"2025-02-21T11:00:00.000Z","created_by_ref":"%s","pattern":"[x:y = 'z']","pattern_type":"stix","valid_from":"2025-02-21T11:00:00.000Z"}`

	signed, err := stix.Sign([]byte(fmt.Sprintf(obj, ident(1))), stix.SigningKey{Identity: ident(1), Key: aPriv})
	require.NoError(t, err)
	s, err := stix.Verify(signed, reg)
	require.NoError(t, err)
	require.Equal(t, ident(1), s.Identity)

	selfPub, selfPriv, _ := edKey(t)
	ours, err := stix.Sign([]byte(fmt.Sprintf(obj, ident(100))), stix.SigningKey{Identity: ident(100), Key: selfPriv})
	require.NoError(t, err)
	_, err = stix.Verify(ours, reg)
	require.ErrorIs(t, err, stix.ErrUnknownSigner)
	require.NoError(t, reg.AddSelf(ident(100), selfPub))
	s, err = stix.Verify(ours, reg)
	require.NoError(t, err)
	require.Equal(t, ident(100), s.Identity)

	// alpha's key claiming our identity.
	forged, err := stix.Sign([]byte(fmt.Sprintf(obj, ident(100))), stix.SigningKey{Identity: ident(100), Key: aPriv})
	require.NoError(t, err)
	_, err = stix.Verify(forged, reg)
	require.ErrorIs(t, err, stix.ErrIdentityMismatch)
}

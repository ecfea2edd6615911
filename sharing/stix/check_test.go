package stix

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func object(t *testing.T, raw string) *Object {
	t.Helper()
	o, err := DecodeObject([]byte(raw), DefaultLimits)
	require.NoError(t, err)
	return o
}

const (
	indID   = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
	ownerID = "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"
)

func indicator(modified, name string) string {
	return `{"type":"indicator","spec_version":"2.1","id":"` + indID + `","created":"2026-12-01T10:00:00.000Z","modified":"` + modified +
		`","created_by_ref":"` + ownerID + `","name":"` + name + `","pattern":"[cryptocurrency-wallet:address = '0x1']","pattern_type":"stix","valid_from":"2026-12-01T10:00:00Z"}`
}

func TestCheck(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	require.NoError(t, Check(object(t, indicator("2026-12-02T12:04:59.000Z", "a")), now, MaxSkew), "inside the skew")
	for name, c := range map[string]struct {
		raw  string
		want error
	}{
		"future":         {indicator("2026-12-02T12:05:01.000Z", "a"), ErrFuture},
		"modified first": {indicator("2026-12-01T09:59:59.999Z", "a"), ErrOrder},
		"not accepted":   {`{"type":"malware","spec_version":"2.1","id":"malware--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-12-01T10:00:00Z"}`, ErrNotAccepted},
		"created future": {`{"type":"identity","spec_version":"2.1","id":"` + ownerID + `","created":"2027-01-01T00:00:00Z","modified":"2027-01-01T00:00:00Z"}`, ErrFuture},
	} {
		require.ErrorIs(t, Check(object(t, c.raw), now, MaxSkew), c.want, name)
	}
}

// Only a later modified replaces what is held: the same version again is
// a duplicate (even signed again), an older one a replay, and other
// content under the same modified a conflict.
func TestNewer(t *testing.T) {
	v1 := object(t, indicator("2026-12-01T10:00:00.000Z", "a"))
	v2 := object(t, indicator("2026-12-01T11:00:00.000Z", "a"))
	ok, err := Newer(nil, v1)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = Newer(v1, v2)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = Newer(v2, v1)
	require.ErrorIs(t, err, ErrStale, "a replay of the old version")
	ok, err = Newer(v2, object(t, indicator("2026-12-01T11:00:00.000Z", "a")))
	require.NoError(t, err)
	require.False(t, ok, "a duplicate")
	_, err = Newer(v2, object(t, indicator("2026-12-01T11:00:00.000Z", "b")))
	require.ErrorIs(t, err, ErrConflict)

	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	signed, err := Sign(v2.Raw, SigningKey{Identity: ownerID, Key: key})
	require.NoError(t, err)
	ok, err = Newer(v2, object(t, string(signed)))
	require.NoError(t, err)
	require.False(t, ok, "the same content signed is the same version")
	_, err = Newer(v2, object(t, `{"type":"identity","spec_version":"2.1","id":"`+ownerID+`","created":"2026-12-01T10:00:00Z"}`))
	require.Error(t, err, "not one object")
}

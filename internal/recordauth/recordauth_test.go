package recordauth

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSignVerify(t *testing.T) {
	k := Generate()
	api, _ := k.Signer(API)
	sig := api.Sign("decision", []byte("eth/t/0x1/native"), []byte(`{"a":1}`))
	at, err := k.Verify(API, "decision", []byte("eth/t/0x1/native"), []byte(`{"a":1}`), sig)
	require.NoError(t, err)
	require.Positive(t, at)
	for name, c := range map[string]struct {
		role        Role
		kind        string
		key, value  []byte
		sig         []byte
		want        error
		trustedOnly bool
	}{
		"another value": {API, "decision", []byte("eth/t/0x1/native"), []byte(`{"a":2}`), sig, ErrBad, false},
		"another key":   {API, "decision", []byte("eth/t/0x2/native"), []byte(`{"a":1}`), sig, ErrBad, false},
		"another kind":  {API, "address", []byte("eth/t/0x1/native"), []byte(`{"a":1}`), sig, ErrBad, false},
		"another role":  {Credit, "decision", []byte("eth/t/0x1/native"), []byte(`{"a":1}`), sig, ErrWrongRole, false},
		"unsigned":      {API, "decision", nil, nil, nil, ErrUnsigned, false},
		"garbage":       {API, "decision", nil, nil, []byte("v1 api x"), ErrMalformed, false},
	} {
		_, err := k.Verify(c.role, c.kind, c.key, c.value, c.sig)
		require.ErrorIs(t, err, c.want, name)
	}
	other := Generate(API)
	_, err = other.Verify(API, "decision", []byte("eth/t/0x1/native"), []byte(`{"a":1}`), sig)
	require.ErrorIs(t, err, ErrUnknown, "a key the reader does not trust")
	_, err = other.Verify(Intel, "x", nil, nil, sig)
	require.ErrorIs(t, err, ErrNoTrust)

	// Signing times strictly increase, even within one clock tick.
	prev := int64(0)
	for range 1000 {
		at, err := k.Verify(API, "k", nil, nil, api.Sign("k", nil, nil))
		require.NoError(t, err)
		require.Greater(t, at, prev)
		prev = at
	}
}

// FuzzVerify: whatever a record's signature header holds, Verify never
// panics and never accepts it for other bytes than were signed.
func FuzzVerify(f *testing.F) {
	k := Generate(API)
	api, _ := k.Signer(API)
	good := api.Sign("decision", []byte("key"), []byte("value"))
	f.Add(good, []byte("value"))
	f.Add([]byte("v1 api 0011223344556677 1 AAAA"), []byte("value"))
	f.Add([]byte(""), []byte(""))
	f.Fuzz(func(t *testing.T, sig, value []byte) {
		_, err := k.Verify(API, "decision", []byte("key"), value, sig)
		if err == nil && !bytes.Equal(value, []byte("value")) {
			t.Fatalf("accepted %q over %q, which the key never signed", sig, value)
		}
	})
}

// TestObserve: a signer that read a later signing time of its role (an
// instance whose clock is ahead) signs after it.
func TestObserve(t *testing.T) {
	k := Generate(Credit)
	s, _ := k.Signer(Credit)
	ahead := time.Now().Add(time.Hour).UnixNano()
	s.Observe(ahead)
	at, err := k.Verify(Credit, "deposit", nil, nil, s.Sign("deposit", nil, nil))
	require.NoError(t, err)
	require.Greater(t, at, ahead)
}

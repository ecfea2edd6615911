package audit

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDecodeRefuses: a record has one spelling; every other spelling of
// the same content, and every malformed record, is refused.
func TestDecodeRefuses(t *testing.T) {
	good := string(buildLog(t, 2, 100, testKey("k"))[1].Value)
	_, err := DecodeRecord([]byte(good))
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		value string
		want  error
	}{
		"space":             {strings.Replace(good, `,"kind"`, `, "kind"`, 1), ErrNotCanonical},
		"members reordered": {`{"v":"cordon-audit/v1",` + strings.Replace(good[1:], `,"v":"cordon-audit/v1"`, "", 1), ErrNotCanonical},
		"escaped letter":    {strings.Replace(good, `"kind":"finding"`, `"kind":"\u0066inding"`, 1), ErrNotCanonical},
		"number spelling":   {strings.Replace(good, `"seq":2`, `"seq":2.0`, 1), ErrMalformed},
		"time zone":         {strings.Replace(good, `T12:00:02Z`, `T13:00:02+01:00`, 1), ErrNotCanonical},
		"upper hex":         {strings.Replace(good, `"prev":"`, `"prev":"A`, 1), ErrMalformed},
		"unknown member":    {strings.Replace(good, `{"actor"`, `{"a":"","actor"`, 1), ErrMalformed},
		"missing member":    {strings.Replace(good, `"subject":"wd_000001",`, ``, 1), ErrMalformed},
		"other version":     {strings.Replace(good, `cordon-audit/v1`, `cordon-audit/v2`, 1), ErrMalformed},
		"duplicate member":  {strings.Replace(good, `{"actor":"token-exchange"`, `{"actor":"x","actor":"token-exchange"`, 1), ErrNotCanonical},
		"trailing data":     {good + " {}", ErrMalformed},
		"seq zero":          {strings.Replace(good, `"seq":2`, `"seq":0`, 1), ErrMalformed},
		"seq too large":     {strings.Replace(good, `"seq":2`, `"seq":9007199254740992`, 1), ErrMalformed},
		"body not json":     {strings.Replace(good, `"body":"{`, `"body":"x{`, 1), ErrMalformed},
		"not json":          {good[:len(good)-1], ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			require.NotEqual(t, good, tc.value, "the case changes the record")
			_, err := DecodeRecord([]byte(tc.value))
			require.ErrorIs(t, err, tc.want)
		})
	}
}

// FuzzDecodeRecord: the decoder never panics, and what it accepts is
// exactly its own canonical bytes.
func FuzzDecodeRecord(f *testing.F) {
	for _, e := range buildLog(f, 8, 3, testKey("k")) {
		f.Add(e.Value)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"v":"cordon-audit/v1","seq":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		c, err := r.Canonical()
		require.NoError(t, err)
		require.Equal(t, b, c)
		back, err := DecodeRecord(c)
		require.NoError(t, err)
		require.Equal(t, r, back)
	})
}

package jcs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Members writes exactly what Marshal writes for a map of the same
// members, and refuses names out of order, repeated or not ASCII.
func FuzzMembers(f *testing.F) {
	f.Add("wd_1", "\u2028\x00\xff", "€\"\\")
	f.Add("", "\U0001F600", "a\xedb\xa0\x80")
	f.Add("<&>", "\u2028\u2029", "\"\\\b\f\n\r\t")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		want, err := Marshal(map[string]string{"amount": a, "id": b, "v": c})
		require.NoError(t, err)
		got, err := Members("amount", a, "id", b, "v", c)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	})
}

func TestMembersRefuses(t *testing.T) {
	for _, kv := range [][]string{
		{"b", "1", "a", "2"}, {"a", "1", "a", "2"}, {"é", "1"}, {"a"},
	} {
		_, err := Members(kv...)
		require.ErrorIs(t, err, ErrNotIJSON, "%q", kv)
	}
	b, err := Members()
	require.NoError(t, err)
	require.Equal(t, "{}", string(b))
}

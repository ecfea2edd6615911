package jcs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// StringMap writes exactly what Marshal writes for every map of strings.
func FuzzStringMap(f *testing.F) {
	for _, s := range [][3]string{
		{"id", "wd_1", "amount"}, {"<&>", "\u2028\u2029", "\x00\x1f\x7f"}, {"\xff\xfe", "a\xedb\xa0\x80", "\"\\\b\f\n\r\t"},
		{"\U0001F600", "\uE000", "€"}, {"", "", "x"}, {"v", "cordon-intent/v1", "requested"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		for _, m := range []map[string]string{{a: b, b: c, c: a}, {"v": a, "id": b, "requested": c, a + c: b}} {
			want, werr := Marshal(m)
			got, err := StringMap(m)
			if werr != nil {
				require.Error(t, err, "Marshal refused: %v", werr)
				continue
			}
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		}
	})
}

// Members writes exactly what StringMap writes for the same members, and
// refuses names out of order, repeated or not ASCII.
func FuzzMembers(f *testing.F) {
	f.Add("wd_1", "\u2028\x00\xff", "€\"\\")
	f.Add("", "\U0001F600", "a\xedb\xa0\x80")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		want, err := StringMap(map[string]string{"amount": a, "id": b, "v": c})
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

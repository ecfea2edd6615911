package jcs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The examples of RFC 8785: §3.2.2 (sorting and strings), Appendix B
// (numbers) and the §3.2.3 sort example.
func TestRFC8785(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"numbers":[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null, true, false]}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		{`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		{` [ 1 , { "b" : [ ] , "a" : { } } ] `, `[1,{"a":{},"b":[]}]`},
	} {
		got, err := Transform([]byte(tc.in))
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, string(got), tc.in)
	}
}

// Appendix B's IEEE 754 table: the double's bits and how ECMAScript prints it.
func TestNumbers(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "-0": "0", "5e-324": "5e-324", "-5e-324": "-5e-324",
		"1.7976931348623157e308": "1.7976931348623157e+308", "-1.7976931348623157e308": "-1.7976931348623157e+308",
		"9007199254740992": "9007199254740992", "-9007199254740992": "-9007199254740992",
		"295147905179352830000": "295147905179352830000", "9.999999999999997e22": "9.999999999999997e+22",
		"1e23": "1e+23", "1.0000000000000001e23": "1.0000000000000001e+23", "999999999999999700000": "999999999999999700000",
		"999999999999999900000": "999999999999999900000", "1e21": "1e+21", "9.999999999999997e-7": "9.999999999999997e-7",
		"0.000001": "0.000001", "3.333333333333333e-7": "3.333333333333333e-7", "1e-7": "1e-7",
		"0.0000001": "1e-7", "1.0": "1", "100": "100", "123.456": "123.456", "-1.5e3": "-1500",
		"0.1": "0.1", "1e-6": "0.000001", "4.35": "4.35", "0.002": "0.002",
	} {
		got, err := Number(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"1e309", "-1e400"} {
		_, err := Number(bad)
		require.ErrorIs(t, err, ErrNotIJSON, bad)
	}
}

func TestRefused(t *testing.T) {
	for name, in := range map[string]string{
		"duplicate member":  `{"a":1,"a":2}`,
		"lone high":         `{"a":"\ud800"}`,
		"lone low":          `{"a":"\udc00x"}`,
		"high then text":    `["\ud83dx\ude00"]`,
		"trailing data":     `{} {}`,
		"not json":          `{"a":}`,
		"invalid utf8":      "\"\xff\"",
		"huge number":       `[1e999]`,
		"too deep":          strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
		"truncated":         `{"a":[1,2`,
		"escaped backslash": `{"a":"\\"}x`,
	} {
		_, err := Transform([]byte(in))
		require.ErrorIs(t, err, ErrNotIJSON, name)
	}
	// An escaped backslash before a u is not an escape of a surrogate.
	got, err := Transform([]byte(`["\\ud800"]`))
	require.NoError(t, err)
	require.Equal(t, `["\\ud800"]`, string(got))
}

func TestMarshal(t *testing.T) {
	got, err := Marshal(struct {
		B string `json:"b"`
		A int    `json:"a"`
	}{"<&>", 7})
	require.NoError(t, err)
	require.Equal(t, `{"a":7,"b":"<&>"}`, string(got)) // encoding/json's \u003c escapes are undone
}

// Canonical output is a fixed point, and parses to the same value.
func FuzzTransform(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,null,"x\u0001"]}`, `[1e30,0.1,-0]`, `"\ud83d\ude00"`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Transform(in)
		if err != nil {
			return
		}
		again, err := Transform(out)
		require.NoError(t, err, "canonical output refused: %q", out)
		require.Equal(t, string(out), string(again))
	})
}

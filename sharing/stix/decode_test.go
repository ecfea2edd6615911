package stix

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func bundle(objs ...string) string {
	return `{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[` + strings.Join(objs, ",") + `]}`
}

func TestDecodeBundle(t *testing.T) {
	b, err := DecodeBundle([]byte(bundle(obj)), DefaultLimits)
	require.NoError(t, err)
	require.Len(t, b.Objects, 1)
	require.Equal(t, obj, string(b.Objects[0].Raw), "raw bytes kept")
	require.Equal(t, "indicator", b.Objects[0].Type)
	require.Equal(t, idA, b.Objects[0].CreatedByRef)

	small := DefaultLimits
	small.MaxObjects = 1
	for _, tc := range []struct {
		name, in, err string
		lim           Limits
	}{
		{"duplicate member", `{"type":"bundle","type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d"}`, "appears twice", DefaultLimits},
		{"malformed", `{"type":"bundle"`, "malformed", DefaultLimits},
		{"wrong type", strings.Replace(bundle(), `"bundle","id"`, `"x","id"`, 1), `not "bundle"`, DefaultLimits},
		{"bad bundle id", strings.Replace(bundle(), "bundle--5d", "bundle--5D", 1), "want bundle--<uuid>", DefaultLimits},
		{"too many", bundle(obj, obj), "2 objects, limit 1", small},
		{"too big", bundle(obj), "bytes, limit 10", Limits{MaxBytes: 10, MaxObjects: 1, MaxObjectBytes: 10, MaxDepth: 5}},
		{"object too big", bundle(obj), "object of", Limits{MaxBytes: 1 << 20, MaxObjects: 1, MaxObjectBytes: 100, MaxDepth: 5}},
		{"too deep", bundle(`{"a":[[[[[[1]]]]]]}`), "nested 9 deep", Limits{MaxBytes: 1 << 20, MaxObjects: 1, MaxObjectBytes: 100, MaxDepth: 5}},
		{"spec version", bundle(strings.Replace(obj, `"2.1"`, `"2.0"`, 1)), "spec_version", DefaultLimits},
		{"id type", bundle(strings.Replace(obj, `"id":"indicator--`, `"id":"identity--`, 1)), "type does not match", DefaultLimits},
		{"bad uuid", bundle(strings.Replace(obj, `8e2e2d2b-17d4`, `8e2e2d2b17d4`, 1)), "want type--uuid", DefaultLimits},
		{"offset time", bundle(strings.Replace(obj, `"created":"2025-02-21T11:00:00.000Z"`, `"created":"2025-02-21T11:00:00+01:00"`, 1)), "created: ", DefaultLimits},
		{"bad modified", bundle(strings.Replace(obj, `"modified":"2025-02-21T11:00:00.000Z"`, `"modified":"2025-02-31T11:00:00Z"`, 1)), "modified: ", DefaultLimits},
		{"lone surrogate", bundle(strings.Replace(obj, `"x_amount"`, `"x_\ud800"`, 1)), "surrogate", DefaultLimits},
		{"created_by_ref", bundle(strings.Replace(obj, idA, "indicator--11111111-1111-4111-8111-111111111111", 1)), "created_by_ref", DefaultLimits},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeBundle([]byte(tc.in), tc.lim)
			require.ErrorIs(t, err, ErrMalformed)
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func FuzzDecodeBundle(f *testing.F) {
	f.Add([]byte(bundle(obj)))
	f.Add([]byte(bundle(obj, `{"type":"identity","spec_version":"2.1","id":"`+idA+`","created":"2025-01-01T00:00:00Z"}`)))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := DecodeBundle(b, DefaultLimits)
		if err != nil {
			return
		}
		for _, o := range out.Objects {
			require.True(t, ValidID(o.ID))
			require.Equal(t, "2.1", o.SpecVersion)
		}
	})
}

func FuzzVerify(f *testing.F) {
	a := testKey(1, idA)
	signed, err := Sign([]byte(obj), a)
	require.NoError(f, err)
	f.Add(signed)
	f.Add([]byte(obj))
	keys := ring(a)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Verify(b, keys)
		if err == nil {
			require.Equal(t, idA, s.Identity)
		}
	})
}

func envelope(objs ...string) string { return `{"objects":[` + strings.Join(objs, ",") + `]}` }

func TestDecodeEnvelope(t *testing.T) {
	objs, err := DecodeEnvelope([]byte(envelope(obj)), DefaultLimits)
	require.NoError(t, err)
	require.Len(t, objs, 1)
	require.Equal(t, obj, string(objs[0].Raw), "raw bytes kept")
	require.Equal(t, "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", objs[0].ID)

	objs, err = DecodeEnvelope([]byte(`{"objects":[],"more":false}`), DefaultLimits)
	require.NoError(t, err)
	require.Empty(t, objs)

	small := DefaultLimits
	small.MaxObjects = 1
	for _, tc := range []struct {
		name, in, err string
		lim           Limits
	}{
		{"duplicate member", `{"objects":[],"objects":[]}`, "appears twice", DefaultLimits},
		{"duplicate in object", envelope(strings.Replace(obj, `"x_amount"`, `"type":"indicator","x_amount"`, 1)), "appears twice", DefaultLimits},
		{"malformed", `{"objects":[`, "malformed", DefaultLimits},
		{"trailing", envelope(obj) + `}`, "malformed", DefaultLimits},
		{"array", `[` + obj + `]`, "not a JSON object", DefaultLimits},
		{"null", `null`, "not a JSON object", DefaultLimits},
		{"no objects", `{"more":false}`, "objects is required", DefaultLimits},
		{"objects null", `{"objects":null}`, "not an array", DefaultLimits},
		{"objects object", `{"objects":{}}`, "not an array", DefaultLimits},
		{"a bundle", bundle(obj), "has a type member", DefaultLimits},
		{"too many", envelope(obj, obj), "2 objects, limit 1", small},
		{"too big", envelope(obj), "envelope of", Limits{MaxBytes: 10, MaxObjects: 1, MaxObjectBytes: 10, MaxDepth: 5}},
		{"object too big", envelope(obj), "object of", Limits{MaxBytes: 1 << 20, MaxObjects: 1, MaxObjectBytes: 100, MaxDepth: 5}},
		{"too deep", envelope(`{"a":[[[[[[1]]]]]]}`), "nested 9 deep", Limits{MaxBytes: 1 << 20, MaxObjects: 1, MaxObjectBytes: 100, MaxDepth: 5}},
		{"null object", envelope(`null`), "want type--uuid", DefaultLimits},
		{"spec version", envelope(strings.Replace(obj, `"2.1"`, `"2.0"`, 1)), "spec_version", DefaultLimits},
		{"lone surrogate", envelope(strings.Replace(obj, `"x_amount"`, `"x_\ud800"`, 1)), "surrogate", DefaultLimits},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEnvelope([]byte(tc.in), tc.lim)
			require.ErrorIs(t, err, ErrMalformed)
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(envelope(obj)))
	f.Add([]byte(envelope(obj, `{"type":"identity","spec_version":"2.1","id":"`+idA+`","created":"2025-01-01T00:00:00Z"}`)))
	f.Add([]byte(`{"objects":[],"more":true,"next":"x"}`))
	f.Add([]byte(bundle(obj)))
	f.Fuzz(func(t *testing.T, b []byte) {
		objs, err := DecodeEnvelope(b, DefaultLimits)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		for _, o := range objs {
			require.True(t, ValidID(o.ID))
			require.Equal(t, "2.1", o.SpecVersion)
			// Each object, re-decoded alone, is the same object.
			again, err := DecodeObject(o.Raw, DefaultLimits)
			require.NoError(t, err)
			require.Equal(t, o, *again)
		}
	})
}

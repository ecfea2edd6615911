package partner

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/sharing/taxii"
)

// object is an indicator with the given object markings and granular
// marking references.
func object(refs []string, granular ...string) []byte {
	var b strings.Builder
	b.WriteString(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"`)
	if refs != nil {
		fmt.Fprintf(&b, `,"object_marking_refs":["%s"]`, strings.Join(refs, `","`))
	}
	if len(granular) > 0 {
		b.WriteString(`,"granular_markings":[`)
		for i, g := range granular {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"marking_ref":"%s","selectors":["pattern"]}`, g)
		}
		b.WriteString("]")
	}
	b.WriteString("}")
	return []byte(b.String())
}

const statement = "marking-definition--a1b2c3d4-0000-4000-8000-000000000000" // not a TLP marking

func TestTLPOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
		want intel.TLP
	}{
		{"clear", object([]string{MarkingClear}), intel.TLPClear},
		{"green", object([]string{MarkingGreen}), intel.TLPGreen},
		{"amber", object([]string{MarkingAmber}), intel.TLPAmber},
		{"amber+strict", object([]string{MarkingAmberStrict}), intel.TLPAmberStrict},
		{"red", object([]string{MarkingRed}), intel.TLPRed},
		{"1.0 white", object([]string{MarkingV1White}), intel.TLPClear},
		{"1.0 green", object([]string{MarkingV1Green}), intel.TLPGreen},
		{"1.0 amber", object([]string{MarkingV1Amber}), intel.TLPAmber},
		{"1.0 red", object([]string{MarkingV1Red}), intel.TLPRed},
		{"unmarked is amber", object(nil), intel.TLPAmber},
		{"empty markings is amber", object([]string{}), intel.TLPAmber},
		{"a statement only is amber", object([]string{statement}), intel.TLPAmber},
		{"statement and clear", object([]string{statement, MarkingClear}), intel.TLPClear},
		{"most restricted wins", object([]string{MarkingClear, MarkingRed, MarkingGreen}), intel.TLPRed},
		{"most restricted wins across versions", object([]string{MarkingV1Amber, MarkingAmberStrict, MarkingGreen}), intel.TLPAmberStrict},
		{"granular red", object([]string{MarkingGreen}, MarkingRed), intel.TLPRed},
		{"granular only", object(nil, MarkingGreen), intel.TLPGreen},
		// Crafted objects: a reader taking the last (or first) of a
		// duplicate member, or matching names without case, must not
		// find a less restricted marking than any reader would.
		{"duplicate member, red first", []byte(`{"object_marking_refs":["` + MarkingRed + `"],"object_marking_refs":["` + MarkingClear + `"]}`), intel.TLPRed},
		{"duplicate member, red last", []byte(`{"object_marking_refs":["` + MarkingClear + `"],"object_marking_refs":["` + MarkingRed + `"]}`), intel.TLPRed},
		{"duplicate marking_ref", []byte(`{"granular_markings":[{"marking_ref":"` + MarkingRed + `","marking_ref":"` + MarkingClear + `"}]}`), intel.TLPRed},
		{"name in other case is not the member", []byte(`{"Object_Marking_Refs":["` + MarkingClear + `"]}`), intel.TLPAmber},
		{"escaped name is the member", []byte(`{"object_marking_ref\u0073":["` + MarkingClear + `"]}`), intel.TLPClear},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TLPOf(tc.raw)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	for _, bad := range []string{`not json`, `{"a":1} {}`, `{"a":1`, `{"granular_markings":[{"marking_ref":1}]}`, `{"granular_markings":[1]}`, `{"object_marking_refs":"` + MarkingClear + `"}`, `{"object_marking_refs":[1]}`, `[]`} {
		_, err := TLPOf([]byte(bad))
		require.Error(t, err, bad)
	}
}

// TestMayReceive is the matrix of every TLP against every partner
// setting, plus collections the partner may not read.
func TestMayReceive(t *testing.T) {
	ca := devCA(t)
	mk := func(n int, name, maxTLP string, amber, strict bool) Partner {
		p := pinned(t, n, name, issue(t, ca, name).file)
		p.MaxTLP, p.Amber, p.AmberStrict, p.Read = maxTLP, amber, strict, []string{"intel"}
		return p
	}
	reg, err := New([]Partner{
		mk(1, "clear", "clear", false, false),
		mk(2, "green", "green", false, false),
		mk(3, "default", "", false, false), // green
		mk(4, "amber", "amber", true, false),
		mk(5, "strict", "amber+strict", false, true),
		mk(6, "strict-amber", "amber+strict", true, true),
	}, Options{})
	require.NoError(t, err)

	objs := map[string][]byte{
		"clear":        object([]string{MarkingClear}),
		"white":        object([]string{MarkingV1White}),
		"green":        object([]string{MarkingGreen}),
		"amber":        object([]string{MarkingAmber}),
		"amber-v1":     object([]string{MarkingV1Amber}),
		"unmarked":     object(nil),
		"amber+strict": object([]string{MarkingAmberStrict}),
		"red":          object([]string{MarkingRed}),
		"red-v1":       object([]string{MarkingV1Red}),
		"green+red":    object([]string{MarkingGreen}, MarkingRed),
		"broken":       []byte(`{"object_marking_refs":{}}`),
	}
	yes := map[string][]string{
		"clear":        {"clear", "white"},
		"green":        {"clear", "white", "green"},
		"default":      {"clear", "white", "green"},
		"amber":        {"clear", "white", "green", "amber", "amber-v1", "unmarked"},
		"strict":       {"clear", "white", "green", "amber", "amber-v1", "unmarked", "amber+strict"},
		"strict-amber": {"clear", "white", "green", "amber", "amber-v1", "unmarked", "amber+strict"},
	}
	for partner, ok := range yes {
		for obj, raw := range objs {
			rec := &taxii.Record{Raw: raw}
			want := false
			for _, o := range ok {
				want = want || o == obj
			}
			c := taxii.Caller{Name: partner}
			require.Equal(t, want, reg.MayReceive(c, "intel", rec), "%s receives %s", partner, obj)
			require.False(t, reg.MayReceive(c, "other", rec), "%s reads no collection other", partner)
		}
	}
	require.False(t, reg.MayReceive(taxii.Caller{Name: "nobody"}, "intel", &taxii.Record{Raw: objs["clear"]}))
	require.False(t, reg.MayReceive(taxii.Caller{Name: "green"}, "intel", nil))
}

func TestCanReadWrite(t *testing.T) {
	p := pinned(t, 1, "alpha", issue(t, devCA(t), "alpha").file)
	p.Read, p.Write = []string{"intel", "sightings"}, []string{"sightings"}
	reg, err := New([]Partner{p}, Options{})
	require.NoError(t, err)
	a := taxii.Caller{Name: "alpha"}
	require.True(t, reg.CanRead(a, "intel"))
	require.True(t, reg.CanRead(a, "sightings"))
	require.False(t, reg.CanRead(a, "other"))
	require.False(t, reg.CanWrite(a, "intel"))
	require.True(t, reg.CanWrite(a, "sightings"))
	require.False(t, reg.CanRead(taxii.Caller{Name: "beta"}, "intel"))
	require.False(t, reg.CanWrite(taxii.Caller{}, "sightings"))

	// The registry keeps its own copy of the lists.
	p.Read[0] = "other"
	require.True(t, reg.CanRead(a, "intel"))
	got, ok := reg.Partner("alpha")
	require.True(t, ok)
	got.Read[0] = "other"
	require.True(t, reg.CanRead(a, "intel"))
}

// FuzzTLPOf: objects from partners are untrusted. TLPOf never panics,
// gives one of the five TLPs, and never anything less restricted than
// AMBER unless a CLEAR or GREEN marking id is in the object.
func FuzzTLPOf(f *testing.F) {
	f.Add(object([]string{MarkingGreen}))
	f.Add(object([]string{MarkingClear, MarkingRed}, MarkingAmberStrict))
	f.Add(object(nil))
	f.Add([]byte(`{"object_marking_refs":[null]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := TLPOf(raw)
		if err != nil {
			return
		}
		require.Less(t, rank(got), 5)
		if rank(got) < rank(intel.TLPAmber) {
			s := string(raw)
			require.True(t, strings.Contains(s, MarkingClear[len("marking-definition--"):]) ||
				strings.Contains(s, MarkingGreen[len("marking-definition--"):]) ||
				strings.Contains(s, MarkingV1White[len("marking-definition--"):]) ||
				strings.Contains(s, MarkingV1Green[len("marking-definition--"):]) ||
				strings.Contains(s, `\u`), // an id written with escapes
				"%s from %q", got, raw)
		}
	})
}

package stix

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/intel"
)

const sightingID = "sighting--0f1e2d3c-4b5a-4968-8776-655443322110"

func TestSighting(t *testing.T) {
	raw, err := Sighting(convID, publisher, t0, 3, "withdrawal gate <hot wallet 2>", intel.TLPAmberStrict, sightingID)
	require.NoError(t, err)
	want := `{"count":3,"created":"2026-11-30T08:15:30.123Z","created_by_ref":"` + publisher + `",` +
		`"description":"withdrawal gate <hot wallet 2>","first_seen":"2026-11-30T08:15:30.123Z",` +
		`"id":"` + sightingID + `","last_seen":"2026-11-30T08:15:30.123Z","modified":"2026-11-30T08:15:30.123Z",` +
		`"object_marking_refs":["marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"],` +
		`"sighting_of_ref":"` + convID + `","spec_version":"2.1","type":"sighting","where_sighted_refs":["` + publisher + `"]}`
	require.Equal(t, want, string(raw))

	k := generatedKey(t)
	signed, err := Sign(raw, k)
	require.NoError(t, err)
	o, err := DecodeObject(signed, DefaultLimits)
	require.NoError(t, err)
	require.Equal(t, "sighting", o.Type)
	require.Equal(t, sightingID, o.ID)
	require.Equal(t, publisher, o.CreatedByRef)
	require.Equal(t, t0, o.Created)
	require.NoError(t, Check(o, now, MaxSkew))
	s, err := Verify(signed, ring(k))
	require.NoError(t, err)
	require.Equal(t, publisher, s.Identity)
	// A sighting made ahead of the partner's clock is refused by Check.
	ahead, err := Sighting(convID, publisher, now.Add(MaxSkew+time.Second), 1, "", intel.TLPGreen, sightingID)
	require.NoError(t, err)
	require.ErrorIs(t, Check(object(t, string(ahead)), now, MaxSkew), ErrFuture)

	// No where, no description; a count of 0 (looked, not seen) and the
	// largest count are written as given.
	for _, count := range []int{0, MaxSightingCount} {
		raw, err := Sighting(convID, publisher, t0, count, "", intel.TLPClear, sightingID)
		require.NoError(t, err)
		require.NotContains(t, string(raw), "description")
		var m struct {
			Count *int `json:"count"`
		}
		require.NoError(t, json.Unmarshal(raw, &m))
		require.Equal(t, count, *m.Count)
	}
}

func TestSightingRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		indicator, identity string
		seen                time.Time
		count               int
		where               string
		tlp                 intel.TLP
		id, message         string
	}{
		"id of another type": {convID, publisher, t0, 1, "", intel.TLPGreen, "indicator--0f1e2d3c-4b5a-4968-8776-655443322110", "sighting--<uuid>"},
		"not an indicator":   {"malware--3f9a8c12-7b4e-4d21-9c5a-1e2f3a4b5c6d", publisher, t0, 1, "", intel.TLPGreen, sightingID, "sighting_of_ref"},
		"not an identity":    {convID, "organization--3f9a8c12-7b4e-4d21-9c5a-1e2f3a4b5c6d", t0, 1, "", intel.TLPGreen, sightingID, "identity--<uuid>"},
		"no time":            {convID, publisher, time.Time{}, 1, "", intel.TLPGreen, sightingID, "seen is required"},
		"below a ms":         {convID, publisher, t0.Add(time.Microsecond), 1, "", intel.TLPGreen, sightingID, "finer than a millisecond"},
		"negative count":     {convID, publisher, t0, -1, "", intel.TLPGreen, sightingID, "count -1"},
		"count too large":    {convID, publisher, t0, MaxSightingCount + 1, "", intel.TLPGreen, sightingID, "count 1000000000"},
		"no TLP":             {convID, publisher, t0, 1, "", "", sightingID, "TLP"},
		"where not UTF-8":    {convID, publisher, t0, 1, "\xc3", intel.TLPGreen, sightingID, "where"},
		"where too long":     {convID, publisher, t0, 1, strings.Repeat("w", 4097), intel.TLPGreen, sightingID, "where"},
	} {
		_, err := Sighting(c.indicator, c.identity, c.seen, c.count, c.where, c.tlp, c.id)
		require.ErrorContains(t, err, c.message, name)
	}
}

package intel

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIndicatorsFromSTIXMatchesParseSTIX(t *testing.T) {
	var b struct {
		Objects []json.RawMessage `json:"objects"`
	}
	require.NoError(t, json.Unmarshal([]byte(testBundle), &b))
	f, err := ParseSTIX([]byte(testBundle), "stix:isac", "fallback-source", now)
	require.NoError(t, err)
	want := map[string]Indicator{}
	for _, in := range f.Indicators {
		in.FeedVersion, in.Creator = "", ""
		want[in.ID] = in
	}
	got := 0
	for _, raw := range b.Objects {
		var h struct{ Type, ID string }
		require.NoError(t, json.Unmarshal(raw, &h))
		ins, _, err := IndicatorsFromSTIX(raw, "stix:isac", "fallback-source", now)
		if h.Type != "indicator" {
			require.ErrorContains(t, err, "want indicator")
			continue
		}
		if err != nil {
			require.ErrorIs(t, err, ErrUnsupportedPattern, h.ID)
			continue
		}
		for _, in := range ins {
			if h.ID == "indicator--0c8ed0e1-8a55-4a88-a1f4-4bb0f3d4f8a9" {
				// The bundle's own red marking definition is not a standard id.
				require.Equal(t, TLPGreen, in.TLP)
				in.TLP = want[in.ID].TLP
			}
			require.Equal(t, want[in.ID], in)
			got++
		}
	}
	require.Equal(t, len(f.Indicators), got)
}

func TestIndicatorsFromSTIXRefuses(t *testing.T) {
	for _, tc := range []struct{ obj, err string }{
		{`{"type":"indicator","id":"bad","valid_from":"2025-01-01T00:00:00Z","pattern":"[cryptocurrency-wallet:value = 'x']"}`, "want type--uuid"},
		{`{"type":"indicator","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","pattern":"[cryptocurrency-wallet:value = '0x47666fab8bd0ac7003bce3f5c3585383f09486e2']"}`, "valid_from is required"},
		{`{"type":"indicator","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","valid_from":"2025-01-01T00:00:00Z","pattern":"[cryptocurrency-wallet:value = '0x47666fab8bd0ac7003bce3f5c3585383f09486e']"}`, "object indicator--8e2e2d2b"},
		{`{"type":"indicator","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","valid_from":"2025-01-01T00:00:00Z","pattern":"[cryptocurrency-wallet:value = 'Xyz']"}`, ErrEmpty.Error()},
		{`{"type":"indicator","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","valid_from":"2025-01-01T00:00:00Z","pattern":"[cryptocurrency-wallet:value = "}`, "pattern"},
		{`[]`, "STIX object"},
	} {
		_, _, err := IndicatorsFromSTIX(json.RawMessage(tc.obj), "p", "p", time.Unix(0, 0))
		require.ErrorContains(t, err, tc.err, tc.obj)
	}
}

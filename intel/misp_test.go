package intel

import (
	"os"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

// TestParseMISP reads a feed written from MISP's feed and event formats
// (testdata/misp: manifest.json and one file per event).
func TestParseMISP(t *testing.T) {
	f, err := ParseMISP(os.DirFS("testdata/misp"), "misp:partners", "fallback", now)
	require.NoError(t, err)
	by := map[string]Indicator{}
	for _, in := range f.Indicators {
		by[in.Value] = in
	}
	require.Len(t, f.Indicators, 4, "to_ids false, deleted, xmr, other coins and non-address attributes are left out")
	hop := by["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"]
	require.Equal(t, "indicator--1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9", hop.ID, "the attribute's UUID")
	require.Equal(t, "fallback", hop.Source, "the source is the importer's, never the file's")
	require.Equal(t, "CERT-Exchange", hop.Creator, "the creating organisation, informational")
	require.Equal(t, "misp:partners", hop.Feed)
	require.Equal(t, TLPAmber, hop.TLP, "the event's tlp: tag")
	require.Equal(t, CategoryHack, hop.Category, "from the event's tags")
	require.Equal(t, 90, hop.Confidence, "threat level high")
	require.Equal(t, "Exchange hack: laundering wallets", hop.Description)
	require.Equal(t, chain.BTC, hop.Chain)

	eth := by["0x47666fab8bd0ac7003bce3f5c3585383f09486e2"]
	require.Equal(t, chain.ETH, eth.Chain, "coin-address object with symbol ETH")
	require.Equal(t, "indicator--718293a4-b5c6-4e7f-a8f9-011223344556", eth.ID)

	tr := by["bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"]
	require.Equal(t, TLPClear, tr.TLP, "no tlp: tag: distribution 5 inherits the event's 3 (all communities)")
	require.Equal(t, CategoryRansomware, tr.Category)
	require.Equal(t, 70, tr.Confidence)
	require.Equal(t, TLPRed, by["0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"].TLP, "distribution 0: your organisation only")

	require.Len(t, f.Skipped, 2)
	require.Contains(t, f.Skipped[0], "xmr address 44AFFq5")
	require.Contains(t, f.Skipped[1], "LTC address LcNS6")
}

func TestParseMISPErrors(t *testing.T) {
	ev := func(body string) fstest.MapFS {
		return fstest.MapFS{
			"manifest.json": {Data: []byte(`{"5e6b8a0c-2f4d-4c8e-9a1b-3c2d1e0f9a8b": {"info": "x"}}`)},
			"5e6b8a0c-2f4d-4c8e-9a1b-3c2d1e0f9a8b.json": {Data: []byte(body)},
		}
	}
	_, err := ParseMISP(ev(`{"Event": {"uuid": "5e6b8a0c-2f4d-4c8e-9a1b-3c2d1e0f9a8b", "Attribute": [
		{"uuid": "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9", "type": "btc", "value": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "to_ids": true}]}}`), "x", "s", now)
	require.ErrorContains(t, err, "event 5e6b8a0c-2f4d-4c8e-9a1b-3c2d1e0f9a8b attribute 1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9")
	_, err = ParseMISP(ev(`{"Event": {"uuid": "x", "timestamp": "soon"}}`), "x", "s", now)
	require.ErrorContains(t, err, "event 5e6b8a0c")
	_, err = ParseMISP(ev(`{"Event"`), "x", "s", now)
	require.ErrorContains(t, err, "unexpected end")
	_, err = ParseMISP(ev(`{"nope": 1}`), "x", "s", now)
	require.ErrorContains(t, err, "no Event object")
	_, err = ParseMISP(fstest.MapFS{"manifest.json": {Data: []byte(`{"5e6b8a0c-2f4d-4c8e-9a1b-3c2d1e0f9a8b": {}}`)}}, "x", "s", now)
	require.ErrorContains(t, err, "5e6b8a0c-2f4d-4c8e-9a1b-3c2d1e0f9a8b.json")
	_, err = ParseMISP(fstest.MapFS{"manifest.json": {Data: []byte(`{"../../etc/passwd": {}}`)}}, "x", "s", now)
	require.ErrorContains(t, err, "not a UUID")
	_, err = ParseMISP(fstest.MapFS{}, "x", "s", now)
	require.ErrorContains(t, err, "manifest.json")
}

// FuzzParseMISPEvent: hostile events never panic; what parses is valid.
func FuzzParseMISPEvent(f *testing.F) {
	b, err := os.ReadFile("testdata/misp/5e6b8a0c-2f4d-4c8e-9a1b-3c2d1e0f9a8b.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, body []byte) {
		fsys := fstest.MapFS{
			"manifest.json": {Data: []byte(`{"5e6b8a0c-2f4d-4c8e-9a1b-3c2d1e0f9a8b": {}}`)},
			"5e6b8a0c-2f4d-4c8e-9a1b-3c2d1e0f9a8b.json": {Data: body},
		}
		feed, err := ParseMISP(fsys, "f", "s", now)
		if err != nil {
			return
		}
		for _, in := range feed.Indicators {
			again := in
			require.NoError(t, again.Validate())
		}
	})
}

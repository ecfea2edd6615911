package intel

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

// TestOFACXML reads both of OFAC's XML formats (fixtures written from the
// published schemas: SDN_ADVANCED.XML's features, sdn.xml's idList).
func TestOFACXML(t *testing.T) {
	adv, err := os.ReadFile("testdata/ofacxml/sdn_advanced.xml")
	require.NoError(t, err)
	f, err := ParseOFACXML(adv, "ofac:sdn", now)
	require.NoError(t, err)
	by := map[string]Indicator{}
	for _, in := range f.Indicators {
		by[in.Value] = in
	}
	require.Len(t, f.Indicators, 3)
	btc := by["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"]
	require.Equal(t, chain.BTC, btc.Chain)
	require.Equal(t, CategorySanctions, btc.Category)
	require.Equal(t, "25678", btc.Refs[0].ExternalID)
	require.Equal(t, chain.ETH, by["0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"].Chain)
	require.Equal(t, chain.ETH, by["0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"].Chain, "USDT on Ethereum")
	require.Len(t, f.Skipped, 2)
	require.Contains(t, f.Skipped[0], "XMR address 44AFF")
	require.Contains(t, f.Skipped[1], "USDT address TEAq")

	classic, err := os.ReadFile("testdata/ofacxml/sdn.xml")
	require.NoError(t, err)
	f, err = ParseOFACXML(classic, "ofac:sdn", now)
	require.NoError(t, err)
	require.Len(t, f.Indicators, 2)
	require.Equal(t, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", f.Indicators[0].Value)
	require.Equal(t, "25678", f.Indicators[0].Refs[0].ExternalID)
	require.Len(t, f.Skipped, 1)

	// Errors: a bad address (by line), truncation, other documents.
	bad := strings.Replace(string(adv), "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", 1)
	_, err = ParseOFACXML([]byte(bad), "x", now)
	require.ErrorContains(t, err, "line 29")
	require.ErrorContains(t, err, "checksum")
	_, err = ParseOFACXML(adv[:len(adv)/2], "x", now)
	require.ErrorContains(t, err, "OFAC XML: line")
	_, err = ParseOFACXML([]byte(`<html><body/></html>`), "x", now)
	require.ErrorContains(t, err, `root element "html"`)
	_, err = ParseOFACXML([]byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><sdnList>&a;</sdnList>`), "x", now)
	require.Error(t, err, "entities are not expanded")
}

// FuzzParseOFACXML: hostile XML never panics; what parses is valid.
func FuzzParseOFACXML(f *testing.F) {
	for _, p := range []string{"testdata/ofacxml/sdn_advanced.xml", "testdata/ofacxml/sdn.xml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		feed, err := ParseOFACXML(b, "f", now)
		if err != nil {
			return
		}
		for _, in := range feed.Indicators {
			again := in
			require.NoError(t, again.Validate())
		}
	})
}

package intel

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

var now = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

// TestOFACLists imports the real OFAC lists (testdata/ofac, copied from
// OFAC's published sanctioned_addresses_*.txt).
func TestOFACLists(t *testing.T) {
	want := map[string]struct {
		chain   chain.Chain
		n       int
		skipped int
	}{"XBT": {chain.BTC, 434, 1}, "ETH": {chain.ETH, 152, 0}, "USDT": {"", 15, 11}, "USDC": {chain.ETH, 2, 0}}
	for cur, w := range want {
		path := filepath.Join("testdata", "ofac", "sanctioned_addresses_"+cur+".txt")
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, cur, OFACCurrency(path))
		f, err := ParseOFACList(b, "ofac:"+cur, cur, now)
		require.NoError(t, err, cur)
		require.Len(t, f.Indicators, w.n, cur)
		require.Len(t, f.Skipped, w.skipped, cur)
		for _, in := range f.Indicators {
			if w.chain != "" {
				require.Equal(t, w.chain, in.Chain)
			}
			require.Equal(t, CategorySanctions, in.Category)
			require.Equal(t, "ofac", in.Source)
			require.Equal(t, f.Version, in.FeedVersion)
			if in.Chain == chain.ETH {
				require.Equal(t, strings.ToLower(in.Value), in.Value)
			}
		}
		again, err := ParseOFACList(b, "ofac:"+cur, cur, now.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, f.Version, again.Version, "the version is the content's")
		require.Equal(t, f.Indicators[0].ID, again.Indicators[0].ID, "ids are derived: the same on every import")
	}
	for _, cur := range []string{"LTC", "BCH"} {
		b, err := os.ReadFile(filepath.Join("testdata", "ofac", "sanctioned_addresses_"+cur+".txt"))
		require.NoError(t, err)
		_, err = ParseOFACList(b, "ofac:"+cur, cur, now)
		require.ErrorContains(t, err, "not imported")
	}
}

func TestOFACListErrors(t *testing.T) {
	bad := "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed\n0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD\n\n# comment\nbc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4\n"
	_, err := ParseOFACList([]byte(bad), "x", "ETH", now)
	var p Problems
	require.ErrorAs(t, err, &p)
	require.Len(t, p, 2)
	require.Equal(t, "line 2", p[0].Where)
	require.ErrorContains(t, p[0].Err, "checksum")
	require.Equal(t, "line 5", p[1].Where)
	_, err = ParseOFACList([]byte("\n# nothing\n"), "x", "ETH", now)
	require.True(t, errors.Is(err, ErrEmpty))
	// A truncated download: the last line cut mid-address.
	b, err := os.ReadFile(filepath.Join("testdata", "ofac", "sanctioned_addresses_XBT.txt"))
	require.NoError(t, err)
	_, err = ParseOFACList(b[:len(b)-10], "x", "XBT", now)
	require.ErrorContains(t, err, "line 435")
}

func TestCSV(t *testing.T) {
	in := "Address,Chain,Category,Confidence,TLP,Valid_Until,Revoked,Reference\n" +
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed,eth,hack,90,amber+strict,2027-01-01,,https://example.org/r\n" +
		"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4,btc,mixer,,red,,false,\n" +
		"0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359,eth,phishing,60,,,true,\n"
	f, err := ParseCSV([]byte(in), "partner:list", "partner-x", "", now)
	require.NoError(t, err)
	require.Len(t, f.Indicators, 3)
	a := f.Indicators[0]
	require.Equal(t, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", a.Value)
	require.Equal(t, "partner-x", a.Source)
	require.Equal(t, "partner:list", a.Feed)
	require.Equal(t, 90, a.Confidence)
	require.Equal(t, TLPAmberStrict, a.TLP)
	require.Equal(t, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), a.ValidUntil)
	require.Equal(t, "https://example.org/r", a.Refs[0].URL)
	require.Equal(t, 50, f.Indicators[1].Confidence)
	require.True(t, f.Indicators[2].Revoked)

	bad := "address,chain,confidence,valid_until\n" +
		"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed,eth,high,\n" +
		"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed,eth,5,tomorrow\n" +
		"nope,eth,5,\n" +
		"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed,sol,5,\n"
	_, err = ParseCSV([]byte(bad), "x", "s", "", now)
	var p Problems
	require.ErrorAs(t, err, &p)
	require.Len(t, p, 4)
	for i, want := range []string{"confidence", "valid_until", "starts with 0x", "unknown chain"} {
		require.Equal(t, []string{"line 2", "line 3", "line 4", "line 5"}[i], p[i].Where)
		require.ErrorContains(t, p[i].Err, want)
	}
	// A source column is informational: the source stays the importer's.
	f, err = ParseCSV([]byte("address,chain,source\n0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed,eth,ofac\n"), "partner:list", "partner-x", "", now)
	require.NoError(t, err)
	require.Equal(t, "partner-x", f.Indicators[0].Source)
	require.Equal(t, "ofac", f.Indicators[0].Creator)
	_, err = ParseCSV([]byte("address\n0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed\n"), "partner/list", "partner-x", "eth", now)
	require.ErrorContains(t, err, "feed name")
	_, err = ParseCSV([]byte("address,colour\n"), "x", "s", "eth", now)
	require.ErrorContains(t, err, `unknown column "colour"`)
	_, err = ParseCSV([]byte("category\nhack\n"), "x", "s", "eth", now)
	require.ErrorContains(t, err, "no address")
	_, err = ParseCSV([]byte("address\n0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed\n"), "x", "s", "", now)
	require.ErrorContains(t, err, "no chain column")
	_, err = ParseCSV([]byte("address\n\"0x5a"), "x", "s", "eth", now)
	require.Error(t, err)
}

// FuzzParseFeeds: hostile files never panic; a parsed feed is valid.
func FuzzParseFeeds(f *testing.F) {
	f.Add([]byte("address,chain\n0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed,eth\n"))
	f.Add([]byte("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func() (*Feed, error){
			func() (*Feed, error) { return ParseCSV(b, "f", "s", chain.ETH, now) },
			func() (*Feed, error) { return ParseOFACList(b, "f", "XBT", now) },
		} {
			feed, err := parse()
			if err != nil {
				require.Nil(t, feed)
				continue
			}
			require.NotEmpty(t, feed.Indicators)
			for _, in := range feed.Indicators {
				again := in
				require.NoError(t, again.Validate())
				require.Equal(t, in, again)
			}
		}
	})
}

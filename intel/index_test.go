package intel

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

func ethAddr(i int) string { return fmt.Sprintf("0x%040x", i) }

func ind(source, value, category string) *Indicator {
	in := &Indicator{Kind: KindAddress, Chain: chain.ETH, Network: "mainnet", Value: value, Source: source, Feed: "feed:" + source, Category: category,
		Confidence: 80, TLP: TLPGreen, ValidFrom: time.Unix(1_600_000_000, 0)}
	if err := in.Validate(); err != nil {
		panic(err)
	}
	return in
}

func TestIndex(t *testing.T) {
	x := NewIndex()
	now := time.Unix(1_700_000_000, 0)
	a, b := ethAddr(1), ethAddr(2)
	x.Put(ind("ofac", a, CategorySanctions))
	x.Put(ind("partner-x", a, CategoryHack))
	x.Put(ind("ofac", b, CategorySanctions))
	got := x.Lookup(nil, chain.ETH, KindAddress, a, now)
	require.Len(t, got, 2, "every source's indicator on the value")
	require.ElementsMatch(t, []string{"ofac", "partner-x"}, []string{got[0].Source, got[1].Source})
	require.ElementsMatch(t, []string{ID("ofac", chain.ETH, KindAddress, a), ID("partner-x", chain.ETH, KindAddress, a)},
		[]string{got[0].ID, got[1].ID}, "ids are the derived ones")
	require.Empty(t, x.Lookup(nil, chain.ETH, KindAddress, ethAddr(3), now))
	require.Empty(t, x.Lookup(nil, chain.BTC, KindAddress, a, now), "another chain is another value")
	require.Empty(t, x.Lookup(nil, chain.ETH, KindContract, a, now), "another kind is another value")

	// Revoked, expired and not-yet-valid indicators never match.
	rev := ind("partner-x", a, CategoryHack)
	rev.Revoked = true
	x.Put(rev)
	got = x.Lookup(nil, chain.ETH, KindAddress, a, now)
	require.Len(t, got, 1)
	require.Equal(t, "ofac", got[0].Source)
	exp := ind("ofac", b, CategorySanctions)
	exp.ValidUntil = now.Add(-time.Second)
	x.Put(exp)
	require.Empty(t, x.Lookup(nil, chain.ETH, KindAddress, b, now))
	require.Len(t, x.Lookup(nil, chain.ETH, KindAddress, b, now.Add(-time.Hour)), 1, "valid before it expired")
	future := ind("feed-f", ethAddr(4), CategoryScam)
	future.ValidFrom = now.Add(time.Hour)
	x.Put(future)
	require.Empty(t, x.Lookup(nil, chain.ETH, KindAddress, ethAddr(4), now))

	// An id moved to another value stops matching the old one.
	moved := ind("ofac", b, CategorySanctions)
	moved.ID = ID("ofac", chain.ETH, KindAddress, a)
	x.Put(moved)
	require.Len(t, x.Lookup(nil, chain.ETH, KindAddress, b, now.Add(-time.Hour)), 2, "the expired one was valid then")
	require.Len(t, x.Lookup(nil, chain.ETH, KindAddress, b, now), 1)
	require.Empty(t, x.Lookup(nil, chain.ETH, KindAddress, a, now))
	x.Delete(KeyOf(moved))
	require.Empty(t, x.Lookup(nil, chain.ETH, KindAddress, b, now), "deleted")
	require.Equal(t, 3, x.Len()) // partner-x on a (revoked), ofac on b (expired), future

	// Growth keeps everything findable.
	for i := 10; i < 50_000; i++ {
		x.Put(ind("bulk", ethAddr(i), CategoryMixer))
	}
	for i := 10; i < 50_000; i += 997 {
		got := x.Lookup(nil, chain.ETH, KindAddress, ethAddr(i), now)
		require.Len(t, got, 1, i)
		require.Equal(t, CategoryMixer, got[0].Category)
		require.Equal(t, 80, got[0].Confidence)
		require.Equal(t, TLPGreen, got[0].TLP)
	}
}

func TestValidate(t *testing.T) {
	in := Indicator{Chain: chain.ETH, Value: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", Source: "ofac", Feed: "ofac:eth", TLP: "TLP:WHITE"}
	require.NoError(t, in.Validate())
	require.Equal(t, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", in.Value)
	require.Equal(t, TLPClear, in.TLP)
	require.Equal(t, CategoryOther, in.Category)
	require.Equal(t, KindAddress, in.Kind)
	require.Equal(t, ID("ofac", chain.ETH, KindAddress, in.Value), in.ID)
	for _, tc := range []struct {
		in  Indicator
		err string
	}{
		{Indicator{Chain: chain.ETH, Value: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", Source: "s", Feed: "f"}, "checksum"},
		{Indicator{Chain: chain.BTC, Network: "mainnet", Value: "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", Source: "s", Feed: "f"}, "mainnet"},
		{Indicator{Chain: chain.ETH, Value: "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", Source: "", Feed: "f"}, "source"},
		{Indicator{Chain: chain.ETH, Value: "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", Source: "s", Feed: "f", Confidence: 101}, "confidence"},
		{Indicator{Chain: chain.ETH, Value: "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", Source: "s"}, "feed"},
		{Indicator{Chain: chain.ETH, Value: "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", Source: "s", Feed: "ofac/x"}, "feed"},
		{Indicator{Chain: chain.ETH, Value: "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", Source: "s", Feed: "f", TLP: "purple"}, "TLP"},
		{Indicator{Chain: chain.ETH, Value: "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", Source: "s", Feed: "f", ID: "indicator--x"}, "id"},
		{Indicator{Chain: chain.ETH, Kind: KindTransaction, Value: "0x12", Source: "s", Feed: "f"}, "transaction hash"},
		{Indicator{Chain: chain.BTC, Kind: KindContract, Network: "mainnet", Value: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", Source: "s", Feed: "f"}, "contracts"},
		{Indicator{Chain: chain.ETH, Value: "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", Source: "s", Feed: "f",
			ValidFrom: time.Unix(10, 0), ValidUntil: time.Unix(5, 0)}, "valid_until"},
	} {
		require.ErrorContains(t, tc.in.Validate(), tc.err)
	}
	tx := Indicator{Chain: chain.BTC, Kind: KindTransaction, Value: "0X" + fmt.Sprintf("%064X", 7), Source: "s", Feed: "f"}
	require.NoError(t, tx.Validate())
	require.Equal(t, fmt.Sprintf("%064x", 7), tx.Value)
}

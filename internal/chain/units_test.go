package chain

import (
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseAmountIn(t *testing.T) {
	for _, tc := range []struct {
		in   string
		c    Chain
		want string
		err  string
	}{
		{"1000", ETH, "1000", ""},
		{"0", ETH, "0", ""},
		{"007", BTC, "7", ""},
		{"1.5eth", ETH, "1500000000000000000", ""},
		{"1.5 ETH", ETH, "1500000000000000000", ""},
		{"  2 Eth  ", ETH, "2000000000000000000", ""},
		{"20gwei", ETH, "20000000000", ""},
		{"1.000000001eth", ETH, "1000000001000000000", ""},
		{"0.000000000000000001eth", ETH, "1", ""},
		{"7wei", ETH, "7", ""},
		{"0.1btc", BTC, "10000000", ""},
		{"21000000btc", BTC, "2100000000000000", ""},
		{"0.00000001btc", BTC, "1", ""},
		{"5000sat", BTC, "5000", ""},
		{"1.eth", ETH, "1000000000000000000", ""},
		{strings.Repeat("9", 80), ETH, strings.Repeat("9", 80), ""},
		// hostile input
		{"0.000000001btc", BTC, "", "more decimals"},
		{"0.0000000000000000001eth", ETH, "", "more decimals"},
		{"1.5wei", ETH, "", "more decimals"},
		{"1.5sat", BTC, "", "more decimals"},
		{"1.5", ETH, "", "needs a unit"},
		{"-1", ETH, "", "want base units"},
		{"-1eth", ETH, "", "want base units"},
		{"+1", ETH, "", "want base units"},
		{"1.-5eth", ETH, "", "want base units"},
		{"1e18", ETH, "", "want base units"},
		{"0x10", ETH, "", "want base units"},
		{"1_000", ETH, "", "want base units"},
		{"1 000", ETH, "", "want base units"},
		{"1.2.3eth", ETH, "", "want base units"},
		{"١٢", ETH, "", "want base units"}, // Arabic-Indic digits
		{"NaN", ETH, "", "want base units"},
		{"Infinity", ETH, "", "want base units"},
		{"1btc", ETH, "", "want base units"},
		{"1eth", BTC, "", "want base units"},
		{"1doge", ETH, "", "want base units"},
		{"eth", ETH, "", "want base units"},
		{".5eth", ETH, "", "want base units"},
		{"", ETH, "", "want base units"},
		{"   ", ETH, "", "want base units"},
		{"1", "sol", "1", ""}, // an unknown chain has no units, base units still read
		{"1.5eth", "sol", "", "needs a unit"},
		{strings.Repeat("9", 81), ETH, "", "want base units"},
		{"1" + strings.Repeat("0", 63) + "eth", ETH, "", "want base units"}, // 82 digits in wei
	} {
		t.Run(tc.in, func(t *testing.T) {
			v, err := ParseAmountIn(tc.c, tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, v.String())
		})
	}
}

func TestParseAmountInErrorListsUnits(t *testing.T) {
	_, err := ParseAmountIn(ETH, "lots")
	require.EqualError(t, err, `"lots": want base units (an integer) or an amount with a unit (eth, gwei, wei)`)
	_, err = ParseAmountIn(BTC, "1.5")
	require.EqualError(t, err, `"1.5": a decimal amount needs a unit (btc, sat)`)
}

func TestDecimalAndFormatCoin(t *testing.T) {
	for _, tc := range []struct {
		c    Chain
		in   string
		want string
	}{
		{ETH, "1500000000000000000", "1.5 ETH"},
		{BTC, "1", "0.00000001 BTC"},
		{BTC, "2100000000", "21 BTC"},
		{ETH, "0", "0 ETH"},
		{ETH, "1", "0.000000000000000001 ETH"},
		{BTC, "123456789", "1.23456789 BTC"},
	} {
		a, err := ParseAmount(tc.in)
		require.NoError(t, err)
		require.Equal(t, tc.want, FormatCoin(tc.c, a))
	}
	require.Equal(t, "42", AmountFromUint64(42).Decimal(0))
	require.Equal(t, []Unit{{"btc", 8}, {"sat", 0}}, Units(BTC))
}

// FuzzParseAmount: ParseAmountIn returns a canonical amount or an error,
// never panics, and what it reads round-trips through Decimal.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"1000", "1.5eth", "20gwei", "0.1btc", "5000sat", "-1", "1e18", "", ".", "1.", "0.000000001btc", "ETH"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, btc bool) {
		c := ETH
		if btc {
			c = BTC
		}
		a, err := ParseAmountIn(c, s)
		if err != nil {
			return
		}
		v := a.Big()
		require.NotNil(t, v)
		require.GreaterOrEqual(t, v.Sign(), 0)
		require.LessOrEqual(t, len(a.String()), maxAmountDigits)
		_, dec := Coin(c)
		b, err := ParseAmountIn(c, a.Decimal(dec)+Units(c)[0].Name)
		require.NoError(t, err, "Decimal of %s", a)
		require.Zero(t, v.Cmp(b.Big()), "round trip of %q", s)
		base, err := ParseAmountIn(c, a.String())
		require.NoError(t, err)
		require.Zero(t, new(big.Int).Sub(base.Big(), v).Sign())
	})
}

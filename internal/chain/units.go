package chain

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// Unit is a named denomination of a chain's coin: one of it is
// 10^Decimals base units.
type Unit struct {
	Name     string
	Decimals int
}

// units are the denominations of each chain's coin, the coin first.
var units = map[Chain][]Unit{
	ETH: {{"eth", 18}, {"gwei", 9}, {"wei", 0}},
	BTC: {{"btc", 8}, {"sat", 0}},
}

// Units returns the denominations of chain c's coin, the coin itself
// first (eth, gwei, wei; btc, sat); nil for an unknown chain.
func Units(c Chain) []Unit { return slices.Clone(units[c]) }

// Coin returns the symbol of chain c's coin and its decimals (ETH 18,
// BTC 8).
func Coin(c Chain) (symbol string, decimals int) {
	if c == BTC {
		return "BTC", 8
	}
	return "ETH", 18
}

// maxAmountDigits bounds a parsed amount: 80 digits is far above any
// supply (2^256 has 78).
const maxAmountDigits = 80

// ParseAmountIn reads an exact amount of chain c's coin in base units: an
// integer (base units), or a decimal with one of c's units (1.5eth,
// 20gwei, 0.1btc, 5000sat; case and spaces around the number ignored).
// Never through floating point: a decimal with more digits after the
// point than its unit has is refused, not rounded.
func ParseAmountIn(c Chain, s string) (Amount, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	num, dec, unit := s, 0, ""
	for _, u := range units[c] {
		if strings.HasSuffix(s, u.Name) && len(u.Name) > len(unit) {
			num, dec, unit = strings.TrimSpace(strings.TrimSuffix(s, u.Name)), u.Decimals, u.Name
		}
	}
	whole, frac, hasPoint := strings.Cut(num, ".")
	if hasPoint && unit == "" {
		return Amount{}, fmt.Errorf("%q: a decimal amount needs a unit (%s)", s, unitList(c))
	}
	if len(frac) > dec {
		return Amount{}, fmt.Errorf("%q: more decimals than the unit has", s)
	}
	digits := whole + frac + strings.Repeat("0", dec-len(frac))
	if whole == "" || len(digits) > maxAmountDigits || !allDigits(digits) {
		return Amount{}, fmt.Errorf("%q: want base units (an integer) or an amount with a unit (%s)", s, unitList(c))
	}
	v, _ := new(big.Int).SetString(digits, 10)
	return AmountFromBig(v), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func unitList(c Chain) string {
	out := make([]string, 0, len(units[c]))
	for _, u := range units[c] {
		out = append(out, u.Name)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// Decimal shows the amount with a decimal point dec digits from the
// right, trailing zeros trimmed: 1500000000000000000 with 18 is "1.5".
func (a Amount) Decimal(dec int) string {
	v := a.String()
	if dec <= 0 {
		return v
	}
	if len(v) <= dec {
		v = strings.Repeat("0", dec-len(v)+1) + v
	}
	whole, frac := v[:len(v)-dec], strings.TrimRight(v[len(v)-dec:], "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

// FormatCoin shows an amount of chain c's coin in whole coins with its
// symbol: "1.5 ETH", "0.00000001 BTC".
func FormatCoin(c Chain, a Amount) string {
	sym, dec := Coin(c)
	return a.Decimal(dec) + " " + sym
}

package intent

import (
	"fmt"
	"math/big"
	"strings"
)

// USD is an exact dollar value, or unknown (no price for the asset, or
// only a stale one). Unknown compares above every known value, so a
// withdrawal whose value cannot be told lands in the highest tier, never
// the lowest. The zero USD is unknown.
type USD struct{ r *big.Rat }

// Dollars returns the known value r (copied).
func Dollars(r *big.Rat) USD { return USD{new(big.Rat).Set(r)} }

// ParseUSD reads a decimal dollar amount ("1000000", "0.05"); never
// through floating point.
func ParseUSD(s string) (USD, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 60 || strings.ContainsAny(s, "eE/+") {
		return USD{}, fmt.Errorf("%q: want a decimal dollar amount such as 1000000 or 0.05", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return USD{}, fmt.Errorf("%q: want a decimal dollar amount such as 1000000 or 0.05", s)
	}
	return USD{r}, nil
}

// Value is the dollar value of amount base units of an asset with
// decimals, at price dollars per whole unit; unknown when price is.
func Value(amount *big.Int, decimals int, price USD) USD {
	if !price.Known() {
		return USD{}
	}
	v := new(big.Rat).SetInt(amount)
	v.Mul(v, price.r)
	return USD{v.Quo(v, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil)))}
}

// Known tells whether the value is known.
func (u USD) Known() bool { return u.r != nil }

// Rat returns the value (a copy); nil when unknown.
func (u USD) Rat() *big.Rat {
	if u.r == nil {
		return nil
	}
	return new(big.Rat).Set(u.r)
}

// Add is u + v: unknown when either is.
func (u USD) Add(v USD) USD {
	if !u.Known() || !v.Known() {
		return USD{}
	}
	return USD{new(big.Rat).Add(u.r, v.r)}
}

// Cmp compares u and v (-1, 0, +1), unknown above every known value and
// equal to itself.
func (u USD) Cmp(v USD) int {
	switch {
	case !u.Known() && !v.Known():
		return 0
	case !u.Known():
		return 1
	case !v.Known():
		return -1
	}
	return u.r.Cmp(v.r)
}

// String is the value in dollars with cents, rounded up ("1000000.01"),
// or "unknown".
func (u USD) String() string {
	if !u.Known() {
		return "unknown"
	}
	c := new(big.Rat).Mul(u.r, big.NewRat(100, 1))
	q, m := new(big.Int).QuoRem(c.Num(), c.Denom(), new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	neg := q.Sign() < 0
	s := new(big.Int).Abs(q).String()
	for len(s) < 3 {
		s = "0" + s
	}
	s = s[:len(s)-2] + "." + s[len(s)-2:]
	if neg {
		return "-" + s
	}
	return s
}

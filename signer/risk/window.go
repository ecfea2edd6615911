package risk

import (
	"math/big"
	"sort"
)

// entry is one accepted withdrawal while it is removable: in its
// account's recent list, in the global series and in its asset's series.
type entry struct {
	id     string
	acct   *account
	asset  *assetSeries
	dest   string
	t      int64    // unix nanoseconds
	amount *big.Int // base units, owned
	usd    *big.Rat // owned; nil: unknown
	// scaled is usd in units of 10^-usdDigits dollars when that is exact
	// (always, for prices and token decimals of up to 40 digits in all),
	// so the windows' sums add integers instead of normalizing
	// rationals; nil otherwise.
	scaled  *big.Int
	removed bool
}

// usdDigits is the fixed point of the windows' integer sums.
const usdDigits = 40

var usdScale = new(big.Int).Exp(big.NewInt(10), big.NewInt(usdDigits), nil)

// setUSD sets e's dollar value (nil: unknown) and its scaled form.
func (e *entry) setUSD(v *big.Rat) {
	e.usd, e.scaled = v, nil
	if v == nil {
		return
	}
	q, r := new(big.Int).QuoRem(usdScale, v.Denom(), new(big.Int))
	if r.Sign() == 0 {
		e.scaled = q.Mul(q, v.Num())
	}
}

// usdSum is an exact sum of dollar values: the scaled ones as an
// integer, any others as a rational.
type usdSum struct {
	scaled big.Int
	rest   big.Rat
}

func (s *usdSum) add(e *entry, sign int) {
	switch {
	case e.scaled != nil && sign > 0:
		s.scaled.Add(&s.scaled, e.scaled)
	case e.scaled != nil:
		s.scaled.Sub(&s.scaled, e.scaled)
	case sign > 0:
		s.rest.Add(&s.rest, e.usd)
	default:
		s.rest.Sub(&s.rest, e.usd)
	}
}

// rat returns the sum as a new rational.
func (s *usdSum) rat() *big.Rat {
	r := new(big.Rat).SetFrac(&s.scaled, usdScale)
	if s.rest.Sign() != 0 {
		r.Add(r, &s.rest)
	}
	return r
}

// series is the entries of one scope in time order (equal times in the
// order they were added), and one cursor per window of the scope.
// Removed entries stay in place, contributing nothing, until they are
// pruned from the front.
type series struct {
	ents []*entry
	curs []*cursor
}

// cursor keeps the sums of the entries in (at-w, at]: ents[lo:hi].
// Moving it costs the entries it passes, so with time moving forward
// each entry is added and subtracted once per window.
type cursor struct {
	w       int64
	at      int64
	lo, hi  int
	count   int64
	unknown int64 // entries of unknown dollar value
	usd     usdSum
	amount  big.Int
}

func newSeries(windows []int64) *series {
	s := &series{}
	for _, w := range windows {
		s.curs = append(s.curs, &cursor{w: w})
	}
	return s
}

func (c *cursor) add(e *entry, sign int) {
	if e.removed {
		return
	}
	c.count += int64(sign)
	if e.usd == nil {
		c.unknown += int64(sign)
	} else {
		c.usd.add(e, sign)
	}
	if sign > 0 {
		c.amount.Add(&c.amount, e.amount)
	} else {
		c.amount.Sub(&c.amount, e.amount)
	}
}

// move positions c at now.
func (c *cursor) move(ents []*entry, now int64) {
	from := now - c.w
	for c.hi < len(ents) && ents[c.hi].t <= now {
		c.add(ents[c.hi], +1)
		c.hi++
	}
	for c.hi > c.lo && ents[c.hi-1].t > now {
		c.hi--
		c.add(ents[c.hi], -1)
	}
	for c.hi > 0 && ents[c.hi-1].t > now { // before the window: not counted
		c.hi--
		c.lo = c.hi
	}
	for c.lo < c.hi && ents[c.lo].t <= from {
		c.add(ents[c.lo], -1)
		c.lo++
	}
	for c.lo > 0 && ents[c.lo-1].t > from {
		c.lo--
		c.add(ents[c.lo], +1)
	}
	c.at = now
}

// insert places e in time order (after entries of the same time) and
// counts it in the windows whose range holds it.
func (s *series) insert(e *entry) {
	i := sort.Search(len(s.ents), func(i int) bool { return s.ents[i].t > e.t })
	s.ents = append(s.ents, nil)
	copy(s.ents[i+1:], s.ents[i:])
	s.ents[i] = e
	for _, c := range s.curs {
		switch {
		case i < c.lo || (i == c.lo && e.t <= c.at-c.w):
			c.lo++
			c.hi++
		case i <= c.hi && e.t <= c.at:
			c.hi++
			c.add(e, +1)
		}
	}
}

// index finds e in the series; -1 when it is not there.
func (s *series) index(e *entry) int {
	i := sort.Search(len(s.ents), func(i int) bool { return s.ents[i].t >= e.t })
	for ; i < len(s.ents) && s.ents[i].t == e.t; i++ {
		if s.ents[i] == e {
			return i
		}
	}
	return -1
}

// uncount takes e, about to be marked removed, out of the windows
// holding it.
func (s *series) uncount(e *entry) {
	i := s.index(e)
	if i < 0 {
		return
	}
	for _, c := range s.curs {
		if i >= c.lo && i < c.hi {
			c.add(e, -1)
		}
	}
}

// pruneTo drops the entries at or before horizon from the front, first
// moving every cursor to now (which is at least horizon plus its
// window); each dropped entry goes to drop.
func (s *series) pruneTo(now, horizon int64, drop func(*entry)) {
	for _, c := range s.curs {
		if c.at != now {
			c.move(s.ents, now)
		}
	}
	n := 0
	for n < len(s.ents) && s.ents[n].t <= horizon {
		if drop != nil {
			drop(s.ents[n])
		}
		s.ents[n] = nil
		n++
	}
	if n == 0 {
		return
	}
	s.ents = s.ents[n:]
	if cap(s.ents) > 64 && len(s.ents) < cap(s.ents)/4 {
		s.ents = append([]*entry(nil), s.ents...)
	}
	for _, c := range s.curs {
		c.lo -= n
		c.hi -= n
	}
}

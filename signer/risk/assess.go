package risk

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/signer/intent"
)

// windowName is a window as accumulation keys and details write it:
// whole hours, minutes or seconds ("24h", "30m", "90s").
func windowName(w time.Duration) string {
	switch {
	case w%time.Hour == 0:
		return strconv.FormatInt(int64(w/time.Hour), 10) + "h"
	case w%time.Minute == 0:
		return strconv.FormatInt(int64(w/time.Minute), 10) + "m"
	}
	return strconv.FormatInt(int64(w/time.Second), 10) + "s"
}

// sum is one window's total while assessing.
type sum struct {
	count   int64
	unknown bool
	usd     *big.Rat
	amount  *big.Int
}

func (s *sum) accumulation(scope string) Accumulation {
	a := Accumulation{Count: s.count}
	if !s.unknown {
		a.USD = intent.Dollars(s.usd)
	}
	if scope == ScopeAsset {
		a.Amount = new(big.Int).Set(s.amount)
	}
	return a
}

func fromCursor(c *cursor) *sum {
	return &sum{count: c.count, unknown: c.unknown > 0, usd: c.usd.rat(), amount: new(big.Int).Set(&c.amount)}
}

// withQuery adds the withdrawal being assessed unless it is held.
func (s *sum) withQuery(q *Query, held bool) {
	if held {
		return
	}
	s.count++
	if !q.USD.Known() {
		s.unknown = true
	} else if !s.unknown {
		s.usd.Add(s.usd, q.USD.Rat())
	}
	s.amount.Add(s.amount, q.Amount)
}

func (r *Risk) assessLocked(q *Query, now int64) Result {
	st := r.st
	st.advance(now)
	held := st.byID[q.ID] != nil && q.ID != ""
	acct := st.accounts[q.Account]
	netID, known := st.netIDs[netKey{q.Chain, q.Network}]
	var as *assetSeries
	if known {
		as = st.assets[assetKey{netID, q.Asset}]
	}

	sums := map[string]*sum{}
	res := Result{Accumulations: map[string]Accumulation{}}
	window := func(scope string, w time.Duration) *sum {
		key := scope + "_" + windowName(w)
		if s := sums[key]; s != nil {
			return s
		}
		var s *sum
		switch scope {
		case ScopeGlobal:
			s = fromCursor(st.global.cursorAt(int64(w), now))
		case ScopeAsset:
			if as != nil {
				s = fromCursor(as.cursorAt(int64(w), now))
			}
		case ScopeAccount:
			s = &sum{usd: new(big.Rat), amount: new(big.Int)}
			if acct != nil {
				for _, e := range acct.recent {
					if e.t > now-int64(w) && e.t <= now {
						s.count++
						if e.usd == nil {
							s.unknown = true
						} else {
							s.usd.Add(s.usd, e.usd)
						}
					}
				}
			}
		}
		if s == nil {
			s = &sum{usd: new(big.Rat), amount: new(big.Int)}
		}
		s.withQuery(q, held)
		sums[key] = s
		res.Accumulations[key] = s.accumulation(scope)
		return s
	}
	for i := range r.cfg.Velocity {
		rule := &r.cfg.Velocity[i]
		s := window(rule.Scope, rule.Window)
		if rule.Scope == ScopeAsset && rule.Asset != "" &&
			(rule.Chain != string(q.Chain) || (rule.Network != "" && rule.Network != q.Network) || rule.Asset != q.Asset) {
			continue
		}
		res.Findings = append(res.Findings, velocity(rule, s, q)...)
	}

	res.Findings = append(res.Findings, r.history(q, acct, netID, known, as)...)
	return res
}

func velocity(rule *VelocityRule, s *sum, q *Query) []intent.Finding {
	w := windowName(rule.Window)
	who := map[string]string{ScopeAccount: "Account " + q.Account + " has", ScopeGlobal: "All accounts together have",
		ScopeAsset: "All accounts together have"}[rule.Scope]
	what := "withdrawn"
	if rule.Scope == ScopeAsset {
		what = fmt.Sprintf("withdrawn %s on %s %s", q.Asset, q.Chain, q.Network)
	}
	base := func(limit string) map[string]string {
		d := map[string]string{"scope": rule.Scope, "window": w, "key": rule.Scope + "_" + w, "limit": limit,
			"count": strconv.FormatInt(s.count, 10), "usd": usdText(s)}
		if rule.Scope == ScopeAsset {
			d["chain"], d["network"], d["asset"], d["amount"] = string(q.Chain), q.Network, q.Asset, s.amount.String()
		}
		return d
	}
	var out []intent.Finding
	if rule.MaxCount > 0 && s.count > rule.MaxCount {
		d := base("count")
		d["max_count"] = strconv.FormatInt(rule.MaxCount, 10)
		out = append(out, intent.Finding{Code: intent.Velocity, Details: d,
			Reason: fmt.Sprintf("%s %s %d times in the last %s, this withdrawal included; the limit is %d.", who, what, s.count, w, rule.MaxCount)})
	}
	if rule.maxUSD.Known() {
		switch {
		case s.unknown:
			d := base("usd")
			d["max_usd"] = rule.MaxUSD
			out = append(out, intent.Finding{Code: intent.Velocity, Details: d,
				Reason: fmt.Sprintf("%s %s an unknown dollar value in the last %s (a withdrawal in it has no price); the limit is $%s.", who, what, w, rule.MaxUSD)})
		case s.usd.Cmp(rule.maxUSD.Rat()) > 0:
			d := base("usd")
			d["max_usd"] = rule.MaxUSD
			out = append(out, intent.Finding{Code: intent.Velocity, Details: d,
				Reason: fmt.Sprintf("%s %s $%s in the last %s, this withdrawal included; the limit is $%s.", who, what, usdText(s), w, rule.MaxUSD)})
		}
	}
	if rule.maxAmount != nil && s.amount.Cmp(rule.maxAmount) > 0 {
		d := base("amount")
		d["max_amount"] = rule.MaxAmount
		out = append(out, intent.Finding{Code: intent.Velocity, Details: d,
			Reason: fmt.Sprintf("%s %s %s base units in the last %s, this withdrawal included; the limit is %s.", who, what, s.amount, w, rule.MaxAmount)})
	}
	return out
}

func usdText(s *sum) string {
	if s.unknown {
		return "unknown"
	}
	return intent.Dollars(s.usd).String()
}

// cursorAt is the series' cursor of window w, moved to now.
func (s *series) cursorAt(w, now int64) *cursor {
	for _, c := range s.curs {
		if c.w == w {
			c.move(s.ents, now)
			return c
		}
	}
	panic(fmt.Sprintf("risk: no cursor of window %d", w)) // newState made one per configured window
}

// history checks the destination and the amount against the account's
// own history: settled and still-removable withdrawals, this one left
// out.
func (r *Risk) history(q *Query, acct *account, net netID, netKnown bool, as *assetSeries) []intent.Finding {
	type used struct {
		addr  string
		first int64
	}
	var prior []used
	isNew := true
	count, largest := uint64(0), new(big.Int)
	if acct != nil && netKnown {
		for _, d := range acct.dests {
			if d.net != net {
				continue
			}
			if d.addr == q.Destination {
				isNew = false
			}
			prior = append(prior, used{d.addr, d.first})
		}
		for _, st := range acct.stats {
			if st.asset == as {
				count += uint64(st.count)
				largest.Set(st.max)
			}
		}
		for _, e := range acct.recent {
			if e.id == q.ID || e.asset.key.net != net {
				continue
			}
			if e.dest == q.Destination {
				isNew = false
			}
			if j := slices.IndexFunc(prior, func(u used) bool { return u.addr == e.dest }); j < 0 {
				prior = append(prior, used{e.dest, e.t})
			} else if e.t < prior[j].first {
				prior[j].first = e.t
			}
			if e.asset == as {
				count++
				if e.amount.Cmp(largest) > 0 {
					largest.Set(e.amount)
				}
			}
		}
	}
	var out []intent.Finding
	if isNew {
		out = append(out, intent.Finding{Code: intent.NewDestination,
			Reason:  fmt.Sprintf("Account %s has never withdrawn to %s before.", q.Account, q.Destination),
			Details: map[string]string{"destination": q.Destination}})
		l := r.cfg.Lookalike
		if l.Leading > 0 {
			slices.SortFunc(prior, func(a, b used) int { return strings.Compare(a.addr, b.addr) })
			for _, u := range prior {
				if lookalike(q.Chain, q.Network, q.Destination, u.addr, l.Leading, l.Trailing) {
					out = append(out, intent.Finding{Code: intent.Lookalike,
						Reason: fmt.Sprintf("The destination %s shares its first %d and last %d characters with %s, which account %s used before, and is another address (address poisoning?).",
							q.Destination, l.Leading, l.Trailing, u.addr, q.Account),
						Details: map[string]string{"destination": q.Destination, "resembles": u.addr, "resembles_first_used": utc(u.first).Format(time.RFC3339),
							"leading": strconv.Itoa(l.Leading), "trailing": strconv.Itoa(l.Trailing)}})
				}
			}
		}
	}
	if f := r.cfg.AboveHistory.factor; f != nil && count >= uint64(r.cfg.AboveHistory.MinCount) {
		// amount > factor × largest  ⇔  amount·denom > num·largest
		lhs := new(big.Int).Mul(q.Amount, f.Denom())
		rhs := new(big.Int).Mul(largest, f.Num())
		if lhs.Cmp(rhs) > 0 {
			out = append(out, intent.Finding{Code: intent.AboveHistory,
				Reason: fmt.Sprintf("The amount, %s base units of %s, is more than %s times the largest of account %s's %d earlier withdrawals of it (%s).",
					q.Amount, q.Asset, r.cfg.AboveHistory.Factor, q.Account, count, largest),
				Details: map[string]string{"amount": q.Amount.String(), "largest": largest.String(), "count": strconv.FormatUint(count, 10),
					"factor": r.cfg.AboveHistory.Factor, "asset": q.Asset}})
		}
	}
	return out
}

// fixedPrefix is how many leading characters of addr are the same for
// every address of its kind: 0x; a bech32 address's human-readable
// part, separator and witness version (bc1q, tb1p); a base58 address's
// version character.
func fixedPrefix(c chain.Chain, network, addr string) int {
	switch c {
	case chain.ETH:
		if strings.HasPrefix(addr, "0x") {
			return 2
		}
	case chain.BTC:
		if p, err := address.BTCParams(network); err == nil {
			if hrp := p.Bech32HRPSegwit + "1"; strings.HasPrefix(addr, hrp) && len(addr) > len(hrp) {
				return len(hrp) + 1
			}
		}
		return 1
	}
	return 0
}

// lookalike tells whether a and b are different addresses of the same
// kind that share their first lead and last trail characters after the
// fixed prefix.
func lookalike(c chain.Chain, network, a, b string, lead, trail int) bool {
	if a == b {
		return false
	}
	pa, pb := fixedPrefix(c, network, a), fixedPrefix(c, network, b)
	if pa != pb || a[:pa] != b[:pb] {
		return false
	}
	ba, bb := a[pa:], b[pb:]
	if len(ba) < lead+trail || len(bb) < lead+trail {
		return false
	}
	return ba[:lead] == bb[:lead] && ba[len(ba)-trail:] == bb[len(bb)-trail:]
}

func (r *Risk) contextFindings(c intent.Context) []intent.Finding {
	t := r.cfg.Context
	var out []intent.Finding
	age := func(code, what string, v *int64, within time.Duration) {
		if within <= 0 {
			return
		}
		lim := int64(within / time.Second)
		d := map[string]string{"threshold_seconds": strconv.FormatInt(lim, 10)}
		switch {
		case v == nil || *v < 0:
			d["known"] = "false"
			out = append(out, intent.Finding{Code: code, Details: d,
				Reason: fmt.Sprintf("The exchange did not say how long ago %s, so it counts as less than %s.", what, windowName(within))})
		case *v < lim:
			d["known"], d["age_seconds"] = "true", strconv.FormatInt(*v, 10)
			out = append(out, intent.Finding{Code: code, Details: d,
				Reason: fmt.Sprintf("%s %s ago, less than %s.", capital(what), (time.Duration(*v) * time.Second).String(), windowName(within))})
		}
	}
	age(intent.AccountChanged, "the account's credentials, 2FA or contact details last changed", c.AccountChanged, t.AccountChangedWithin)
	age(intent.DeviceNew, "this device was first seen on the account", c.DeviceAge, t.DeviceNewerThan)
	age(intent.SessionNew, "the session started", c.SessionAge, t.SessionYoungerThan)
	if t.riskScore != nil {
		d := map[string]string{"threshold": t.RiskScoreAtLeast}
		score, err := parseScore(c.RiskScore)
		switch {
		case c.RiskScore == "":
			d["known"] = "false"
			out = append(out, intent.Finding{Code: intent.ExchangeRisk, Details: d,
				Reason: fmt.Sprintf("The exchange gave no risk score, so it counts as at or above %s.", t.RiskScoreAtLeast)})
		case err != nil:
			d["known"], d["error"] = "false", err.Error()
			out = append(out, intent.Finding{Code: intent.ExchangeRisk, Details: d,
				Reason: fmt.Sprintf("The exchange's risk score is malformed (%v), so it counts as at or above %s.", err, t.RiskScoreAtLeast)})
		case score.Cmp(t.riskScore) >= 0:
			d["known"], d["score"] = "true", c.RiskScore
			out = append(out, intent.Finding{Code: intent.ExchangeRisk, Details: d,
				Reason: fmt.Sprintf("The exchange's own risk score is %s, at or above %s.", c.RiskScore, t.RiskScoreAtLeast)})
		}
	}
	return out
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

package risk_test

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/risk"
)

// TestAgainstModel runs random adds (partly out of order), removes and
// assessments (time mostly forward, sometimes back) and checks every
// window and the destination history against a plain list of the
// withdrawals.
func TestAgainstModel(t *testing.T) {
	for seed := range uint64(10) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { modelRun(t, seed) })
	}
}

func modelRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	cfg := quiet()
	cfg.Retain = 3 * time.Hour
	windows := map[string]time.Duration{}
	for _, w := range []time.Duration{10 * time.Minute, time.Hour, 2 * time.Hour} {
		for _, sc := range []string{risk.ScopeAccount, risk.ScopeAsset, risk.ScopeGlobal} {
			cfg.Velocity = append(cfg.Velocity, risk.VelocityRule{Scope: sc, Window: w})
			windows[sc+"_"+map[time.Duration]string{10 * time.Minute: "10m", time.Hour: "1h", 2 * time.Hour: "2h"}[w]] = w
		}
	}
	r := newRisk(t, cfg, risk.Deps{})
	type mrec struct {
		risk.Record
		removed, settled bool
	}
	var recs []*mrec
	byID := map[string]*mrec{}
	assets := []string{"native", "0xdac17f958d2ee523a2206206994597c13d831ec7"}
	clock, maxNow := t0, t0
	see := func(at time.Time) {
		if at.After(maxNow) {
			maxNow = at
			for _, m := range recs {
				if !m.Time.After(maxNow.Add(-cfg.Retain)) {
					m.settled = true
				}
			}
		}
	}
	for step := range 1000 {
		switch k := rng.IntN(10); {
		case k < 5: // add
			at := clock.Add(-time.Duration(rng.IntN(20)) * time.Minute)
			x := risk.Record{ID: fmt.Sprint("wd_", step), Account: fmt.Sprint("acct", rng.IntN(4)), Chain: chain.ETH, Network: "mainnet",
				Asset: assets[rng.IntN(2)], Amount: big.NewInt(rng.Int64N(1_000_000)), Destination: addr(rng.IntN(12)), Time: at}
			if rng.IntN(8) > 0 {
				x.USD = intent.Dollars(big.NewRat(rng.Int64N(100000), int64(1+rng.IntN(3))*100))
			}
			require.NoError(t, r.Add(x))
			m := &mrec{Record: x}
			recs = append(recs, m)
			byID[x.ID] = m
			see(at)
		case k < 6 && len(recs) > 0: // remove
			m := recs[rng.IntN(len(recs))]
			want := !m.removed && !m.settled
			require.Equal(t, want, r.Remove(m.ID), "remove %s", m.ID)
			if want {
				m.removed = true
			}
		default: // assess, mostly forward
			if rng.IntN(6) == 0 {
				clock = clock.Add(-time.Duration(rng.IntN(30)) * time.Minute)
			} else {
				clock = clock.Add(time.Duration(rng.IntN(600)) * time.Second)
			}
			if lo := maxNow.Add(-(cfg.Retain - 2*time.Hour)); clock.Before(lo) {
				clock = lo // windows are exact from here on
			}
			q := query(fmt.Sprint("acct", rng.IntN(4)), rng.Int64N(1000), "2.5", addr(rng.IntN(14)))
			q.Asset = assets[rng.IntN(2)]
			if rng.IntN(5) == 0 && len(recs) > 0 {
				q.ID = recs[rng.IntN(len(recs))].ID
			}
			res := assess(t, r, q, clock)
			see(clock)
			qHeld := false
			if m := byID[q.ID]; m != nil && !m.removed && !m.settled {
				qHeld = true
			}
			for key, w := range windows {
				var n int64
				sum, known, amount := new(big.Rat), true, new(big.Int)
				scope := key[:len(key)-len(windowSuffix(key))-1]
				count := func(x risk.Record) {
					n++
					if x.USD.Known() {
						sum.Add(sum, x.USD.Rat())
					} else {
						known = false
					}
					amount.Add(amount, x.Amount)
				}
				for _, m := range recs {
					if m.removed || !m.Time.After(clock.Add(-w)) || m.Time.After(clock) {
						continue
					}
					if scope == risk.ScopeAccount && m.Account != q.Account || scope == risk.ScopeAsset && m.Asset != q.Asset {
						continue
					}
					count(m.Record)
				}
				if !qHeld {
					count(risk.Record{USD: q.USD, Amount: q.Amount})
				}
				got := res.Accumulations[key]
				require.Equal(t, n, got.Count, "step %d %s count", step, key)
				require.Equal(t, known, got.USD.Known(), "step %d %s usd known", step, key)
				if known {
					require.Zero(t, sum.Cmp(got.USD.Rat()), "step %d %s usd %s want %s", step, key, got.USD.Rat(), sum)
				}
				if scope == risk.ScopeAsset {
					require.Zero(t, amount.Cmp(got.Amount), "step %d %s amount", step, key)
				}
			}
			used := false
			for _, m := range recs {
				if !m.removed && (m.ID != q.ID || m.settled) && m.Account == q.Account && m.Destination == q.Destination {
					used = true
				}
			}
			require.Equal(t, !used, res.Has(intent.NewDestination), "step %d new destination", step)
		}
	}
}

func windowSuffix(key string) string {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '_' {
			return key[i+1:]
		}
	}
	return key
}

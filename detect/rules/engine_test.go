package rules_test

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/detect/rules"
	"github.com/cordonhq/cordon/detect/rules/rulestest"
	"github.com/cordonhq/cordon/internal/chain"
)

type reg map[string]string

func (r reg) Kind(_ chain.Chain, _ string, a string) (string, bool) { k, ok := r[a]; return k, ok }

type screen map[string]bool

func (s screen) Hits(_ chain.Chain, _ string, a string) []chain.Hit {
	if !s[a] {
		return nil
	}
	return []chain.Hit{{Address: a, Indicator: "ind-" + a, Category: "theft", Source: "test", Confidence: 90}}
}

const (
	hot     = "0x1111aaaa00000000000000000000000000002222"
	cold    = "0x3333bbbb00000000000000000000000000004444"
	deposit = "0x5555cccc00000000000000000000000000006666"
	friend  = "0x7777dddd00000000000000000000000000008888"
	thief   = "0x9999eeee0000000000000000000000000000aaaa"
	// lookalike shares friend's first and last four hex characters.
	lookalike = "0x7777ffffffffffffffffffffffffffffffff8888"
)

func newEngine(t testing.TB, cfg rules.Config) *rules.Engine {
	t.Helper()
	require.NoError(t, cfg.Validate("detect.rules"))
	e, err := rules.New(cfg, reg{hot: "hot", cold: "cold", deposit: "deposit"}, screen{thief: true})
	require.NoError(t, err)
	return e
}

func types(as []chain.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Rule)
	}
	return out
}

const eth = "1000000000000000000"

func TestLargeOutflowAgainstBaseline(t *testing.T) {
	for _, tc := range []struct {
		name   string
		amount string
		fires  bool
	}{
		{"five times the median and one wei", "5000000000000000001", true},
		{"exactly five times the median", "5000000000000000000", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, rules.Config{Velocity: rules.VelocityConfig{DrainShare: -1}})
			c := &rulestest.Stream{}
			require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: friend, To: hot, Amount: "100" + eth})))
			for range 10 {
				require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: eth})))
			}
			got := e.Apply(c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: tc.amount}))
			if !tc.fires {
				require.Empty(t, got)
				return
			}
			require.Equal(t, []string{rules.RuleOutflowLarge}, types(got))
			a := got[0]
			require.Equal(t, "high", a.Severity)
			require.Equal(t, tc.amount, a.Amount)
			require.Equal(t, []string{hot, friend}, a.Addresses)
			require.Equal(t, uint64(12), a.Height)
			require.Equal(t, "10", a.Details["samples"])
		})
	}
}

func TestLargeOutflowNeedsSamples(t *testing.T) {
	e := newEngine(t, rules.Config{Velocity: rules.VelocityConfig{DrainShare: -1}})
	c := &rulestest.Stream{}
	for range 9 {
		require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: eth})))
	}
	require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: "50" + eth})), "nine samples are not a baseline")
	// The absolute threshold needs none.
	e = newEngine(t, rules.Config{Outflow: rules.OutflowConfig{Large: rules.Amounts{"eth/native": "10" + eth}}, Velocity: rules.VelocityConfig{DrainShare: -1}})
	require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: cold, To: friend, Amount: "9" + eth})))
	require.Equal(t, []string{rules.RuleOutflowLarge}, types(e.Apply(c.Block("", rulestest.Xfer{From: cold, To: friend, Amount: "10" + eth}))))
}

func TestDrain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		out   []string
		fires int // index of the block that fires, -1 none
	}{
		{"half in two blocks", []string{"30", "20"}, 1},
		{"just under half", []string{"30", "19"}, -1},
		{"all at once", []string{"100"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, rules.Config{})
			c := &rulestest.Stream{}
			require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: friend, To: hot, Amount: "100"})))
			for i, v := range tc.out {
				got := e.Apply(c.Block("", rulestest.Xfer{From: hot, To: thief + "x", Amount: v}))
				if i == tc.fires {
					require.Equal(t, []string{rules.RuleDrain}, types(got), "block %d", i)
					require.Equal(t, "critical", got[0].Severity)
				} else {
					require.Empty(t, got, "block %d", i)
				}
			}
		})
	}
}

func TestVelocity(t *testing.T) {
	cfg := rules.Config{Velocity: rules.VelocityConfig{Window: time.Minute, MaxCount: 3, MaxValue: rules.Amounts{"eth/native": "100"}, DrainShare: -1}}
	e := newEngine(t, cfg)
	c := &rulestest.Stream{}
	// Three outflows within a minute are allowed, the fourth alerts once.
	for range 3 {
		require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: "10"})))
	}
	require.Equal(t, []string{rules.RuleVelocityCount}, types(e.Apply(c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: "10"}))))
	require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: "10"})), "one alert per crossing")
	// Value: 50 within the window so far (blocks are 12 s apart); 50 more is exactly 100, allowed; one more crosses.
	require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: "10"})))
	e = newEngine(t, cfg)
	c = &rulestest.Stream{}
	require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: "60"})))
	require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: "40"})))
	require.Equal(t, []string{rules.RuleVelocityValue}, types(e.Apply(c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: "1"}))))
	// Outside the window, the count starts again.
	for range 6 {
		c.Time += 60
	}
	require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: "1"})))
}

func TestFlaggedContact(t *testing.T) {
	e := newEngine(t, rules.Config{Velocity: rules.VelocityConfig{DrainShare: -1}})
	c := &rulestest.Stream{}
	got := e.Apply(c.Block("", rulestest.Xfer{From: hot, To: thief, Amount: "5"}, rulestest.Xfer{From: thief, To: deposit, Amount: "7"},
		rulestest.Xfer{From: friend, To: deposit, Amount: "7"}, rulestest.Xfer{From: thief, To: friend, Amount: "1"}))
	require.Equal(t, []string{rules.RuleFlaggedContact, rules.RuleFlaggedContact}, types(got))
	require.Equal(t, "critical", got[0].Severity)
	require.Equal(t, []string{hot, thief}, got[0].Addresses)
	require.Equal(t, "high", got[1].Severity)
	require.Equal(t, []string{deposit, thief}, got[1].Addresses)
	require.Equal(t, "ind-"+thief, got[0].Details["hit0_indicator"])
	// Below the confidence asked for: nothing.
	e = newEngine(t, rules.Config{Flagged: rules.FlaggedConfig{MinConfidence: 95}})
	require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: hot, To: thief, Amount: "5"})))
}

func TestPoisoning(t *testing.T) {
	cfg := rules.Config{Poisoning: rules.PoisoningConfig{Dust: rules.Amounts{"eth/0xtoken": "1000"}}, Velocity: rules.VelocityConfig{DrainShare: -1}}
	e := newEngine(t, cfg)
	c := &rulestest.Stream{}
	require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: "5" + eth})))
	// Dust of a token to a deposit address, and a zero-value transferFrom
	// "from" our hot wallet sent by someone else, to a lookalike of its
	// counterparty.
	got := e.Apply(c.Block("", rulestest.Xfer{From: lookalike, To: deposit, Amount: "1000", Asset: "0xtoken"},
		rulestest.Xfer{From: hot, To: lookalike, Amount: "0", Asset: "0xtoken", Sender: lookalike}))
	require.Equal(t, []string{rules.RulePoisoningDust, rules.RulePoisoningDust, rules.RulePoisoningLookalik}, types(got))
	// Near misses: just over dust, and a payment to the real counterparty.
	require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: thief + "1", To: deposit, Amount: "1001", Asset: "0xtoken"},
		rulestest.Xfer{From: hot, To: friend, Amount: "1" + eth})))
	// The hot wallet paying the lookalike itself: the poisoning worked.
	got = e.Apply(c.Block("", rulestest.Xfer{From: hot, To: lookalike, Amount: "2" + eth}))
	require.Equal(t, []string{rules.RulePaidLookalike}, types(got))
	require.Equal(t, "critical", got[0].Severity)
	require.Equal(t, friend, got[0].Details["looks_like"])
}

func TestLookalike(t *testing.T) {
	require.True(t, rules.Lookalike(friend, lookalike, 4, 4))
	require.False(t, rules.Lookalike(friend, friend, 4, 4))
	require.False(t, rules.Lookalike(friend, thief, 4, 4))
	require.True(t, rules.Lookalike("bc1qabcdxxxxxxxxxxxxxxwxyz", "bc1qabcdyyyyyyyyyyyyyywxyz", 4, 4))
	require.False(t, rules.Lookalike("bc1qabcdxxxxxxxxxxxxxxwxyz", "bc1qabcexxxxxxxxxxxxxxwxyz", 4, 4))
}

func TestCustomRule(t *testing.T) {
	cfg := rules.Config{Velocity: rules.VelocityConfig{DrainShare: -1}, Custom: []rules.CustomRule{
		{Name: "cold-to-unflagged-new", When: `from_kind == "cold" && at_least(amount_text, "2000000000000000000") && !flagged(to)`, Severity: "high",
			Summary: "cold wallet sent {amount_text} to {to}"},
		{Name: "any-to-thief", When: `flagged(to) && kind(from) == ""`, All: true},
	}}
	e := newEngine(t, cfg)
	c := &rulestest.Stream{}
	got := e.Apply(c.Block("", rulestest.Xfer{From: cold, To: friend, Amount: "2000000000000000000"}, rulestest.Xfer{From: cold, To: friend, Amount: "1999999999999999999"},
		rulestest.Xfer{From: friend, To: thief, Amount: "1"}))
	require.Equal(t, []string{"custom:cold-to-unflagged-new", "custom:any-to-thief"}, types(got))
	require.Equal(t, "cold wallet sent 2000000000000000000 to "+friend, got[0].Message)
	require.Equal(t, rules.TypeCustom, got[1].Type)
	require.Equal(t, "medium", got[1].Severity)
}

func TestCustomRuleValidation(t *testing.T) {
	for _, tc := range []struct {
		rule rules.CustomRule
		want string
	}{
		{rules.CustomRule{Name: "x", When: `amount`}, "want a bool expression"},
		{rules.CustomRule{Name: "x", When: `amout > 1.0`}, "undeclared reference"},
		{rules.CustomRule{Name: "x", When: `amount > `}, "custom[0].when"},
		{rules.CustomRule{Name: "X y", When: `true`}, "custom[0].name"},
		{rules.CustomRule{Name: "x", When: `true`, Severity: "urgent"}, "custom[0].severity"},
		{rules.CustomRule{Name: "x", When: ""}, "empty expression"},
	} {
		err := rules.Config{Custom: []rules.CustomRule{tc.rule}}.Validate("detect.rules")
		require.ErrorContains(t, err, tc.want, tc.rule.When)
		require.ErrorContains(t, err, "detect.rules.custom[0]")
	}
	require.ErrorContains(t, rules.Config{Outflow: rules.OutflowConfig{Min: rules.Amounts{"doge/native": "1"}}}.Validate("d"), "d.outflow.min.doge/native")
	require.ErrorContains(t, rules.Config{Poisoning: rules.PoisoningConfig{Dust: rules.Amounts{"eth/native": "-1"}}}.Validate("d"), "d.poisoning.dust.eth/native")
}

func TestReorgRetractsAndUndoes(t *testing.T) {
	e := newEngine(t, rules.Config{})
	c := &rulestest.Stream{}
	require.Empty(t, e.Apply(c.Block("", rulestest.Xfer{From: friend, To: hot, Amount: "100"})))
	before := e.Balance(chain.ETH, "devnet", hot, chain.AssetNative)
	// A drain to the thief in a block that is then removed.
	b := c.Block("a", rulestest.Xfer{From: hot, To: thief, Amount: "90", Fee: "1"})
	raised := e.Apply(b)
	require.Equal(t, []string{rules.RuleFlaggedContact, rules.RuleDrain}, types(raised))
	require.Equal(t, "9", e.Balance(chain.ETH, "devnet", hot, chain.AssetNative).String())
	retracted := e.Apply(c.Remove(b))
	require.Len(t, retracted, 2)
	for i, a := range retracted {
		require.True(t, a.Retracted)
		require.Equal(t, raised[i].ID, a.ID)
	}
	require.Equal(t, before, e.Balance(chain.ETH, "devnet", hot, chain.AssetNative))
	// The other branch: a smaller outflow is no drain (the removed one's
	// outflow is no longer in the window), and the first branch coming
	// back raises the same ids again.
	b2 := c.Block("b", rulestest.Xfer{From: hot, To: friend, Amount: "40"})
	require.Empty(t, e.Apply(b2))
	e.Apply(c.Remove(b2))
	c2 := &rulestest.Stream{Height: b.Block.Height - 1, Time: b.Block.Time - 12, Parent: b.Block.ParentHash, Seq: c.Seq}
	again := e.Apply(c2.Block("a", rulestest.Xfer{From: hot, To: thief, Amount: "90", Fee: "1"}))
	require.Equal(t, ids(raised), ids(again))
}

func ids(as []chain.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

// TestStateRoundTrip: an engine restored from another's state records
// raises the same alerts on what follows as the one that never stopped.
func TestStateRoundTrip(t *testing.T) {
	cfg := rules.Config{Velocity: rules.VelocityConfig{MaxCount: 4}}
	a := newEngine(t, cfg)
	c := &rulestest.Stream{}
	saved := map[string][]byte{}
	save := func() {
		for _, r := range a.TakeState() {
			if r.Value == nil {
				delete(saved, r.Key)
			} else {
				saved[r.Key] = r.Value
			}
		}
	}
	var ups []chain.Update
	ups = append(ups, c.Block("", rulestest.Xfer{From: friend, To: hot, Amount: "1000"}))
	for i := range 12 {
		ups = append(ups, c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: fmt.Sprint(10 + i)}))
	}
	for _, u := range ups {
		a.Apply(u)
	}
	save()
	b := newEngine(t, cfg)
	require.NoError(t, b.Restore(saved))
	var rest []chain.Update
	rest = append(rest, c.Block("", rulestest.Xfer{From: hot, To: friend, Amount: "500"}))
	rest = append(rest, c.Remove(rest[0]))
	rest = append(rest, c.Block("z", rulestest.Xfer{From: hot, To: lookalike, Amount: "1"}))
	for _, u := range rest {
		x, y := a.Apply(u), b.Apply(u)
		require.Equal(t, ids(x), ids(y))
		jx, _ := json.Marshal(x)
		jy, _ := json.Marshal(y)
		require.JSONEq(t, string(jx), string(jy))
	}
	require.NotEmpty(t, ids(b.Apply(c.Block("", rulestest.Xfer{From: hot, To: thief, Amount: "1"}))))
	require.Zero(t, new(big.Int).Cmp(big.NewInt(0)))
}

// TestNth: the quickselect the baseline's median uses agrees with
// sorting, on random, sorted, reversed and equal amounts.
func TestNth(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		n := 1 + rng.IntN(300)
		vs := make([]*big.Int, n)
		for i := range vs {
			switch trial % 4 {
			case 0:
				vs[i] = big.NewInt(rng.Int64N(50))
			case 1:
				vs[i] = big.NewInt(int64(i))
			case 2:
				vs[i] = big.NewInt(int64(n - i))
			default:
				vs[i] = big.NewInt(7)
			}
		}
		sorted := slices.Clone(vs)
		slices.SortFunc(sorted, func(a, b *big.Int) int { return a.Cmp(b) })
		k := rng.IntN(n)
		require.Equal(t, sorted[k].String(), rules.Nth(slices.Clone(vs), k).String(), "trial %d n %d k %d", trial, n, k)
	}
}

// TestFlowChunks: a busy wallet's outflows, kept in chunk records,
// survive any sequence of saves (each round writing only what changed),
// reorganizations and the maxFlows limit: an engine restored from the
// records raises what the one that never stopped raises, and no chunk
// record outlives its flows.
func TestFlowChunks(t *testing.T) {
	cfg := rules.Config{Outflow: rules.OutflowConfig{MinSamples: 5, Factor: 3}}
	a := newEngine(t, cfg)
	c := &rulestest.Stream{}
	saved := map[string][]byte{}
	save := func() {
		for _, r := range a.TakeState() {
			if r.Value == nil {
				delete(saved, r.Key)
			} else {
				saved[r.Key] = r.Value
			}
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var tail []chain.Update
	for i := range 300 {
		if len(tail) > 3 && rng.IntN(10) == 0 {
			u := tail[len(tail)-1]
			tail = tail[:len(tail)-1]
			a.Apply(c.Remove(u))
		}
		var xs []rulestest.Xfer
		for j := range 20 {
			xs = append(xs, rulestest.Xfer{From: hot, To: fmt.Sprintf("0x%040x", 1+rng.IntN(50)), Amount: fmt.Sprint(100 + rng.IntN(50) + j)})
		}
		u := c.Block(fmt.Sprintf("f%d", i), xs...)
		a.Apply(u)
		tail = append(tail, u)
		if rng.IntN(3) == 0 {
			save()
		}
	}
	save()
	chunks := 0
	for k := range saved {
		if strings.HasPrefix(k, "flows/") {
			chunks++
		}
	}
	require.LessOrEqual(t, chunks, 4096/256+1, "chunk records of forgotten flows are deleted")
	require.Positive(t, chunks)
	b := newEngine(t, cfg)
	require.NoError(t, b.Restore(saved))
	large := 0
	for i := range 20 {
		amount := "120"
		if i%5 == 0 {
			amount = "100000" // large against the baseline of the restored flows
		}
		u := c.Block(fmt.Sprintf("g%d", i), rulestest.Xfer{From: hot, To: friend, Amount: amount})
		x, y := a.Apply(u), b.Apply(u)
		jx, _ := json.Marshal(x)
		jy, _ := json.Marshal(y)
		require.JSONEq(t, string(jx), string(jy))
		for _, al := range y {
			if al.Rule == rules.RuleOutflowLarge {
				large++
			}
		}
	}
	require.Equal(t, 4, large, "the large outflows, against the restored baseline")
	// a chunk lost: refused, not silently a shorter history
	for k := range saved {
		if strings.HasPrefix(k, "flows/") {
			delete(saved, k)
			break
		}
	}
	require.ErrorContains(t, newEngine(t, cfg).Restore(saved), "flow")
}

package risk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/risk"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// screen is a screener over a map of address → hits.
type screen map[string][]chain.Hit

func (s screen) Hits(_ chain.Chain, _, addr string) []chain.Hit { return s[addr] }

type regEntry struct{ kind, account string }

// reg is a registry over a map of address → entry.
type reg map[string]regEntry

func (r reg) Lookup(_ chain.Chain, _, addr string) (string, string, bool) {
	e, ok := r[addr]
	return e.kind, e.account, ok
}

// quiet is a configuration with every check but the ones a test turns
// on switched off.
func quiet() risk.Config {
	c := risk.Defaults()
	c.Velocity = nil
	c.Lookalike = risk.Lookalike{}
	c.AboveHistory.Factor = ""
	c.Context = risk.ContextThresholds{}
	return c
}

func newRisk(tb testing.TB, cfg risk.Config, d risk.Deps) *risk.Risk {
	tb.Helper()
	if d.Screener == nil {
		d.Screener = screen{}
	}
	if d.Registry == nil {
		d.Registry = reg{}
	}
	r, err := risk.New(cfg, d)
	require.NoError(tb, err)
	return r
}

func addr(i int) string { return fmt.Sprintf("0x%040x", i) }

func usd(s string) intent.USD {
	u, err := intent.ParseUSD(s)
	if err != nil {
		panic(err)
	}
	return u
}

func rec(id, account string, amount int64, dollars string, dest string, at time.Time) risk.Record {
	r := risk.Record{ID: id, Account: account, Chain: chain.ETH, Network: "mainnet", Asset: intent.Native, Amount: big.NewInt(amount),
		Destination: dest, Time: at}
	if dollars != "" {
		r.USD = usd(dollars)
	}
	return r
}

func query(account string, amount int64, dollars string, dest string) risk.Query {
	q := risk.Query{ID: "wd_query", Account: account, Chain: chain.ETH, Network: "mainnet", Asset: intent.Native, Amount: big.NewInt(amount),
		Destination: dest}
	if dollars != "" {
		q.USD = usd(dollars)
	}
	return q
}

func assess(tb testing.TB, r *risk.Risk, q risk.Query, now time.Time) risk.Result {
	tb.Helper()
	res, err := r.Assess(context.Background(), q, now)
	require.NoError(tb, err)
	for _, f := range res.Findings {
		require.NotEmpty(tb, f.Reason, f.Code)
		require.True(tb, strings.HasSuffix(f.Reason, "."), "reason %q is not a sentence", f.Reason)
	}
	return res
}

func codes(res risk.Result) []string {
	var out []string
	for _, f := range res.Findings {
		out = append(out, f.Code)
	}
	return out
}

func find(res risk.Result, code string) []intent.Finding {
	var out []intent.Finding
	for _, f := range res.Findings {
		if f.Code == code {
			out = append(out, f)
		}
	}
	return out
}

func TestVelocity(t *testing.T) {
	cfg := quiet()
	cfg.Velocity = []risk.VelocityRule{
		{Scope: risk.ScopeAccount, Window: time.Hour, MaxCount: 3, MaxUSD: "1000"},
		{Scope: risk.ScopeAsset, Window: 24 * time.Hour, Chain: "eth", Network: "mainnet", Asset: "native", MaxAmount: "100"},
		{Scope: risk.ScopeGlobal, Window: 24 * time.Hour, MaxCount: 5},
	}
	type add struct {
		account string
		amount  int64
		dollars string
		ago     time.Duration
	}
	cases := []struct {
		name    string
		adds    []add
		q       risk.Query
		limits  []string // the velocity findings' limit details, in order
		account risk.Accumulation
	}{
		{"count one below the limit", []add{{"a", 1, "1", 10 * time.Minute}, {"a", 1, "1", 20 * time.Minute}}, query("a", 1, "1", addr(1)), nil,
			risk.Accumulation{Count: 3, USD: usd("3")}},
		{"count over the limit", []add{{"a", 1, "1", 10 * time.Minute}, {"a", 1, "1", 20 * time.Minute}, {"a", 1, "1", 30 * time.Minute}},
			query("a", 1, "1", addr(1)), []string{"count"}, risk.Accumulation{Count: 4, USD: usd("4")}},
		{"other accounts do not count for the account", []add{{"b", 1, "1", time.Minute}, {"b", 1, "1", time.Minute}, {"b", 1, "1", time.Minute}},
			query("a", 1, "1", addr(1)), nil, risk.Accumulation{Count: 1, USD: usd("1")}},
		{"usd at the limit", []add{{"a", 1, "999.99", time.Minute}}, query("a", 1, "0.01", addr(1)), nil,
			risk.Accumulation{Count: 2, USD: usd("1000")}},
		{"usd a cent over", []add{{"a", 1, "999.99", time.Minute}}, query("a", 1, "0.02", addr(1)), []string{"usd"},
			risk.Accumulation{Count: 2, USD: usd("1000.01")}},
		{"a withdrawal of unknown value makes the window unknown", []add{{"a", 1, "", time.Minute}}, query("a", 1, "1", addr(1)), []string{"usd"},
			risk.Accumulation{Count: 2}},
		{"this withdrawal of unknown value", nil, query("a", 1, "", addr(1)), []string{"usd"}, risk.Accumulation{Count: 1}},
		{"an hour ago exactly is out of the window", []add{{"a", 1, "", time.Hour}, {"a", 1, "1", time.Hour}, {"a", 1, "1", time.Hour}},
			query("a", 1, "1", addr(1)), nil, risk.Accumulation{Count: 1, USD: usd("1")}},
		{"base units at the asset limit", []add{{"b", 60, "1", 2 * time.Hour}}, query("a", 40, "1", addr(1)), nil,
			risk.Accumulation{Count: 1, USD: usd("1")}},
		{"base units over the asset limit", []add{{"b", 60, "1", 2 * time.Hour}}, query("a", 41, "1", addr(1)), []string{"amount"},
			risk.Accumulation{Count: 1, USD: usd("1")}},
		{"global count over", []add{{"b", 1, "1", 2 * time.Hour}, {"c", 1, "1", 3 * time.Hour}, {"d", 1, "1", 4 * time.Hour}, {"e", 1, "1", 5 * time.Hour},
			{"f", 1, "1", 6 * time.Hour}}, query("a", 1, "1", addr(1)), []string{"count"}, risk.Accumulation{Count: 1, USD: usd("1")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRisk(t, cfg, risk.Deps{})
			for i, a := range tc.adds {
				require.NoError(t, r.Add(rec(fmt.Sprintf("wd_%d", i), a.account, a.amount, a.dollars, addr(100+i), t0.Add(-a.ago))))
			}
			res := assess(t, r, tc.q, t0)
			var limits []string
			for _, f := range find(res, intent.Velocity) {
				limits = append(limits, f.Details["limit"])
			}
			require.Equal(t, tc.limits, limits, "%v", res.Findings)
			acc := res.Accumulations["account_1h"]
			require.Equal(t, tc.account.Count, acc.Count)
			require.Zero(t, tc.account.USD.Cmp(acc.USD), "account_1h usd %s, want %s", acc.USD, tc.account.USD)
			require.Equal(t, tc.account.USD.Known(), acc.USD.Known())
			require.Contains(t, res.Accumulations, "asset_24h")
			require.Contains(t, res.Accumulations, "global_24h")
		})
	}
}

func TestVelocityFindingDetails(t *testing.T) {
	cfg := quiet()
	cfg.Velocity = []risk.VelocityRule{{Scope: risk.ScopeAsset, Window: 30 * time.Minute, MaxCount: 1, MaxUSD: "10"}}
	r := newRisk(t, cfg, risk.Deps{})
	require.NoError(t, r.Add(rec("wd_1", "b", 5, "9", addr(2), t0.Add(-time.Minute))))
	res := assess(t, r, query("a", 7, "2", addr(1)), t0)
	v := find(res, intent.Velocity)
	require.Len(t, v, 2)
	require.Equal(t, map[string]string{"scope": "asset", "window": "30m", "key": "asset_30m", "limit": "count", "count": "2", "max_count": "1",
		"usd": "11.00", "chain": "eth", "network": "mainnet", "asset": "native", "amount": "12"}, v[0].Details)
	require.Equal(t, "usd", v[1].Details["limit"])
	require.Equal(t, "10", v[1].Details["max_usd"])
	acc := res.Accumulations["asset_30m"]
	require.Equal(t, int64(2), acc.Count)
	require.Equal(t, "12", acc.Amount.String())
	require.Equal(t, "11.00", acc.USD.String())
}

// TestWindowsSlide moves now forward and back over a fixed history: each
// window counts exactly the withdrawals in (now-window, now].
func TestWindowsSlide(t *testing.T) {
	cfg := quiet()
	cfg.Velocity = []risk.VelocityRule{{Scope: risk.ScopeAccount, Window: time.Hour}, {Scope: risk.ScopeAsset, Window: time.Hour},
		{Scope: risk.ScopeGlobal, Window: time.Hour}, {Scope: risk.ScopeGlobal, Window: 3 * time.Hour}}
	r := newRisk(t, cfg, risk.Deps{})
	at := []time.Duration{0, 10 * time.Minute, 50 * time.Minute, 70 * time.Minute, 130 * time.Minute}
	for i, d := range at {
		require.NoError(t, r.Add(rec(fmt.Sprintf("wd_%d", i), "a", 1, "1", addr(i), t0.Add(d))))
	}
	q := query("z", 1, "1", addr(99))
	q.ID = "wd_0" // held: not counted again
	for _, tc := range []struct {
		now       time.Duration
		hour, all int64
	}{
		{0, 1, 1}, {10 * time.Minute, 2, 2}, {60 * time.Minute, 2, 3}, {61 * time.Minute, 2, 3}, {70 * time.Minute, 2, 4},
		{111 * time.Minute, 1, 4}, {130 * time.Minute, 1, 5}, {180 * time.Minute, 1, 4}, {60 * time.Minute, 2, 3}, {5 * time.Minute, 1, 1},
	} {
		res := assess(t, r, q, t0.Add(tc.now))
		require.Equal(t, tc.hour, res.Accumulations["global_1h"].Count, "global_1h at +%s", tc.now)
		require.Equal(t, tc.hour, res.Accumulations["asset_1h"].Count, "asset_1h at +%s", tc.now)
		require.Equal(t, tc.all, res.Accumulations["global_3h"].Count, "global_3h at +%s", tc.now)
		require.Equal(t, int64(0), res.Accumulations["account_1h"].Count, "account z has nothing, and the held query is not counted twice")
	}
}

func TestRemove(t *testing.T) {
	cfg := quiet()
	cfg.Velocity = []risk.VelocityRule{{Scope: risk.ScopeAccount, Window: time.Hour, MaxCount: 1}, {Scope: risk.ScopeGlobal, Window: time.Hour, MaxUSD: "100"}}
	r := newRisk(t, cfg, risk.Deps{})
	require.NoError(t, r.Add(rec("wd_1", "a", 1, "90", addr(1), t0.Add(-time.Minute))))
	res := assess(t, r, query("a", 1, "20", addr(2)), t0)
	require.Len(t, find(res, intent.Velocity), 2)
	require.True(t, res.Has(intent.NewDestination))

	require.True(t, r.Remove("wd_1"))
	require.False(t, r.Remove("wd_1"), "removed twice")
	res = assess(t, r, query("a", 1, "20", addr(1)), t0)
	require.Empty(t, find(res, intent.Velocity))
	require.Equal(t, int64(1), res.Accumulations["global_1h"].Count)
	require.Equal(t, "20.00", res.Accumulations["global_1h"].USD.String())
	require.Len(t, find(res, intent.NewDestination), 1, "a denied withdrawal's destination was never used")
	_, ok := r.Account("a")
	require.False(t, ok, "an account with nothing left is forgotten")
}

func TestAddIsIdempotentAndChecked(t *testing.T) {
	cfg := quiet()
	cfg.Velocity = []risk.VelocityRule{{Scope: risk.ScopeGlobal, Window: time.Hour}}
	r := newRisk(t, cfg, risk.Deps{})
	require.NoError(t, r.Add(rec("wd_1", "a", 1, "1", addr(1), t0)))
	require.NoError(t, r.Add(rec("wd_1", "a", 1, "1", addr(1), t0)))
	require.Equal(t, 1, r.Held())
	require.Equal(t, int64(2), assess(t, r, query("a", 1, "1", addr(1)), t0).Accumulations["global_1h"].Count)

	for name, bad := range map[string]func(*risk.Record){
		"no id":       func(r *risk.Record) { r.ID = "" },
		"no account":  func(r *risk.Record) { r.Account = "" },
		"no amount":   func(r *risk.Record) { r.Amount = nil },
		"negative":    func(r *risk.Record) { r.Amount = big.NewInt(-1) },
		"no time":     func(r *risk.Record) { r.Time = time.Time{} },
		"no dest":     func(r *risk.Record) { r.Destination = "" },
		"no asset":    func(r *risk.Record) { r.Asset = "" },
		"no network ": func(r *risk.Record) { r.Network = "" },
	} {
		x := rec("wd_2", "a", 1, "1", addr(1), t0)
		bad(&x)
		require.ErrorIs(t, r.Add(x), risk.ErrRecord, name)
	}
	require.Equal(t, 1, r.Held())
}

// TestSettling: past Retain a withdrawal leaves the windows' memory,
// stays in the account's history, and can no longer be removed.
func TestSettling(t *testing.T) {
	cfg := quiet()
	cfg.Retain = 2 * time.Hour
	cfg.Velocity = []risk.VelocityRule{{Scope: risk.ScopeGlobal, Window: time.Hour}}
	cfg.AboveHistory = risk.AboveHistory{Factor: "2", MinCount: 1}
	r := newRisk(t, cfg, risk.Deps{})
	require.NoError(t, r.Add(rec("wd_1", "a", 10, "1", addr(1), t0)))
	require.Equal(t, 1, r.Held())
	res := assess(t, r, query("a", 21, "1", addr(1)), t0.Add(3*time.Hour))
	require.Equal(t, 0, r.Held())
	require.False(t, r.Remove("wd_1"), "settled")
	require.Empty(t, find(res, intent.NewDestination))
	require.Len(t, find(res, intent.AboveHistory), 1)
	st, ok := r.Account("a")
	require.True(t, ok)
	require.Empty(t, st.Recent)
	require.Equal(t, []risk.DestinationState{{Chain: chain.ETH, Network: "mainnet", Address: addr(1), First: t0, Last: t0, Count: 1}}, st.Destinations)
	require.Equal(t, []risk.AssetState{{Chain: chain.ETH, Network: "mainnet", Asset: "native", Count: 1, Max: "10"}}, st.Assets)

	// A record older than Retain settles at once.
	require.NoError(t, r.Add(rec("wd_old", "b", 5, "1", addr(2), t0)))
	require.Equal(t, 0, r.Held())
	st, _ = r.Account("b")
	require.Len(t, st.Destinations, 1)
}

func TestMaxDestinations(t *testing.T) {
	cfg := quiet()
	cfg.Retain = time.Hour
	cfg.MaxDestinations = 2
	r := newRisk(t, cfg, risk.Deps{})
	for i := range 3 {
		require.NoError(t, r.Add(rec(fmt.Sprint("wd_", i), "a", 1, "1", addr(i), t0.Add(time.Duration(i)*time.Minute))))
	}
	assess(t, r, query("a", 1, "1", addr(9)), t0.Add(2*time.Hour))
	st, _ := r.Account("a")
	require.Len(t, st.Destinations, 2)
	require.Equal(t, addr(1), st.Destinations[0].Address, "the least recently used went first")
	require.True(t, assess(t, r, query("a", 1, "1", addr(0)), t0.Add(2*time.Hour)).Has(intent.NewDestination))
	require.False(t, assess(t, r, query("a", 1, "1", addr(2)), t0.Add(2*time.Hour)).Has(intent.NewDestination))
}

func TestNewDestinationAndLookalike(t *testing.T) {
	cfg := quiet()
	cfg.Lookalike = risk.Lookalike{Leading: 4, Trailing: 4}
	used := "0xabcd000000000000000000000000000000001234"
	btcUsed := "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
	cases := []struct {
		name    string
		chain   chain.Chain
		dest    string
		new     bool
		resembl string
	}{
		{"same address twice is neither new nor a lookalike", chain.ETH, used, false, ""},
		{"same ends, another address", chain.ETH, "0xabcd111111111111111111111111111111111234", true, used},
		{"different tail", chain.ETH, "0xabcd111111111111111111111111111111111235", true, ""},
		{"different head", chain.ETH, "0xabce111111111111111111111111111111111234", true, ""},
		{"bech32 after bc1q", chain.BTC, "bc1qar0sxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx5mdq", true, btcUsed},
		{"bech32 different tail", chain.BTC, "bc1qar0sxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx5mdz", true, ""},
		{"taproot is another kind", chain.BTC, "bc1par0sxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx5mdq", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRisk(t, cfg, risk.Deps{})
			require.NoError(t, r.Add(rec("wd_1", "a", 1, "1", used, t0.Add(-48*time.Hour))))
			b := rec("wd_2", "a", 1, "1", btcUsed, t0.Add(-47*time.Hour))
			b.Chain = chain.BTC
			require.NoError(t, r.Add(b))
			q := query("a", 1, "1", tc.dest)
			q.Chain = tc.chain
			res := assess(t, r, q, t0)
			require.Equal(t, tc.new, res.Has(intent.NewDestination))
			la := find(res, intent.Lookalike)
			if tc.resembl == "" {
				require.Empty(t, la)
				return
			}
			require.Len(t, la, 1)
			require.Equal(t, tc.resembl, la[0].Details["resembles"])
			first := t0.Add(-48 * time.Hour)
			if tc.chain == chain.BTC {
				first = t0.Add(-47 * time.Hour)
			}
			require.Equal(t, first.Format(time.RFC3339), la[0].Details["resembles_first_used"])
		})
	}
	// Other accounts' destinations are not this account's history.
	r := newRisk(t, cfg, risk.Deps{})
	require.NoError(t, r.Add(rec("wd_1", "b", 1, "1", used, t0.Add(-time.Hour))))
	res := assess(t, r, query("a", 1, "1", used), t0)
	require.True(t, res.Has(intent.NewDestination))
	// The same account on another network has not used it.
	q := query("b", 1, "1", used)
	q.Network = "sepolia"
	require.True(t, assess(t, r, q, t0).Has(intent.NewDestination))
}

func TestAboveHistory(t *testing.T) {
	cfg := quiet()
	cfg.AboveHistory = risk.AboveHistory{Factor: "2.5", MinCount: 3}
	cases := []struct {
		name    string
		history []int64
		amount  int64
		fires   bool
	}{
		{"just under the factor", []int64{10, 40, 20}, 99, false},
		{"at the factor", []int64{10, 40, 20}, 100, false},
		{"just above", []int64{10, 40, 20}, 101, true},
		{"too little history", []int64{10, 40}, 1000, false},
		{"no history", nil, 1000, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRisk(t, cfg, risk.Deps{})
			for i, a := range tc.history {
				require.NoError(t, r.Add(rec(fmt.Sprint("wd_", i), "a", a, "1", addr(i), t0.Add(-time.Duration(i+1)*time.Hour))))
			}
			// Another asset's history does not count.
			other := rec("wd_tok", "a", 1, "1", addr(7), t0.Add(-time.Hour))
			other.Asset = "0xdac17f958d2ee523a2206206994597c13d831ec7"
			require.NoError(t, r.Add(other))
			f := find(assess(t, r, query("a", tc.amount, "1", addr(1)), t0), intent.AboveHistory)
			require.Equal(t, tc.fires, len(f) == 1, "%v", f)
			if tc.fires {
				require.Equal(t, map[string]string{"amount": fmt.Sprint(tc.amount), "largest": "40", "count": "3", "factor": "2.5", "asset": "native"}, f[0].Details)
			}
		})
	}
}

func ptr(v int64) *int64 { return &v }

func TestContext(t *testing.T) {
	cfg := quiet()
	cfg.Context = risk.ContextThresholds{AccountChangedWithin: 72 * time.Hour, DeviceNewerThan: 7 * 24 * time.Hour, SessionYoungerThan: 10 * time.Minute,
		RiskScoreAtLeast: "70"}
	r := newRisk(t, cfg, risk.Deps{})
	edge := intent.Context{AccountChanged: ptr(72 * 3600), DeviceAge: ptr(7 * 24 * 3600), SessionAge: ptr(600), RiskScore: "69.999999"}
	inside := intent.Context{AccountChanged: ptr(72*3600 - 1), DeviceAge: ptr(7*24*3600 - 1), SessionAge: ptr(599), RiskScore: "70"}
	ctxCodes := func(c intent.Context) []string {
		q := query("a", 1, "1", addr(1))
		q.Context = c
		var out []string
		for _, code := range codes(assess(t, r, q, t0)) {
			if code != intent.NewDestination {
				out = append(out, code)
			}
		}
		return out
	}
	require.Empty(t, ctxCodes(edge), "at the thresholds")
	all := []string{intent.AccountChanged, intent.DeviceNew, intent.SessionNew, intent.ExchangeRisk}
	require.Equal(t, all, ctxCodes(inside))
	require.Equal(t, all, ctxCodes(intent.Context{}), "unknown is never fine")
	require.Equal(t, all, ctxCodes(intent.Context{AccountChanged: ptr(-1), DeviceAge: ptr(-5), SessionAge: ptr(-1), RiskScore: "1e2"}))
	require.Equal(t, []string{intent.ExchangeRisk}, ctxCodes(intent.Context{AccountChanged: ptr(1 << 40), DeviceAge: ptr(1 << 40), SessionAge: ptr(1 << 40),
		RiskScore: "100.5"}))

	q := query("a", 1, "1", addr(1))
	q.Context = intent.Context{DeviceAge: ptr(3600)}
	f := find(assess(t, r, q, t0), intent.DeviceNew)
	require.Len(t, f, 1)
	require.Equal(t, map[string]string{"known": "true", "age_seconds": "3600", "threshold_seconds": "604800"}, f[0].Details)
	f = find(assess(t, r, q, t0), intent.SessionNew)
	require.Equal(t, "false", f[0].Details["known"])
}

func TestScreeningAndRegistry(t *testing.T) {
	hit := chain.Hit{Address: addr(1), Indicator: "ofac/123", Category: "sanctions", Source: "OFAC", Confidence: 100}
	r := newRisk(t, quiet(), risk.Deps{Screener: screen{addr(1): {hit}},
		Registry: reg{addr(2): {"deposit", "a"}, addr(3): {"deposit", "b"}, addr(4): {"hot", ""}}})
	res := assess(t, r, query("a", 1, "1", addr(1)), t0)
	f := find(res, intent.FlaggedDestination)
	require.Len(t, f, 1)
	require.Equal(t, map[string]string{"address": addr(1), "indicator": "ofac/123", "category": "sanctions", "source": "OFAC", "confidence": "100"}, f[0].Details)
	require.Empty(t, find(res, intent.InternalTransfer))
	require.Empty(t, find(assess(t, r, query("a", 1, "1", addr(5)), t0), intent.FlaggedDestination))

	for _, tc := range []struct {
		dest          string
		kind, account string
		same          string
	}{{addr(2), "deposit", "a", "true"}, {addr(3), "deposit", "b", "false"}, {addr(4), "hot", "", "false"}} {
		f := find(assess(t, r, query("a", 1, "1", tc.dest), t0), intent.InternalTransfer)
		require.Len(t, f, 1, tc.dest)
		require.Equal(t, map[string]string{"kind": tc.kind, "account": tc.account, "same_account": tc.same}, f[0].Details)
	}
}

// cps answers counterparties from a map, or fails, or hangs until the
// context ends; it counts its calls.
type cps struct {
	by    map[string][]string
	err   error
	hang  bool
	calls int
}

func (c *cps) Counterparties(ctx context.Context, _ chain.Chain, _, addr string, limit int) ([]string, error) {
	c.calls++
	if c.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if c.err != nil {
		return nil, c.err
	}
	l := c.by[addr]
	return l[:min(limit, len(l))], nil
}

func TestCounterparties(t *testing.T) {
	bad := chain.Hit{Address: addr(9), Indicator: "misp/7", Category: "mixer", Source: "MISP", Confidence: 80}
	cfg := quiet()
	cfg.Counterparties.Limit = 2
	cfg.Counterparties.Timeout = 50 * time.Millisecond
	src := &cps{by: map[string][]string{addr(1): {addr(8), addr(9), addr(10)}, addr(2): {addr(10), addr(8), addr(9)}}}
	r := newRisk(t, cfg, risk.Deps{Screener: screen{addr(9): {bad}, addr(10): {bad}}, Counterparties: src})

	f := find(assess(t, r, query("a", 1, "1", addr(1)), t0), intent.FlaggedCounterparty)
	require.Len(t, f, 1, "the third counterparty is past the limit")
	require.Equal(t, addr(9), f[0].Details["counterparty"])
	require.Equal(t, "mixer", f[0].Details["category"])
	require.Equal(t, "misp/7", f[0].Details["indicator"])
	assess(t, r, query("a", 1, "1", addr(1)), t0)
	require.Equal(t, 1, src.calls, "the second lookup is cached")
	require.Len(t, find(assess(t, r, query("a", 1, "1", addr(2)), t0), intent.FlaggedCounterparty), 1)

	for name, s := range map[string]*cps{"failing": {err: errors.New("connection refused")}, "hanging": {hang: true}} {
		r := newRisk(t, cfg, risk.Deps{Counterparties: s})
		start := time.Now()
		res := assess(t, r, query("a", 1, "1", addr(1)), t0)
		require.Less(t, time.Since(start), 5*time.Second)
		u := find(res, risk.CounterpartiesUnknown)
		require.Len(t, u, 1, name)
		require.NotEmpty(t, u[0].Details["error"])
		assess(t, r, query("a", 1, "1", addr(1)), t0)
		require.Equal(t, 2, s.calls, "%s: a failure is not cached", name)
	}
	if testing.Verbose() {
		t.Log(find(assess(t, newRisk(t, cfg, risk.Deps{Counterparties: &cps{hang: true}}), query("a", 1, "1", addr(1)), t0), risk.CounterpartiesUnknown)[0].Reason)
	}
}

func TestPriceUnknown(t *testing.T) {
	r := newRisk(t, quiet(), risk.Deps{})
	require.True(t, assess(t, r, query("a", 1, "", addr(1)), t0).Has(intent.PriceUnknown))
	require.False(t, assess(t, r, query("a", 1, "0", addr(1)), t0).Has(intent.PriceUnknown))
}

// TestSnapshotRoundTrip: every account's state through JSON into a new
// layer gives the same states and the same answers.
func TestSnapshotRoundTrip(t *testing.T) {
	cfg := risk.Defaults()
	cfg.Retain = 24 * time.Hour
	r := newRisk(t, cfg, risk.Deps{})
	accounts := []string{"a", "b", "c"}
	n := 0
	for h := 0; h < 60; h++ {
		for i, a := range accounts {
			dollars := fmt.Sprintf("%d.%02d", h*7+i, h%100)
			switch h % 11 {
			case 3:
				dollars = "" // unknown
			case 5:
				dollars = "1/3" // no decimal form
			}
			x := rec(fmt.Sprintf("wd_%d", n), a, int64(1000+h*i), "", addr((h*3+i)%17), t0.Add(time.Duration(h)*time.Hour))
			if dollars == "1/3" {
				x.USD = intent.Dollars(big.NewRat(1, 3))
			} else if dollars != "" {
				x.USD = usd(dollars)
			}
			x.Amount = new(big.Int).Lsh(x.Amount, 70) // past uint64
			if h%4 == 1 {
				x.Asset = "0xdac17f958d2ee523a2206206994597c13d831ec7"
			}
			require.NoError(t, r.Add(x))
			n++
		}
		if h%9 == 2 {
			require.True(t, r.Remove(fmt.Sprintf("wd_%d", n-2)))
		}
	}
	now := t0.Add(60 * time.Hour)
	qs := []risk.Query{query("a", 5000, "100", addr(3)), query("b", 1<<40, "5", addr(40)), query("c", 1, "", addr(16)), query("d", 1, "1", addr(1))}
	want := make([]risk.Result, len(qs))
	for i, q := range qs {
		want[i] = assess(t, r, q, now)
	}
	r2 := newRisk(t, cfg, risk.Deps{})
	for _, a := range accounts {
		st, ok := r.Account(a)
		require.True(t, ok)
		require.NotEmpty(t, st.Recent)
		require.NotEmpty(t, st.Destinations)
		b, err := json.Marshal(st)
		require.NoError(t, err)
		var back risk.AccountState
		require.NoError(t, json.Unmarshal(b, &back))
		require.NoError(t, r2.RestoreAccount(back))
		st2, _ := r2.Account(a)
		require.Equal(t, st, st2)
	}
	require.Equal(t, r.Held(), r2.Held())
	for i, q := range qs {
		got := assess(t, r2, q, now)
		require.Equal(t, want[i].Findings, got.Findings, "query %d", i)
		require.Equal(t, len(want[i].Accumulations), len(got.Accumulations))
		for k, w := range want[i].Accumulations {
			g := got.Accumulations[k]
			require.Equal(t, w.Count, g.Count, k)
			require.Equal(t, w.USD.Known(), g.USD.Known(), k)
			require.Zero(t, w.USD.Cmp(g.USD), k)
		}
	}
	// Restoring replaces: the state of a given twice counts once.
	st, _ := r.Account("a")
	require.NoError(t, r2.RestoreAccount(st))
	require.Equal(t, r.Held(), r2.Held())
	// A malformed state changes nothing.
	broken := st
	broken.Recent = append([]risk.RecordState(nil), st.Recent...)
	broken.Recent[0].Amount = "-1"
	require.ErrorIs(t, r2.RestoreAccount(broken), risk.ErrRecord)
	st3, _ := r2.Account("a")
	require.Equal(t, st, st3)
}

func TestConfig(t *testing.T) {
	require.NoError(t, validate(risk.Defaults()))
	cases := []struct {
		name string
		edit func(*risk.Config)
		key  string
	}{
		{"bad scope", func(c *risk.Config) { c.Velocity[1].Scope = "planet" }, "gate.risk.velocity[1].scope"},
		{"no window", func(c *risk.Config) { c.Velocity[1].Window = 0 }, "gate.risk.velocity[1].window"},
		{"fractional window", func(c *risk.Config) { c.Velocity[0].Window = 1500 * time.Millisecond }, "gate.risk.velocity[0].window"},
		{"float dollars", func(c *risk.Config) { c.Velocity[0].MaxUSD = "1e6" }, "gate.risk.velocity[0].max_usd"},
		{"negative count", func(c *risk.Config) { c.Velocity[0].MaxCount = -1 }, "gate.risk.velocity[0].max_count"},
		{"base units for all assets", func(c *risk.Config) { c.Velocity[2].MaxAmount = "100" }, "gate.risk.velocity[2].max_amount"},
		{"base units on an account", func(c *risk.Config) { c.Velocity[0].MaxAmount = "100" }, "gate.risk.velocity[0].max_amount"},
		{"asset without chain", func(c *risk.Config) { c.Velocity[2].Asset = "native" }, "gate.risk.velocity[2].asset"},
		{"twice the same window", func(c *risk.Config) { c.Velocity = append(c.Velocity, c.Velocity[0]) }, "gate.risk.velocity[6]"},
		{"lookalike half off", func(c *risk.Config) { c.Lookalike.Trailing = 0 }, "gate.risk.lookalike"},
		{"factor of one", func(c *risk.Config) { c.AboveHistory.Factor = "1" }, "gate.risk.above_history.factor"},
		{"min count", func(c *risk.Config) { c.AboveHistory.MinCount = 0 }, "gate.risk.above_history.min_count"},
		{"score", func(c *risk.Config) { c.Context.RiskScoreAtLeast = "101" }, "gate.risk.context.risk_score_at_least"},
		{"negative age", func(c *risk.Config) { c.Context.DeviceNewerThan = -time.Hour }, "gate.risk.context.device_newer_than"},
		{"timeout", func(c *risk.Config) { c.Counterparties.Timeout = 0 }, "gate.risk.counterparties.timeout"},
		{"retain under a window", func(c *risk.Config) { c.Retain = time.Hour }, "gate.risk.retain"},
		{"destinations", func(c *risk.Config) { c.MaxDestinations = 0 }, "gate.risk.max_destinations"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := risk.Defaults()
			tc.edit(&c)
			err := validate(c)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.key+": ")
			_, err = risk.New(c, risk.Deps{Screener: screen{}, Registry: reg{}})
			require.Error(t, err)
		})
	}
	_, err := risk.New(risk.Defaults(), risk.Deps{Registry: reg{}})
	require.Error(t, err, "no screener")
}

func validate(c risk.Config) error {
	var p config.Problems
	c.Validate(&p, "gate.risk")
	return p.Err()
}

func TestQueryOf(t *testing.T) {
	in := &intent.Intent{ID: "wd_1", Account: "a", Chain: "eth", Network: "mainnet", Asset: "native", Amount: "123456789012345678901234567890",
		Destination: addr(1), Requested: t0}
	q, err := risk.QueryOf(in, usd("5"), intent.Context{RiskScore: "1"})
	require.NoError(t, err)
	require.Equal(t, "123456789012345678901234567890", q.Amount.String())
	require.Equal(t, chain.ETH, q.Chain)
	rc, err := risk.RecordOf(in, usd("5"))
	require.NoError(t, err)
	require.Equal(t, t0, rc.Time)
	in.Amount = "12x"
	_, err = risk.QueryOf(in, usd("5"), intent.Context{})
	require.Error(t, err)
}

// TestConcurrent: adds, removes, snapshots and assessments from several
// goroutines (run with -race); every add is counted once.
func TestConcurrent(t *testing.T) {
	cfg := quiet()
	cfg.Velocity = []risk.VelocityRule{{Scope: risk.ScopeGlobal, Window: time.Hour}}
	r := newRisk(t, cfg, risk.Deps{Counterparties: peers{}})
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			errs <- func() error {
				for i := range 200 {
					id := fmt.Sprintf("wd_%d_%d", g, i)
					if err := r.Add(rec(id, fmt.Sprint("acct", g), 1, "1", addr(i%7), t0.Add(time.Duration(i)*time.Millisecond))); err != nil {
						return err
					}
					if i%4 == 0 && !r.Remove(id) {
						return fmt.Errorf("%s not removed", id)
					}
					if _, err := r.Assess(context.Background(), query(fmt.Sprint("acct", g), 1, "1", addr(i)), t0.Add(time.Second)); err != nil {
						return err
					}
					r.Account(fmt.Sprint("acct", g))
				}
				return nil
			}()
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
	q := query("x", 1, "1", addr(1))
	require.Equal(t, int64(4*150+1), assess(t, r, q, t0.Add(time.Second)).Accumulations["global_1h"].Count)
}

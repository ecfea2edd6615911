package policy

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/signer/intent"
)

func TestDefaultPolicyTiers(t *testing.T) {
	as, _ := testApprovers(t)
	p, err := Default(as)
	require.NoError(t, err)
	require.Equal(t, Hash(DefaultYAML()), p.Hash())

	// Ether at $2,500: 400 ETH is $1,000,000 and 2,000 ETH $5,000,000
	// exactly; one wei more is above.
	prices, err := NewPrices(PricesConfig{MaxAge: 5 * time.Minute, Assets: []AssetPrice{
		{Chain: "eth", Network: "mainnet", Asset: intent.Native, Decimals: 18, USD: "2500"},
		{Chain: "btc", Network: "mainnet", Asset: intent.Native, Decimals: 8},
	}}, t0)
	require.NoError(t, err)
	valued := func(chain, amount string, now time.Time) Input {
		in := testIntent()
		in.Chain, in.Amount = chain, amount
		u, why := prices.Value(chain, "mainnet", intent.Native, bigInt(t, amount), now)
		return Input{Intent: in, USD: u, USDReason: why}
	}
	direct := func(s string) Input {
		if s == "" {
			return Input{Intent: testIntent()}
		}
		return Input{Intent: testIntent(), USD: usd(t, s)}
	}
	cases := []struct {
		name string
		in   Input
		rule string
		n    int
		cool time.Duration
		why  string
	}{
		{"one cent", direct("0.01"), "below-1m", 2, 0, "usd 0.01"},
		{"$999,999.99", direct("999999.99"), "below-1m", 2, 0, "usd 999999.99"},
		{"a millionth of a cent below $1,000,000", direct("999999.99999999"), "below-1m", 2, 0, "usd 1000000.00"},
		{"399.999… ETH, one wei below $1,000,000", valued("eth", "399999999999999999999", t0), "below-1m", 2, 0, ""},
		{"$1,000,000 exactly", direct("1000000"), "1m-to-5m", 3, 2 * time.Hour, "usd 1000000.00"},
		{"400 ETH: $1,000,000 exactly", valued("eth", "400000000000000000000", t0), "1m-to-5m", 3, 2 * time.Hour, "usd 1000000.00"},
		{"$5,000,000 exactly", direct("5000000"), "1m-to-5m", 3, 2 * time.Hour, ""},
		{"2,000 ETH: $5,000,000 exactly", valued("eth", "2000000000000000000000", t0), "1m-to-5m", 3, 2 * time.Hour, "usd 5000000.00"},
		{"2,000 ETH and one wei", valued("eth", "2000000000000000000001", t0), "above-5m", 4, 2 * time.Hour, "usd 5000000.01"},
		{"$5,000,000.01", direct("5000000.01"), "above-5m", 4, 2 * time.Hour, ""},
		{"unknown value", direct(""), "above-5m", 4, 2 * time.Hour, "usd unknown"},
		{"stale price: 1 wei", valued("eth", "1", t0.Add(6*time.Minute)), "above-5m", 4, 2 * time.Hour, "stale"},
		{"no price for bitcoin yet", valued("btc", "1", t0), "above-5m", 4, 2 * time.Hour, "no price for btc mainnet native yet"},
		{"an asset without a price", Input{Intent: testIntent(), USDReason: "no price for eth mainnet 0xdead"}, "above-5m", 4, 2 * time.Hour, "0xdead"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := p.Evaluate(c.in)
			require.Equal(t, c.rule, d.Rule, d.Reason)
			require.Equal(t, Approve, d.Action)
			require.Equal(t, p.Hash(), d.Policy)
			require.NotNil(t, d.Terms)
			require.Equal(t, c.n, d.Terms.N)
			require.Equal(t, []string{"security", "finance"}, d.Terms.Groups)
			require.Equal(t, c.cool, d.Terms.Cooling)
			require.Equal(t, 2*time.Hour, d.Terms.Expiry)
			require.True(t, d.Terms.RejectVeto)
			if c.rule == "below-1m" {
				require.Equal(t, 15*time.Minute, d.Terms.Window)
			}
			if c.rule == "above-5m" {
				require.Equal(t, map[string]int{"security": 1, "finance": 1}, d.Terms.MinPerGroup)
			} else {
				require.Empty(t, d.Terms.MinPerGroup)
			}
			require.Contains(t, strings.Join(d.Why, "; "), c.why)
		})
	}
}

func TestDefaultPolicyDeniesFlaggedDestinations(t *testing.T) {
	as, _ := testApprovers(t)
	p, err := Default(as)
	require.NoError(t, err)
	flag := intent.Finding{Code: intent.FlaggedDestination, Reason: "the destination is on the OFAC SDN list",
		Details: map[string]string{"source": "ofac"}}
	other := intent.Finding{Code: intent.NewDestination, Reason: "first withdrawal to this address"}
	for _, v := range []string{"0.01", "3000000", "90000000", ""} {
		in := Input{Intent: testIntent(), Findings: []intent.Finding{other, flag}}
		if v != "" {
			in.USD = usd(t, v)
		}
		d := p.Evaluate(in)
		require.Equal(t, Deny, d.Action, v)
		require.Equal(t, "flagged-destination", d.Rule)
		require.Nil(t, d.Terms)
		require.Contains(t, d.Why, "finding flagged_destination: the destination is on the OFAC SDN list")
		require.NotContains(t, d.Why, "finding new_destination: first withdrawal to this address", "the rule names only the findings it tests")
	}
	// A counterparty flag is not a destination flag: it is reviewed as the
	// top tier, whatever the amount; so is a destination whose
	// counterparties could not be screened.
	for _, code := range []string{intent.FlaggedCounterparty, intent.CounterpartiesUnknown} {
		d := p.Evaluate(Input{Intent: testIntent(), USD: usd(t, "10"), Findings: []intent.Finding{{Code: code, Reason: "x"}}})
		require.Equal(t, "counterparty-review", d.Rule, code)
		require.Equal(t, 4, d.Terms.N)
		require.Equal(t, 2*time.Hour, d.Terms.Cooling)
	}
}

// rules builds a policy from conditions, each an allow rule named r0,
// r1, …, followed by the catch-all deny.
func rules(tb testing.TB, whens ...string) *Policy {
	tb.Helper()
	as, _ := testApprovers(tb)
	p, err := New(ruleList(whens...), as, "test")
	require.NoError(tb, err)
	return p
}

func ruleList(whens ...string) []Rule {
	var rs []Rule
	for i, w := range whens {
		rs = append(rs, Rule{Name: fmt.Sprintf("r%d", i), When: w, Action: Allow, Reason: "test rule"})
	}
	return append(rs, Rule{Name: "catch-all", Action: Deny, Reason: "nothing matched"})
}

func TestConditions(t *testing.T) {
	age := int64(600)
	full := Input{
		Intent:  testIntent(),
		Context: intent.Context{DeviceID: "dev-9", DeviceAge: &age},
		USD:     usd(t, "1000000"),
		Findings: []intent.Finding{{Code: intent.Velocity, Reason: "account over its 24h limit",
			Details: map[string]string{"scope": "account", "window": "24h"}}},
		Velocity: map[string]Accumulation{
			"account_24h": {Count: 3, USD: usd(t, "9000000.50")},
			"global_1h":   {Count: 40, USD: intent.USD{}},
		},
		Whitelisted: true,
	}
	unknown := full
	unknown.USD = intent.USD{}
	cases := []struct {
		when string
		in   Input
		want bool
	}{
		{`usd == 1000000`, full, true},
		{`1000000 == usd`, full, true},
		{`usd != 1000000`, full, false},
		{`usd == dollars("1000000.00")`, full, true},
		{`usd < 1000000`, full, false},
		{`usd <= 1000000`, full, true},
		{`1000000 <= usd`, full, true},
		{`999999 < usd`, full, true},
		{`usd > dollars("999999.999999999")`, full, true},
		{`usd >= dollars("1000000.000000001")`, full, false},
		{`usd < dollars("-1")`, full, false},
		{`usd > -1 && -1 < usd`, full, true},
		{`usd + dollars("0.01") > 1000000`, full, true},
		{`usd_known`, full, true},
		{`usd_known`, unknown, false},
		{`usd < 1000000`, unknown, false},
		{`usd > 9223372036854775807`, unknown, true},
		{`usd == 0`, unknown, false},
		{`usd != 0`, unknown, true},
		{`usd == velocity["global_1h"].usd`, unknown, true},
		{`intent.amount == 1500000000000000000`, full, true},
		{`intent.amount > units("1499999999999999999")`, full, true},
		{`intent.amount < units("100000000000000000000000000000")`, full, true},
		{`intent.amount >= 9223372036854775807`, full, false},
		{`string(intent.amount) == "1500000000000000000"`, full, true},
		{`string(usd) == "1000000.00"`, full, true},
		{`intent.chain == "eth" && intent.network == "mainnet" && intent.asset == "native"`, full, true},
		{`intent.account.startsWith("acct-") && intent.destination.size() == 42`, full, true},
		{`intent.request == "req-1" && intent.requester == "exchange"`, full, true},
		{`has(context.device_age_seconds) && context.device_age_seconds < 3600`, full, true},
		{`has(context.session_age_seconds)`, full, false},
		{`!has(context.client_ip) || context.client_ip != "10.0.0.1"`, full, true},
		{`context.device_id == "dev-9"`, full, true},
		{`has_finding("velocity")`, full, true},
		{`has_finding("flagged_destination")`, full, false},
		{`findings.exists(f, f.code == "velocity" && f.details["scope"] == "account")`, full, true},
		{`findings.size() == 1 && findings[0].reason.contains("24h")`, full, true},
		{`velocity["account_24h"].count + 1 > 3`, full, true},
		{`velocity["account_24h"].count == 3`, full, true},
		{`velocity["account_24h"].usd + usd > 10000000`, full, true},
		{`velocity["account_24h"].usd + usd > dollars("10000000.50")`, full, false},
		{`velocity["global_1h"].usd + usd < 1`, full, false},
		{`"account_7d" in velocity`, full, false},
		{`whitelisted`, full, true},
		{`whitelisted`, Input{Intent: testIntent()}, false},
		{`[1, 2].exists(x, x == 2)`, full, true},
		{`intent.destination.matches("^0x[0-9a-f]{40}$")`, full, true},
		{`findings.exists(f, f.details.exists(k, f.details[k].contains("acc")))`, full, true},
	}
	for _, c := range cases {
		t.Run(c.when, func(t *testing.T) {
			p := rules(t, c.when)
			d := p.Evaluate(c.in)
			require.Empty(t, d.Error)
			if c.want {
				require.Equal(t, "r0", d.Rule, d.Reason)
				require.Equal(t, Allow, d.Action)
			} else {
				require.Equal(t, "catch-all", d.Rule, d.Reason)
				require.Equal(t, Deny, d.Action)
			}
		})
	}
}

func TestEvaluationErrorsFailClosed(t *testing.T) {
	cases := []struct{ when, err string }{
		{`context.device_age_seconds > 3600`, "context.device_age_seconds is absent"},
		{`velocity["account_7d"].count < 5`, "no such key"},
		{`findings[3].code == "velocity"`, "index out of bounds"},
		{`int(intent.account) > 0`, "type conversion error"},
	}
	for _, c := range cases {
		t.Run(c.when, func(t *testing.T) {
			// The failing rule would allow; the rule after it would allow too:
			// neither may.
			p := rules(t, c.when, "true || usd < 1")
			d := p.Evaluate(Input{Intent: testIntent(), USD: usd(t, "1")})
			require.Equal(t, Deny, d.Action)
			require.Equal(t, "r0", d.Rule)
			require.Contains(t, d.Reason, "fail closed")
			require.NotEmpty(t, d.Error)
			if !strings.Contains(d.Error, c.err) {
				require.Contains(t, d.Reason, c.err)
			}
		})
	}
}

func TestInputsBeyondTheBoundsAreDenied(t *testing.T) {
	p := rules(t, "usd < 1000")
	many := make([]intent.Finding, MaxFindings+1)
	for i := range many {
		many[i] = intent.Finding{Code: intent.NewDestination}
	}
	details := map[string]string{}
	for i := range MaxDetails + 1 {
		details[fmt.Sprint(i)] = "x"
	}
	bad := testIntent()
	bad.Amount = "1e18"
	neg := testIntent()
	neg.Amount = "-5"
	for name, in := range map[string]Input{
		"too many findings":     {Intent: testIntent(), USD: usd(t, "1"), Findings: many},
		"too many details":      {Intent: testIntent(), USD: usd(t, "1"), Findings: []intent.Finding{{Code: "x", Details: details}}},
		"amount not base units": {Intent: bad, USD: usd(t, "1")},
		"negative amount":       {Intent: neg, USD: usd(t, "1")},
	} {
		d := p.Evaluate(in)
		require.Equal(t, Deny, d.Action, name)
		require.Empty(t, d.Rule, name)
		require.Contains(t, d.Reason, "fail closed", name)
	}
}

func TestRequireWhitelisted(t *testing.T) {
	as, _ := testApprovers(t)
	rs := []Rule{
		{Name: "small", When: "usd < 10000", Action: Allow, Reason: "small, to a known address", RequireWhitelisted: true},
		{Name: "rest", When: "true || usd > 0", Action: Approve, Reason: "everything else", Quorum: Quorum{N: 2, Groups: []string{"security"}},
			Window: time.Hour, Expiry: time.Hour},
		{Name: "catch-all", Action: Deny, Reason: "no rule matched"},
	}
	p, err := New(rs, as, "h")
	require.NoError(t, err)
	d := p.Evaluate(Input{Intent: testIntent(), USD: usd(t, "50"), Whitelisted: true})
	require.Equal(t, Allow, d.Action)
	require.Contains(t, d.Why, "the destination is whitelisted")
	d = p.Evaluate(Input{Intent: testIntent(), USD: usd(t, "50")})
	require.Equal(t, Deny, d.Action, "a matching rule that requires a whitelisted destination denies, it does not fall through")
	require.Equal(t, "small", d.Rule)
	require.Contains(t, d.Reason, "whitelisted")
	require.Contains(t, d.Why, "the destination is not whitelisted")
	d = p.Evaluate(Input{Intent: testIntent(), USD: usd(t, "50000")})
	require.Equal(t, Approve, d.Action)
	require.Equal(t, "rest", d.Rule)
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	as, _ := testApprovers(t)
	approve := func(when string, q Quorum) Rule {
		return Rule{Name: "a", When: when, Action: Approve, Reason: "r", Quorum: q, Window: time.Hour, Expiry: time.Hour}
	}
	deny := Rule{Name: "catch-all", Action: Deny, Reason: "no rule matched"}
	allow := func(name, when string) Rule { return Rule{Name: name, When: when, Action: Allow, Reason: "r"} }
	sec2 := Quorum{N: 2, Groups: []string{"security"}}
	cases := []struct {
		name  string
		rules []Rule
		want  []string
	}{
		{"syntax", []Rule{allow("x", "usd <"), deny}, []string{"rules[0].when:", "Syntax error"}},
		{"not boolean", []Rule{allow("x", "usd"), deny}, []string{"rules[0].when:", "want a boolean"}},
		{"double literal against dollars", []Rule{allow("ok", "usd < 5"), allow("x", "usd < 5.0"), deny}, []string{"rules[1].when:", "no matching overload"}},
		{"double arithmetic", []Rule{allow("x", "1.5 > 1.0"), deny}, []string{"rules[0].when:", "floating point is not allowed"}},
		{"double conversion", []Rule{allow("x", "double(velocity['a'].count) > 2.0"), deny}, []string{"rules[0].when:", "floating point"}},
		{"double dollars compare", []Rule{allow("x", "usd > double(\"5\")"), deny}, []string{"rules[0].when:"}},
		{"unknown variable", []Rule{allow("x", "amount > 5"), deny}, []string{"rules[0].when:", "undeclared reference to 'amount'"}},
		{"unknown field", []Rule{allow("x", "intent.amout > 5"), deny}, []string{"rules[0].when:", "amout"}},
		{"unknown finding code", []Rule{allow("x", `has_finding("flaged_destination")`), deny}, []string{"rules[0].when:", "no such finding code"}},
		{"has_finding of a variable", []Rule{allow("x", `has_finding(intent.account)`), deny}, []string{"rules[0].when:", "in quotes"}},
		{"bad dollars literal", []Rule{allow("x", `usd > dollars("1e6")`), deny}, []string{"rules[0].when:", "dollars(\"1e6\")"}},
		{"dollars of a variable", []Rule{allow("x", `usd > dollars(intent.amount)`), deny}, []string{"rules[0].when:", "in quotes"}},
		{"bad units literal", []Rule{allow("x", `intent.amount > units("1.5")`), deny}, []string{"rules[0].when:", "units"}},
		{"units against dollars", []Rule{allow("x", `intent.amount > usd`), deny}, []string{"rules[0].when:", "no matching overload"}},
		{"construct an object", []Rule{allow("x", `cordon.Intent{account: "a"}.account == "a"`), deny}, []string{"rules[0].when:"}},
		{"too costly", []Rule{allow("x", `findings.all(f, findings.all(g, findings.all(h, f.code == g.code && g.code == h.code)))`), deny}, []string{"rules[0].when:", "cost"}},
		{"too long", []Rule{allow("x", strings.Repeat("true && ", 300)+"true"), deny}, []string{"rules[0].when:"}},
		{"no catch-all", []Rule{allow("x", "usd < 5")}, []string{"rules[0]: the last rule must be a catch-all deny"}},
		{"catch-all allow", []Rule{allow("x", "usd < 5"), allow("y", "true")}, []string{"rules[1]: the last rule must be a catch-all deny"}},
		{"catch-all too early", []Rule{allow("x", ""), allow("y", "usd < 5"), deny}, []string{"rules[0].when: matches every withdrawal, so rules[1]"}},
		{"duplicate names", []Rule{allow("x", "usd < 5"), allow("x", "usd < 6"), deny}, []string{"rules[1].name: \"x\" is also rules[0]"}},
		{"bad name", []Rule{allow("a b", "usd < 5"), deny}, []string{"rules[0].name:"}},
		{"no reason", []Rule{{Name: "x", When: "usd < 5", Action: Allow}, deny}, []string{"rules[0].reason:"}},
		{"unknown action", []Rule{{Name: "x", When: "usd < 5", Action: "permit", Reason: "r"}, deny}, []string{"rules[0].action: \"permit\""}},
		{"quorum on allow", []Rule{{Name: "x", When: "usd < 5", Action: Allow, Reason: "r", Quorum: sec2}, deny}, []string{"rules[0].quorum: only for approve rules", "rules[0].groups: only for approve rules"}},
		{"whitelist on deny", []Rule{allow("x", "usd < 5"), {Name: "catch-all", Action: Deny, Reason: "r", RequireWhitelisted: true}}, []string{"rules[1].require_whitelisted"}},
		{"quorum zero", []Rule{approve("usd < 5", Quorum{Groups: []string{"security"}}), deny}, []string{"rules[0].quorum: 0"}},
		{"quorum above the group", []Rule{approve("usd < 5", Quorum{N: 3, Groups: []string{"finance"}}), deny}, []string{"rules[0]: cannot be met", "2 of 3 (dave, erin): needs 1 more from finance"}},
		{"unknown group", []Rule{approve("usd < 5", Quorum{N: 1, Groups: []string{"ops"}}), deny}, []string{"rules[0].groups[0]: \"ops\": no approver"}},
		{"no groups", []Rule{approve("usd < 5", Quorum{N: 1}), deny}, []string{"rules[0].groups: empty"}},
		{"min of a group not listed", []Rule{approve("usd < 5", Quorum{N: 2, Groups: []string{"security"}, MinPerGroup: map[string]int{"finance": 1}}), deny}, []string{"rules[0].min_per_group.finance"}},
		{"minimums above the quorum", []Rule{approve("usd < 5", Quorum{N: 2, Groups: []string{"security", "finance"}, MinPerGroup: map[string]int{"finance": 2, "security": 1}}), deny}, []string{"rules[0].min_per_group: the minimums add up to 3"}},
		{"minimum the group cannot meet", []Rule{approve("usd < 5", Quorum{N: 3, Groups: []string{"security", "finance"}, MinPerGroup: map[string]int{"finance": 3}}), deny}, []string{"rules[0]: cannot be met", "needs 1 more from finance"}},
		{"no window", []Rule{{Name: "a", When: "usd < 5", Action: Approve, Reason: "r", Quorum: sec2, Expiry: time.Hour}, deny}, []string{"rules[0].window: 0s"}},
		{"negative cooling", []Rule{{Name: "a", When: "usd < 5", Action: Approve, Reason: "r", Quorum: sec2, Window: time.Hour, Expiry: time.Hour, Cooling: -time.Second}, deny}, []string{"rules[0].cooling: -1s"}},
		{"expiry too long", []Rule{{Name: "a", When: "usd < 5", Action: Approve, Reason: "r", Quorum: sec2, Window: time.Hour, Expiry: 8 * 24 * time.Hour}, deny}, []string{"rules[0].expiry: 192h"}},
		{"no rules", nil, []string{"rules: 0 rules"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.rules, as, "h")
			require.Error(t, err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParse(t *testing.T) {
	as, _ := testApprovers(t)
	src := []byte(`rules:
  - name: small
    when: usd < 100
    action: allow
    reason: small
  - name: big
    when: usd >= 100
    action: approve
    reason: big
    quorum: 2
    groups: [security, finance]
    min_per_group: {finance: 1}
    window: 1h
    cooling: 30m
    expiry: 45m
    reject_veto: false
  - name: catch-all
    action: deny
    reason: none
`)
	p, err := Parse(src, as)
	require.NoError(t, err)
	require.Equal(t, Hash(src), p.Hash())
	tm, ok := p.Terms("big")
	require.True(t, ok)
	require.Equal(t, Terms{Quorum: Quorum{N: 2, Groups: []string{"security", "finance"}, MinPerGroup: map[string]int{"finance": 1}},
		Window: time.Hour, Cooling: 30 * time.Minute, Expiry: 45 * time.Minute, RejectVeto: false}, tm)
	_, ok = p.Terms("small")
	require.False(t, ok)
	require.Len(t, p.Rules(), 3)

	for name, bad := range map[string]string{
		"unknown key":       "rules:\n  - name: x\n    action: deny\n    reason: r\n    quorom: 2\n",
		"duration as int":   "rules:\n  - name: x\n    action: approve\n    reason: r\n    quorum: 1\n    groups: [security]\n    window: 60\n",
		"two documents":     string(DefaultYAML()) + "\n---\nrules: []\n",
		"empty":             "",
		"not a map":         "- 1\n",
		"when not a string": "rules:\n  - name: x\n    when: {a: 1}\n    action: deny\n    reason: r\n",
	} {
		_, err := Parse([]byte(bad), as)
		require.Error(t, err, name)
	}
}

func TestEvaluateIsDeterministicAndConcurrent(t *testing.T) {
	as, _ := testApprovers(t)
	p, err := Default(as)
	require.NoError(t, err)
	in := benchInput(t)
	want := p.Evaluate(in)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				d := p.Evaluate(in)
				if d.Rule != want.Rule || d.Reason != want.Reason || strings.Join(d.Why, ";") != strings.Join(want.Why, ";") {
					t.Errorf("decision changed: %+v", d)
					return
				}
			}
		}()
	}
	wg.Wait()
	// A decision's terms are the caller's to keep: changing them does not
	// change the policy.
	d := p.Evaluate(in)
	d.Terms.Groups[0] = "nobody"
	d.Terms.N = 1
	require.Equal(t, want.Terms, p.Evaluate(in).Terms)
}

func TestDecisionJSON(t *testing.T) {
	as, _ := testApprovers(t)
	p, err := Default(as)
	require.NoError(t, err)
	b, err := jsonMarshal(p.Evaluate(Input{Intent: testIntent(), USD: usd(t, "2000000")}))
	require.NoError(t, err)
	require.Contains(t, string(b), `"terms":{"quorum":3,"groups":["security","finance"],"window":"24h0m0s","cooling":"2h0m0s","expiry":"2h0m0s","reject_veto":true}`)
	require.Contains(t, string(b), `"rule":"1m-to-5m","action":"approve"`)
}

func benchInput(tb testing.TB) Input {
	age := int64(86400 * 30)
	return Input{
		Intent:  testIntent(),
		Context: intent.Context{ClientIP: "203.0.113.9", DeviceID: "d1", DeviceAge: &age},
		USD:     usd(tb, "2500000.25"),
		Findings: []intent.Finding{
			{Code: intent.NewDestination, Reason: "first withdrawal to this address"},
			{Code: intent.Velocity, Reason: "account over its daily count", Details: map[string]string{"scope": "account", "window": "24h"}},
		},
		Velocity: map[string]Accumulation{"account_24h": {Count: 4, USD: usd(tb, "120000")}, "global_1h": {Count: 90, USD: usd(tb, "8000000")}},
	}
}

func BenchmarkEvaluate(b *testing.B) {
	as, _ := testApprovers(b)
	p, err := Default(as)
	require.NoError(b, err)
	in := benchInput(b)
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Evaluate(in); d.Rule != "1m-to-5m" {
			b.Fatal(d.Reason)
		}
	}
}

func TestCostLimitAtEvaluation(t *testing.T) {
	// Within the estimate for strings of the assumed size, over the limit
	// for an account id of two million bytes: denied, not evaluated on.
	p := rules(t, `intent.account.contains("bbbbbbbbbbbbbbbbbbbb")`, `true || usd > 0`)
	in := Input{Intent: testIntent(), USD: usd(t, "1")}
	in.Intent.Account = strings.Repeat("a", 2_000_000)
	d := p.Evaluate(in)
	require.Equal(t, Deny, d.Action)
	require.Equal(t, "r0", d.Rule)
	require.Contains(t, d.Error, "cost limit")
	in.Intent.Account = "abbbbbbbbbbbbbbbbbbbbb"
	require.Equal(t, Allow, p.Evaluate(in).Action)
}

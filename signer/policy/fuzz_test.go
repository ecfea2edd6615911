package policy

import (
	"testing"

	"github.com/cordonhq/cordon/signer/intent"
)

// FuzzParse: any policy file either loads or is refused with an error;
// one that loads decides on an input without panicking.
func FuzzParse(f *testing.F) {
	f.Add(DefaultYAML())
	f.Add(policySrc)
	f.Add([]byte("rules:\n  - name: x\n    when: usd < 5.0\n    action: allow\n    reason: r\n"))
	f.Add([]byte("rules:\n  - {name: a, when: 'has_finding(\"velocity\")', action: deny, reason: r}\n  - {name: b, action: deny, reason: r}\n"))
	f.Add([]byte("rules: &a [*a]\n"))
	f.Add([]byte("rules:\n  - name: x\n    window: 1h\n    min_per_group: {finance: -1}\n"))
	as, _ := testApprovers(f)
	in := Input{Intent: testIntent(), Findings: []intent.Finding{{Code: intent.Velocity, Reason: "r"}}}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse(src, as)
		if err != nil {
			if p != nil {
				t.Fatal("a policy and an error")
			}
			return
		}
		if d := p.Evaluate(in); d.Action == "" {
			t.Fatal("no action")
		}
	})
}

// FuzzWhen: any condition text either compiles or is refused; one that
// compiles evaluates to a decision, failing closed on errors.
func FuzzWhen(f *testing.F) {
	for _, s := range []string{
		`usd < 1000000`, `usd >= dollars("5000000.01")`, `1000000 == usd`, `has_finding("velocity")`,
		`intent.amount > units("1000000000000000000000")`, `velocity["account_24h"].usd + usd > 10`,
		`findings.exists(f, f.details["scope"] == "account")`, `has(context.device_age_seconds) && context.device_age_seconds < 60`,
		`usd < 5.0`, `dollars(intent.account) > usd`, `[1,2,3].map(x, x * x).size() > 2`, `"a".matches("(a+)+$")`,
		`int(intent.amount) > 0`, `string(usd) == "unknown"`,
	} {
		f.Add(s)
	}
	as, _ := testApprovers(f)
	age := int64(5)
	in := Input{Intent: testIntent(), Context: intent.Context{DeviceAge: &age}, USD: usd(f, "123.45"),
		Findings: []intent.Finding{{Code: intent.Velocity, Reason: "r", Details: map[string]string{"scope": "account"}}},
		Velocity: map[string]Accumulation{"account_24h": {Count: 2, USD: usd(f, "10")}}}
	f.Fuzz(func(t *testing.T, when string) {
		p, err := New(ruleList(when), as, "h")
		if err != nil {
			return
		}
		d := p.Evaluate(in)
		if d.Action != Allow && d.Action != Deny {
			t.Fatalf("action %q", d.Action)
		}
		if d.Action == Allow && d.Rule != "r0" {
			t.Fatalf("allowed by %q", d.Rule)
		}
		if d.Error != "" && d.Action != Deny {
			t.Fatal("an error that did not deny")
		}
	})
}

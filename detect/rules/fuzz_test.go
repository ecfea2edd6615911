package rules_test

import (
	"testing"

	"github.com/cordonhq/cordon/detect/rules"
	"github.com/cordonhq/cordon/detect/rules/rulestest"
)

// FuzzCustomRule: the loader of operators' CEL rules takes any text
// without panicking, and a rule it accepts evaluates on a block without
// panicking (an evaluation error raises nothing).
func FuzzCustomRule(f *testing.F) {
	for _, s := range []string{`true`, `amount > 1e18`, `from_kind == "hot" && flagged(to)`, `lookalike(from, to)`,
		`at_least(amount_text, "10")`, `at_least(amount_text, "x")`, `kind(to) == "deposit" && dust`, `height % 0 == 1`,
		`[1,2,3].all(x, x > 0)`, `"a".matches("(a+)+$")`, `size(tx_hash) > 3 ? true : false`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, when string) {
		cfg := rules.Config{Custom: []rules.CustomRule{{Name: "f", When: when, All: true}}}
		if cfg.Validate("detect.rules") != nil {
			return
		}
		e, err := rules.New(cfg, reg{hot: "hot"}, screen{thief: true})
		if err != nil {
			t.Fatalf("validated but not built: %v", err)
		}
		c := &rulestest.Stream{}
		e.Apply(c.Block("", rulestest.Xfer{From: hot, To: thief, Amount: "12345"}, rulestest.Xfer{From: thief, To: friend, Amount: "0", Asset: "0xt"}))
	})
}

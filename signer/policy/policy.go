package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"gopkg.in/yaml.v3"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/intent"
)

// MaxFileBytes bounds a policy file.
const MaxFileBytes = 256 << 10

// Policy is a compiled, validated policy: immutable, safe for concurrent
// use.
type Policy struct {
	hash  string
	rules []*rule
}

type rule struct {
	Rule
	prg   cel.Program // nil: the condition is always true
	terms *Terms
	uses  map[string]bool // the variables the condition reads
	codes []string        // the finding codes it names
}

// Hash returns the hex SHA-256 of the policy file: what intents carry as
// their Policy and what the policy's approvers signed.
func (p *Policy) Hash() string { return p.hash }

// Rules returns the rules, in order.
func (p *Policy) Rules() []Rule {
	out := make([]Rule, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.Rule
	}
	return out
}

// Terms returns the approval terms of the approve rule named name.
func (p *Policy) Terms(name string) (Terms, bool) {
	for _, r := range p.rules {
		if r.Name == name && r.terms != nil {
			return *r.terms.clone(), true
		}
	}
	return Terms{}, false
}

// Hash is the hex SHA-256 of a policy file's bytes.
func Hash(src []byte) string {
	s := sha256.Sum256(src)
	return hex.EncodeToString(s[:])
}

// Parse reads a policy file (YAML, no unknown keys) and compiles it; its
// hash is that of src. It checks the file alone, not its approval record
// (Load does both). Errors name the key (rules[2].when).
func Parse(src []byte, approvers *intent.Approvers) (*Policy, error) {
	if len(src) > MaxFileBytes {
		return nil, fmt.Errorf("policy file: larger than %d bytes", MaxFileBytes)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("policy file: empty")
		}
		return nil, fmt.Errorf("policy file: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("policy file: want one YAML document")
	}
	return New(f.Rules, approvers, Hash(src))
}

// New compiles rules, checking each (errors name rules[i].key): names
// unique, conditions that compile to a boolean, known actions, approve
// terms the approvers can meet, and a last rule that is a catch-all deny
// (no when, or "true"). A catch-all before the last rule is refused too:
// the rules after it would never be reached. hash is the policy's
// identity (Hash of its file).
func New(rules []Rule, approvers *intent.Approvers, hash string) (*Policy, error) {
	var p config.Problems
	if len(rules) == 0 || len(rules) > MaxRules {
		p.Add("rules", "%d rules: want 1 to %d, the last a catch-all deny", len(rules), MaxRules)
		return nil, p.Err()
	}
	lits := literals{}
	env, err := newEnv(lits)
	if err != nil {
		return nil, fmt.Errorf("policy environment: %w", err)
	}
	pol := &Policy{hash: hash}
	names := map[string]int{}
	for i := range rules {
		r := &rule{Rule: rules[i]}
		key := fmt.Sprintf("rules[%d]", i)
		r.validate(&p, key, approvers)
		if j, dup := names[r.Name]; dup && r.Name != "" {
			p.Add(key+".name", "%q is also rules[%d]", r.Name, j)
		}
		names[r.Name] = i
		last := i == len(rules)-1
		switch {
		case r.catchAll() && !last:
			p.Add(key+".when", "matches every withdrawal, so rules[%d] and after are never reached", i+1)
		case last && (!r.catchAll() || r.Action != Deny):
			p.Add(key, "the last rule must be a catch-all deny (no when, action deny), so nothing is allowed by falling off the end")
		}
		if !r.catchAll() {
			if err := r.compile(env); err != nil {
				p.Add(key+".when", "%v", err)
			}
		}
		r.terms = r.Rule.terms()
		pol.rules = append(pol.rules, r)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return pol, nil
}

// compile checks and compiles the rule's condition: at most MaxWhen
// bytes, boolean, no floating point anywhere, no object construction,
// and an estimated cost within MaxCost.
func (r *rule) compile(env *cel.Env) error {
	if len(r.When) > MaxWhen {
		return fmt.Errorf("longer than %d bytes", MaxWhen)
	}
	checked, iss := env.Compile(r.When)
	if iss.Err() != nil {
		return errors.New(strings.TrimSpace(iss.Err().Error()))
	}
	if !checked.OutputType().IsExactType(types.BoolType) {
		return fmt.Errorf("is of type %s: want a boolean condition", checked.OutputType())
	}
	native := checked.NativeRep()
	r.uses = map[string]bool{}
	idents := map[int64]string{}
	inner := map[int64]bool{} // the findings has_finding expands to
	var bad error
	ast.PostOrderVisit(native.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if bad != nil {
			return
		}
		if t := native.GetType(e.ID()); t != nil && t.Kind() == types.DoubleKind {
			bad = errors.New("floating point is not allowed: money is exact; compare with an integer or dollars(\"0.5\")")
			return
		}
		switch e.Kind() {
		case ast.StructKind:
			bad = errors.New("conditions read the intent, they do not construct objects")
		case ast.IdentKind:
			idents[e.ID()] = e.AsIdent()
		case ast.CallKind:
			if c := e.AsCall(); c.FunctionName() == fnHasFinding && len(c.Args()) == 2 {
				inner[c.Args()[0].ID()] = true
				if s, ok := stringLiteral(c.Args()[1]); ok && !slices.Contains(r.codes, s) {
					r.codes = append(r.codes, s)
				}
			}
		}
	}))
	if bad != nil {
		return bad
	}
	for id, name := range idents {
		if !inner[id] {
			r.uses[name] = true
		}
	}
	est, err := env.EstimateCost(checked, estimator{})
	if err != nil {
		return fmt.Errorf("estimating its cost: %w", err)
	}
	if est.Max > MaxCost {
		return fmt.Errorf("may cost up to %d to evaluate: at most %d (avoid nested comprehensions)", est.Max, MaxCost)
	}
	prg, err := env.Program(checked, cel.CostLimit(MaxCost), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return err
	}
	r.prg = prg
	return nil
}

// Accumulation is one velocity window's total including this withdrawal (as the risk layer counts it):
// how many withdrawals and their dollar value (unknown when any of them
// had no price), counted over every withdrawal whichever rule matched.
type Accumulation struct {
	Count int64
	USD   intent.USD
}

// Input is what a policy decides on.
type Input struct {
	// Intent is the withdrawal; ID, Rule and Policy need not be set yet.
	Intent  intent.Intent
	Context intent.Context
	// USD is the withdrawal's value (Prices.Value) and USDReason why it
	// is unknown when it is.
	USD       intent.USD
	USDReason string
	// Findings are the risk layer's.
	Findings []intent.Finding
	// Velocity are the gate's windows by name ("account_24h").
	Velocity map[string]Accumulation
	// Whitelisted: the destination is in the account's address book.
	Whitelisted bool
}

// Decision is what the policy decided and why.
type Decision struct {
	// Policy is the policy's hash and Rule the rule that decided; Rule is
	// empty when the input itself was refused.
	Policy string `json:"policy"`
	Rule   string `json:"rule"`
	Action Action `json:"action"`
	// Reason is the rule's reason, or why the rule could not decide.
	Reason string `json:"reason"`
	// Why are the facts the rule saw: the dollar value, the findings it
	// names, whether the destination is whitelisted, its velocity windows.
	Why []string `json:"why,omitempty"`
	// Terms are an approve decision's.
	Terms *Terms `json:"terms,omitempty"`
	// Error is the evaluation error of a rule that failed closed.
	Error string `json:"error,omitempty"`
}

// Evaluate decides on in: the first rule whose condition holds decides.
// A rule whose condition fails to evaluate (an absent field read, a
// missing velocity window, the cost limit) decides deny, and says so.
// Evaluate has no side effect: the dry-run endpoint calls it as is.
func (p *Policy) Evaluate(in Input) Decision {
	act, err := activate(&in)
	if err != nil {
		return Decision{Policy: p.hash, Action: Deny, Reason: "the withdrawal cannot be evaluated, so it is denied (fail closed): " + err.Error(),
			Why: []string{usdFact(&in)}, Error: err.Error()}
	}
	for _, r := range p.rules {
		if r.prg != nil {
			out, _, err := r.prg.Eval(act)
			if err == nil && out.Type() != types.BoolType {
				err = fmt.Errorf("the condition gave a %s", out.Type().TypeName())
			}
			if err != nil {
				return Decision{Policy: p.hash, Rule: r.Name, Action: Deny, Error: err.Error(), Why: r.why(&in),
					Reason: fmt.Sprintf("rule %s could not be evaluated, so the withdrawal is denied (fail closed): %v", r.Name, err)}
			}
			if out != types.True {
				continue
			}
		}
		d := Decision{Policy: p.hash, Rule: r.Name, Action: r.Action, Reason: r.Reason, Why: r.why(&in), Terms: r.terms.clone()}
		if r.RequireWhitelisted && !in.Whitelisted {
			d.Action, d.Terms = Deny, nil
			d.Reason = r.Reason + "; denied: the rule requires a whitelisted destination and this one is not"
		}
		return d
	}
	return Decision{Policy: p.hash, Action: Deny, Reason: "no rule matched", Why: []string{usdFact(&in)}}
}

// clone is a copy of t that shares nothing with it (nil for nil).
func (t *Terms) clone() *Terms {
	if t == nil {
		return nil
	}
	c := *t
	c.Groups = slices.Clone(t.Groups)
	c.MinPerGroup = maps.Clone(t.MinPerGroup)
	return &c
}

// activate turns in into the conditions' variables, refusing inputs past
// the bounds the cost estimate assumed.
func activate(in *Input) (*activation, error) {
	switch {
	case len(in.Findings) > MaxFindings:
		return nil, fmt.Errorf("%d findings: at most %d", len(in.Findings), MaxFindings)
	case len(in.Velocity) > MaxWindows:
		return nil, fmt.Errorf("%d velocity windows: at most %d", len(in.Velocity), MaxWindows)
	}
	amount, ok := new(big.Int).SetString(in.Intent.Amount, 10)
	if !ok || !decimalRe.MatchString(in.Intent.Amount) {
		return nil, fmt.Errorf("amount %q: want a decimal integer of base units", trunc(in.Intent.Amount))
	}
	it := &in.Intent
	a := &activation{
		intent: &object{def: objects[intentType.TypeName()], name: "intent", vals: []ref.Val{
			types.String(it.Request), types.String(it.Requester), types.String(it.Account), types.String(it.Chain),
			types.String(it.Network), types.String(it.Asset), unitsVal{amount}, types.String(it.Destination)}},
		context:     contextObject(&in.Context),
		usd:         dollarsVal{in.USD},
		usdKnown:    types.Bool(in.USD.Known()),
		whitelisted: types.Bool(in.Whitelisted),
	}
	fs := make([]ref.Val, len(in.Findings))
	for i, f := range in.Findings {
		if len(f.Details) > MaxDetails {
			return nil, fmt.Errorf("finding %s: %d details: at most %d", f.Code, len(f.Details), MaxDetails)
		}
		fs[i] = &object{def: objects[findingType.TypeName()], name: "finding", vals: []ref.Val{
			types.String(f.Code), types.String(f.Reason), types.NewStringStringMap(types.DefaultTypeAdapter, f.Details)}}
	}
	a.findings = types.NewRefValList(types.DefaultTypeAdapter, fs)
	vel := make(map[ref.Val]ref.Val, len(in.Velocity))
	for k, v := range in.Velocity {
		vel[types.String(k)] = &object{def: objects[accumType.TypeName()], name: "velocity[" + k + "]",
			vals: []ref.Val{types.Int(v.Count), dollarsVal{v.USD}}}
	}
	a.velocity = types.NewRefValMap(types.DefaultTypeAdapter, vel)
	return a, nil
}

func contextObject(c *intent.Context) *object {
	str := func(s string) ref.Val {
		if s == "" {
			return nil
		}
		return types.String(s)
	}
	num := func(n *int64) ref.Val {
		if n == nil {
			return nil
		}
		return types.Int(*n)
	}
	return &object{def: objects[contextType.TypeName()], name: "context", vals: []ref.Val{
		str(c.ClientIP), str(c.DeviceID), num(c.SessionAge), num(c.DeviceAge), num(c.AccountChanged), str(c.RiskScore)}}
}

// why are the facts a decision by r rests on.
func (r *rule) why(in *Input) []string {
	out := []string{usdFact(in)}
	for _, f := range in.Findings {
		if r.uses["findings"] || slices.Contains(r.codes, f.Code) {
			out = append(out, "finding "+f.Code+": "+f.Reason)
		}
	}
	if r.uses["whitelisted"] || r.RequireWhitelisted {
		if in.Whitelisted {
			out = append(out, "the destination is whitelisted")
		} else {
			out = append(out, "the destination is not whitelisted")
		}
	}
	if r.uses["velocity"] {
		for _, k := range slices.Sorted(maps.Keys(in.Velocity)) {
			v := in.Velocity[k]
			out = append(out, fmt.Sprintf("velocity %s: %d withdrawals, usd %s", k, v.Count, v.USD))
		}
	}
	return out
}

func usdFact(in *Input) string {
	if in.USD.Known() {
		return "usd " + in.USD.String()
	}
	if in.USDReason != "" {
		return "usd unknown (counted above every tier): " + in.USDReason
	}
	return "usd unknown (counted above every tier)"
}

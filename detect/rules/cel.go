package rules

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/cordonhq/cordon/internal/chain"
)

// MaxWhen bounds a custom rule's expression.
const MaxWhen = 4000

// celCost bounds one evaluation of a custom rule.
const celCost = 50_000

// The variables a custom rule sees, one transfer at a time (for Bitcoin,
// one output: from is our wallet when one of ours spent into it).
var celVars = map[string]*cel.Type{
	"chain": cel.StringType, "network": cel.StringType, "asset": cel.StringType, "standard": cel.StringType,
	"from": cel.StringType, "to": cel.StringType, "sender": cel.StringType, "tx_hash": cel.StringType,
	"amount": cel.DoubleType, "amount_text": cel.StringType, "height": cel.IntType, "time": cel.IntType,
	"from_kind": cel.StringType, "to_kind": cel.StringType, "dust": cel.BoolType,
}

// customProg is a compiled custom rule.
type customProg struct {
	rule CustomRule
	prg  cel.Program
}

// celCtx is what the rule functions ask: the engine and the chain of the
// transfer under evaluation.
type celCtx struct {
	e       *Engine
	c       chain.Chain
	network string
}

func (x *celCtx) kind(a string) string {
	if x.e == nil {
		return ""
	}
	return x.e.kind(x.c, x.network, a)
}

func (x *celCtx) flagged(a string) bool {
	if x.e == nil {
		return false
	}
	return len(x.e.hits(x.c, x.network, a)) > 0
}

func (x *celCtx) lookalike(a, b string) bool {
	p, s := 4, 4
	if x.e != nil {
		p, s = x.e.cfg.Poisoning.Prefix, x.e.cfg.Poisoning.Suffix
	}
	return Lookalike(a, b, p, s)
}

// compileCustom checks a rule (config validation).
func compileCustom(r CustomRule) (*customProg, error) { return compileCustomWith(r, &celCtx{}) }

func compileCustomWith(r CustomRule, x *celCtx) (*customProg, error) {
	if strings.TrimSpace(r.When) == "" {
		return nil, errors.New("empty expression")
	}
	if len(r.When) > MaxWhen {
		return nil, fmt.Errorf("longer than %d characters", MaxWhen)
	}
	str := func(f func(string) ref.Val) cel.OverloadOpt {
		return cel.UnaryBinding(func(v ref.Val) ref.Val {
			s, ok := v.(types.String)
			if !ok {
				return types.NewErrFromString("want a string")
			}
			return f(string(s))
		})
	}
	opts := []cel.EnvOption{
		cel.Function("kind", cel.Overload("kind_string", []*cel.Type{cel.StringType}, cel.StringType,
			str(func(s string) ref.Val { return types.String(x.kind(s)) }))),
		cel.Function("flagged", cel.Overload("flagged_string", []*cel.Type{cel.StringType}, cel.BoolType,
			str(func(s string) ref.Val { return types.Bool(x.flagged(s)) }))),
		cel.Function("lookalike", cel.Overload("lookalike_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(func(a, b ref.Val) ref.Val {
				sa, ok1 := a.(types.String)
				sb, ok2 := b.(types.String)
				if !ok1 || !ok2 {
					return types.NewErrFromString("want strings")
				}
				return types.Bool(x.lookalike(string(sa), string(sb)))
			}))),
		// Exact comparisons of decimal amounts (amount itself is a double,
		// exact only up to 2^53).
		cel.Function("at_least", cel.Overload("at_least_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(func(a, b ref.Val) ref.Val {
				c, err := cmpDecimal(a, b)
				if err != nil {
					return types.NewErrFromString(err.Error())
				}
				return types.Bool(c >= 0)
			}))),
		cel.ParserExpressionSizeLimit(MaxWhen),
		cel.ParserRecursionLimit(32),
		cel.ExpressionNodeLimit(500),
		cel.RegexProgramSizeLimit(200),
	}
	for name, t := range celVars {
		opts = append(opts, cel.Variable(name, t))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(r.When)
	if iss != nil && iss.Err() != nil {
		return nil, iss.Err()
	}
	if ast.OutputType() != cel.BoolType {
		return nil, fmt.Errorf("want a bool expression, got %s", ast.OutputType())
	}
	prg, err := env.Program(ast, cel.CostLimit(celCost))
	if err != nil {
		return nil, err
	}
	return &customProg{rule: r, prg: prg}, nil
}

// transferFacts is one transfer as the custom rules see it.
type transferFacts struct {
	t      *chain.Transfer
	sender string
	fk, tk string
	sub    string
	amount *big.Int
}

func (r *blockRun) customs(f transferFacts) {
	if len(r.e.custom) == 0 {
		return
	}
	var vars map[string]any
	for _, p := range r.e.custom {
		if !p.rule.All && f.fk == "" && f.tk == "" {
			continue
		}
		if vars == nil {
			amt, _ := new(big.Float).SetInt(f.amount).Float64()
			vars = map[string]any{"chain": string(r.b.Chain), "network": r.b.Network, "asset": f.t.Asset, "standard": f.t.Standard,
				"from": f.t.From, "to": f.t.To, "sender": f.sender, "tx_hash": f.t.TxHash, "amount": amt, "amount_text": f.amount.String(),
				"height": int64(r.b.Height), "time": r.b.Time, "from_kind": f.fk, "to_kind": f.tk, //nolint:gosec // heights fit
				"dust": r.isDust(f.t.Asset, f.amount)}
			r.e.cel.c, r.e.cel.network = r.b.Chain, r.b.Network
		}
		out, _, err := p.prg.Eval(vars)
		if err != nil {
			r.e.CustomErrors++
			continue
		}
		if b, ok := out.Value().(bool); !ok || !b {
			continue
		}
		msg := p.rule.Summary
		if msg == "" {
			msg = "custom rule " + p.rule.Name + ": {from} → {to}, {amount_text} of {asset} in {tx_hash}"
		}
		msg = expand(msg, vars)
		r.raise("custom:"+p.rule.Name, TypeCustom, p.rule.Severity, msg,
			fact{tx: f.t.TxHash, subject: f.sub, asset: f.t.Asset, amount: f.amount, addrs: []string{f.t.From, f.t.To},
				details: map[string]string{"rule": p.rule.Name}})
	}
}

// expand replaces {name} in s by the variable's value.
func expand(s string, vars map[string]any) string {
	pairs := make([]string, 0, 2*len(vars))
	for k, v := range vars {
		pairs = append(pairs, "{"+k+"}", fmt.Sprint(v))
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

func timeOf(unix int64) time.Time { return time.Unix(unix, 0).UTC() }

// cmpDecimal compares two decimal amounts given as CEL strings.
func cmpDecimal(a, b ref.Val) (int, error) {
	sa, ok1 := a.(types.String)
	sb, ok2 := b.(types.String)
	if !ok1 || !ok2 {
		return 0, errors.New("at_least: want two decimal strings")
	}
	x, okx := new(big.Int).SetString(string(sa), 10)
	y, oky := new(big.Int).SetString(string(sb), 10)
	if !okx || !oky || x.Sign() < 0 || y.Sign() < 0 {
		return 0, fmt.Errorf("at_least(%q, %q): want non-negative decimal integers", string(sa), string(sb))
	}
	return x.Cmp(y), nil
}

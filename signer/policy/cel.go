package policy

import (
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"

	"github.com/cordonhq/cordon/signer/intent"
)

// Bounds on a rule's condition and on what it is evaluated over.
const (
	// MaxWhen bounds a condition's length in bytes.
	MaxWhen = 2000
	// MaxNodes bounds a condition's expression nodes, macros expanded.
	MaxNodes = 500
	// MaxCost bounds a condition's cost (cel-go's cost units), both its
	// estimate at load and its actual cost at each evaluation.
	MaxCost = 100_000
	// MaxFindings, MaxWindows and MaxDetails bound the findings, the
	// velocity windows and a finding's details an input may carry.
	MaxFindings = 64
	MaxWindows  = 64
	MaxDetails  = 32
	// maxString is the longest string the cost estimate assumes.
	maxString = 256
)

// The CEL types of the policy's values.
var (
	dollarsType = cel.OpaqueType("dollars")
	unitsType   = cel.OpaqueType("units")
	intentType  = cel.ObjectType("cordon.Intent")
	contextType = cel.ObjectType("cordon.Context")
	findingType = cel.ObjectType("cordon.Finding")
	accumType   = cel.ObjectType("cordon.Accumulation")
)

// The objects' fields, in the order their values are stored.
var objects = map[string]*objectDef{
	intentType.TypeName(): newObjectDef(intentType,
		"request", types.StringType, "requester", types.StringType, "account", types.StringType,
		"chain", types.StringType, "network", types.StringType, "asset", types.StringType,
		"amount", unitsType, "destination", types.StringType),
	contextType.TypeName(): newObjectDef(contextType,
		"client_ip", types.StringType, "device_id", types.StringType, "session_age_seconds", types.IntType,
		"device_age_seconds", types.IntType, "account_changed_seconds", types.IntType, "risk_score", types.StringType),
	findingType.TypeName(): newObjectDef(findingType,
		"code", types.StringType, "reason", types.StringType, "details", types.NewMapType(types.StringType, types.StringType)),
	accumType.TypeName(): newObjectDef(accumType, "count", types.IntType, "usd", dollarsType),
}

// Names of the functions the macros expand into; not for rules to call.
const (
	fnHasFinding = "@has_finding"
	fnEq         = "@equals"
	fnNe         = "@not_equals"
)

// knownCodes are the finding codes has_finding accepts: a misspelt code
// would never match, and silently skip a deny.
var knownCodes = []string{
	intent.FlaggedDestination, intent.FlaggedCounterparty, intent.Velocity, intent.NewDestination,
	intent.Lookalike, intent.AboveHistory, intent.AccountChanged, intent.DeviceNew, intent.SessionNew,
	intent.InternalTransfer, intent.ExchangeRisk, intent.PriceUnknown, intent.CounterpartiesUnknown,
}

// literals holds the dollars("…") and units("…") literals of one policy,
// parsed once when its conditions are compiled; read-only after.
type literals map[string]ref.Val

func litKey(fn, s string) string { return fn + "\x00" + s }

// newEnv is the CEL environment of one policy: its variables, the exact
// money types and their operators, has_finding, and the bounds.
func newEnv(lits literals) (*cel.Env, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, err
	}
	opts := []cel.EnvOption{
		cel.CustomTypeProvider(&provider{Provider: reg}),
		cel.Variable("intent", intentType),
		cel.Variable("context", contextType),
		cel.Variable("usd", dollarsType),
		cel.Variable("usd_known", types.BoolType),
		cel.Variable("findings", types.NewListType(findingType)),
		cel.Variable("velocity", types.NewMapType(types.StringType, accumType)),
		cel.Variable("whitelisted", types.BoolType),
		cel.Macros(
			cel.GlobalMacro("has_finding", 1, hasFindingMacro),
			cel.GlobalMacro("dollars", 1, literalMacro("dollars", lits)),
			cel.GlobalMacro("units", 1, literalMacro("units", lits)),
			cel.GlobalMacro(operators.Equals, 2, intEqualityMacro(fnEq)),
			cel.GlobalMacro(operators.NotEquals, 2, intEqualityMacro(fnNe)),
			cel.GlobalMacro(operators.Less, 2, relationMacro(operators.Greater)),
			cel.GlobalMacro(operators.LessEquals, 2, relationMacro(operators.GreaterEquals)),
			cel.GlobalMacro(operators.Greater, 2, relationMacro(operators.Less)),
			cel.GlobalMacro(operators.GreaterEquals, 2, relationMacro(operators.LessEquals)),
		),
		cel.Function(fnHasFinding, cel.Overload("has_finding_list_string",
			[]*cel.Type{types.NewListType(findingType), types.StringType}, types.BoolType, cel.BinaryBinding(hasFinding))),
		cel.Function("dollars", cel.Overload("dollars_string", []*cel.Type{types.StringType}, dollarsType,
			cel.UnaryBinding(literal("dollars", lits)))),
		cel.Function("units", cel.Overload("units_string", []*cel.Type{types.StringType}, unitsType,
			cel.UnaryBinding(literal("units", lits)))),
		cel.Function(operators.Add, cel.Overload("add_dollars_dollars", []*cel.Type{dollarsType, dollarsType}, dollarsType)),
		cel.Function("string",
			cel.Overload("string_dollars", []*cel.Type{dollarsType}, types.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return v.ConvertToType(types.StringType) })),
			cel.Overload("string_units", []*cel.Type{unitsType}, types.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return v.ConvertToType(types.StringType) }))),
		cel.ParserExpressionSizeLimit(MaxWhen),
		cel.ParserRecursionLimit(32),
		cel.ExpressionNodeLimit(MaxNodes),
		cel.RegexProgramSizeLimit(200),
	}
	// Exact comparisons of dollars and units with their own kind and
	// with ints, never with doubles. CEL's <, <=, >, >= dispatch to the
	// left operand's Compare (dollarsVal, unitsVal), and relationMacro
	// puts an int literal on the right; == and != with an int literal go
	// to fnEq and fnNe (intEqualityMacro).
	for _, op := range []string{operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals} {
		name := strings.Trim(op, "_")
		var ovs []cel.FunctionOpt
		for _, s := range [][2]*cel.Type{{dollarsType, types.IntType}, {dollarsType, dollarsType}, {unitsType, types.IntType}, {unitsType, unitsType}} {
			ovs = append(ovs, cel.Overload(fmt.Sprintf("%s_%s_%s", name, s[0], s[1]), []*cel.Type{s[0], s[1]}, types.BoolType))
		}
		opts = append(opts, cel.Function(op, ovs...))
	}
	for op, test := range map[string]func(int) bool{fnEq: func(c int) bool { return c == 0 }, fnNe: func(c int) bool { return c != 0 }} {
		bind := cel.BinaryBinding(func(a, b ref.Val) ref.Val {
			c, err := compare(a, b)
			if err != nil {
				return types.NewErrFromString(err.Error())
			}
			return types.Bool(test(c))
		})
		var ovs []cel.FunctionOpt
		for _, s := range [][2]*cel.Type{{dollarsType, types.IntType}, {types.IntType, dollarsType},
			{unitsType, types.IntType}, {types.IntType, unitsType}, {types.IntType, types.IntType}} {
			ovs = append(ovs, cel.Overload(fmt.Sprintf("%s_%s_%s", strings.Trim(op, "@"), s[0], s[1]), []*cel.Type{s[0], s[1]}, types.BoolType, bind))
		}
		opts = append(opts, cel.Function(op, ovs...))
	}
	return cel.NewEnv(opts...)
}

// hasFindingMacro turns has_finding("code") into a test over findings;
// the code must be a known one, in quotes.
func hasFindingMacro(eh cel.MacroExprFactory, _ ast.Expr, args []ast.Expr) (ast.Expr, *cel.Error) {
	s, ok := stringLiteral(args[0])
	if !ok {
		return nil, eh.NewError(args[0].ID(), "has_finding takes a finding code in quotes, such as has_finding(\"velocity\")")
	}
	if !slices.Contains(knownCodes, s) {
		return nil, eh.NewError(args[0].ID(), fmt.Sprintf("has_finding(%q): no such finding code; want one of %s", s, strings.Join(knownCodes, ", ")))
	}
	return eh.NewCall(fnHasFinding, eh.NewIdent("findings"), args[0]), nil
}

// literalMacro checks dollars("…") and units("…") when the condition is
// parsed: the argument is a string literal that parses, so evaluation
// never meets a bad one. It leaves the call as it is.
func literalMacro(fn string, lits literals) cel.MacroFactory {
	return func(eh cel.MacroExprFactory, _ ast.Expr, args []ast.Expr) (ast.Expr, *cel.Error) {
		s, ok := stringLiteral(args[0])
		if !ok {
			return nil, eh.NewError(args[0].ID(), fn+"() takes a decimal in quotes, such as "+fn+"(\"1000000\")")
		}
		v, err := parseLiteral(fn, s)
		if err != nil {
			return nil, eh.NewError(args[0].ID(), err.Error())
		}
		lits[litKey(fn, s)] = v
		return nil, nil
	}
}

func parseLiteral(fn, s string) (ref.Val, error) {
	if fn == "units" {
		n, ok := new(big.Int).SetString(s, 10)
		if !ok || !decimalRe.MatchString(s) {
			return nil, fmt.Errorf("units(%q): want a decimal integer of base units", s)
		}
		return unitsVal{n}, nil
	}
	u, err := intent.ParseUSD(s)
	if err != nil {
		return nil, fmt.Errorf("dollars(%q): %w", s, err)
	}
	return dollarsVal{u}, nil
}

func literal(fn string, lits literals) func(ref.Val) ref.Val {
	return func(v ref.Val) ref.Val {
		s, ok := v.(types.String)
		if !ok {
			return types.NewErrFromString(fn + "() takes a string")
		}
		if l, ok := lits[litKey(fn, string(s))]; ok {
			return l
		}
		l, err := parseLiteral(fn, string(s))
		if err != nil {
			return types.NewErrFromString(err.Error())
		}
		return l
	}
}

// intEqualityMacro sends == and != with an int literal on either side to
// fn, whose overloads compare dollars and units exactly with ints (CEL's
// own equality takes two operands of one type).
func intEqualityMacro(fn string) cel.MacroFactory {
	return func(eh cel.MacroExprFactory, _ ast.Expr, args []ast.Expr) (ast.Expr, *cel.Error) {
		if !intLiteral(args[0]) && !intLiteral(args[1]) {
			return nil, nil
		}
		return eh.NewCall(fn, args[0], args[1]), nil
	}
}

// relationMacro turns "1000000 <= usd" into "usd >= 1000000": an int
// literal on the left of a relation goes to the right, mirrored, so the
// exact comparison of dollars and units applies (CEL dispatches a
// relation on its left operand).
func relationMacro(mirror string) cel.MacroFactory {
	return func(eh cel.MacroExprFactory, _ ast.Expr, args []ast.Expr) (ast.Expr, *cel.Error) {
		if !intLiteral(args[0]) || intLiteral(args[1]) {
			return nil, nil
		}
		return eh.NewCall(mirror, args[1], args[0]), nil
	}
}

func stringLiteral(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

func intLiteral(e ast.Expr) bool {
	if e.Kind() != ast.LiteralKind {
		return false
	}
	_, ok := e.AsLiteral().(types.Int)
	return ok
}

func hasFinding(list, code ref.Val) ref.Val {
	l, ok := list.(traits.Lister)
	if !ok {
		return types.NewErrFromString("has_finding: no findings list")
	}
	it := l.Iterator()
	for it.HasNext() == types.True {
		if f, ok := it.Next().(*object); ok && f.vals[0] == code {
			return types.True
		}
	}
	return types.False
}

var errCompare = errors.New("no exact comparison of these values")

// compare compares dollars, units and ints exactly (-1, 0, +1); unknown
// dollars are above every known value.
func compare(a, b ref.Val) (int, error) {
	switch x := a.(type) {
	case dollarsVal:
		switch y := b.(type) {
		case dollarsVal:
			return x.u.Cmp(y.u), nil
		case types.Int:
			return x.u.Cmp(intent.Dollars(new(big.Rat).SetInt64(int64(y)))), nil
		}
	case unitsVal:
		switch y := b.(type) {
		case unitsVal:
			return x.n.Cmp(y.n), nil
		case types.Int:
			return x.n.Cmp(big.NewInt(int64(y))), nil
		}
	case types.Int:
		switch y := b.(type) {
		case types.Int:
			return cmpInt(int64(x), int64(y)), nil
		case dollarsVal, unitsVal:
			c, err := compare(b, a)
			return -c, err
		}
	}
	return 0, fmt.Errorf("%w: %s and %s", errCompare, a.Type().TypeName(), b.Type().TypeName())
}

func compareVal(a, b ref.Val) ref.Val {
	c, err := compare(a, b)
	if err != nil {
		return types.NewErrFromString(err.Error())
	}
	return types.Int(c)
}

// runtimeType is the runtime type of dollars and units values: their CEL
// type's name, with the traits CEL's own operators dispatch on.
type runtimeType struct {
	name   string
	traits int
}

func (t runtimeType) HasTrait(tr int) bool { return t.traits&tr == tr }
func (t runtimeType) TypeName() string     { return t.name }

var (
	dollarsRuntime = runtimeType{dollarsType.TypeName(), traits.ComparerType | traits.AdderType}
	unitsRuntime   = runtimeType{unitsType.TypeName(), traits.ComparerType}
)

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// dollarsVal is a CEL value of type dollars: exact, or unknown.
type dollarsVal struct{ u intent.USD }

func (d dollarsVal) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("dollars: no conversion to %v", t)
}

func (d dollarsVal) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case dollarsType:
		return d
	case types.StringType:
		return types.String(d.u.String())
	case types.TypeType:
		return dollarsType
	}
	return types.NewErrFromString("dollars: no conversion to " + t.TypeName())
}

// Equal is CEL's == of two dollars values: exact; unknown equals only
// unknown.
func (d dollarsVal) Equal(o ref.Val) ref.Val {
	e, ok := o.(dollarsVal)
	return types.Bool(ok && d.u.Cmp(e.u) == 0)
}

// Compare is CEL's <, <=, >, >= with dollars on the left.
func (d dollarsVal) Compare(o ref.Val) ref.Val { return compareVal(d, o) }

// Add is CEL's + of two dollars values: unknown when either is.
func (d dollarsVal) Add(o ref.Val) ref.Val {
	e, ok := o.(dollarsVal)
	if !ok {
		return types.NewErrFromString("dollars + " + o.Type().TypeName() + ": add dollars to dollars")
	}
	return dollarsVal{d.u.Add(e.u)}
}

func (d dollarsVal) Type() ref.Type { return dollarsRuntime }
func (d dollarsVal) Value() any     { return d.u }

// unitsVal is a CEL value of type units: an exact integer of base units.
type unitsVal struct{ n *big.Int }

func (u unitsVal) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("units: no conversion to %v", t)
}

func (u unitsVal) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case unitsType:
		return u
	case types.StringType:
		return types.String(u.n.String())
	case types.TypeType:
		return unitsType
	}
	return types.NewErrFromString("units: no conversion to " + t.TypeName())
}

func (u unitsVal) Equal(o ref.Val) ref.Val {
	e, ok := o.(unitsVal)
	return types.Bool(ok && u.n.Cmp(e.n) == 0)
}

// Compare is CEL's <, <=, >, >= with units on the left.
func (u unitsVal) Compare(o ref.Val) ref.Val { return compareVal(u, o) }

func (u unitsVal) Type() ref.Type { return unitsRuntime }
func (u unitsVal) Value() any     { return u.n }

// objectDef declares one object type: its fields and their types.
type objectDef struct {
	t      *types.Type
	names  []string
	fields map[string]*types.FieldType
}

func newObjectDef(t *types.Type, nameTypes ...any) *objectDef {
	d := &objectDef{t: t, fields: map[string]*types.FieldType{}}
	for i := 0; i < len(nameTypes); i += 2 {
		name, ft, idx := nameTypes[i].(string), nameTypes[i+1].(*types.Type), i/2
		d.names = append(d.names, name)
		d.fields[name] = &types.FieldType{
			Type: ft,
			IsSet: func(obj any) bool {
				o, ok := obj.(*object)
				return ok && o.def == d && o.vals[idx] != nil
			},
			GetFrom: func(obj any) (any, error) {
				o, ok := obj.(*object)
				if !ok || o.def != d {
					return nil, fmt.Errorf("%s: not a %s", name, t.TypeName())
				}
				if o.vals[idx] == nil {
					return nil, fmt.Errorf("%s.%s is absent (unknown): test it with has() first", o.name, name)
				}
				return o.vals[idx], nil
			},
		}
	}
	return d
}

// object is a value of one of the declared object types; a nil value is
// an absent field.
type object struct {
	def  *objectDef
	name string // for errors: "context", "finding"
	vals []ref.Val
}

func (o *object) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("%s: no conversion to %v", o.def.t.TypeName(), t)
}

func (o *object) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return o.def.t
	}
	return types.NewErrFromString(o.def.t.TypeName() + ": no conversion to " + t.TypeName())
}

func (o *object) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(o)) }
func (o *object) Type() ref.Type              { return o.def.t }
func (o *object) Value() any                  { return o }

// provider adds the object types to CEL's own.
type provider struct{ types.Provider }

func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if d, ok := objects[name]; ok {
		return types.NewTypeTypeWithParam(d.t), true
	}
	return p.Provider.FindStructType(name)
}

func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if d, ok := objects[name]; ok {
		return slices.Clone(d.names), true
	}
	return p.Provider.FindStructFieldNames(name)
}

func (p *provider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if d, ok := objects[name]; ok {
		f, ok := d.fields[field]
		return f, ok
	}
	return p.Provider.FindStructFieldType(name, field)
}

// NewValue refuses to build the policy's objects: a condition reads them.
func (p *provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := objects[name]; ok {
		return types.NewErrFromString(name + " cannot be constructed")
	}
	return p.Provider.NewValue(name, fields)
}

// estimator bounds the sizes of the inputs for the load-time cost
// estimate; Evaluate refuses inputs beyond them.
type estimator struct{}

func (estimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if t := n.Type(); t.IsExactType(dollarsType) || t.IsExactType(unitsType) {
		return &cost.SizeEstimate{Min: 1, Max: 1}
	}
	if n.Path() == nil {
		return nil
	}
	switch n.Type().Kind() {
	case types.StringKind, types.BytesKind:
		return &cost.SizeEstimate{Min: 0, Max: maxString}
	case types.ListKind:
		return &cost.SizeEstimate{Min: 0, Max: MaxFindings}
	case types.MapKind:
		if n.Path()[0] == "velocity" {
			return &cost.SizeEstimate{Min: 0, Max: MaxWindows}
		}
		return &cost.SizeEstimate{Min: 0, Max: MaxDetails}
	}
	return nil
}

func (estimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// activation is one evaluation's variables.
type activation struct {
	intent, context, usd, usdKnown, findings, velocity, whitelisted ref.Val
}

func (a *activation) ResolveName(name string) (any, bool) {
	var v ref.Val
	switch name {
	case "intent":
		v = a.intent
	case "context":
		v = a.context
	case "usd":
		v = a.usd
	case "usd_known":
		v = a.usdKnown
	case "findings":
		v = a.findings
	case "velocity":
		v = a.velocity
	case "whitelisted":
		v = a.whitelisted
	}
	return v, v != nil
}

func (a *activation) Parent() interpreter.Activation { return nil }

package policy

import (
	"math"
	"regexp"
	"strings"
	"unicode/utf8"

	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// The common shapes of rules (comparisons of the call's fields and
// arguments with constants, string tests, membership in a constant list,
// presence tests, joined by conditionals and negation) are compiled to Go
// closures at load time, which evaluate without CEL's value boxing and
// without allocating. A compiled rule is evaluated first; when it meets
// anything it does not answer exactly as CEL would (an error of any kind,
// a value of a type it does not read, a NaN, a cost that may reach
// CostLimit), it gives up, and the rule's CEL program decides instead. A
// compiled rule therefore never changes a decision, an error, or the
// reason that quotes it: FuzzCompiledMatchesCEL checks that the compiled
// answer, when there is one, is CEL's.
//
// What it compiles is the program CEL runs: the rule after strictAST (so
// && and || are conditionals, evaluated left to right) and, for the
// per-tool sets, the residual without its tool tests.

// fastNode evaluates one node of a compiled rule. ok is false when CEL
// must answer instead.
type fastNode func(a *activation) (v Arg, ok bool)

// fastRule is a compiled rule.
type fastRule struct {
	root fastNode
	// tracked: CEL evaluates the rule with cost tracking against
	// CostLimit, so an evaluation whose cost may reach it is left to CEL.
	tracked bool
}

// eval returns the rule's result; ok is false when CEL must decide.
func (f *fastRule) eval(a *activation) (match, ok bool) {
	a.cost = 0
	v, ok := f.root(a)
	if !ok || v.kind != argBool {
		return false, false
	}
	if f.tracked && a.cost >= CostLimit/2 {
		return false, false
	}
	return v.n != 0, true
}

// costPerNode is charged for every node a compiled rule evaluates, on top
// of what its operations charge by size: more than CEL charges for any
// node (at most one per identifier, field and call), so that the
// compiled cost is an upper bound of CEL's.
const costPerNode = 4

// compileFast compiles e, a checked and optimized rule, or returns nil
// when it has a shape the compiler does not know.
func compileFast(e celast.Expr, tracked bool) *fastRule {
	c := fastCompiler{}
	n := c.node(e)
	if n == nil {
		return nil
	}
	return &fastRule{root: n, tracked: tracked}
}

type fastCompiler struct{}

func boolArg(b bool) Arg {
	if b {
		return Arg{kind: argBool, n: 1}
	}
	return Arg{kind: argBool}
}

func (c fastCompiler) node(e celast.Expr) fastNode {
	switch e.Kind() {
	case celast.LiteralKind:
		v, ok := literalArg(e.AsLiteral())
		if !ok {
			return nil
		}
		return func(a *activation) (Arg, bool) { return v, true }
	case celast.SelectKind:
		return c.sel(e.AsSelect())
	case celast.CallKind:
		return c.call(e.AsCall())
	}
	return nil
}

// literalArg converts a CEL literal.
func literalArg(v ref.Val) (Arg, bool) {
	switch v := v.(type) {
	case types.Bool:
		return boolArg(bool(v)), true
	case types.Int:
		return IntArg(int64(v)), true
	case types.Uint:
		return UintArg(uint64(v)), true
	case types.Double:
		return FloatArg(float64(v)), true
	case types.String:
		return StringArg(string(v)), true
	case types.Null:
		return NullArg(), true
	}
	return Arg{}, false
}

// isIdent reports whether e is the identifier name.
func isIdent(e celast.Expr, name string) bool {
	return e.Kind() == celast.IdentKind && e.AsIdent() == name
}

// isCallField reports whether e is call.<field>, not a presence test.
func isCallField(e celast.Expr, field string) bool {
	if e.Kind() != celast.SelectKind {
		return false
	}
	s := e.AsSelect()
	return !s.IsTestOnly() && s.FieldName() == field && isIdent(s.Operand(), "call")
}

// isUsageField reports whether e is usage.<field>, not a presence test.
func isUsageField(e celast.Expr, field string) bool {
	if e.Kind() != celast.SelectKind {
		return false
	}
	s := e.AsSelect()
	return !s.IsTestOnly() && s.FieldName() == field && isIdent(s.Operand(), "usage")
}

// callStringField returns the reader of call.<name> when it is one of
// the string fields.
func callStringField(name string) func(c *Call) string {
	for _, f := range callStrings {
		if f.name == name {
			return f.get
		}
	}
	return nil
}

func (c fastCompiler) sel(s celast.SelectExpr) fastNode {
	op, name := s.Operand(), s.FieldName()
	if s.IsTestOnly() {
		// has(...): presence, never an error on these operands.
		switch {
		case isIdent(op, "call"):
			get := callStringField(name)
			if get == nil {
				return nil
			}
			return func(a *activation) (Arg, bool) {
				a.cost += costPerNode
				return boolArg(get(&a.in.Call) != ""), true
			}
		case isCallField(op, "args"):
			return func(a *activation) (Arg, bool) {
				a.cost += costPerNode
				_, found := a.arg(name)
				return boolArg(found), true
			}
		case isCallField(op, "labels"):
			return func(a *activation) (Arg, bool) {
				a.cost += costPerNode
				_, found := a.in.Call.Labels[name]
				return boolArg(found), true
			}
		}
		return nil
	}
	return c.field(op, name)
}

// field compiles op.name, or op["name"]: a field of call or usage, or a
// key of call.args, call.labels, usage.spend or usage.caps. A missing
// key is CEL's error.
func (c fastCompiler) field(op celast.Expr, name string) fastNode {
	switch {
	case isIdent(op, "call"):
		get := callStringField(name)
		if get == nil {
			return nil
		}
		return func(a *activation) (Arg, bool) {
			a.cost += costPerNode
			return StringArg(get(&a.in.Call)), true
		}
	case isIdent(op, "usage"):
		if name != "calls" {
			return nil
		}
		return func(a *activation) (Arg, bool) {
			a.cost += costPerNode
			return IntArg(a.in.Usage.Calls), true
		}
	case isCallField(op, "args"):
		return func(a *activation) (Arg, bool) {
			a.cost += costPerNode
			v, found := a.arg(name)
			if !found || v.kind == argOther {
				return Arg{}, false
			}
			if v.kind == argDouble && math.IsNaN(math.Float64frombits(v.n)) {
				return Arg{}, false
			}
			return v, true
		}
	case isCallField(op, "labels"):
		return func(a *activation) (Arg, bool) {
			a.cost += costPerNode
			v, found := a.in.Call.Labels[name]
			return StringArg(v), found
		}
	case isUsageField(op, "spend"), isUsageField(op, "caps"):
		spend := op.AsSelect().FieldName() == "spend"
		return func(a *activation) (Arg, bool) {
			a.cost += costPerNode
			m := a.in.Usage.Caps
			if spend {
				m = a.in.Usage.Spend
			}
			v, found := m[name]
			if !found || math.IsNaN(v) {
				return Arg{}, false
			}
			return FloatArg(v), true
		}
	}
	return nil
}

func (c fastCompiler) call(call celast.CallExpr) fastNode {
	args := call.Args()
	fn := call.FunctionName()
	if call.IsMemberFunction() {
		target := call.Target()
		switch {
		case fn == overloads.Size && len(args) == 0:
			return c.size(target)
		case len(args) == 1 && (fn == overloads.StartsWith || fn == overloads.EndsWith || fn == overloads.Contains || fn == overloads.Matches):
			return c.stringTest(fn, target, args[0])
		}
		return nil
	}
	switch len(args) {
	case 1:
		switch fn {
		case operators.LogicalNot:
			x := c.node(args[0])
			if x == nil {
				return nil
			}
			return func(a *activation) (Arg, bool) {
				a.cost += costPerNode
				v, ok := x(a)
				if !ok || v.kind != argBool {
					return Arg{}, false
				}
				return boolArg(v.n == 0), true
			}
		case overloads.Size:
			return c.size(args[0])
		}
	case 2:
		switch fn {
		case operators.Equals, operators.NotEquals:
			return c.equals(args[0], args[1], fn == operators.NotEquals)
		case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
			return c.compare(fn, args[0], args[1])
		case operators.In:
			return c.in(args[0], args[1])
		case operators.Index:
			s, ok := stringLit(args[1])
			if !ok {
				return nil
			}
			return c.field(args[0], s)
		case overloads.Matches:
			return c.stringTest(fn, args[0], args[1])
		}
	case 3:
		if fn == operators.Conditional {
			return c.cond(args[0], args[1], args[2])
		}
	}
	return nil
}

func (c fastCompiler) cond(ce, te, fe celast.Expr) fastNode {
	cond, t, f := c.node(ce), c.node(te), c.node(fe)
	if cond == nil || t == nil || f == nil {
		return nil
	}
	return func(a *activation) (Arg, bool) {
		a.cost += costPerNode
		v, ok := cond(a)
		if !ok || v.kind != argBool {
			return Arg{}, false
		}
		if v.n != 0 {
			return t(a)
		}
		return f(a)
	}
}

// runeCount is utf8.RuneCountInString(s), eight bytes at a time while
// they are ASCII (one code point each).
func runeCount(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if w&0x8080808080808080 != 0 {
			break
		}
	}
	return i + utf8.RuneCountInString(s[i:])
}

// size is size(x) of a string (in code points, as CEL counts them), or of
// a list or map argument.
func (c fastCompiler) size(xe celast.Expr) fastNode {
	x := c.node(xe)
	if x == nil {
		return nil
	}
	return func(a *activation) (Arg, bool) {
		a.cost += costPerNode
		v, ok := x(a)
		if !ok {
			return Arg{}, false
		}
		switch v.kind {
		case argString:
			return IntArg(int64(runeCount(v.s))), true
		case argList:
			return IntArg(int64(len(v.v.([]any)))), true
		case argMap:
			return IntArg(int64(len(v.v.(map[string]any)))), true
		}
		return Arg{}, false
	}
}

// stringTest is s.startsWith(x), s.endsWith(x), s.contains(x) or
// s.matches(re) with re a constant.
func (c fastCompiler) stringTest(fn string, se, xe celast.Expr) fastNode {
	s := c.node(se)
	if s == nil {
		return nil
	}
	if fn == overloads.Matches {
		pat, ok := stringLit(xe)
		if !ok {
			return nil
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil
		}
		patCost := uint64(len(pat)+3)/4 + 1
		return func(a *activation) (Arg, bool) {
			v, ok := s(a)
			if !ok || v.kind != argString {
				return Arg{}, false
			}
			a.cost += costPerNode + (uint64(len(v.s))/10+2)*patCost
			return boolArg(re.MatchString(v.s)), true
		}
	}
	x := c.node(xe)
	if x == nil {
		return nil
	}
	return func(a *activation) (Arg, bool) {
		v, ok := s(a)
		if !ok || v.kind != argString {
			return Arg{}, false
		}
		w, ok := x(a)
		if !ok || w.kind != argString {
			return Arg{}, false
		}
		var r bool
		switch fn {
		case overloads.StartsWith:
			a.cost += costPerNode + tenth(len(w.s))
			r = strings.HasPrefix(v.s, w.s)
		case overloads.EndsWith:
			a.cost += costPerNode + tenth(len(w.s))
			r = strings.HasSuffix(v.s, w.s)
		default:
			a.cost += costPerNode + tenth(len(v.s))*tenth(len(w.s))
			r = strings.Contains(v.s, w.s)
		}
		return boolArg(r), true
	}
}

// tenth is a bound of CEL's cost of traversing n bytes: a tenth, rounded
// up, and one more.
func tenth(n int) uint64 { return uint64(n)/10 + 2 }

// equals is x == y or x != y, CEL's heterogeneous equality: numbers
// compare by value across int, uint and double; values of other
// different types are not equal; null equals only null.
func (c fastCompiler) equals(xe, ye celast.Expr, not bool) fastNode {
	if xe.Kind() == celast.LiteralKind && ye.Kind() != celast.LiteralKind {
		xe, ye = ye, xe // == is symmetric: the constant on the right
	}
	if n := c.equalsConst(xe, ye, not); n != nil {
		return n
	}
	x, y := c.node(xe), c.node(ye)
	if x == nil || y == nil {
		return nil
	}
	return func(a *activation) (Arg, bool) {
		v, ok := x(a)
		if !ok {
			return Arg{}, false
		}
		w, ok := y(a)
		if !ok {
			return Arg{}, false
		}
		a.cost += costPerNode
		if v.kind == argString && w.kind == argString {
			a.cost += tenth(min(len(v.s), len(w.s)))
		}
		eq, ok := argEqual(v, w)
		if !ok {
			return Arg{}, false
		}
		return boolArg(eq != not), true
	}
}

// equalsConst is x == "s" (or !=) with x a string field of call, or any
// x against a string constant: the most common tests, compiled without
// the general comparison. It returns nil for other shapes.
func (c fastCompiler) equalsConst(xe, ye celast.Expr, not bool) fastNode {
	lit, ok := stringLit(ye)
	if !ok {
		return nil
	}
	cost := costPerNode + tenth(len(lit))
	if xe.Kind() == celast.SelectKind && isIdent(xe.AsSelect().Operand(), "call") && !xe.AsSelect().IsTestOnly() {
		if get := callStringField(xe.AsSelect().FieldName()); get != nil {
			return func(a *activation) (Arg, bool) {
				a.cost += cost
				return boolArg((get(&a.in.Call) == lit) != not), true
			}
		}
	}
	x := c.node(xe)
	if x == nil {
		return nil
	}
	return func(a *activation) (Arg, bool) {
		v, ok := x(a)
		if !ok || v.kind >= argList {
			return Arg{}, false
		}
		a.cost += cost
		return boolArg((v.kind == argString && v.s == lit) != not), true
	}
}

// argEqual is types.Equal on two values the compiled rules read; ok is
// false for a value it does not read (a list, a map, another Go type).
func argEqual(v, w Arg) (eq, ok bool) {
	if v.kind >= argList || w.kind >= argList {
		return false, false
	}
	if v.kind == argNull || w.kind == argNull {
		return v.kind == w.kind, true
	}
	if v.numeric() && w.numeric() {
		cmp, nan := compareNum(v, w)
		return !nan && cmp == 0, true
	}
	if v.kind != w.kind {
		return false, true
	}
	switch v.kind {
	case argString:
		return v.s == w.s, true
	default: // bool
		return v.n == w.n, true
	}
}

func (v Arg) numeric() bool { return v.kind == argInt || v.kind == argUint || v.kind == argDouble }

// compareNum compares two numbers as cel-go's Int, Uint and Double do
// (including their rounding of an integer to a double); nan reports a
// NaN, which neither orders nor equals.
func compareNum(v, w Arg) (cmp int, nan bool) {
	switch v.kind {
	case argInt:
		i := int64(v.n)
		switch w.kind {
		case argInt:
			return cmp3(i < int64(w.n), i > int64(w.n)), false
		case argUint:
			return compareIntUint(i, w.n), false
		default:
			d := math.Float64frombits(w.n)
			if math.IsNaN(d) {
				return 0, true
			}
			return -compareDoubleInt(d, i), false
		}
	case argUint:
		u := v.n
		switch w.kind {
		case argInt:
			return -compareIntUint(int64(w.n), u), false
		case argUint:
			return cmp3(u < w.n, u > w.n), false
		default:
			d := math.Float64frombits(w.n)
			if math.IsNaN(d) {
				return 0, true
			}
			return -compareDoubleUint(d, u), false
		}
	default:
		d := math.Float64frombits(v.n)
		if math.IsNaN(d) {
			return 0, true
		}
		switch w.kind {
		case argInt:
			return compareDoubleInt(d, int64(w.n)), false
		case argUint:
			return compareDoubleUint(d, w.n), false
		default:
			e := math.Float64frombits(w.n)
			if math.IsNaN(e) {
				return 0, true
			}
			return cmp3(d < e, d > e), false
		}
	}
}

func cmp3(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}

// compareDoubleInt, compareDoubleUint and compareIntUint are cel-go's
// (common/types/compare.go).
func compareDoubleInt(d float64, i int64) int {
	if d < math.MinInt64 {
		return -1
	}
	if d > math.MaxInt64 {
		return 1
	}
	return cmp3(d < float64(i), d > float64(i))
}

func compareDoubleUint(d float64, u uint64) int {
	if d < 0 {
		return -1
	}
	if d > math.MaxUint64 {
		return 1
	}
	return cmp3(d < float64(u), d > float64(u))
}

func compareIntUint(i int64, u uint64) int {
	if i < 0 || u > math.MaxInt64 {
		return -1
	}
	return cmp3(i < int64(u), i > int64(u))
}

// compare is x < y, x <= y, x > y or x >= y: numbers across types,
// strings by bytes, bools (false < true); anything else is CEL's error.
func (c fastCompiler) compare(fn string, xe, ye celast.Expr) fastNode {
	if xe.Kind() == celast.LiteralKind && ye.Kind() != celast.LiteralKind {
		// c < x is x > c: cel-go's comparisons across types are
		// antisymmetric, and fail on the same pairs of types.
		xe, ye = ye, xe
		fn = map[string]string{operators.Less: operators.Greater, operators.LessEquals: operators.GreaterEquals,
			operators.Greater: operators.Less, operators.GreaterEquals: operators.LessEquals}[fn]
	}
	op := map[string]cmpOp{operators.Less: opLess, operators.LessEquals: opLessEq, operators.Greater: opGreater, operators.GreaterEquals: opGreaterEq}[fn]
	x := c.node(xe)
	if x == nil {
		return nil
	}
	if ye.Kind() == celast.LiteralKind {
		if lit, ok := literalArg(ye.AsLiteral()); ok && lit.numeric() {
			// The common x > 1000: a number against a number.
			return func(a *activation) (Arg, bool) {
				v, ok := x(a)
				if !ok || !v.numeric() {
					return Arg{}, false
				}
				a.cost += costPerNode
				cmp, nan := compareNum(v, lit)
				if nan {
					return Arg{}, false
				}
				return boolArg(op.holds(cmp)), true
			}
		}
	}
	y := c.node(ye)
	if y == nil {
		return nil
	}
	return func(a *activation) (Arg, bool) {
		v, ok := x(a)
		if !ok {
			return Arg{}, false
		}
		w, ok := y(a)
		if !ok {
			return Arg{}, false
		}
		a.cost += costPerNode
		var cmp int
		switch {
		case v.numeric() && w.numeric():
			var nan bool
			if cmp, nan = compareNum(v, w); nan {
				return Arg{}, false
			}
		case v.kind == argString && w.kind == argString:
			a.cost += tenth(min(len(v.s), len(w.s)))
			cmp = strings.Compare(v.s, w.s)
		case v.kind == argBool && w.kind == argBool:
			cmp = cmp3(v.n < w.n, v.n > w.n)
		default:
			return Arg{}, false
		}
		return boolArg(op.holds(cmp)), true
	}
}

// cmpOp is an ordering operator.
type cmpOp uint8

const (
	opLess cmpOp = iota
	opLessEq
	opGreater
	opGreaterEq
)

// holds reports whether the operator holds for a comparison's result.
func (op cmpOp) holds(cmp int) bool {
	switch op {
	case opLess:
		return cmp < 0
	case opLessEq:
		return cmp <= 0
	case opGreater:
		return cmp > 0
	}
	return cmp >= 0
}

// in is x in [constants]. CEL runs it as a lookup in a set of the
// constants (interpreter.maybeOptimizeSetMembership), each number also
// entered as the other numeric types it converts to; the sets here are
// built by the same conversions, so that they answer as that set does,
// even where it differs from ==.
func (c fastCompiler) in(xe, le celast.Expr) fastNode {
	if le.Kind() != celast.ListKind || len(le.AsList().OptionalIndices()) > 0 {
		return nil
	}
	elems := le.AsList().Elements()
	var set fastSet
	for _, el := range elems {
		if el.Kind() != celast.LiteralKind {
			return nil
		}
		if !set.add(el.AsLiteral()) {
			return nil
		}
	}
	if len(elems) == 0 {
		// CEL replaces the test with false, without evaluating x.
		return func(a *activation) (Arg, bool) { return boolArg(false), true }
	}
	x := c.node(xe)
	if x == nil {
		return nil
	}
	cost := uint64(len(elems)) + costPerNode
	return func(a *activation) (Arg, bool) {
		v, ok := x(a)
		if !ok || v.kind >= argList {
			return Arg{}, false
		}
		a.cost += cost
		return boolArg(set.has(v)), true
	}
}

// fastSet is a set of primitive constants by type.
type fastSet struct {
	strs    map[string]bool
	ints    map[int64]bool
	uints   map[uint64]bool
	doubles map[float64]bool
	bools   [2]bool
}

// add adds v, and the numbers it converts to without loss (an int also
// as its double, rounded), as cel-go builds its set. It returns false for
// a constant cel-go does not put in a set (bytes, null), which leaves the
// test to CEL.
func (s *fastSet) add(v ref.Val) bool {
	if s.strs == nil {
		s.strs, s.ints, s.uints, s.doubles = map[string]bool{}, map[int64]bool{}, map[uint64]bool{}, map[float64]bool{}
	}
	put := func(v ref.Val) {
		switch v := v.(type) {
		case types.Int:
			s.ints[int64(v)] = true
		case types.Uint:
			s.uints[uint64(v)] = true
		case types.Double:
			s.doubles[float64(v)] = true
		}
	}
	switch ev := v.(type) {
	case types.String:
		s.strs[string(ev)] = true
	case types.Bool:
		s.bools[b2i(bool(ev))] = true
	case types.Double:
		put(ev)
		if iv := ev.ConvertToType(types.IntType); !types.IsError(iv) && iv.Equal(ev) == types.True {
			put(iv)
		}
		if uv := ev.ConvertToType(types.UintType); !types.IsError(uv) && uv.Equal(ev) == types.True {
			put(uv)
		}
	case types.Int:
		put(ev)
		if dv := ev.ConvertToType(types.DoubleType); !types.IsError(dv) {
			put(dv)
		}
		if uv := ev.ConvertToType(types.UintType); !types.IsError(uv) {
			put(uv)
		}
	case types.Uint:
		put(ev)
		if dv := ev.ConvertToType(types.DoubleType); !types.IsError(dv) {
			put(dv)
		}
		if iv := ev.ConvertToType(types.IntType); !types.IsError(iv) {
			put(iv)
		}
	default:
		return false
	}
	return true
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// has reports whether v is in the set: a key of its own type.
func (s *fastSet) has(v Arg) bool {
	switch v.kind {
	case argString:
		return s.strs[v.s]
	case argBool:
		return s.bools[v.n]
	case argInt:
		return s.ints[int64(v.n)]
	case argUint:
		return s.uints[v.n]
	case argDouble:
		return s.doubles[math.Float64frombits(v.n)]
	}
	return false // null
}

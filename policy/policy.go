package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// Policy is a compiled policy: immutable once built, and safe for
// concurrent use. Replace a running policy by swapping the pointer
// atomically; a *Policy never changes.
type Policy struct {
	name      string // file name, for String
	spec      Spec   // normalized deep copy
	version   string
	def       Effect
	rules     []*rule
	byTool    map[string]*ruleSet // rules that may match a call to the tool
	other     *ruleSet            // rules that may match a call to any other tool
	tools     *toolCache          // byTool and other by the address of a call's tool name
	costs     []*costExpr
	usesUsage bool
	defReason string
}

// ruleSet is the rules to evaluate for a call: enforced rules ordered by
// effect (deny, approve, allow) then by position in the policy, and shadow
// rules by position.
type ruleSet struct {
	enforced []*rule
	shadow   []*rule
	tracked  bool // a rule's cost depends on its input's size: the arguments are bounded first
}

// rule is one compiled rule.
type rule struct {
	pos     int
	name    string
	effect  Effect
	mode    Mode
	reason  string
	timeout time.Duration
	src     string // the match expression
	prg     cel.Program
	loops   bool     // not bounded statically (comprehensions, replace, + of strings or lists, a worst cost over CostLimit): evaluated with cost tracking and interruption
	tools   []string // the tools it can match; nil when any
	// residual is prg without its tests of call.tool, which are true for
	// every tool in tools: what the per-tool rule sets evaluate.
	residual cel.Program
	// fast is prg compiled to Go, nil when its shape is not one the
	// compiler knows; residualFast is residual's.
	fast, residualFast *fastRule
}

// costExpr is one compiled costs entry.
type costExpr struct {
	tools []string
	unit  string
	prg   cel.Program
	loops bool
}

// Decide evaluates the policy for one call. It never fails: any problem
// (a nil policy or input, a rule that errs, returns a non-bool or goes
// over CostLimit, a context that ends) is a Deny whose Err says why and
// whose Rule names the failing rule.
//
// Semantics: of the enforced rules that match, a deny rule wins over an
// approve rule, which wins over an allow rule, whatever their order; when
// several rules with the deciding effect match, the first in the policy
// is named. When none matches, the policy's default decides. Shadow rules
// are evaluated too and reported in Decision.Shadow, but never change the
// decision.
//
// Deny rules are evaluated first, in policy order: the first that matches
// or fails decides. Otherwise every approve and allow rule that may match
// the tool is evaluated, so that any failure denies (naming the first
// failing rule, approve rules before allow rules).
func (p *Policy) Decide(ctx context.Context, in *Input) Decision {
	if p == nil {
		return Decision{Effect: Deny, Default: true, Reason: "no policy", Err: &EvalError{Err: errors.New("nil policy")}}
	}
	if in == nil {
		return Decision{Effect: Deny, Reason: "no input", Version: p.version, Err: &EvalError{Err: errors.New("nil input")}}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	set := p.ruleSet(in.Call.Tool)
	a := newActivation(in)
	defer a.release()
	if set.tracked && !argsFit(a.argsMap()) {
		return p.tooLarge(a.argsMap())
	}

	d := Decision{Version: p.version}
	var decided *rule
	for _, r := range set.enforced {
		if decided != nil && decided.effect == Deny {
			break // nothing overrides a deny
		}
		ok, err := r.eval(ctx, a)
		if err != nil {
			d.Effect, d.Rule = Deny, r.name
			d.Err = &EvalError{Rule: r.name, Err: err}
			d.Reason = "rule " + r.name + " failed to evaluate" + safeDetail(err, r.src)
			d.Shadow = p.shadow(ctx, a, set)
			return d
		}
		if ok && decided == nil {
			decided = r
		}
	}
	if decided != nil {
		d.Effect, d.Rule, d.Reason, d.ApprovalTimeout = decided.effect, decided.name, decided.reason, decided.timeout
	} else {
		if err := ctx.Err(); err != nil {
			d.Effect = Deny
			d.Err = &EvalError{Err: context.Cause(ctx)}
			d.Reason = "policy evaluation was cancelled"
			return d
		}
		d.Effect, d.Default, d.Reason = p.def, true, p.defReason
	}
	d.Shadow = p.shadow(ctx, a, set)
	return d
}

// tooLarge is the decision on arguments larger than the policy reads.
func (p *Policy) tooLarge(args map[string]any) Decision {
	why := argsTooLarge(args)
	if why == "" {
		why = "the arguments are larger than the policy reads"
	}
	return Decision{Effect: Deny, Rule: "argument-size", Version: p.version,
		Reason: "the call was not evaluated: " + why,
		Err:    &EvalError{Rule: "argument-size", Err: fmt.Errorf("%w: %s", ErrArgsTooLarge, why)}}
}

// shadow evaluates the shadow rules of set. A shadow rule that fails is
// reported as the deny it would have caused.
func (p *Policy) shadow(ctx context.Context, a *activation, set *ruleSet) []ShadowHit {
	var hits []ShadowHit
	for _, r := range set.shadow {
		ok, err := r.eval(ctx, a)
		switch {
		case err != nil:
			hits = append(hits, ShadowHit{Rule: r.name, Effect: Deny, Reason: "failed to evaluate" + safeDetail(err, r.src)})
		case ok:
			hits = append(hits, ShadowHit{Rule: r.name, Effect: r.effect, Reason: r.reason})
		}
	}
	return hits
}

// safeDetail returns ": " and the error's message when it cannot carry an
// argument's value (a missing key is shown only when the rule's source
// names it), and nothing otherwise: reasons reach the model and the audit log, and
// some CEL errors quote the values they failed on. Decision.Err always
// has the whole error.
func safeDetail(err error, src string) string {
	msg := err.Error()
	if key, ok := strings.CutPrefix(msg, "no such key: "); ok {
		if key != "" && strings.Contains(src, key) && len(msg) <= 200 {
			return ": " + msg
		}
		return ""
	}
	for _, p := range []string{"no such overload", "result is ", "division by zero", "modulus by zero", "operation cancelled", "context canceled", "context deadline exceeded"} {
		if strings.HasPrefix(msg, p) && len(msg) <= 200 {
			return ": " + msg
		}
	}
	return ""
}

// eval evaluates r: true when it matches.
func (r *rule) eval(ctx context.Context, a *activation) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, context.Cause(ctx)
	}
	if r.fast != nil {
		if match, ok := r.fast.eval(a); ok {
			return match, nil
		}
	}
	out, err := evalProgram(ctx, r.prg, r.loops, a)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("result is %s, not bool", out.Type().TypeName())
	}
	return bool(b), nil
}

func evalProgram(ctx context.Context, prg cel.Program, loops bool, a *activation) (ref.Val, error) {
	var (
		out ref.Val
		err error
	)
	if loops {
		out, _, err = prg.ContextEval(ctx, a)
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
	} else {
		out, _, err = prg.Eval(a)
	}
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, errors.New("no result")
	}
	return out, nil
}

// Estimate computes the estimated cost of a call from the first costs
// entry whose tools match the call's tool (an entry without tools matches
// every tool). ok is false when no entry applies. An evaluation error, a
// negative or non-finite amount, or the end of ctx is an error; callers
// must then refuse the call.
func (p *Policy) Estimate(ctx context.Context, in *Input) (unit string, amount float64, ok bool, err error) {
	if p == nil || in == nil {
		return "", 0, false, &EvalError{Err: errors.New("nil policy or input")}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	for i, c := range p.costs {
		if !matchTools(c.tools, in.Call.Tool) {
			continue
		}
		a := newActivation(in)
		if c.loops && !argsFit(a.argsMap()) {
			why := argsTooLarge(a.argsMap())
			a.release()
			return c.unit, 0, true, &EvalError{Rule: fmt.Sprintf("cost #%d", i+1), Err: fmt.Errorf("%w: %s", ErrArgsTooLarge, why)}
		}
		if err := ctx.Err(); err != nil {
			a.release()
			return c.unit, 0, true, &EvalError{Rule: fmt.Sprintf("cost #%d", i+1), Err: context.Cause(ctx)}
		}
		out, err := evalProgram(ctx, c.prg, c.loops, a)
		a.release()
		if err != nil {
			return c.unit, 0, true, &EvalError{Rule: fmt.Sprintf("cost #%d", i+1), Err: err}
		}
		switch v := out.(type) {
		case types.Double:
			amount = float64(v)
		case types.Int:
			amount = float64(v)
		case types.Uint:
			amount = float64(v)
		default:
			return c.unit, 0, true, &EvalError{Rule: fmt.Sprintf("cost #%d", i+1), Err: fmt.Errorf("estimate is %s, not a number", out.Type().TypeName())}
		}
		if math.IsNaN(amount) || math.IsInf(amount, 0) || amount < 0 {
			return c.unit, 0, true, &EvalError{Rule: fmt.Sprintf("cost #%d", i+1), Err: fmt.Errorf("estimate %v is not a finite amount ≥ 0", amount)}
		}
		return c.unit, amount, true, nil
	}
	return "", 0, false, nil
}

// matchTools reports whether tool matches one of the globs; an empty list
// matches every tool.
func matchTools(globs []string, tool string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if Glob(g, tool) {
			return true
		}
	}
	return false
}

// Version returns the policy's version: the lowercase hex SHA-256 of its
// canonical form, which does not depend on the file's format (YAML or
// JSON), its key order, or the order of its rules, budgets and breakers.
func (p *Policy) Version() string {
	if p == nil {
		return ""
	}
	return p.version
}

// Spec returns the policy as data, normalized (defaults written out), as a
// deep copy the caller may change.
func (p *Policy) Spec() Spec {
	if p == nil {
		return Spec{}
	}
	return p.spec.clone()
}

// UsesUsage reports whether any rule or cost refers to the variable usage,
// so that a caller can skip computing it when not.
func (p *Policy) UsesUsage() bool { return p != nil && p.usesUsage }

// String returns a one-line summary: "policy.yaml: 4 rules (1 shadow),
// 1 limit, 2 budgets, version 1a2b3c4d5e6f".
func (p *Policy) String() string {
	if p == nil {
		return "policy: <nil>"
	}
	shadow := 0
	for _, r := range p.rules {
		if r.mode == Shadow {
			shadow++
		}
	}
	name := p.name
	if name == "" {
		name = "policy"
	}
	return fmt.Sprintf("%s: %s (%d shadow), %s, %s, version %s",
		name, plural(len(p.rules), "rule"), shadow, plural(len(p.spec.Limits), "limit"), plural(len(p.spec.Budgets), "budget"), p.version[:12])
}

// plural says n things: "1 rule", "2 rules", "0 rules".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

// Compile compiles a policy built in Go. It returns an ErrorList naming
// every problem, or a policy.
func Compile(s Spec) (*Policy, error) {
	return compile(s, "", nil, false)
}

// Load reads and compiles the policy file at path (YAML or JSON; see
// Parse).
func Load(path string) (*Policy, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// locator returns the position in the file of a field given by its path,
// such as ("rules", 2, "match"); 0, 0 when unknown.
type locator func(path ...any) (line, col int)

// compile validates and compiles s. loc locates fields in the file name.
// file says s comes from a file, which must say its version.
func compile(s Spec, name string, loc locator, file bool) (*Policy, error) {
	if loc == nil {
		loc = func(...any) (int, int) { return 0, 0 }
	}
	c := &compiler{file: name, loc: loc}
	s = s.clone()
	p := &Policy{name: name}
	if file && s.Version == 0 {
		// A file of "---", "null" or "{}", or one cut before its version,
		// is not a policy that denies everything: it is no policy.
		c.errorf("", "", "version", []any{"version"}, "missing version: a policy file says \"version: 1\" (an empty or cut file is not a policy)")
	}
	c.top(&s, p)
	c.rules(&s, p)
	c.costs(&s, p)
	c.limits(&s)
	c.budgets(&s)
	c.breakers(&s)
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	normalize(&s)
	p.spec = s
	p.version = version(&s)
	p.defReason = "no rule matched; the policy's default is " + p.def.String()
	p.index()
	return p, nil
}

// compiler collects the errors of one compilation.
type compiler struct {
	file string
	loc  locator
	errs ErrorList
}

// errorf records a problem with a field at path, for item (and rule).
func (c *compiler) errorf(item, rule, field string, path []any, format string, args ...any) *Error {
	line, col := c.loc(path...)
	e := &Error{File: c.file, Line: line, Col: col, Item: item, Rule: rule, Field: field, Msg: fmt.Sprintf(format, args...)}
	c.errs = append(c.errs, e)
	return e
}

func (c *compiler) top(s *Spec, p *Policy) {
	if s.Version != 0 && s.Version != 1 {
		c.errorf("", "", "version", []any{"version"}, "unsupported version %d (want 1)", s.Version)
	}
	switch s.Default {
	case "", "deny":
		p.def = Deny
	case "allow":
		p.def = Allow
	case "approve":
		p.def = Approve
	default:
		c.errorf("", "", "default", []any{"default"}, "unknown effect %q (want deny, approve or allow)", s.Default)
	}
}

func parseEffect(s string) (Effect, bool) {
	switch s {
	case "deny":
		return Deny, true
	case "approve":
		return Approve, true
	case "allow":
		return Allow, true
	}
	return Deny, false
}

func (c *compiler) rules(s *Spec, p *Policy) {
	if len(s.Rules) > MaxRules {
		c.errorf("", "", "rules", []any{"rules"}, "%d rules, more than the limit of %d", len(s.Rules), MaxRules)
		return
	}
	env, err := celEnv()
	if err != nil {
		c.errorf("", "", "", nil, "CEL environment: %v", err)
		return
	}
	seen := map[string]int{}
	for i := range s.Rules {
		r := &s.Rules[i]
		item := fmt.Sprintf("rule #%d", i+1)
		if r.Name != "" {
			item = fmt.Sprintf("rule %q", r.Name)
		}
		at := func(f string) []any { return []any{"rules", i, f} }
		switch {
		case r.Name == "":
			c.errorf(item, "", "name", []any{"rules", i}, "missing name")
		case len(r.Name) > 200 || strings.ContainsFunc(r.Name, func(r rune) bool { return r < ' ' || r == 0x7f }):
			c.errorf(item, r.Name, "name", at("name"), "a name is at most 200 characters, without control characters")
		default:
			if j, dup := seen[r.Name]; dup {
				c.errorf(item, r.Name, "name", at("name"), "duplicate rule name (also rule #%d)", j+1)
			}
			seen[r.Name] = i
		}
		cr := &rule{pos: i, name: r.Name, reason: r.Reason, src: r.Match}
		var ok bool
		if cr.effect, ok = parseEffect(r.Effect); !ok {
			if r.Effect == "" {
				c.errorf(item, r.Name, "effect", []any{"rules", i}, "missing effect (want deny, approve or allow)")
			} else {
				c.errorf(item, r.Name, "effect", at("effect"), "unknown effect %q (want deny, approve or allow)", r.Effect)
			}
		}
		switch r.Mode {
		case "", "enforce":
			cr.mode = Enforce
		case "shadow":
			cr.mode = Shadow
		default:
			c.errorf(item, r.Name, "mode", at("mode"), "unknown mode %q (want enforce or shadow)", r.Mode)
		}
		if r.Timeout != "" {
			d, err := time.ParseDuration(r.Timeout)
			switch {
			case err != nil || d <= 0:
				c.errorf(item, r.Name, "timeout", at("timeout"), "bad duration %q (want a positive Go duration such as 5m)", r.Timeout)
			case cr.effect != Approve:
				c.errorf(item, r.Name, "timeout", at("timeout"), "a timeout applies only to approve rules")
			default:
				cr.timeout = d
			}
		}
		if len(r.Reason) > MaxExprSize {
			c.errorf(item, r.Name, "reason", at("reason"), "longer than %d bytes", MaxExprSize)
		}
		prg, checked, strict, loops, usage, tools, ok := c.expr(env, item, r.Name, "match", at("match"), r.Match, cel.BoolType)
		if !ok {
			continue
		}
		cr.prg, cr.loops, cr.tools = prg, loops, tools
		cr.fast = compileFast(strict.NativeRep().Expr(), loops)
		if len(tools) > 0 {
			var rast *cel.Ast
			if cr.residual, rast = residual(env, checked, loops); rast != nil {
				cr.residualFast = compileFast(rast.NativeRep().Expr(), loops)
			}
		}
		p.usesUsage = p.usesUsage || usage
		p.rules = append(p.rules, cr)
	}
}

func (c *compiler) costs(s *Spec, p *Policy) {
	env, err := celEnv()
	if err != nil {
		return // reported by rules
	}
	for i := range s.Costs {
		cs := &s.Costs[i]
		item := fmt.Sprintf("cost #%d", i+1)
		at := func(f string) []any { return []any{"costs", i, f} }
		c.tools(item, at("tools"), cs.Tools)
		if !unitOK(cs.Unit) {
			c.errorf(item, "", "unit", at("unit"), "bad unit %q (want letters, such as USD or tokens)", cs.Unit)
		}
		prg, _, _, loops, usage, _, ok := c.expr(env, item, "", "estimate", at("estimate"), cs.Estimate, nil)
		if !ok {
			continue
		}
		p.usesUsage = p.usesUsage || usage
		p.costs = append(p.costs, &costExpr{tools: slices.Clone(cs.Tools), unit: cs.Unit, prg: prg, loops: loops})
	}
}

// expr compiles one CEL expression. want is the result type: BoolType for
// rules (dyn is accepted and checked when evaluated), nil for a number.
func (c *compiler) expr(env *cel.Env, item, ruleName, field string, path []any, src string, want *cel.Type) (prg cel.Program, checked, strict *cel.Ast, loops, usage bool, tools []string, ok bool) {
	switch {
	case strings.TrimSpace(src) == "":
		c.errorf(item, ruleName, field, path[:len(path)-1], "missing expression")
		return
	case len(src) > MaxExprSize:
		c.errorf(item, ruleName, field, path, "expression of %d bytes is longer than the limit of %d", len(src), MaxExprSize)
		return
	}
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			er := c.errorf(item, ruleName, field, path, "%s", strings.TrimSuffix(e.Message, " (in container '')"))
			if e.Location != nil && e.Location.Line() > 0 {
				er.ExprLine, er.ExprCol = e.Location.Line(), e.Location.Column()+1
			}
		}
		return
	}
	out := ast.OutputType()
	if want != nil {
		if !out.IsExactType(want) && !out.IsExactType(cel.DynType) {
			c.errorf(item, ruleName, field, path, "expression is of type %s, not bool", out)
			return
		}
	} else if !out.IsExactType(cel.DoubleType) && !out.IsExactType(cel.IntType) && !out.IsExactType(cel.DynType) {
		c.errorf(item, ruleName, field, path, "expression is of type %s, not double or int", out)
		return
	}
	root := ast.NativeRep().Expr()
	celast.PreOrderVisit(root, celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.ComprehensionKind:
			loops = true
		case celast.CallKind:
			// replace is the one function whose output can be many
			// times its input (chained, it grows exponentially), and +
			// on strings or lists copies its inputs: track their cost.
			switch e.AsCall().FunctionName() {
			case "replace":
				loops = true
			case operators.Add:
				switch ast.NativeRep().GetType(e.ID()).Kind() {
				case types.StringKind, types.ListKind, types.DynKind, types.BytesKind:
					loops = true
				}
			}
		case celast.IdentKind:
			if e.AsIdent() == "usage" {
				usage = true
			}
		}
	}))
	est, err := env.EstimateCost(ast, noSizes{})
	if err == nil && est.Min > CostLimit {
		c.errorf(item, ruleName, field, path, "expression costs at least %d, more than the limit of %d", est.Min, CostLimit)
		return
	}
	// Every evaluation is bounded by CostLimit: an expression whose worst
	// cost, over inputs of any size, is within it runs as it is (the hot
	// path: comparisons, field tests, constant string tests); any other is
	// tracked at run time, against CostLimit and the call's deadline.
	if err != nil || est.Max > CostLimit || callsUnpriced(root) {
		loops = true
	}
	strict, err = strictAST(env, ast)
	if err != nil {
		c.errorf(item, ruleName, field, path, "%v", err)
		return
	}
	prg, err = env.Program(strict, programOptions(loops)...)
	if err != nil {
		c.errorf(item, ruleName, field, path, "%v", err)
		return
	}
	return prg, ast, strict, loops, usage, toolsOf(root), true
}

// strictAST returns ast with CEL's commutative && and || made strict and
// left to right: a && b becomes a ? b : false, and a || b becomes
// a ? true : b. The left operand still decides alone (false && x is false
// without x, so has(call.args.x) && call.args.x > 1 guards as expected),
// but an error that is reached is never absorbed: CEL would make
// error || true true, which would turn an error into an allow, and
// error && false false, which would let a deny rule fail to match. A rule
// whose evaluation reaches an error therefore always denies.
func strictAST(env *cel.Env, ast *cel.Ast) (*cel.Ast, error) {
	opt, err := cel.NewStaticOptimizer(strictLogic{})
	if err != nil {
		return nil, err
	}
	out, iss := opt.Optimize(env, ast)
	if iss != nil && iss.Err() != nil {
		return nil, iss.Err()
	}
	return out, nil
}

// strictLogic rewrites && and || into conditionals; see strictAST.
type strictLogic struct{}

func (strictLogic) Optimize(ctx *cel.OptimizerContext, a *celast.AST) *celast.AST {
	var calls []celast.Expr
	celast.PostOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		switch e.AsCall().FunctionName() {
		case operators.LogicalAnd, operators.LogicalOr:
			if len(e.AsCall().Args()) == 2 {
				calls = append(calls, e)
			}
		}
	}))
	// Post-order: inner calls are rewritten before the calls holding them.
	for _, e := range calls {
		call := e.AsCall()
		l, r := call.Args()[0], call.Args()[1]
		var cond celast.Expr
		if call.FunctionName() == operators.LogicalAnd {
			cond = ctx.NewCall(operators.Conditional, l, r, ctx.NewLiteral(types.False))
		} else {
			cond = ctx.NewCall(operators.Conditional, l, ctx.NewLiteral(types.True), r)
		}
		ctx.UpdateExpr(e, cond)
	}
	return a
}

func programOptions(loops bool) []cel.ProgramOption {
	if loops {
		return []cel.ProgramOption{
			cel.EvalOptions(cel.OptOptimize, cel.OptTrackCost),
			cel.CostTracking(sizeCost{}),
			cel.CostLimit(CostLimit),
			cel.InterruptCheckFrequency(64),
		}
	}
	return []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
}

// residual returns the checked ast (left unchanged) with its top-level
// tests of call.tool replaced by true, then folded away, as a program: the
// program to run for a call to one of the rule's tools, where those tests
// hold, and its ast. It returns nil when it cannot, and the rule is then
// evaluated whole.
func residual(env *cel.Env, ast *cel.Ast, loops bool) (cel.Program, *cel.Ast) {
	folder, err := cel.NewConstantFoldingOptimizer()
	if err != nil {
		return nil, nil
	}
	opt, err := cel.NewStaticOptimizer(toolTestEraser{}, folder, strictLogic{})
	if err != nil {
		return nil, nil
	}
	ast, iss := opt.Optimize(env, ast)
	if iss.Err() != nil {
		return nil, nil
	}
	prg, err := env.Program(ast, programOptions(loops)...)
	if err != nil {
		return nil, nil
	}
	return prg, ast
}

// toolTestEraser replaces the tests of call.tool in a top-level && chain
// with true.
type toolTestEraser struct{}

func (toolTestEraser) Optimize(ctx *cel.OptimizerContext, a *celast.AST) *celast.AST {
	var erase func(e celast.Expr)
	erase = func(e celast.Expr) {
		if e.Kind() != celast.CallKind || e.AsCall().FunctionName() != operators.LogicalAnd {
			if isToolTest(e) {
				ctx.UpdateExpr(e, ctx.NewLiteral(types.True))
			}
			return
		}
		for _, arg := range e.AsCall().Args() {
			erase(arg)
		}
	}
	erase(a.Expr())
	return a
}

// sizeCost charges a call that returns a string, bytes or a list by the
// size of what it returns, whatever the types CEL knew at check time: the
// default tracker charges nothing for + on dyn values, so without it a
// rule could build huge strings out of call.args within its cost limit.
type sizeCost struct{}

func (sizeCost) CallCost(function, overloadID string, args []ref.Val, result ref.Val) *uint64 {
	var n uint64
	switch v := result.(type) {
	case types.String:
		n = uint64(len(v))
	case types.Bytes:
		n = uint64(len(v))
	case traits.Lister:
		sz, ok := v.Size().(types.Int)
		if !ok || sz < 0 {
			return nil
		}
		n = uint64(sz)
	default:
		return nil // the tracker's own estimate
	}
	c := 1 + n/10 // CEL charges 0.1 per character copied
	return &c
}

// noSizes gives the static cost estimator no sizes: unknown inputs are
// taken at their worst, so only a rule's minimum cost is telling.
type noSizes struct{}

func (noSizes) EstimateSize(checker.AstNode) *checker.SizeEstimate { return nil }
func (noSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// toolsOf returns the tools a rule can match, from the conjuncts of its
// top-level && chain of the form call.tool == "x", "x" == call.tool or
// call.tool in ["x", "y"]; nil when it does not say. The index is sound
// because false && anything is false in CEL, even an error: a rule whose
// conjunct is false for a tool cannot match, fail, or return a non-bool
// for it.
func toolsOf(e celast.Expr) []string {
	var tools []string
	constrained := false
	var visit func(e celast.Expr)
	visit = func(e celast.Expr) {
		if e.Kind() == celast.CallKind && e.AsCall().FunctionName() == operators.LogicalAnd {
			for _, a := range e.AsCall().Args() {
				visit(a)
			}
			return
		}
		if set, ok := toolTest(e); ok {
			tools = intersect(tools, set, constrained)
			constrained = true
		}
	}
	visit(e)
	if !constrained {
		return nil
	}
	if tools == nil {
		tools = []string{} // constrained to no tool: the rule never matches
	}
	return tools
}

func isToolTest(e celast.Expr) bool {
	_, ok := toolTest(e)
	return ok
}

// toolTest recognizes call.tool == "x", "x" == call.tool and
// call.tool in ["x", "y"], and returns the tools that pass it.
func toolTest(e celast.Expr) ([]string, bool) {
	if e.Kind() != celast.CallKind {
		return nil, false
	}
	call := e.AsCall()
	args := call.Args()
	if len(args) != 2 {
		return nil, false
	}
	switch call.FunctionName() {
	case operators.Equals:
		var lit celast.Expr
		switch {
		case isCallTool(args[0]):
			lit = args[1]
		case isCallTool(args[1]):
			lit = args[0]
		default:
			return nil, false
		}
		s, ok := stringLit(lit)
		if !ok {
			return nil, false
		}
		return []string{s}, true
	case operators.In:
		if !isCallTool(args[0]) || args[1].Kind() != celast.ListKind {
			return nil, false
		}
		l := args[1].AsList()
		if len(l.OptionalIndices()) > 0 {
			return nil, false
		}
		set := []string{}
		for _, el := range l.Elements() {
			s, ok := stringLit(el)
			if !ok {
				return nil, false
			}
			set = append(set, s)
		}
		return set, true
	}
	return nil, false
}

func intersect(have, add []string, constrained bool) []string {
	if !constrained {
		return slices.Clone(add)
	}
	var out []string
	for _, t := range have {
		if slices.Contains(add, t) {
			out = append(out, t)
		}
	}
	return out
}

func isCallTool(e celast.Expr) bool {
	if e.Kind() != celast.SelectKind {
		return false
	}
	s := e.AsSelect()
	return !s.IsTestOnly() && s.FieldName() == "tool" &&
		s.Operand().Kind() == celast.IdentKind && s.Operand().AsIdent() == "call"
}

func stringLit(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// index builds the per-tool rule sets.
func (p *Policy) index() {
	build := func(tool string, all bool) *ruleSet {
		rs := &ruleSet{}
		for _, r := range p.rules {
			if r.tools != nil && (all || !slices.Contains(r.tools, tool)) {
				continue
			}
			if r.tools != nil && r.residual != nil {
				rr := *r
				rr.prg, rr.fast = r.residual, r.residualFast
				r = &rr
			}
			if r.mode == Shadow {
				rs.shadow = append(rs.shadow, r)
			} else {
				rs.enforced = append(rs.enforced, r)
			}
			rs.tracked = rs.tracked || r.loops
		}
		slices.SortStableFunc(rs.enforced, func(a, b *rule) int { return int(a.effect) - int(b.effect) })
		return rs
	}
	p.other = build("", true)
	p.tools = new(toolCache)
	p.byTool = map[string]*ruleSet{}
	for _, r := range p.rules {
		for _, t := range r.tools {
			if _, ok := p.byTool[t]; !ok {
				p.byTool[t] = build(t, false)
			}
		}
	}
}

package policy

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// mapReader is an ArgReader over a map, counting the maps it gives.
type mapReader struct {
	m     map[string]any
	built int
}

func (r *mapReader) Arg(name string) (Arg, bool) {
	v, ok := r.m[name]
	if !ok {
		return Arg{}, false
	}
	return ValueArg(v), true
}

func (r *mapReader) Args() map[string]any {
	r.built++
	return r.m
}

// slow returns a copy of p whose rules have no compiled form: every rule
// runs through CEL, as before the compiler.
func slow(p *Policy) *Policy {
	cp := *p
	strip := func(rs []*rule) []*rule {
		out := make([]*rule, len(rs))
		for i, r := range rs {
			rr := *r
			rr.fast, rr.residualFast = nil, nil
			out[i] = &rr
		}
		return out
	}
	set := func(s *ruleSet) *ruleSet {
		return &ruleSet{enforced: strip(s.enforced), shadow: strip(s.shadow), tracked: s.tracked}
	}
	cp.rules = strip(p.rules)
	cp.other = set(p.other)
	cp.byTool = map[string]*ruleSet{}
	cp.tools = new(toolCache) // not p's, which holds p's sets
	for t, s := range p.byTool {
		cp.byTool[t] = set(s)
	}
	return &cp
}

// sameDecision reports how two decisions differ, "" when they do not.
func sameDecision(got, want Decision) string {
	ge, we := fmt.Sprint(got.Err), fmt.Sprint(want.Err)
	got.Err, want.Err = nil, nil
	if !reflect.DeepEqual(got, want) || ge != we {
		return fmt.Sprintf("got %+v (err %s), want %+v (err %s)", got, ge, want, we)
	}
	return ""
}

// fuzzKeys are the argument names the fuzzed rules read.
var fuzzKeys = []string{"a", "b", "to", "n"}

// fuzzStrings are the strings of the fuzzed rules and arguments: empty,
// ASCII, prefixes of one another, multi-byte, and invalid UTF-8 (only in
// arguments: the rules' literals must be valid CEL).
var fuzzStrings = []string{"", "a", "ab", "b", "bob@acme.com", "@acme.com", "é", "日本", "日", "x\u0301", "A", "😀x", "\xff"}

// fuzzNumbers are the numbers, written as CEL literals, of the fuzzed rules.
var fuzzNumbers = []string{"0", "1", "-1", "2", "1000", "9007199254740992", "9007199254740993", "9223372036854775807", "-9223372036854775808",
	"0u", "1u", "9007199254740993u", "18446744073709551615u",
	"0.0", "-0.0", "0.5", "1.0", "2.0", "1000.0", "9007199254740992.0", "9.223372036854776e18", "1.8446744073709552e19", "1e300", "-1e300"}

// fuzzValues are the argument values of the fuzz.
var fuzzValues = []any{nil, true, false, int64(0), int64(1), int64(-1), int64(2), int64(1000), int64(1 << 53), int64(1<<53 + 1),
	int64(math.MaxInt64), int64(math.MinInt64), 7, int32(-3), uint(5), uint32(6), float32(0.1), uint64(1<<53 + 1), uint64(math.MaxUint64), uint64(1 << 63),
	0.0, math.Copysign(0, -1), 0.5, 1.0, 2.0, 1000.0, float64(1 << 53), 9.223372036854776e18, 1.8446744073709552e19, 1e300, math.Inf(1), math.Inf(-1),
	[]any{"a", 1.0}, map[string]any{"k": "v"}, []any{}}

// exprGen writes a random rule from fuzz bytes.
type exprGen struct {
	data []byte
	sb   strings.Builder
}

func (g *exprGen) next(n int) int {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return int(b) % n
}

func (g *exprGen) str() string { return fmt.Sprintf("%q", fuzzStrings[g.next(len(fuzzStrings)-1)]) }

// value writes an expression of any type.
func (g *exprGen) value(depth int) {
	switch g.next(9) {
	case 0, 1, 2:
		g.sb.WriteString("call.args." + fuzzKeys[g.next(len(fuzzKeys))])
	case 3:
		g.sb.WriteString(fuzzNumbers[g.next(len(fuzzNumbers))])
	case 4:
		g.sb.WriteString(g.str())
	case 5:
		g.sb.WriteString([]string{"call.agent", "call.tool", "call.labels.team", `call.labels["x"]`, "usage.calls", `usage.spend["USD"]`, `call.args["to"]`}[g.next(7)])
	case 6:
		if depth > 0 {
			g.sb.WriteString("size(")
			g.value(depth - 1)
			g.sb.WriteString(")")
			return
		}
		g.sb.WriteString("null")
	case 7:
		g.sb.WriteString([]string{"true", "false", "null"}[g.next(3)])
	default:
		if depth > 0 {
			g.boolean(depth - 1)
			return
		}
		g.sb.WriteString("call.args.n")
	}
}

// boolean writes an expression meant to be a bool (a dyn may not be).
func (g *exprGen) boolean(depth int) {
	if depth <= 0 {
		g.sb.WriteString([]string{"true", "false", "call.args.a", "has(call.args.b)"}[g.next(4)])
		return
	}
	switch g.next(12) {
	case 0, 1:
		g.value(depth - 1)
		g.sb.WriteString([]string{" == ", " != ", " < ", " <= ", " > ", " >= "}[g.next(6)])
		g.value(depth - 1)
	case 2:
		g.value(depth - 1)
		g.sb.WriteString([]string{".startsWith(", ".endsWith(", ".contains("}[g.next(3)])
		if g.next(2) == 0 {
			g.sb.WriteString(g.str())
		} else {
			g.value(depth - 1)
		}
		g.sb.WriteString(")")
	case 3:
		g.value(depth - 1)
		g.sb.WriteString(".matches(")
		g.sb.WriteString([]string{`"^a"`, `"b$"`, `"(?i)^\\s*(drop|alter)"`, `"é+"`, `""`}[g.next(5)])
		g.sb.WriteString(")")
	case 4:
		g.value(depth - 1)
		g.sb.WriteString(" in [")
		for i := range g.next(4) {
			if i > 0 {
				g.sb.WriteString(", ")
			}
			if g.next(2) == 0 {
				g.sb.WriteString(fuzzNumbers[g.next(len(fuzzNumbers))])
			} else {
				g.sb.WriteString(g.str())
			}
		}
		g.sb.WriteString("]")
	case 5:
		g.sb.WriteString([]string{"has(call.args.", "has(call.labels."}[g.next(2)] + fuzzKeys[g.next(len(fuzzKeys))] + ")")
	case 6:
		g.sb.WriteString("!(")
		g.boolean(depth - 1)
		g.sb.WriteString(")")
	case 7, 8:
		g.sb.WriteString("(")
		g.boolean(depth - 1)
		g.sb.WriteString([]string{" && ", " || "}[g.next(2)])
		g.boolean(depth - 1)
		g.sb.WriteString(")")
	case 9:
		g.sb.WriteString("(")
		g.boolean(depth - 1)
		g.sb.WriteString(" ? ")
		g.boolean(depth - 1)
		g.sb.WriteString(" : ")
		g.boolean(depth - 1)
		g.sb.WriteString(")")
	case 10:
		g.sb.WriteString("call.tool == \"t\" && ")
		g.boolean(depth - 1)
	default:
		g.value(depth - 1)
	}
}

// args returns random arguments: each key absent or one of fuzzValues
// or fuzzStrings.
func (g *exprGen) args() map[string]any {
	m := map[string]any{}
	for _, k := range fuzzKeys {
		switch i := g.next(len(fuzzValues) + len(fuzzStrings) + 3); {
		case i < len(fuzzValues):
			m[k] = fuzzValues[i]
		case i < len(fuzzValues)+len(fuzzStrings):
			m[k] = fuzzStrings[i-len(fuzzValues)]
		}
	}
	if g.next(8) == 0 {
		return nil
	}
	return m
}

// FuzzCompiledMatchesCEL checks the rules compiled to Go against CEL: on
// random rules of the shapes the compiler knows and random arguments, a
// compiled rule that answers gives CEL's answer, and gives up exactly when
// CEL fails (or reads what the compiler leaves to it: a list, a map, an
// infinite number in a tracked rule's cost); its cost bounds CEL's; and
// Decide decides alike, with the same reason and error, with and without
// the compiled rules, from a map and from an ArgReader.
func FuzzCompiledMatchesCEL(f *testing.F) {
	for _, seed := range []string{
		"\x00\x00\x02\x01",
		"\x0a\x00\x00\x03\x05\x01\x00",
		"\x07\x04\x02\x00\x03\x06\x01\x09\x11",
		"\x02\x02\x00\x02\x04\x00\x01\x07\x0b\x00\x01\x02\x03",
		"\x04\x00\x04\x03\x00\x04\x03\x05\x01\x09\x13\x14",
		"\x03\x00\x02\x00\x01\x00\x08\x09\x0a",
		"\x01\x00\x01\x00\x06\x03\x03\x01\x00\x15\x14\x16\x17",
	} {
		f.Add([]byte(seed))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &exprGen{data: data}
		g.boolean(3)
		src := g.sb.String()
		args := g.args()
		labels := map[string]string{}
		if g.next(2) == 0 {
			labels["team"] = fuzzStrings[g.next(len(fuzzStrings))]
		}
		p, err := Compile(Spec{Rules: []Rule{{Name: "r", Match: src, Effect: "deny"}}, Default: "allow"})
		if err != nil {
			return // not a well-typed rule
		}
		r := p.rules[0]
		if r.fast == nil {
			t.Fatalf("rule %s: not compiled", src)
		}
		in := &Input{Call: Call{Tool: "t", Agent: "bot", Args: args, Labels: labels}, Usage: Usage{Calls: 3, Spend: map[string]float64{"USD": 1.5}}}
		for _, prog := range []struct {
			name string
			fast *fastRule
			cel  func(a *activation) (any, uint64, error)
		}{
			{"rule", r.fast, func(a *activation) (any, uint64, error) {
				out, det, err := r.prg.Eval(a)
				return celOut(out, actualCost(det), err)
			}},
			{"residual", r.residualFast, func(a *activation) (any, uint64, error) {
				out, det, err := r.residual.Eval(a)
				return celOut(out, actualCost(det), err)
			}},
		} {
			if prog.name == "residual" && r.residual == nil {
				continue
			}
			if prog.fast == nil {
				t.Fatalf("rule %s: %s not compiled", src, prog.name)
			}
			a := newActivation(in)
			want, cost, err := prog.cel(a)
			match, ok := prog.fast.eval(a)
			if r.loops && ok && a.cost < cost {
				t.Errorf("rule %s (%s), args %#v: compiled cost %d is below CEL's %d", src, prog.name, args, a.cost, cost)
			}
			a.release()
			switch {
			case ok && err != nil:
				t.Errorf("rule %s (%s), args %#v: compiled %v, CEL fails: %v", src, prog.name, args, match, err)
			case ok && want != match:
				t.Errorf("rule %s (%s), args %#v: compiled %v, CEL %v", src, prog.name, args, match, want)
			case !ok && err == nil && !readsAggregate(args):
				t.Errorf("rule %s (%s), args %#v: compiled gives up, CEL %v", src, prog.name, args, want)
			}
		}
		// The whole decision, from the map and from a reader.
		want := slow(p).Decide(ctx, in)
		if diff := sameDecision(p.Decide(ctx, in), want); diff != "" {
			t.Errorf("rule %s, args %#v: Decide: %s", src, args, diff)
		}
		rd := &mapReader{m: args}
		rin := *in
		rin.Call.Args, rin.Call.Reader = nil, rd
		if diff := sameDecision(p.Decide(ctx, &rin), want); diff != "" {
			t.Errorf("rule %s, args %#v: Decide with a reader: %s", src, args, diff)
		}
		if rd.built > 1 {
			t.Errorf("rule %s: the reader's map was built %d times", src, rd.built)
		}
	})
}

// actualCost is the cost CEL tracked, 0 when it did not track it.
func actualCost(det *cel.EvalDetails) uint64 {
	if det == nil || det.ActualCost() == nil {
		return 0
	}
	return *det.ActualCost()
}

// celOut is a CEL result as the fuzz compares it: a bool, or an error
// (a non-bool result is one).
func celOut(out any, cost uint64, err error) (any, uint64, error) {
	if err != nil {
		return nil, cost, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return nil, cost, fmt.Errorf("result is %v, not bool", out)
	}
	return bool(b), cost, nil
}

// readsAggregate reports whether args hold a list, a map or an infinite
// number, values the compiled rules leave to CEL (the infinities only in
// the cost of a tracked rule, which depends on no infinity: they stay).
func readsAggregate(args map[string]any) bool {
	for _, v := range args {
		switch v.(type) {
		case []any, map[string]any:
			return true
		}
	}
	return false
}

// TestCompiledTricky checks the compiled rules on the cases where CEL's
// semantics are easy to get wrong: each rule must be compiled, and decide
// as CEL does, reason and error included.
func TestCompiledTricky(t *testing.T) {
	ctx := context.Background()
	big := int64(1<<53 + 1)
	for _, tc := range []struct {
		match string
		args  map[string]any
		want  string // "match", "no", or "error"
	}{
		{`call.args.to.endsWith("@competitor.com")`, map[string]any{"to": "eve@competitor.com"}, "match"},
		{`call.args.to.endsWith("@competitor.com")`, map[string]any{}, "error"},                 // no such key
		{`call.args.to.endsWith("@competitor.com")`, nil, "error"},                              // no arguments at all
		{`call.args.to.endsWith("@competitor.com")`, map[string]any{"to": int64(1)}, "error"},   // no such overload
		{`call.args.to.endsWith("@competitor.com")`, map[string]any{"to": nil}, "error"},        // null is not a string
		{`size(call.args.body) < 3`, map[string]any{"body": "日本"}, "match"},                     // code points, not bytes
		{`size(call.args.body) == 2`, map[string]any{"body": "x\u0301"}, "match"},               // no normalization
		{`size(call.args.body) == 1`, map[string]any{"body": "\xff"}, "match"},                  // an invalid byte is one
		{`size(call.args.body) == 2`, map[string]any{"body": []any{1.0, "x"}}, "match"},         // a list
		{`call.args.n == 1`, map[string]any{"n": 1.0}, "match"},                                 // int == double
		{`call.args.n == 1`, map[string]any{"n": uint64(1)}, "match"},                           // int == uint
		{`call.args.n == 1`, map[string]any{"n": "1"}, "no"},                                    // different types: not equal, no error
		{`call.args.n != 1`, map[string]any{"n": "1"}, "match"},                                 //
		{`call.args.n == null`, map[string]any{"n": nil}, "match"},                              //
		{`call.args.n == null`, map[string]any{"n": false}, "no"},                               //
		{`call.args.n < 1`, map[string]any{"n": "0"}, "error"},                                  // no ordering across types
		{`call.args.n < 1.5`, map[string]any{"n": int64(1)}, "match"},                           // cross-type ordering
		{`call.args.n > 18446744073709551615u`, map[string]any{"n": 1e300}, "match"},            //
		{`call.args.n < 0u`, map[string]any{"n": int64(-1)}, "match"},                           //
		{`call.args.n == 9007199254740992.0`, map[string]any{"n": big}, "match"},                // cel-go rounds the int to a double
		{`call.args.n in [9007199254740993]`, map[string]any{"n": 9007199254740992.0}, "match"}, // the set holds the int's double
		{`call.args.n in [9007199254740992.0]`, map[string]any{"n": big}, "no"},                 // but not a lossy int of a double
		{`call.args.n in [1.0, "x"]`, map[string]any{"n": uint64(1)}, "match"},                  //
		{`call.args.n in ["x"]`, map[string]any{"n": nil}, "no"},                                // null: not in the set, no error
		{`call.args.missing in []`, nil, "no"},                                                  // CEL never reads x
		{`call.args.n in ["x"]`, map[string]any{}, "error"},                                     //
		{`call.args.b < true`, map[string]any{"b": false}, "match"},                             // bools order
		{`!call.args.b`, map[string]any{"b": "x"}, "error"},                                     //
		{`call.args.b`, map[string]any{"b": "x"}, "error"},                                      // not a bool result
		{`has(call.args.x) && call.args.x > 1`, map[string]any{}, "no"},                         // guarded
		{`call.args.x > 1 && has(call.args.x)`, map[string]any{}, "error"},                      // left to right: the error is reached
		{`false && call.args.x > 1`, map[string]any{}, "no"},                                    //
		{`call.args.x > 1 && false`, map[string]any{}, "error"},                                 // strict: not absorbed
		{`call.args.x > 1 || true`, map[string]any{}, "error"},                                  //
		{`true || call.args.x > 1`, map[string]any{}, "match"},                                  //
		{`has(call.agent) && call.labels.team == "ops"`, map[string]any{}, "error"},             // no such label
		{`call.labels["team"].startsWith("o")`, map[string]any{}, "error"},                      //
		{`usage.spend["USD"] < 10.0 && usage.calls == 3`, nil, "match"},                         //
		{`usage.caps["daily"] > 0.0`, nil, "error"},                                             // no such cap
		{`call.args.sql.matches("(?i)^\\s*(drop|alter)")`, map[string]any{"sql": "  DROP x"}, "match"},
		{`call.args.path.contains("` + strings.Repeat("s", 60) + `")`, map[string]any{"path": strings.Repeat("a", 200<<10)}, "error"}, // over CostLimit
		{`call.args.path.contains("` + strings.Repeat("s", 60) + `")`, map[string]any{"path": strings.Repeat("a", 40<<10)}, "no"},
		{`call.tool == "t" && call.args.n == 1 && call.agent == "bot"`, map[string]any{"n": int64(1)}, "match"},
	} {
		p, err := Compile(Spec{Rules: []Rule{{Name: "r", Match: tc.match, Effect: "deny", Reason: "r matched"}}, Default: "allow"})
		if err != nil {
			t.Fatalf("Compile(%s): %v", tc.match, err)
		}
		if p.rules[0].fast == nil {
			t.Errorf("%s: not compiled", tc.match)
		}
		in := &Input{Call: Call{Tool: "t", Agent: "bot", Args: tc.args}, Usage: Usage{Calls: 3, Spend: map[string]float64{"USD": 1.5}}}
		want := slow(p).Decide(ctx, in)
		got := p.Decide(ctx, in)
		if diff := sameDecision(got, want); diff != "" {
			t.Errorf("%.100s on %.100v: %.300s", tc.match, tc.args, diff)
		}
		var is string
		switch {
		case got.Err != nil:
			is = "error"
		case got.Effect == Deny:
			is = "match"
		default:
			is = "no"
		}
		if is != tc.want {
			t.Errorf("%.100s on %.100v: %s (%+v), want %s", tc.match, tc.args, is, got, tc.want)
		}
	}
}

// TestCompiledShapes checks which rules are compiled: the shapes the
// compiler knows, and that the others are left to CEL.
func TestCompiledShapes(t *testing.T) {
	for _, tc := range []struct {
		match string
		fast  bool
	}{
		{`call.agent == "bot" && size(call.args.body) < 10000`, true},
		{`call.args.url.startsWith("http://10.") || call.args.url.contains("localhost")`, true},
		{`call.args.channel in ["#general", "#random"]`, true},
		{`!has(call.args.cc) && call.env != "prod"`, true},
		{`call.args.n + 1 > 2`, false},                           // arithmetic
		{`call.args.to.lowerAscii() == "x"`, false},              // ext.Strings
		{`call.args.xs.exists(x, x == 1)`, false},                // comprehension
		{`call.args.n in [1, null]`, false},                      // a list CEL does not make a set
		{`call.args.n in [call.args.m]`, false},                  // not constants
		{`call.time > timestamp("2020-01-01T00:00:00Z")`, false}, // timestamps
		{`glob("a*", call.tool)`, false},                         // helper functions
		{`call.args.?x.orValue(1) == 1`, false},                  // optionals
	} {
		p, err := Compile(Spec{Rules: []Rule{{Name: "r", Match: tc.match, Effect: "allow"}}})
		if err != nil {
			t.Fatalf("Compile(%s): %v", tc.match, err)
		}
		if got := p.rules[0].fast != nil; got != tc.fast {
			t.Errorf("%s: compiled = %v, want %v", tc.match, got, tc.fast)
		}
	}
}

package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/ext"
)

// TestIndexOfOnHugeStringsIsBounded: indexOf on two 120 KB argument
// strings ran for seconds against a 50 ms deadline (rules without
// comprehensions were evaluated with no cost tracking, and ext.Strings'
// indexOf compares rune by rune). Now the rule is tracked, its search is
// linear, and its cost goes over CostLimit: the call is denied, naming
// the rule and the cost limit, at once. Issue 12, item 7.
func TestIndexOfOnHugeStringsIsBounded(t *testing.T) {
	p := mustParse(t, "default: allow\nrules:\n  - {name: no-echo, match: 'call.args.a.indexOf(call.args.b) >= 0', effect: deny}\n")
	a := strings.Repeat("a", 120<<10)
	b := strings.Repeat("a", 60<<10) + "b" // the worst case of a rune-by-rune search
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan Decision, 1)
	go func() { done <- p.Decide(ctx, &Input{Call: Call{Tool: "t", Args: map[string]any{"a": a, "b": b}}}) }()
	var d Decision
	select {
	case d = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Decide did not return within 10s")
	}
	if d.Effect != Deny || d.Rule != "no-echo" || d.Err == nil || !strings.Contains(d.Reason, "cost limit") {
		t.Errorf("Decide = %+v, want a deny by no-echo for its cost", d)
	}
}

// TestArgumentsTooLarge: arguments past MaxArgString or MaxArgsSize, or
// nested too deep, are denied before a rule whose cost depends on their
// size runs, with a reason that says where and how large, never what.
// Rules whose cost does not depend on it read arguments of any size.
func TestArgumentsTooLarge(t *testing.T) {
	p := mustParse(t, "default: allow\nrules:\n  - {name: scan, match: '\"q\" in call.args && call.args.q.matches(\"(?i)drop\")', effect: deny}\n")
	cheap := mustParse(t, "default: allow\nrules:\n  - {name: big, match: 'call.tool == \"refund\"', effect: deny}\n")
	nested := map[string]any{}
	for range maxArgsDepth + 2 {
		nested = map[string]any{"n": nested}
	}
	for _, tc := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"long string", map[string]any{"mail": map[string]any{"body": strings.Repeat("secret ", MaxArgString/7+1)}}, "the string call.args.mail.body is 262150 bytes, more than the 262144 the policy reads"},
		{"long key", map[string]any{strings.Repeat("k", MaxArgString+1): 1}, "the key at call.args.kkk"},
		{"in a list", map[string]any{"l": []any{1, strings.Repeat("x", MaxArgString+1)}}, "the string call.args.l[]"},
		{"large in all", map[string]any{"a": strings.Repeat("x", MaxArgString), "b": strings.Repeat("x", MaxArgString),
			"c": strings.Repeat("x", MaxArgString), "d": strings.Repeat("x", MaxArgString), "e": "x"}, "more than 1048576 bytes"},
		{"deep", nested, "nest deeper than 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(context.Background(), &Input{Call: Call{Tool: "t", Args: tc.args}})
			if d.Effect != Deny || d.Rule != "argument-size" || !errors.Is(d.Err, ErrArgsTooLarge) || !strings.Contains(d.Reason, tc.want) {
				t.Errorf("Decide = %+v, want a deny for size saying %q", d, tc.want)
			}
			if strings.Contains(d.Reason, "secret") {
				t.Errorf("the reason %q quotes the argument", d.Reason)
			}
			if d := cheap.Decide(context.Background(), &Input{Call: Call{Tool: "t", Args: tc.args}}); d.Effect != Allow {
				t.Errorf("a rule of bounded cost: Decide = %+v, want allow", d)
			}
		})
	}
	fits := map[string]any{"a": strings.Repeat("x", MaxArgString), "b": []any{1.5, "y", map[string]any{"c": true}}}
	if d := p.Decide(context.Background(), &Input{Call: Call{Tool: "t", Args: fits}}); d.Effect != Allow {
		t.Errorf("Decide of arguments within the bounds = %+v, want allow", d)
	}
}

// TestTrackedRules: the rules whose worst cost over any input is within
// CostLimit run untracked (the hot path); the others are tracked.
func TestTrackedRules(t *testing.T) {
	for _, tc := range []struct {
		match   string
		tracked bool
	}{
		{`call.tool == "x" && call.args.amount > 1000.0`, false},
		{`call.agent == "bot" && call.args.to.endsWith("@acme.com")`, false},
		{`call.args.a.indexOf(call.args.b) >= 0`, true},
		{`call.args.a.contains(call.args.b)`, true},
		{`call.args.q.matches("drop")`, true},
		{`call.args.a.lowerAscii() == "x"`, true},
		{`call.args.list.exists(x, x == 1)`, true},
	} {
		p := mustParse(t, "rules:\n  - name: r\n    match: '"+tc.match+"'\n    effect: allow\n")
		if got := p.rules[0].loops; got != tc.tracked {
			t.Errorf("%s: tracked = %v, want %v", tc.match, got, tc.tracked)
		}
	}
}

// TestSearchMatchesExt: the linear indexOf and lastIndexOf answer as
// ext.Strings' do, on a table and under fuzzing (FuzzSearchMatchesExt).
func TestSearchMatchesExt(t *testing.T) {
	for _, c := range []struct {
		s, sub string
		off    int64
	}{
		{"hello mellow", "ello", 0}, {"hello mellow", "ello", 6}, {"hello mellow", "ello", 20}, {"hello mellow", "ello", -1},
		{"hello mellow", "", 3}, {"hello mellow", "", 40}, {"", "", 0}, {"", "a", 0}, {"ab", "abc", 0},
		{"héllo wörld ö", "ö", 0}, {"héllo wörld ö", "ö", 9}, {"a\xffb\xff", "\xff", 0}, {"a\xffb\xff", "\ufffd", 2},
		{"日本語日本語", "本語", 1}, {"日本語日本語", "本語", 5}, {"aaaa", "aa", 3}, {"x", "xx", 0},
	} {
		checkSearch(t, c.s, c.sub, c.off)
	}
}

func FuzzSearchMatchesExt(f *testing.F) {
	f.Add("hello mellow", "ello", int64(3))
	f.Add("a\xffb", "\xff", int64(0))
	f.Add("日本語日本語", "本", int64(-1))
	f.Fuzz(func(t *testing.T, s, sub string, off int64) {
		if len(s) > 512 || len(sub) > 64 {
			return
		}
		checkSearch(t, s, sub, off%600)
	})
}

var (
	searchVars     = []cel.EnvOption{cel.Variable("s", cel.StringType), cel.Variable("sub", cel.StringType), cel.Variable("off", cel.IntType)}
	extEnv, extErr = cel.NewEnv(append([]cel.EnvOption{ext.Strings()}, searchVars...)...)
	// ourEnv registers searchFunctions over ext.Strings as celEnv does.
	ourEnv, ourErr = cel.NewEnv(append(append([]cel.EnvOption{ext.Strings()}, searchFunctions()...), searchVars...)...)
)

func checkSearch(t *testing.T, s, sub string, off int64) {
	t.Helper()
	if extErr != nil || ourErr != nil {
		t.Fatal(extErr, ourErr)
	}
	vars := map[string]any{"s": s, "sub": sub, "off": off}
	for _, expr := range []string{"s.indexOf(sub)", "s.indexOf(sub, off)", "s.lastIndexOf(sub)", "s.lastIndexOf(sub, off)"} {
		want, wantErr := evalSearch(t, extEnv, expr, vars)
		got, gotErr := evalSearch(t, ourEnv, expr, vars)
		if got != want || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%s with s=%q (valid %v) sub=%q off=%d: got %v, %v; ext.Strings %v, %v", expr, s, utf8.ValidString(s), sub, off, got, gotErr, want, wantErr)
		}
	}
}

func evalSearch(t *testing.T, env *cel.Env, expr string, vars map[string]any) (int64, error) {
	t.Helper()
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		t.Fatalf("%s: %v", expr, iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := prg.Eval(vars)
	if err != nil {
		return 0, err
	}
	return out.Value().(int64), nil
}

package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mustParse parses a YAML policy; one that does not say its version is
// given "version: 1", which every file needs, in front.
func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	if !strings.Contains(src, "version:") {
		src = "version: 1\n" + src
	}
	p, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func decide(p *Policy, tool string, args map[string]any) Decision {
	return p.Decide(context.Background(), &Input{Call: Call{Tool: tool, Args: args}})
}

// TestDecideCombinations checks every combination of matching deny,
// approve and allow rules, in both rule orders.
func TestDecideCombinations(t *testing.T) {
	rules := []string{
		"  - {name: d, match: 'call.args.d', effect: deny, reason: no}\n",
		"  - {name: a, match: 'call.args.a', effect: approve, timeout: 2m}\n",
		"  - {name: l, match: 'call.args.l', effect: allow}\n",
	}
	forward := "rules:\n" + strings.Join(rules, "")
	backward := "rules:\n" + rules[2] + rules[1] + rules[0]
	for _, src := range []string{forward, backward} {
		p := mustParse(t, src)
		for mask := 0; mask < 8; mask++ {
			d, a, l := mask&1 != 0, mask&2 != 0, mask&4 != 0
			args := map[string]any{"d": d, "a": a, "l": l}
			want, wantRule := Deny, ""
			switch {
			case d:
				want, wantRule = Deny, "d"
			case a:
				want, wantRule = Approve, "a"
			case l:
				want, wantRule = Allow, "l"
			}
			got := decide(p, "t", args)
			if got.Effect != want || got.Rule != wantRule || got.Err != nil || got.Default != (wantRule == "") {
				t.Errorf("Decide(d=%v a=%v l=%v) = %+v, want %v by %q", d, a, l, got, want, wantRule)
			}
			if got.Version != p.Version() || len(got.Version) != 64 {
				t.Errorf("Decide version = %q, want %q", got.Version, p.Version())
			}
			if wantRule == "a" && got.ApprovalTimeout != 2*time.Minute {
				t.Errorf("ApprovalTimeout = %v, want 2m", got.ApprovalTimeout)
			}
			if wantRule == "d" && got.Reason != "no" {
				t.Errorf("Reason = %q, want %q", got.Reason, "no")
			}
		}
	}
}

func TestDecideDefault(t *testing.T) {
	for _, tc := range []struct {
		def  string
		want Effect
	}{{"", Deny}, {"deny", Deny}, {"approve", Approve}, {"allow", Allow}} {
		src := "rules:\n  - {name: r, match: 'call.tool == \"x\"', effect: allow}\n"
		if tc.def != "" {
			src = "default: " + tc.def + "\n" + src
		}
		p := mustParse(t, src)
		got := decide(p, "y", nil)
		if got.Effect != tc.want || !got.Default || got.Rule != "" || got.Err != nil {
			t.Errorf("default %q: Decide = %+v, want default %v", tc.def, got, tc.want)
		}
	}
	// An empty policy denies everything.
	p, err := Compile(Spec{})
	if err != nil {
		t.Fatal(err)
	}
	if got := decide(p, "x", nil); got.Effect != Deny || !got.Default {
		t.Errorf("empty policy: Decide = %+v, want default deny", got)
	}
}

func TestDecideShadow(t *testing.T) {
	p := mustParse(t, `
rules:
  - {name: allow-all, match: 'true', effect: allow}
  - {name: would-deny, match: 'call.tool == "send"', effect: deny, mode: shadow, reason: careful}
  - {name: would-fail, match: 'call.args.missing > 1', effect: allow, mode: shadow}
  - {name: quiet, match: 'false', effect: deny, mode: shadow}
`)
	got := decide(p, "send", map[string]any{})
	if got.Effect != Allow || got.Rule != "allow-all" || got.Err != nil {
		t.Fatalf("Decide = %+v, want allow by allow-all", got)
	}
	want := []ShadowHit{
		{Rule: "would-deny", Effect: Deny, Reason: "careful"},
		{Rule: "would-fail", Effect: Deny},
	}
	if len(got.Shadow) != 2 || got.Shadow[0] != want[0] || got.Shadow[1].Rule != "would-fail" || got.Shadow[1].Effect != Deny {
		t.Fatalf("Shadow = %+v, want %+v", got.Shadow, want)
	}
	if !strings.Contains(got.Shadow[1].Reason, "missing") {
		t.Errorf("failing shadow reason = %q, want the error", got.Shadow[1].Reason)
	}
	// A shadow rule alone never decides.
	p = mustParse(t, "rules:\n  - {name: s, match: 'true', effect: allow, mode: shadow}\n")
	if got := decide(p, "x", nil); got.Effect != Deny || !got.Default || len(got.Shadow) != 1 {
		t.Errorf("shadow only: Decide = %+v, want default deny with one shadow hit", got)
	}
}

func TestDecideErrorsDeny(t *testing.T) {
	bigList := make([]any, 400) // 400 x 400 steps is well over CostLimit
	for i := range bigList {
		bigList[i] = int64(i)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name     string
		src      string
		ctx      context.Context
		args     map[string]any
		wantRule string
		wantErr  string
		wantIs   error
	}{
		{
			name: "error in deny rule",
			src: `
rules:
  - {name: ok, match: 'true', effect: allow}
  - {name: bad-deny, match: 'call.args.missing > 1', effect: deny}`,
			wantRule: "bad-deny", wantErr: "no such key",
		},
		{
			name: "error in allow rule",
			src: `
rules:
  - {name: ok, match: 'true', effect: allow}
  - {name: bad-allow, match: 'call.args.missing > 1', effect: allow}`,
			wantRule: "bad-allow", wantErr: "no such key",
		},
		{
			name: "error in approve rule with an allow matching",
			src: `
rules:
  - {name: ok, match: 'call.tool == "t"', effect: allow}
  - {name: bad-approve, match: 'call.tool == "t" && call.args.n / 0 > 1', effect: approve}`,
			args:     map[string]any{"n": int64(1)},
			wantRule: "bad-approve", wantErr: "division by zero",
		},
		{
			name: "absorption cannot cross rules",
			src: `
rules:
  - {name: yes, match: 'true', effect: allow}
  - {name: err, match: 'call.args.nope', effect: allow}`,
			wantRule: "err", wantErr: "no such key",
		},
		{
			name: "non-bool result",
			src: `
rules:
  - {name: ok, match: 'true', effect: allow}
  - {name: stringy, match: 'call.args.flag', effect: allow}`,
			args:     map[string]any{"flag": "yes"},
			wantRule: "stringy", wantErr: "not bool",
		},
		{
			name: "cost over the limit",
			src: `
rules:
  - {name: ok, match: 'true', effect: allow}
  - {name: quadratic, match: 'call.args.items.all(x, call.args.items.all(y, x + y >= 0))', effect: allow}`,
			args:     map[string]any{"items": bigList},
			wantRule: "quadratic", wantErr: "cost limit",
		},
		{
			name: "replace bomb",
			src: `
rules:
  - {name: ok, match: 'true', effect: allow}
  - {name: grows, match: 'call.args.s` + strings.Repeat(`.replace("a", "aaaaaaaa")`, 20) + `.size() > 0', effect: allow}`,
			args:     map[string]any{"s": "aa"},
			wantRule: "grows", wantErr: "cost limit",
		},
		{
			name: "concatenation bomb",
			src: `
rules:
  - {name: ok, match: 'true', effect: allow}
  - {name: concat, match: '(call.args.s` + strings.Repeat(` + call.args.s`, 24) + `).size() > 0', effect: allow}`,
			args:     map[string]any{"s": strings.Repeat("x", 100_000)},
			wantRule: "concat", wantErr: "cost limit",
		},
		{
			name: "cancelled context",
			src: `
rules:
  - {name: first, match: 'true', effect: allow}`,
			ctx:      cancelled,
			wantRule: "first", wantErr: "canceled", wantIs: context.Canceled,
		},
		{
			name: "cancelled context in a loop rule",
			src: `
rules:
  - {name: loop, match: '[1, 2].exists(x, x == 2)', effect: allow}`,
			ctx:      cancelled,
			wantRule: "loop", wantErr: "canceled", wantIs: context.Canceled,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, tc.src)
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			args := tc.args
			if args == nil {
				args = map[string]any{}
			}
			// No wall-clock bound here: the cost limit is what stops the
			// bombs, and the error below says it did.
			got := p.Decide(ctx, &Input{Call: Call{Tool: "t", Args: args}})
			if got.Effect != Deny || got.Rule != tc.wantRule || got.Default {
				t.Fatalf("Decide = %+v, want deny by %q", got, tc.wantRule)
			}
			var ee *EvalError
			if !errors.As(got.Err, &ee) || ee.Rule != tc.wantRule || !errors.Is(got.Err, ErrEval) {
				t.Fatalf("Decide err = %#v, want *EvalError for %q", got.Err, tc.wantRule)
			}
			if !strings.Contains(got.Err.Error(), tc.wantErr) || !strings.Contains(got.Err.Error(), `rule "`+tc.wantRule+`"`) {
				t.Errorf("err = %q, want it to name the rule and say %q", got.Err, tc.wantErr)
			}
			if tc.wantIs != nil && !errors.Is(got.Err, tc.wantIs) {
				t.Errorf("err = %v, want errors.Is %v", got.Err, tc.wantIs)
			}
		})
	}
}

// TestNoAbsorptionWithinRule checks that && and || are strict inside a
// rule: CEL alone would make error || true true (an error turned into an
// allow) and error && false false (a deny rule that fails to match). The
// left operand still decides alone, so has() guards work.
func TestNoAbsorptionWithinRule(t *testing.T) {
	p := mustParse(t, `
rules:
  - {name: or-allow, match: 'call.args.missing > 1 || call.tool == "t"', effect: allow}
  - {name: and-deny, match: 'call.args.n > 1 && call.env == "prod"', effect: deny}
  - {name: fallback, match: 'call.tool == "u"', effect: allow}
  - {name: guarded, match: 'call.tool == "g" && has(call.args.x) && call.args.x > 1', effect: allow}
  - {name: guarded-or, match: 'call.tool == "h" && (!has(call.args.x) || call.args.x > 1)', effect: allow}
  - {name: loop, match: 'call.tool == "l" && call.args.xs.exists(v, v > 1)', effect: allow}
`)
	cases := []struct {
		tool string
		args map[string]any
		want Effect
		rule string
		err  bool
	}{
		{"t", map[string]any{"n": int64(0)}, Deny, "or-allow", true},
		{"u", map[string]any{"n": int64(0)}, Deny, "or-allow", true},
		{"t", map[string]any{"missing": int64(5), "n": int64(0)}, Allow, "or-allow", false},
		{"d", map[string]any{"missing": int64(0)}, Deny, "and-deny", true},
		{"d", map[string]any{"missing": int64(0), "n": int64(5)}, Deny, "", false},
		{"g", map[string]any{"missing": int64(0), "n": int64(0)}, Deny, "", false},
		{"g", map[string]any{"missing": int64(0), "n": int64(0), "x": int64(2)}, Allow, "guarded", false},
		{"h", map[string]any{"missing": int64(0), "n": int64(0)}, Allow, "guarded-or", false},
		{"l", map[string]any{"missing": int64(0), "n": int64(0), "xs": []any{"a", int64(2)}}, Deny, "loop", true},
		{"l", map[string]any{"missing": int64(0), "n": int64(0), "xs": []any{int64(2), "a"}}, Allow, "loop", false},
	}
	for _, tc := range cases {
		got := decide(p, tc.tool, tc.args)
		if got.Effect != tc.want || got.Rule != tc.rule || (got.Err != nil) != tc.err {
			t.Errorf("Decide(%s, %v) = %v by %q (err %v), want %v by %q (err %v)", tc.tool, tc.args, got.Effect, got.Rule, got.Err, tc.want, tc.rule, tc.err)
		}
	}
}

func TestDecideNil(t *testing.T) {
	var p *Policy
	if got := p.Decide(context.Background(), &Input{}); got.Effect != Deny || got.Err == nil {
		t.Errorf("nil policy: Decide = %+v, want deny with error", got)
	}
	p = mustParse(t, "default: allow\n")
	if got := p.Decide(context.Background(), nil); got.Effect != Deny || got.Err == nil {
		t.Errorf("nil input: Decide = %+v, want deny with error", got)
	}
	//lint:ignore SA1012 Decide must not panic on a nil context
	if got := p.Decide(nil, &Input{}); got.Effect != Allow { //nolint:staticcheck
		t.Errorf("nil context: Decide = %+v, want allow", got)
	}
}

func TestVariables(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	in := &Input{
		Call: Call{ID: "id1", Tool: "send_email", Args: map[string]any{"to": "Bob@Other.com", "n": 3.0, "tags": []any{"a", "b"}, "nested": map[string]any{"k": int64(2)}},
			Agent: "bot", Requester: "alice", Tenant: "acme", Session: "s1", Env: "prod",
			Labels: map[string]string{"risk": "high"}, Time: now.Add(-time.Minute)},
		Now:   now,
		Usage: Usage{Spend: map[string]float64{"USD": 2.5}, Calls: 7, Caps: map[string]float64{"daily": 10}},
	}
	for _, expr := range []string{
		`call.id == "id1" && call.tool == "send_email" && call.agent == "bot"`,
		`call.requester == "alice" && call.tenant == "acme" && call.session == "s1" && call.env == "prod"`,
		`call.labels.risk == "high" && call.labels["risk"] == "high" && !("x" in call.labels)`,
		`call.args.to.lowerAscii() == "bob@other.com" && call.args.n == 3 && call.args.n > 2.5`,
		`call.args.tags.size() == 2 && "a" in call.args.tags && call.args.nested.k == 2`,
		`has(call.args.to) && !has(call.args.cc) && has(call.labels)`,
		`call.time < now && now - call.time == duration("1m") && now.getFullYear() == 2026`,
		`usage.spend["USD"] == 2.5 && usage.calls == 7 && usage.caps.daily == 10.0`,
		`emailDomain(call.args.to) == "other.com"`,
		`call.args.?cc.orValue("none") == "none"`,
		`"a,b".split(",").size() == 2`,
		`call.args.exists(k, k == "to")`,
	} {
		p := mustParse(t, fmt.Sprintf("rules:\n  - name: r\n    match: %q\n    effect: allow\n", expr))
		if got := p.Decide(context.Background(), in); got.Effect != Allow || got.Err != nil {
			t.Errorf("%s: Decide = %+v, want allow", expr, got)
		}
	}
	// Absent usage and labels read as empty maps.
	p := mustParse(t, "rules:\n  - {name: r, match: '!(\"USD\" in usage.spend) && usage.calls == 0 && call.labels.size() == 0', effect: allow}\n")
	if got := decide(p, "x", nil); got.Effect != Allow {
		t.Errorf("empty usage: Decide = %+v, want allow", got)
	}
}

func TestHelperFunctionsInRules(t *testing.T) {
	for _, tc := range []struct {
		expr string
		args map[string]any
		want Effect // Deny with Err when the helper fails
		err  bool
	}{
		{`glob("read_*", call.tool)`, nil, Allow, false},
		{`urlHost(call.args.url) == "api.example.com"`, map[string]any{"url": "https://API.example.com.:8443/v1"}, Allow, false},
		{`urlHost(call.args.url) == "x"`, map[string]any{"url": "no host here"}, Deny, true},
		{`hostMatch(urlHost(call.args.url), "*.example.com")`, map[string]any{"url": "http://a.b.example.com/"}, Allow, false},
		{`emailDomain(call.args.to) == "acme.com"`, map[string]any{"to": "x@acme.com"}, Allow, false},
		{`emailDomain(call.args.to) == "acme.com"`, map[string]any{"to": "nobody"}, Deny, true},
		{`inCIDR(call.args.ip, "10.0.0.0/8")`, map[string]any{"ip": "10.1.2.3"}, Allow, false},
		{`inCIDR(call.args.ip, "10.0.0.0/8")`, map[string]any{"ip": "10.1.2"}, Deny, true},
		{`isIP(call.args.ip) && !isIP("example.com")`, map[string]any{"ip": "::1"}, Allow, false},
	} {
		p := mustParse(t, fmt.Sprintf("rules:\n  - name: r\n    match: %q\n    effect: allow\n", tc.expr))
		got := decide(p, "read_file", tc.args)
		if got.Effect != tc.want || (got.Err != nil) != tc.err {
			t.Errorf("%s with %v: Decide = %+v, want %v (error %v)", tc.expr, tc.args, got, tc.want, tc.err)
		}
	}
}

// reference decides without the tool index and without residual programs:
// every rule is evaluated in full, deny rules first (the first that
// matches or fails decides), then approve and allow rules (the first that
// fails decides, else the first match of the strongest effect). Decide
// must agree with it.
func reference(p *Policy, in *Input) (Effect, string, bool) {
	a := newActivation(in)
	defer a.release()
	var enforced []*rule
	for _, r := range p.rules {
		if r.mode == Enforce {
			enforced = append(enforced, r)
		}
	}
	slices.SortStableFunc(enforced, func(x, y *rule) int { return int(x.effect) - int(y.effect) })
	var best *rule
	for _, r := range enforced {
		ok, err := r.eval(context.Background(), a)
		if err != nil {
			return Deny, r.name, true
		}
		if ok && best == nil {
			best = r
		}
		if best != nil && best.effect == Deny {
			break
		}
	}
	if best == nil {
		return p.def, "", false
	}
	return best.effect, best.name, false
}

func TestIndexSound(t *testing.T) {
	p := mustParse(t, `
rules:
  - {name: a-deny, match: 'call.tool == "a" && call.args.missing > 1', effect: deny}
  - {name: b-allow, match: '"b" == call.tool && call.args.x == 1', effect: allow}
  - {name: bc-approve, match: 'call.tool in ["b", "c"] && call.args.x > 1', effect: approve}
  - {name: or-not-indexed, match: 'call.tool == "d" || call.args.x == 7', effect: deny}
  - {name: both, match: 'call.tool in ["a", "c"] && (call.args.x == 3 && call.tool == "c")', effect: allow}
  - {name: never, match: 'call.tool == "a" && call.tool == "b" && call.args.boom', effect: deny}
  - {name: prefix, match: 'call.tool.startsWith("e") && call.args.x == 2', effect: allow}
  - {name: only-test, match: 'call.tool == "f"', effect: allow}
  - {name: non-bool, match: 'call.tool == "g" && call.args.s', effect: allow}
  - {name: const-error, match: 'call.tool == "h" && call.args.x == 5 && 1 / 0 == 1', effect: allow}
  - {name: const-loop-error, match: 'call.tool == "h" && call.args.x == 3 && [1, 2].exists(v, v / 0 == 1)', effect: approve}
  - {name: const-true, match: 'call.tool == "i" && 1 + 1 == 2 && !(call.args.x == 0)', effect: allow}
`)
	for name, want := range map[string][]string{
		"a-deny": {"a"}, "b-allow": {"b"}, "bc-approve": {"b", "c"}, "or-not-indexed": nil,
		"both": {"c"}, "never": {}, "prefix": nil, "only-test": {"f"}, "non-bool": {"g"},
		"const-error": {"h"}, "const-loop-error": {"h"}, "const-true": {"i"},
	} {
		i := slices.IndexFunc(p.rules, func(r *rule) bool { return r.name == name })
		if got := p.rules[i].tools; !slices.Equal(got, want) || (got == nil) != (want == nil) {
			t.Errorf("rule %s: tools = %#v, want %#v", name, got, want)
		}
	}
	// Errors in constant parts survive the residual programs.
	for x, rule := range map[int64]string{5: "const-error", 3: "const-loop-error"} {
		if got := p.Decide(context.Background(), &Input{Call: Call{Tool: "h", Args: map[string]any{"x": x}}}); got.Err == nil || got.Rule != rule {
			t.Errorf("Decide(h, x=%d) = %+v, want an error from %s", x, got, rule)
		}
	}
	for _, tool := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		for _, x := range []any{int64(0), int64(1), int64(2), int64(3), int64(5), int64(7), "s"} {
			for _, s := range []any{true, false, "str", nil} {
				args := map[string]any{"x": x}
				if s != nil {
					args["s"] = s
				}
				in := &Input{Call: Call{Tool: tool, Args: args}}
				wantE, wantR, wantErr := reference(p, in)
				got := p.Decide(context.Background(), in)
				if got.Effect != wantE || got.Rule != wantR || (got.Err != nil) != wantErr {
					t.Errorf("Decide(%s, %v) = %v by %q (err %v), want %v by %q (err %v)",
						tool, args, got.Effect, got.Rule, got.Err, wantE, wantR, wantErr)
				}
			}
		}
	}
}

func TestBadPolicies(t *testing.T) {
	deep := strings.Repeat("(", 60) + "true" + strings.Repeat(")", 60)
	huge := "call.tool == \"x\"" + strings.Repeat(" || call.tool == \"x\"", 300)
	for _, tc := range []struct {
		name string
		src  string
		rule string // the rule the error must name
		want string // in the message
	}{
		{"unknown effect", "rules:\n  - {name: r1, match: 'true', effect: maybe}\n", "r1", `effect: unknown effect "maybe"`},
		{"missing effect", "rules:\n  - {name: r1, match: 'true'}\n", "r1", "missing effect"},
		{"duplicate name", "rules:\n  - {name: r1, match: 'true', effect: allow}\n  - {name: r1, match: 'false', effect: deny}\n", "r1", "duplicate rule name"},
		{"missing name", "rules:\n  - {match: 'true', effect: allow}\n", "", "rule #1: name: missing name"},
		{"syntax error", "rules:\n  - {name: r1, match: 'call.tool ==', effect: allow}\n", "r1", "match: at 1:"},
		{"undeclared variable", "rules:\n  - {name: r1, match: 'cal.tool == \"x\"', effect: allow}\n", "r1", "undeclared reference to 'cal'"},
		{"unknown field of call", "rules:\n  - {name: r1, match: 'call.toll == \"x\"', effect: allow}\n", "r1", "undefined field 'toll'"},
		{"not bool", "rules:\n  - {name: r1, match: 'call.tool', effect: allow}\n", "r1", "not bool"},
		{"empty match", "rules:\n  - {name: r1, match: '', effect: allow}\n", "r1", "missing expression"},
		{"enormous expression", "rules:\n  - name: r1\n    match: '" + huge + "'\n    effect: allow\n", "r1", "longer than the limit"},
		{"deep nesting", "rules:\n  - name: r1\n    match: '" + deep + "'\n    effect: allow\n", "r1", "match"},
		{"bad mode", "rules:\n  - {name: r1, match: 'true', effect: allow, mode: loud}\n", "r1", "unknown mode"},
		{"timeout on allow", "rules:\n  - {name: r1, match: 'true', effect: allow, timeout: 5m}\n", "r1", "only to approve"},
		{"bad timeout", "rules:\n  - {name: r1, match: 'true', effect: approve, timeout: soon}\n", "r1", "bad duration"},
		{"unknown field", "rules:\n  - name: r1\n    match: 'true'\n    effect: allow\n    colour: red\n", "r1", `unknown field "colour"`},
		{"unknown top-level field", "rulez: []\n", "", `unknown field "rulez"`},
		{"did you mean", "rules:\n  - name: r1\n    match: 'true'\n    efect: allow\n", "r1", `unknown field "efect" (did you mean "effect"?)`},
		{"did you mean, top level", "defualt: deny\n", "", `unknown field "defualt" (did you mean "default"?)`},
		{"no guess far off", "colour: red\n", "", `unknown field "colour"`},
		{"indentation, less", "rules:\n  - name: r1\n    match: 'true'\n   effect: allow\n", "", "test.yaml:4:4: did not find expected '-' indicator (in the block that starts at line 1"},
		{"indentation, more", "version: 1\nrules:\n  - name: r1\n    match: 'true'\n      effect: allow\n", "", "test.yaml:5:7: "},
		{"not YAML", "rules: [unclosed\n  - : :\n", "", "test.yaml:"},
		{"not a mapping", "just a string\n", "", "cannot unmarshal"},
		{"empty file", "  \n", "", "empty file"},
		{"bad default", "default: maybe\n", "", "default: unknown effect"},
		{"bad version", "version: 2\n", "", "unsupported version"},
		{"two documents", "default: deny\n---\ndefault: allow\n", "", "more than one YAML document"},
		{"bad rate", "limits:\n  - {rate: 10/fortnight}\n", "", "limit #1: rate: bad rate"},
		{"missing rate", "limits:\n  - {tools: [x]}\n", "", "missing rate"},
		{"bad limit per", "limits:\n  - {rate: 1/s, per: planet}\n", "", "unknown per"},
		{"negative burst", "limits:\n  - {rate: 1/s, burst: -1}\n", "", "negative"},
		{"duplicate limit", "limits:\n  - {name: l, rate: 1/s}\n  - {name: l, rate: 2/s}\n", "", "duplicate limit name"},
		{"bad amount", "budgets:\n  - {name: b, limit: 'lots USD'}\n", "", `budget "b": limit: bad amount`},
		{"amount without unit", "budgets:\n  - {name: b, limit: '25'}\n", "", "bad amount"},
		{"bad window", "budgets:\n  - {name: b, limit: '1 USD', window: fortnight}\n", "", "bad window"},
		{"bad zone", "budgets:\n  - {name: b, limit: '1 USD', window: 'day:Mars/Olympus'}\n", "", "unknown time zone"},
		{"duplicate budget", "budgets:\n  - {name: b, limit: '1 USD'}\n  - {name: b, limit: '2 USD'}\n", "", "duplicate budget name"},
		{"budget per", "budgets:\n  - {name: b, limit: '1 USD', per: session}\n", "", "unknown per"},
		{"cost not a number", "costs:\n  - {tools: [x], estimate: '\"ten\"', unit: USD}\n", "", "not double or int"},
		{"cost bad unit", "costs:\n  - {tools: [x], estimate: '1.0', unit: '$'}\n", "", "bad unit"},
		{"breaker error rate", "breakers:\n  - {name: k, error_rate: 1.5}\n", "", "not between 0 and 1"},
		{"breaker window", "breakers:\n  - {name: k, window: 'often'}\n", "", "bad duration"},
		{"breaker duplicate", "breakers:\n  - {name: k}\n  - {name: k}\n", "", "duplicate breaker name"},
		{"breaker spend", "breakers:\n  - {name: k, spend_per_minute: '5'}\n", "", "bad amount"},
		{"JSON unknown field", `{"rules": [], "extra": 1}`, "", `unknown field "extra"`},
		{"JSON did you mean", `{"rules": [{"name": "r1", "match": "true", "efect": "allow"}]}`, "", `test.yaml:1:51: rules[0]: unknown field "efect" (did you mean "effect"?)`},
		{"JSON did you mean, top level", `{"defualt": "deny"}`, "", `unknown field "defualt" (did you mean "default"?)`},
		{"JSON syntax", `{"rules": [}`, "", "test.yaml:1:"},
		{"JSON trailing", `{"default": "deny"} {}`, "", "data after"},
		{"JSON type", `{"version": "one"}`, "", "cannot use a JSON string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error")
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse error %T %v, want a non-empty ErrorList", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if tc.rule != "" {
				named := false
				for _, e := range list {
					if e.Rule == tc.rule && strings.Contains(e.Error(), `rule "`+tc.rule+`"`) {
						named = true
					}
				}
				if !named {
					t.Errorf("error %q does not name rule %q", err, tc.rule)
				}
			}
			for _, e := range list {
				if !strings.HasPrefix(e.Error(), "policy: ") {
					t.Errorf("error %q lacks the package prefix", e)
				}
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	src := "version: 1\nrules:\n  - name: x\n    match: cal.tool == \"y\"\n    effect: allow\n"
	_, err := Parse("bad.yaml", []byte(src))
	want := `policy: bad.yaml:4:12: rule "x": match: at 1:1: undeclared reference to 'cal'`
	if err == nil || err.Error() != want {
		t.Fatalf("Parse error = %v, want %s", err, want)
	}
	// Every bad rule is reported, and the file is rejected whole.
	src = "version: 1\nrules:\n  - {name: a, match: 'nope', effect: allow}\n  - {name: b, match: 'true', effect: never}\n  - {name: c, match: 'true', effect: allow}\n"
	_, err = Parse("bad.yaml", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 || list[0].Rule != "a" || list[1].Rule != "b" || list[1].Line != 4 {
		t.Fatalf("Parse error = %#v, want two errors for a and b", err)
	}
}

func TestAliasBomb(t *testing.T) {
	bomb := `a: &a ["x","x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]
rules: *i
`
	var before, after runtimeMem
	before.read()
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(bomb))
	elapsed := time.Since(start)
	after.read()
	if err == nil || !strings.Contains(err.Error(), "expands to more than") {
		t.Fatalf("Parse error = %v, want an expansion error", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("Parse took %v, want it rejected quickly", elapsed)
	}
	if grew := after.total - before.total; grew > 64<<20 {
		t.Errorf("Parse allocated %d MiB, want bounded memory", grew>>20)
	}
	// Legitimate aliases are fine.
	p := mustParse(t, "limits:\n  - {tools: &t [a, b], rate: 1/s}\n  - {tools: *t, rate: 2/s}\n")
	if got := p.Spec().Limits[1].Tools; !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("aliased tools = %v, want [a b]", got)
	}
}

func TestFileTooLarge(t *testing.T) {
	big := make([]byte, MaxFileSize+1)
	for i := range big {
		big[i] = '#'
	}
	_, err := Parse("big.yaml", big)
	if err == nil || !strings.Contains(err.Error(), "larger than the limit") {
		t.Fatalf("Parse error = %v, want size error", err)
	}
}

func TestTooManyRules(t *testing.T) {
	s := Spec{}
	for i := 0; i <= MaxRules; i++ {
		s.Rules = append(s.Rules, Rule{Name: fmt.Sprint(i), Match: "true", Effect: "allow"})
	}
	if _, err := Compile(s); err == nil || !strings.Contains(err.Error(), "more than the limit") {
		t.Fatalf("Compile error = %v, want too many rules", err)
	}
}

func TestVersion(t *testing.T) {
	yamlSrc := `
version: 1
default: deny
rules:
  - name: a
    match: call.tool == "x"
    effect: allow
  - name: b
    match: call.tool == "y"
    effect: deny
    reason: no
budgets:
  - {name: d, limit: "25.00 USD", window: day, per: tenant}
`
	jsonSrc := `{"version": 1, "budgets": [{"window": "day", "per": "tenant", "name": "d", "limit": "25.00 USD"}],
  "rules": [{"effect": "deny", "name": "b", "match": "call.tool == \"y\"", "reason": "no", "mode": "enforce"},
            {"match": "call.tool == \"x\"", "name": "a", "effect": "allow"}]}`
	p1 := mustParse(t, yamlSrc)
	p2, err := Parse("p.json", []byte(jsonSrc))
	if err != nil {
		t.Fatal(err)
	}
	if p1.Version() != p2.Version() {
		t.Errorf("YAML and JSON versions differ: %s vs %s", p1.Version(), p2.Version())
	}
	p3 := mustParse(t, strings.Replace(yamlSrc, "reason: no", "reason: never", 1))
	if p3.Version() == p1.Version() {
		t.Errorf("different policies share version %s", p1.Version())
	}
	// Compile from Go gives the same version too.
	p4, err := Compile(p1.Spec())
	if err != nil || p4.Version() != p1.Version() {
		t.Errorf("Compile(Spec()) version = %v, %v, want %s", p4.Version(), err, p1.Version())
	}
}

func TestSpecIsACopy(t *testing.T) {
	p := mustParse(t, "rules:\n  - {name: r, match: 'true', effect: allow}\nlimits:\n  - {tools: [a], rate: 1/s}\n")
	s := p.Spec()
	s.Rules[0].Effect = "deny"
	s.Limits[0].Tools[0] = "b"
	s2 := p.Spec()
	if s2.Rules[0].Effect != "allow" || s2.Limits[0].Tools[0] != "a" || s2.Default != "deny" || s2.Rules[0].Mode != "enforce" {
		t.Errorf("Spec() = %+v, changed by its caller or not normalized", s2)
	}
	if got := decide(p, "x", nil); got.Effect != Allow {
		t.Errorf("Decide after changing a Spec copy = %+v", got)
	}
}

func TestUsesUsage(t *testing.T) {
	for src, want := range map[string]bool{
		"rules:\n  - {name: r, match: 'call.tool == \"x\"', effect: allow}\n":                          false,
		"rules:\n  - {name: r, match: 'usage.calls < 10', effect: allow}\n":                            true,
		"costs:\n  - {tools: [x], estimate: 'usage.calls > 3 ? 2.0 : 1.0', unit: USD}\n":               true,
		"rules:\n  - {name: r, match: '[1].all(u, u > 0) && call.tool == \"usage\"', effect: allow}\n": false,
	} {
		if got := mustParse(t, src).UsesUsage(); got != want {
			t.Errorf("%s: UsesUsage = %v, want %v", src, got, want)
		}
	}
}

func TestEstimate(t *testing.T) {
	p := mustParse(t, `
costs:
  - {tools: ["llm.*"], estimate: 'double(call.args.tokens) * 0.000002', unit: USD}
  - {tools: [refund], estimate: 'call.args.amount', unit: USD}
  - {tools: [fixed, "db/**"], estimate: '3', unit: credits}
`)
	for _, tc := range []struct {
		tool   string
		args   map[string]any
		unit   string
		amount float64
		ok     bool
		err    bool
	}{
		{"llm.chat", map[string]any{"tokens": int64(1000)}, "USD", 0.002, true, false},
		{"refund", map[string]any{"amount": 12.5}, "USD", 12.5, true, false},
		{"refund", map[string]any{"amount": -1.0}, "USD", 0, true, true},
		{"refund", map[string]any{}, "USD", 0, true, true},
		{"fixed", nil, "credits", 3, true, false},
		{"db/a/b", nil, "credits", 3, true, false},
		{"other", nil, "", 0, false, false},
	} {
		unit, amount, ok, err := p.Estimate(context.Background(), &Input{Call: Call{Tool: tc.tool, Args: tc.args}})
		if unit != tc.unit || (amount-tc.amount) > 1e-12 || (tc.amount-amount) > 1e-12 || ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("Estimate(%s, %v) = %q, %v, %v, %v; want %q, %v, %v, error %v", tc.tool, tc.args, unit, amount, ok, err, tc.unit, tc.amount, tc.ok, tc.err)
		}
	}
}

func TestString(t *testing.T) {
	p := mustParse(t, "rules:\n  - {name: a, match: 'true', effect: allow}\n  - {name: b, match: 'true', effect: deny, mode: shadow}\nlimits:\n  - {rate: 1/s}\n")
	want := "test.yaml: 2 rules (1 shadow), 1 limit, 0 budgets, version " + p.Version()[:12]
	if got := p.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	p = mustParse(t, "rules:\n  - {name: a, match: 'true', effect: allow}\nbudgets:\n  - {name: d, limit: 5 USD}\n")
	want = "test.yaml: 1 rule (0 shadow), 0 limits, 1 budget, version " + p.Version()[:12]
	if got := p.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestConcurrentDecide runs 64 goroutines deciding while the policy in use
// is swapped, under -race, and checks every decision exactly.
func TestConcurrentDecide(t *testing.T) {
	allowA := mustParse(t, "rules:\n  - {name: a, match: 'call.tool == \"a\" && call.args.n < 100', effect: allow}\n")
	allowB := mustParse(t, "rules:\n  - {name: b, match: 'call.tool == \"b\" || call.args.n > 1000', effect: allow}\n")
	var cur atomic.Pointer[Policy]
	cur.Store(allowA)
	const workers, calls = 64, 200
	var wg sync.WaitGroup
	var allowed, denied atomic.Int64
	errs := make(chan string, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				p := cur.Load()
				tool := "a"
				if (w+i)%2 == 1 {
					tool = "b"
				}
				d := p.Decide(context.Background(), &Input{Call: Call{Tool: tool, Args: map[string]any{"n": int64(i % 100)}}})
				want := Deny
				if (p == allowA && tool == "a") || (p == allowB && tool == "b") {
					want = Allow
				}
				if d.Effect != want || d.Version != p.Version() {
					errs <- fmt.Sprintf("Decide(%s) on %s = %+v, want %v", tool, p.Version()[:8], d, want)
					return
				}
				if d.Effect == Allow {
					allowed.Add(1)
				} else {
					denied.Add(1)
				}
			}
		}()
	}
	for i := 0; i < 100; i++ {
		if i%2 == 0 {
			cur.Store(allowB)
		} else {
			cur.Store(allowA)
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := allowed.Load() + denied.Load(); got != workers*calls {
		t.Errorf("%d decisions, want %d", got, workers*calls)
	}
}

func TestStaticCostLimit(t *testing.T) {
	var nums []string
	for i := range 400 {
		nums = append(nums, fmt.Sprint(i))
	}
	l := "[" + strings.Join(nums, ",") + "]"
	expr := l + ".map(x, " + l + ".map(y, x + y)).size() > 0"
	_, err := Compile(Spec{Rules: []Rule{{Name: "big", Match: expr, Effect: "allow"}}})
	var list ErrorList
	if !errors.As(err, &list) || list[0].Rule != "big" || !strings.Contains(err.Error(), "more than the limit") {
		t.Fatalf("Compile = %v, want the static cost rejected", err)
	}
}

func TestJSONPositions(t *testing.T) {
	src := "{\n  \"version\": 1,\n  \"rules\": [\n    {\"name\": \"j\", \"match\": \"cal.x\", \"effect\": \"allow\"}\n  ]\n}\n"
	_, err := Parse("p.json", []byte(src))
	want := `policy: p.json:4:28: rule "j": match: at 1:1: undeclared reference to 'cal'`
	if err == nil || err.Error() != want {
		t.Fatalf("Parse = %v, want %s", err, want)
	}
}

func TestCancelledWithoutRules(t *testing.T) {
	p := mustParse(t, "default: allow\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := p.Decide(ctx, &Input{Call: Call{Tool: "x"}})
	if got.Effect != Deny || !errors.Is(got.Err, context.Canceled) {
		t.Errorf("Decide with a cancelled context = %+v, want deny", got)
	}
}

// TestReasonsHideValues checks that a failing rule's reason, which reaches
// the model and the audit log, never quotes an argument's value.
func TestReasonsHideValues(t *testing.T) {
	p := mustParse(t, `
rules:
  - {name: conv, match: 'int(call.args.pin) > 0', effect: allow}
  - {name: key, match: 'call.labels[call.args.pin] == "x"', effect: allow}
  - {name: named, match: 'call.args.amount > 1', effect: allow}
`)
	got := decide(p, "t", map[string]any{"pin": "s3cr3t-value"})
	if got.Effect != Deny || got.Err == nil || strings.Contains(got.Reason, "s3cr3t") {
		t.Errorf("Decide = %+v, want a deny whose reason hides the value", got)
	}
	p = mustParse(t, "rules:\n  - {name: named, match: 'call.args.amount > 1', effect: allow}\n")
	if got := decide(p, "t", nil); !strings.Contains(got.Reason, "no such key: amount") {
		t.Errorf("Decide reason = %q, want the missing key named", got.Reason)
	}
}

// TestJSONNumbers documents how numbers decoded from JSON (float64) meet
// int literals in rules.
func TestJSONNumbers(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want Effect
		err  bool
	}{
		{`call.args.n > 2`, Allow, false},
		{`call.args.n == 3`, Allow, false},
		{`call.args.n + 1.0 == 4.0`, Allow, false},
		{`int(call.args.n) + 1 == 4`, Allow, false},
		{`call.args.n + 1 == 4`, Deny, true},
	} {
		p := mustParse(t, fmt.Sprintf("rules:\n  - name: r\n    match: %q\n    effect: allow\n", tc.expr))
		got := decide(p, "t", map[string]any{"n": 3.0})
		if got.Effect != tc.want || (got.Err != nil) != tc.err {
			t.Errorf("%s: Decide = %+v, want %v (error %v)", tc.expr, got, tc.want, tc.err)
		}
	}
}

// TestExactIntegers documents how the integers of call.args (int64, and
// uint64 above its range, as the guard decodes them) meet literals in
// rules: exactly, with comparisons across int, uint and double.
func TestExactIntegers(t *testing.T) {
	args := map[string]any{"n": int64(3), "acct": int64(9007199254740993), "id": uint64(18446744073709551615), "amount": int64(150)}
	for _, tc := range []struct {
		expr string
		want Effect
		err  bool
	}{
		{`call.args.n == 3`, Allow, false},
		{`call.args.n == 3.0`, Allow, false},
		{`call.args.n == 3u`, Allow, false},
		{`call.args.n + 1 == 4`, Allow, false},
		{`call.args.amount > 100.0`, Allow, false},
		{`call.args.amount > 100`, Allow, false},
		{`call.args.amount <= 100.0`, Deny, false},
		{`call.args.acct == 9007199254740993`, Allow, false},
		{`call.args.acct == 9007199254740992`, Deny, false},
		{`call.args.acct > 9007199254740992`, Allow, false},
		{`call.args.id == 18446744073709551615u`, Allow, false},
		{`call.args.id == 18446744073709551614u`, Deny, false},
		{`call.args.id > 9223372036854775807`, Allow, false},
		{`double(call.args.amount) * 1.5 == 225.0`, Allow, false},
		{`call.args.amount * 1.5 == 225.0`, Deny, true}, // int * double: no overload, so the rule errs and denies
	} {
		p := mustParse(t, fmt.Sprintf("rules:\n  - name: r\n    match: %q\n    effect: allow\n", tc.expr))
		got := decide(p, "t", args)
		if got.Effect != tc.want || (got.Err != nil) != tc.err {
			t.Errorf("%s: Decide = %+v, want %v (error %v)", tc.expr, got, tc.want, tc.err)
		}
	}
}

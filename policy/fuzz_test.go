package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"version: 1\ndefault: deny\nrules:\n  - {name: r, match: 'call.tool == \"x\"', effect: allow}\n",
		"rules:\n  - name: r\n    match: call.args.n > 1\n    effect: approve\n    timeout: 5m\n    mode: shadow\n",
		"rules:\n  - {name: r, match: 'cal.tool', effect: allow}\n",
		"limits:\n  - {tools: [a], rate: 10/minute, burst: 3, per: tenant}\nbudgets:\n  - {name: b, limit: '1.5M tokens', window: 'day:UTC'}\n",
		"costs:\n  - {tools: ['llm.*'], estimate: 'double(call.args.n) * 0.1', unit: USD}\n",
		"breakers:\n  - {name: k, error_rate: 0.5, window: 1m, spend_per_minute: '1 USD'}\n",
		`{"rules": [{"name": "r", "match": "true", "effect": "deny"}]}`,
		"a: &a [x, x]\nb: [*a, *a]\n",
		"rules: [{name: r, match: '[1,2].all(x, x > 0)', effect: allow}]",
		"",
		"{",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse error %T %v is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if !strings.HasPrefix(e.Error(), "policy: fuzz.yaml") {
					t.Fatalf("error %q does not name the file", e)
				}
				// A problem inside a rule names the rule.
				if strings.HasPrefix(e.Item, "rule ") != (e.Rule != "" || strings.HasPrefix(e.Item, "rule #")) {
					t.Fatalf("error %q: Item %q and Rule %q disagree", e, e.Item, e.Rule)
				}
				switch e.Field {
				case "match", "effect", "mode", "timeout", "reason":
					if !strings.HasPrefix(e.Item, "rule ") {
						t.Fatalf("error %q about a rule's %s does not name the rule", e, e.Field)
					}
				}
			}
			return
		}
		if len(p.Version()) != 64 {
			t.Fatalf("Version() = %q", p.Version())
		}
		// The normalized spec compiles to the same policy.
		q, err := Compile(p.Spec())
		if err != nil || q.Version() != p.Version() {
			t.Fatalf("Compile(Spec()) = %v, %v; version %s", q, err, p.Version())
		}
		d := p.Decide(context.Background(), &Input{Call: Call{Tool: "x", Args: map[string]any{"n": 1.0}}})
		if d.Err != nil && d.Effect != Deny {
			t.Fatalf("Decide = %+v: an error that does not deny", d)
		}
		p.Estimate(context.Background(), &Input{Call: Call{Tool: "llm.chat"}})
	})
}

func FuzzDecide(f *testing.F) {
	f.Add(`call.tool == "a" && call.args.s.startsWith("x")`, "a", "s", "xyz", 1.5)
	f.Add(`call.args.n > 100`, "b", "n", "", 250.0)
	f.Add(`call.args[call.tool] == "1"`, "k", "k", "1", 0.0)
	f.Add(`urlHost(call.args.u) == "a.b"`, "fetch", "u", "http://a.b/", 0.0)
	f.Add(`call.args.l.exists(x, x > 2)`, "t", "l", "", 3.0)
	f.Add(`int(call.args.n) / 0 == 1`, "t", "n", "", 1.0)
	f.Add(`call.args.s`, "t", "s", "not bool", 0.0)
	f.Fuzz(func(t *testing.T, expr, tool, key, sval string, num float64) {
		if len(expr) > MaxExprSize {
			return
		}
		p, err := Compile(Spec{Default: "allow", Rules: []Rule{
			{Name: "fuzz", Match: expr, Effect: "allow"},
			{Name: "fuzz-deny", Match: expr, Effect: "deny", Mode: "shadow"},
		}})
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 || list[0].Rule == "" {
				t.Fatalf("Compile(%q) error %v does not name the rule", expr, err)
			}
			return
		}
		args := map[string]any{key: sval, "n": num, "l": []any{num, int64(2), sval}, "m": map[string]any{key: num}}
		in := &Input{Call: Call{Tool: tool, Agent: sval, Args: args, Labels: map[string]string{key: sval}}}
		d := p.Decide(context.Background(), in)
		if d.Err != nil && (d.Effect != Deny || d.Rule != "fuzz") {
			t.Fatalf("Decide(%q) = %+v: an error that does not deny by the rule", expr, d)
		}
		if d.Effect == Allow && !d.Default && d.Rule != "fuzz" {
			t.Fatalf("Decide(%q) = %+v", expr, d)
		}
		// The default is allow: a failing rule must still deny.
		want, _, wantErr := reference(p, in)
		if d.Effect != want || (d.Err != nil) != wantErr {
			t.Fatalf("Decide(%q) = %+v, reference says %v (error %v)", expr, d, want, wantErr)
		}
	})
}

// FuzzParseValues checks the parsers of the limits, budgets and breakers
// sections: they never panic, and what they accept is usable.
func FuzzParseValues(f *testing.F) {
	for _, s := range []string{"10/minute", "5/s", "1/500ms", "25.00 USD", "1.5M tokens", "day:Europe/Paris", "15m", "total", "1/ms", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if events, per, err := ParseRate(s); err == nil && (!(events > 0) || per <= 0) {
			t.Fatalf("ParseRate(%q) = %v, %v: accepted a rate that is not positive", s, events, per)
		}
		if v, unit, err := CheckAmount(s); err == nil && (v < 0 || !unitOK(unit)) {
			t.Fatalf("CheckAmount(%q) = %v, %q: accepted a bad amount", s, v, unit)
		}
		if w, err := ParseWindow(s); err == nil {
			switch w.Kind {
			case "total", "hour":
			case "day":
				if w.Location == nil {
					t.Fatalf("ParseWindow(%q): day without a location", s)
				}
			case "every":
				if w.Every <= 0 {
					t.Fatalf("ParseWindow(%q): period %v", s, w.Every)
				}
			default:
				t.Fatalf("ParseWindow(%q): kind %q", s, w.Kind)
			}
		}
	})
}

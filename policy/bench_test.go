package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchPolicy returns a policy of n rules over 10 tools (n/2 tools for
// more than 100 rules): deny rules on an argument and allow rules on the
// agent; with usage, the allow rules also check the principal's spend.
func benchPolicy(b *testing.B, n int, usage bool) *Policy {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("version: 1\nrules:\n")
	for i := 0; i < n; i++ {
		tool := fmt.Sprintf("tool%d", i%10)
		if n > 100 {
			tool = fmt.Sprintf("tool%d", i%(n/2)) // two rules per tool
		}
		if i%2 == 0 {
			fmt.Fprintf(&sb, "  - name: deny-%d\n    match: call.tool == %q && call.args.amount > 1000\n    effect: deny\n", i, tool)
			continue
		}
		m := fmt.Sprintf("call.tool == %q && call.agent == \"bot\"", tool)
		if usage {
			m += ` && usage.spend["USD"] < 10.0`
		}
		fmt.Fprintf(&sb, "  - name: allow-%d\n    match: %s\n    effect: allow\n", i, m)
	}
	p, err := Parse("bench.yaml", []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func BenchmarkDecide(b *testing.B) {
	in := &Input{
		Call: Call{ID: "c1", Tool: "tool3", Agent: "bot", Tenant: "acme",
			Args: map[string]any{"amount": 12.5, "to": "bob@acme.com"}, Time: time.Unix(1e9, 0)},
		Now:   time.Unix(1e9, 0),
		Usage: Usage{Spend: map[string]float64{"USD": 1.5}, Calls: 3},
	}
	for _, bc := range []struct {
		name  string
		n     int
		usage bool
	}{{"1rule", 1, false}, {"20rules", 20, false}, {"20rules-usage", 20, true}, {"1000rules", 1000, false}} {
		b.Run(bc.name, func(b *testing.B) {
			p := benchPolicy(b, bc.n, bc.usage)
			in := *in
			if bc.n == 1 {
				in.Call.Tool = "tool0"
				in.Call.Args = map[string]any{"amount": 12.5}
			}
			want := Allow
			if bc.n == 1 {
				want = Deny // the one rule is a deny that does not match: default
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				d := p.Decide(ctx, &in)
				if d.Effect != want || d.Err != nil {
					b.Fatalf("Decide = %+v, want %v", d, want)
				}
			}
		})
	}
}

func BenchmarkDecideParallel(b *testing.B) {
	p := benchPolicy(b, 20, false)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		in := &Input{Call: Call{Tool: "tool3", Agent: "bot", Args: map[string]any{"amount": 12.5}}}
		for pb.Next() {
			if d := p.Decide(context.Background(), in); d.Effect != Allow {
				b.Fatalf("Decide = %+v", d)
			}
		}
	})
}

// BenchmarkParse measures loading a policy of 20 rules: parsing, checking
// and planning every expression.
func BenchmarkParse(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("version: 1\nrules:\n")
	for i := range 20 {
		fmt.Fprintf(&sb, "  - name: r%d\n    match: call.tool == \"tool%d\" && call.args.amount > %d\n    effect: allow\n", i, i%10, i)
	}
	data := []byte(sb.String())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bench.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkArgsFit is the cost Decide adds to every call to bound the
// size of its arguments (MaxArgString, MaxArgsSize).
func BenchmarkArgsFit(b *testing.B) {
	args := map[string]any{"amount": 12.5, "to": "bob@acme.com", "items": []any{"a", 2.0}, "meta": map[string]any{"k": "v"}}
	b.ReportAllocs()
	for b.Loop() {
		if !argsFit(args) {
			b.Fatal("does not fit")
		}
	}
}

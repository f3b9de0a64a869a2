package policy

import (
	"context"
	"testing"
)

// TestReaderLazyMap checks that Decide reads a Call.Reader in place: its
// map is built only for a rule CEL evaluates (once, whatever their
// number), and the decisions are those on Call.Args.
func TestReaderLazyMap(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		rules []Rule
		built int
	}{
		{"compiled", []Rule{
			{Name: "deny-big", Match: `call.tool == "t" && call.args.n > 100`, Effect: "deny"},
			{Name: "allow", Match: `call.tool == "t" && call.args.to.endsWith("@acme.com") && has(call.args.n)`, Effect: "allow"},
		}, 0},
		{"cel", []Rule{
			{Name: "deny-big", Match: `call.tool == "t" && call.args.n + 1 > 100`, Effect: "deny"},
			{Name: "allow", Match: `call.tool == "t" && call.args.to.lowerAscii().endsWith("@acme.com")`, Effect: "allow"},
		}, 1},
		{"error", []Rule{ // a compiled rule that fails is decided by CEL, which reads the map
			{Name: "deny-big", Match: `call.tool == "t" && call.args.missing > 100`, Effect: "deny"},
		}, 1},
	} {
		p, err := Compile(Spec{Rules: tc.rules})
		if err != nil {
			t.Fatal(err)
		}
		args := map[string]any{"n": int64(5), "to": "bob@acme.com"}
		in := &Input{Call: Call{Tool: "t", Args: args}}
		want := p.Decide(ctx, in)
		rd := &mapReader{m: args}
		rin := &Input{Call: Call{Tool: "t", Reader: rd}}
		got := p.Decide(ctx, rin)
		if diff := sameDecision(got, want); diff != "" {
			t.Errorf("%s: %s", tc.name, diff)
		}
		if rd.built != tc.built {
			t.Errorf("%s: the map was built %d times, want %d", tc.name, rd.built, tc.built)
		}
	}
}

// TestDecideAllocs checks that an allowed call decided by compiled rules
// allocates nothing, from a map or a reader.
func TestDecideAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items")
	}
	p, err := Compile(Spec{Rules: []Rule{
		{Name: "no-competitor-mail", Match: `call.tool == "send_email" && call.args.to.endsWith("@competitor.com")`, Effect: "deny"},
		{Name: "support-mail", Match: `call.tool == "send_email" && call.agent == "support-bot" && size(call.args.body) < 10000`, Effect: "allow"},
		{Name: "refund-cap", Match: `call.tool == "refund" && call.args.amount > 1000.0`, Effect: "deny"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]any{"to": "bob@example.com", "subject": "hi", "body": "hello"}
	ctx := context.Background()
	for _, in := range []*Input{
		{Call: Call{Tool: "send_email", Agent: "support-bot", Args: args}},
		{Call: Call{Tool: "send_email", Agent: "support-bot", Reader: &mapReader{m: args}}},
	} {
		n := testing.AllocsPerRun(100, func() {
			if d := p.Decide(ctx, in); d.Effect != Allow {
				t.Fatalf("Decide = %+v", d)
			}
		})
		if n != 0 {
			t.Errorf("Decide allocates %v times per call, want 0", n)
		}
	}
}

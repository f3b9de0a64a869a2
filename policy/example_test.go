package policy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hardstop-labs/agentguard/policy"
)

func ExampleParse() {
	p, err := policy.Parse("policy.yaml", []byte(`
version: 1
default: deny
rules:
  - name: no-prod-deletes
    match: call.tool == "db.delete" && call.env == "prod"
    effect: deny
    reason: deleting production data is never automatic
  - name: big-refunds
    match: call.tool == "refund" && call.args.amount > 100
    effect: approve
    reason: refunds over 100 need a human
  - name: refunds
    match: call.tool == "refund"
    effect: allow
  - name: external-email
    match: call.tool == "send_email" && emailDomain(call.args.to) != "acme.com"
    effect: approve
    mode: shadow
  - name: reads
    match: call.tool.startsWith("read_")
    effect: allow
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range []policy.Call{
		{Tool: "refund", Args: map[string]any{"amount": 20.0}},
		{Tool: "refund", Args: map[string]any{"amount": 250.0}},
		{Tool: "refund", Args: map[string]any{}},
		{Tool: "db.delete", Env: "prod"},
		{Tool: "read_file"},
		{Tool: "send_email", Args: map[string]any{"to": "bob@other.com"}},
	} {
		d := p.Decide(context.Background(), &policy.Input{Call: c})
		fmt.Printf("%-10s %-7s rule=%q shadow=%d\n", c.Tool, d.Effect, d.Rule, len(d.Shadow))
	}
	// Output:
	// refund     allow   rule="refunds" shadow=0
	// refund     approve rule="big-refunds" shadow=0
	// refund     deny    rule="big-refunds" shadow=0
	// db.delete  deny    rule="no-prod-deletes" shadow=0
	// read_file  allow   rule="reads" shadow=0
	// send_email deny    rule="" shadow=1
}

func ExampleParse_errors() {
	_, err := policy.Parse("bad.yaml", []byte(`version: 1
rules:
  - name: x
    match: cal.tool == "y"
    effect: allow
  - name: y
    match: call.tool == "z"
    effect: maybe
`))
	fmt.Println(err)
	// Output:
	// policy: bad.yaml:4:12: rule "x": match: at 1:1: undeclared reference to 'cal'
	// policy: bad.yaml:8:13: rule "y": effect: unknown effect "maybe" (want deny, approve or allow)
}

func ExampleCompile() {
	p, err := policy.Compile(policy.Spec{
		Default: "approve",
		Rules: []policy.Rule{
			{Name: "internal", Match: `hostMatch(urlHost(call.args.url), "*.acme.com")`, Effect: "allow"},
			{Name: "private", Match: `isIP(urlHost(call.args.url)) && inCIDR(urlHost(call.args.url), "10.0.0.0/8")`, Effect: "deny"},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, u := range []string{"https://wiki.acme.com/x", "http://10.1.2.3/admin", "https://example.org/", "not a url"} {
		d := p.Decide(context.Background(), &policy.Input{Call: policy.Call{Tool: "fetch", Args: map[string]any{"url": u}}})
		fmt.Printf("%-24s %s %q\n", u, d.Effect, d.Rule)
	}
	// Output:
	// https://wiki.acme.com/x  allow "internal"
	// http://10.1.2.3/admin    deny "private"
	// https://example.org/     approve ""
	// not a url                deny "private"
}

func ExamplePolicy_Estimate() {
	p, err := policy.Parse("costs.yaml", []byte(`version: 1
costs:
  - tools: ["llm.*"]
    estimate: double(call.args.max_tokens) * 0.00001
    unit: USD
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	unit, amount, ok, err := p.Estimate(context.Background(), &policy.Input{Call: policy.Call{Tool: "llm.chat", Args: map[string]any{"max_tokens": int64(2000)}}})
	fmt.Println(unit, amount, ok, err)
	// Output:
	// USD 0.02 true <nil>
}

func ExampleWatcher() {
	dir, err := os.MkdirTemp("", "policy")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "policy.yaml")
	os.WriteFile(path, []byte("version: 1\ndefault: allow\n"), 0o600)

	w, err := policy.NewWatcher(path, policy.WatchOptions{
		OnChange: func(p *policy.Policy) { fmt.Println("new policy") },
		OnError: func(err error) {
			fmt.Println("kept the old policy:", strings.ReplaceAll(err.Error(), path, "FILE"))
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	decide := func() policy.Effect {
		return w.Policy().Decide(context.Background(), &policy.Input{Call: policy.Call{Tool: "x"}}).Effect
	}
	fmt.Println(decide())

	os.WriteFile(path, []byte("version: 1\ndefault: sometimes\n"), 0o600)
	w.Check() // in production, w.Run(ctx, interval) or policy.Watch checks periodically
	fmt.Println(decide())

	os.WriteFile(path, []byte("version: 1\ndefault: deny\n"), 0o600)
	w.Check()
	fmt.Println(decide())
	// Output:
	// allow
	// kept the old policy: policy: FILE:2:10: default: unknown effect "sometimes" (want deny, approve or allow)
	// allow
	// new policy
	// deny
}

package agentguardmcp_test

import (
	"context"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	agentguardmcp "github.com/hardstop-labs/agentguard/integrations/mcp"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestNotifyChanges: a trip and a new policy tell the client to list its
// tools again, and the list then hides what can no longer be allowed.
func TestNotifyChanges(t *testing.T) {
	for _, rev := range revisions {
		t.Run(rev, func(t *testing.T) {
			mustPolicy := func(src string) *policy.Policy {
				p, err := policy.Parse("p.yaml", []byte(src))
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			sw := killswitch.New(killswitch.Options{})
			g, err := agentguard.New(agentguard.WithPolicy(mustPolicy("version: 1\ndefault: deny\nrules:\n  - name: r\n    match: call.tool in [\"a\", \"b\"]\n    effect: allow\n")), agentguard.WithKillSwitch(sw))
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			s := mcp.NewServer(&mcp.Implementation{Name: "s"}, nil)
			h := func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{}, nil
			}
			s.AddTool(&mcp.Tool{Name: "a", InputSchema: map[string]any{"type": "object"}}, h)
			s.AddTool(&mcp.Tool{Name: "b", InputSchema: map[string]any{"type": "object"}}, h)
			s.AddReceivingMiddleware(agentguardmcp.Middleware(g, agentguardmcp.Options{HideTools: true, KillSwitch: sw}))
			changed := make(chan struct{}, 16)
			cs := connect(t, s, rev, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} }})
			stop := agentguardmcp.NotifyChanges(context.Background(), s, g, sw, time.Millisecond)
			defer stop()
			names := func() []string {
				res, err := cs.ListTools(context.Background(), nil)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, tl := range res.Tools {
					out = append(out, tl.Name)
				}
				return out
			}
			wait := func(what string) {
				t.Helper()
				select {
				case <-changed:
				case <-time.After(10 * time.Second): // a guard against a hung test
					t.Fatalf("no tools/list_changed after %s", what)
				}
			}
			if got := names(); len(got) != 2 {
				t.Fatalf("tools %v, want a and b", got)
			}
			if err := sw.Trip(killswitch.Scope{Tool: "a"}, "ops", "a is broken"); err != nil {
				t.Fatal(err)
			}
			wait("a trip")
			if got := names(); len(got) != 1 || got[0] != "b" {
				t.Fatalf("tools after tripping a: %v, want b", got)
			}
			if err := g.SetPolicy(mustPolicy("version: 1\ndefault: deny\nrules:\n  - name: r\n    match: call.tool == \"a\"\n    effect: allow\n")); err != nil {
				t.Fatal(err)
			}
			wait("a new policy")
			if got := names(); len(got) != 0 {
				t.Fatalf("tools after the new policy: %v, want none (a tripped, b never allowed)", got)
			}
			// The placeholder ToolsChanged adds for a moment is no tool.
			agentguardmcp.ToolsChanged(s)
			if d := wantDenied(t, call(t, cs, "agentguard.refresh", `{}`), "policy_denied"); d["rule"] != "tool-unlisted" {
				t.Fatalf("a call to the placeholder: rule %v", d["rule"])
			}
		})
	}
}

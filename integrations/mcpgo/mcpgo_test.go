package agentguardmcpgo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	agentguardmcpgo "github.com/hardstop-labs/agentguard/integrations/mcpgo"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

const testPolicy = `
version: 1
default: deny
rules:
  - name: reads
    match: call.labels.read_only == "true"
    effect: allow
  - name: small-refunds
    match: call.tool == "refund" && call.args.amount <= 100
    effect: allow
  - name: big-refunds
    match: call.tool == "refund" && call.args.amount > 100
    effect: approve
    reason: refunds over 100 need a human
  - name: slow
    match: call.tool == "slow"
    effect: allow
limits:
  - tools: ["limited"]
    rate: 1/hour
    burst: 1
`

type fixture struct {
	g       *agentguard.Guard
	sw      *killswitch.Switch
	c       *client.Client
	audit   string
	ran     map[string]*atomic.Int32
	started chan struct{}
	release chan struct{}
	lastRaw atomic.Value
}

func newFixture(t *testing.T, gopts ...agentguard.Option) *fixture {
	t.Helper()
	return newFixtureWith(t, mcp.LATEST_PROTOCOL_VERSION, nil, gopts...)
}

// newFixtureWith is newFixture with the client speaking protocol revision
// rev, built with copts (an elicitation handler, say).
func newFixtureWith(t *testing.T, rev string, copts []client.ClientOption, gopts ...agentguard.Option) *fixture {
	t.Helper()
	f := &fixture{ran: map[string]*atomic.Int32{}, started: make(chan struct{}, 4), release: make(chan struct{})}
	p, err := policy.Parse("p.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	f.audit = filepath.Join(t.TempDir(), "audit.jsonl")
	f.sw = killswitch.New(killswitch.Options{})
	f.g, err = agentguard.New(append([]agentguard.Option{agentguard.WithPolicy(p),
		agentguard.WithAuditFile(f.audit, audit.Options{Sync: audit.SyncNever}), agentguard.WithKillSwitch(f.sw)}, gopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.g.Close() })
	s := server.NewMCPServer("test", "1", server.WithToolHandlerMiddleware(agentguardmcpgo.Middleware(f.g, agentguardmcpgo.Options{Principal: agentguard.Principal{Tenant: "acme"}})))
	add := func(tool mcp.Tool, h server.ToolHandlerFunc) {
		n := &atomic.Int32{}
		f.ran[tool.Name] = n
		s.AddTool(tool, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			n.Add(1)
			return h(ctx, req)
		})
	}
	add(mcp.NewTool("echo", mcp.WithReadOnlyHintAnnotation(true)), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("echo"), nil
	})
	add(mcp.NewTool("limited", mcp.WithReadOnlyHintAnnotation(true)), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})
	add(mcp.NewTool("refund", mcp.WithDestructiveHintAnnotation(true)), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		f.lastRaw.Store(string(req.Params.RawArguments))
		return mcp.NewToolResultText("refunded"), nil
	})
	add(mcp.NewTool("delete_all"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("deleted"), nil
	})
	add(mcp.NewTool("slow"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		f.started <- struct{}{}
		<-f.release
		return mcp.NewToolResultText("late"), nil
	})
	t.Cleanup(func() {
		select {
		case <-f.release:
		default:
			close(f.release)
		}
	})
	f.c, err = client.NewInProcessClientWithOptions(s, copts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.c.Close() })
	ctx := context.Background()
	if err := f.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = rev
	init.Params.ClientInfo = mcp.Implementation{Name: "test-client", Version: "1"}
	if _, err := f.c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) call(t *testing.T, tool string, args any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := f.c.CallTool(context.Background(), req)
	if err != nil {
		t.Fatalf("CallTool(%s): protocol error %v", tool, err)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			return tc.Text
		}
	}
	return ""
}

func wantDenied(t *testing.T, res *mcp.CallToolResult, code string) map[string]any {
	t.Helper()
	if !res.IsError || !strings.Contains(text(res), "was not run ("+code+")") {
		t.Fatalf("result %v %q, want a %s denial", res.IsError, text(res), code)
	}
	if res.Meta == nil {
		t.Fatal("no _meta on the denial")
	}
	b, _ := json.Marshal(res.Meta.AdditionalFields[agentguardmcpgo.MetaDenial])
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil || d["code"] != code {
		t.Fatalf("_meta denial %s, want code %s", b, code)
	}
	return d
}

func (f *fixture) records(t *testing.T) []audit.Record {
	t.Helper()
	f.g.Close()
	if _, err := audit.Verify(audit.VerifyOptions{}, f.audit); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.audit)
	var out []audit.Record
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		r, err := audit.ParseRecord(line)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *r)
	}
	return out
}

func TestAllowedDeniedAndArguments(t *testing.T) {
	f := newFixture(t)
	if res := f.call(t, "echo", map[string]any{}); res.IsError || text(res) != "echo" {
		t.Fatalf("allowed: %q", text(res))
	}
	wantDenied(t, f.call(t, "delete_all", map[string]any{}), "policy_denied")
	if f.ran["delete_all"].Load() != 0 {
		t.Fatal("a denied tool ran")
	}
	// The argument rule matches: the policy sees arguments, not the envelope.
	if res := f.call(t, "refund", map[string]any{"amount": 40}); res.IsError {
		t.Fatalf("small refund: %q", text(res))
	}
	d := wantDenied(t, f.call(t, "refund", map[string]any{"amount": 400}), "approval_required")
	if d["rule"] != "big-refunds" {
		t.Fatalf("rule %v", d["rule"])
	}
	if f.ran["refund"].Load() != 1 {
		t.Fatalf("refund ran %d times, want 1", f.ran["refund"].Load())
	}
	var p audit.Principal
	for _, r := range f.records(t) {
		if r.Kind == audit.KindDecision {
			p = r.Principal
		}
	}
	if p.Tenant != "acme" || p.Agent != "test-client" {
		t.Fatalf("principal %+v, want tenant acme and the client's name", p)
	}
}

func TestApprovalGranted(t *testing.T) {
	f := newFixture(t, agentguard.WithApprover(approval.Func(func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
		return r.Approve("alice", "ok"), nil
	})))
	if res := f.call(t, "refund", map[string]any{"amount": 400}); res.IsError || text(res) != "refunded" {
		t.Fatalf("approved: %q", text(res))
	}
}

func TestRateLimited(t *testing.T) {
	f := newFixture(t)
	if res := f.call(t, "limited", nil); res.IsError {
		t.Fatalf("first: %q", text(res))
	}
	wantDenied(t, f.call(t, "limited", nil), "rate_limited")
	if f.ran["limited"].Load() != 1 {
		t.Fatal("a rate-limited call ran")
	}
}

func TestKilledInFlight(t *testing.T) {
	f := newFixture(t)
	got := make(chan *mcp.CallToolResult, 1)
	go func() { got <- f.call(t, "slow", nil) }()
	<-f.started
	if err := f.sw.Trip(killswitch.Everything, "ops", "runaway"); err != nil {
		t.Fatal(err)
	}
	res := <-got // answered while the tool still blocks
	wantDenied(t, res, "halted")
	close(f.release)
	var outcome string
	for _, r := range f.records(t) {
		if r.Kind == audit.KindResult && r.Tool == "slow" {
			outcome = r.Outcome
		}
	}
	if outcome != "halted" {
		t.Fatalf("outcome %q, want halted", outcome)
	}
}

func TestToolFilter(t *testing.T) {
	p, _ := policy.Parse("p.yaml", []byte("version: 1\ndefault: deny\nrules:\n  - name: r\n    match: call.tool == \"a\"\n    effect: allow\n"))
	g, err := agentguard.New(agentguard.WithPolicy(p))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got := agentguardmcpgo.ToolFilter(g, agentguardmcpgo.Options{})(context.Background(), []mcp.Tool{mcp.NewTool("a"), mcp.NewTool("b")})
	if len(got) != 1 || got[0].Name != "a" {
		t.Fatalf("filtered %v, want only a", got)
	}
}

// TestAmbiguousArguments: raw arguments with duplicate or case-folded keys,
// as they come over the wire, are refused before they reach the tool.
func TestAmbiguousArguments(t *testing.T) {
	p, _ := policy.Parse("p.yaml", []byte("version: 1\ndefault: allow\n"))
	g, err := agentguard.New(agentguard.WithPolicy(p))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var ran atomic.Int32
	s := server.NewMCPServer("test", "1", server.WithToolHandlerMiddleware(agentguardmcpgo.Middleware(g, agentguardmcpgo.Options{})))
	s.AddTool(mcp.NewTool("refund"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		ran.Add(1)
		return mcp.NewToolResultText("refunded"), nil
	})
	ctx := context.Background()
	s.HandleMessage(ctx, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`))
	for _, args := range []string{`{"amount":1,"amount":9999}`, `{"amount":1,"Amount":9999}`} {
		resp := s.HandleMessage(ctx, json.RawMessage(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"refund","arguments":`+args+`}}`))
		b, _ := json.Marshal(resp)
		if !strings.Contains(string(b), "invalid_call") {
			t.Errorf("arguments %s: answered %s, want an invalid_call denial", args, b)
		}
	}
	if ran.Load() != 0 {
		t.Fatalf("the tool ran %d times with ambiguous arguments", ran.Load())
	}
}

// TestNotifyChanges: a trip tells the client to list its tools again, and
// the filtered list hides the tripped tool.
func TestNotifyChanges(t *testing.T) {
	p, _ := policy.Parse("p.yaml", []byte("version: 1\ndefault: deny\nrules:\n  - name: r\n    match: call.tool in [\"a\", \"b\"]\n    effect: allow\n"))
	sw := killswitch.New(killswitch.Options{})
	g, err := agentguard.New(agentguard.WithPolicy(p), agentguard.WithKillSwitch(sw))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	opts := agentguardmcpgo.Options{KillSwitch: sw}
	s := server.NewMCPServer("test", "1", server.WithToolCapabilities(true),
		server.WithToolHandlerMiddleware(agentguardmcpgo.Middleware(g, opts)), server.WithToolFilter(agentguardmcpgo.ToolFilter(g, opts)))
	h := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	}
	s.AddTool(mcp.NewTool("a"), h)
	s.AddTool(mcp.NewTool("b"), h)
	c, err := client.NewInProcessClient(s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	changed := make(chan struct{}, 8)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == mcp.MethodNotificationToolsListChanged {
			changed <- struct{}{}
		}
	})
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = "2025-06-18"
	init.Params.ClientInfo = mcp.Implementation{Name: "c", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	stop := agentguardmcpgo.NotifyChanges(ctx, s, g, sw, time.Millisecond)
	defer stop()
	if err := sw.Trip(killswitch.Scope{Tool: "a"}, "ops", "a is broken"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second): // a guard against a hung test
		t.Fatal("no tools/list_changed after a trip")
	}
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tools) != 1 || res.Tools[0].Name != "b" {
		t.Fatalf("tools after tripping a: %v, want b", res.Tools)
	}
}

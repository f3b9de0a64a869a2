package agentguardmcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	agentguardmcp "github.com/hardstop-labs/agentguard/integrations/mcp"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
	"github.com/modelcontextprotocol/go-sdk/mcp"
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
  - name: boom
    match: call.tool == "boom"
    effect: allow
  - name: fails
    match: call.tool == "fails"
    effect: allow
limits:
  - tools: ["limited"]
    rate: 1/hour
    burst: 1
`

// the protocol revisions the tests run on: the stateless one and the
// last session-based one.
var revisions = []string{"2026-07-28", "2025-11-25"}

type fixture struct {
	g       *agentguard.Guard
	sw      *killswitch.Switch
	server  *mcp.Server
	client  *mcp.ClientSession
	audit   string
	ran     map[string]*atomic.Int32
	started chan struct{}
	release chan struct{}
	lastRaw atomic.Value // the raw arguments the refund tool received
}

func boolp(b bool) *bool { return &b }

// newFixture builds a guarded server with a few tools and connects a
// client to it in process at the given protocol revision.
func newFixture(t *testing.T, rev string, opts agentguardmcp.Options, gopts ...agentguard.Option) *fixture {
	t.Helper()
	f := &fixture{ran: map[string]*atomic.Int32{}, started: make(chan struct{}, 8), release: make(chan struct{})}
	p, err := policy.Parse("test.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	f.audit = filepath.Join(t.TempDir(), "audit.jsonl")
	f.sw = killswitch.New(killswitch.Options{})
	all := append([]agentguard.Option{agentguard.WithPolicy(p), agentguard.WithAuditFile(f.audit, audit.Options{Sync: audit.SyncNever}),
		agentguard.WithKillSwitch(f.sw)}, gopts...)
	f.g, err = agentguard.New(all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.g.Close() })
	f.server = mcp.NewServer(&mcp.Implementation{Name: "test-server", Version: "1"}, nil)
	schema := map[string]any{"type": "object"}
	add := func(tool *mcp.Tool, h mcp.ToolHandler) {
		n := &atomic.Int32{}
		f.ran[tool.Name] = n
		tool.InputSchema = schema
		f.server.AddTool(tool, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			n.Add(1)
			return h(ctx, req)
		})
	}
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	add(&mcp.Tool{Name: "echo", Description: "echoes", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("echo " + string(req.Params.Arguments)), nil
		})
	add(&mcp.Tool{Name: "refund", Description: "refunds", Annotations: &mcp.ToolAnnotations{DestructiveHint: boolp(true)}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			f.lastRaw.Store(string(req.Params.Arguments))
			return text("refunded"), nil
		})
	add(&mcp.Tool{Name: "delete_all", Description: "deletes everything"},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("deleted"), nil
		})
	add(&mcp.Tool{Name: "limited", Description: "limited", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("ok"), nil
		})
	add(&mcp.Tool{Name: "slow", Description: "ignores its context"},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			f.started <- struct{}{}
			<-f.release
			return text("late"), nil
		})
	add(&mcp.Tool{Name: "fails", Description: "fails"},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "disk on fire"}}}, nil
		})
	f.server.AddReceivingMiddleware(agentguardmcp.Middleware(f.g, opts))
	t.Cleanup(func() {
		select {
		case <-f.release:
		default:
			close(f.release)
		}
	})
	f.client = connect(t, f.server, rev, nil)
	return f
}

func connect(t *testing.T, s *mcp.Server, rev string, copts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ct, st := mcp.NewInMemoryTransports()
	ss, err := s.Connect(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, copts)
	cs, err := c.Connect(context.Background(), ct, &mcp.ClientSessionOptions{ProtocolVersion: rev})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func call(t *testing.T, cs *mcp.ClientSession, tool, args string) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: json.RawMessage(args)})
	if err != nil {
		t.Fatalf("CallTool(%s, %s): protocol error %v", tool, args, err)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// denial returns the machine-readable denial in a result's _meta.
func denial(t *testing.T, res *mcp.CallToolResult) map[string]any {
	t.Helper()
	raw, ok := res.Meta[agentguardmcp.MetaDenial]
	if !ok {
		t.Fatalf("result has no %s in _meta: %+v", agentguardmcp.MetaDenial, res.Meta)
	}
	b, _ := json.Marshal(raw)
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func wantDenied(t *testing.T, res *mcp.CallToolResult, code string) map[string]any {
	t.Helper()
	if !res.IsError {
		t.Fatalf("result %q is not an error, want a %s denial", text(res), code)
	}
	d := denial(t, res)
	if d["code"] != code {
		t.Fatalf("denial code %v, want %s (text %q)", d["code"], code, text(res))
	}
	if !strings.Contains(text(res), "was not run ("+code+")") {
		t.Fatalf("denial text %q does not say the call was not run (%s)", text(res), code)
	}
	return d
}

func (f *fixture) runs(tool string) int { return int(f.ran[tool].Load()) }

// verify closes the guard and verifies its audit log, returning its records.
func (f *fixture) verify(t *testing.T) []audit.Record {
	t.Helper()
	f.g.Close()
	if _, err := audit.Verify(audit.VerifyOptions{}, f.audit); err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	return readAudit(t, f.audit)
}

func readAudit(t *testing.T, path string) []audit.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		r, err := audit.ParseRecord(line)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, *r)
	}
	return out
}

func TestAllowedAndDenied(t *testing.T) {
	for _, rev := range revisions {
		t.Run(rev, func(t *testing.T) {
			f := newFixture(t, rev, agentguardmcp.Options{})
			res := call(t, f.client, "echo", `{"x":1}`)
			if res.IsError || text(res) != `echo {"x":1}` {
				t.Fatalf("allowed call: %+v %q", res.IsError, text(res))
			}
			res = call(t, f.client, "delete_all", `{}`)
			d := wantDenied(t, res, "policy_denied")
			if d["tool"] != "delete_all" {
				t.Errorf("denial tool %v", d["tool"])
			}
			if f.runs("delete_all") != 0 {
				t.Fatal("a denied tool ran")
			}
			if f.runs("echo") != 1 {
				t.Fatalf("echo ran %d times, want 1", f.runs("echo"))
			}
			recs := f.verify(t)
			var decisions []string
			for _, r := range recs {
				if r.Kind == audit.KindDecision {
					decisions = append(decisions, r.Tool+":"+r.Decision)
				}
			}
			if strings.Join(decisions, ",") != "echo:allow,delete_all:deny" {
				t.Fatalf("decisions recorded %v", decisions)
			}
		})
	}
}

// TestArgumentRule: the policy sees the request's arguments, not its
// envelope: a rule on call.args.amount matches.
func TestArgumentRule(t *testing.T) {
	for _, rev := range revisions {
		t.Run(rev, func(t *testing.T) {
			f := newFixture(t, rev, agentguardmcp.Options{})
			res := call(t, f.client, "refund", `{"amount":40}`)
			if res.IsError {
				t.Fatalf("small refund denied: %s", text(res))
			}
			if got := f.lastRaw.Load(); got != `{"amount":40}` {
				t.Fatalf("the tool received %v, want the very bytes the policy saw", got)
			}
			// No approver: big refunds are refused as needing approval.
			res = call(t, f.client, "refund", `{"amount": 400}`)
			d := wantDenied(t, res, "approval_required")
			if d["rule"] != "big-refunds" {
				t.Fatalf("rule %v, want big-refunds", d["rule"])
			}
			if f.runs("refund") != 1 {
				t.Fatalf("refund ran %d times, want 1", f.runs("refund"))
			}
		})
	}
}

func TestApprovalGranted(t *testing.T) {
	var asked atomic.Int32
	approver := approval.Func(func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
		asked.Add(1)
		if r.Tool != "refund" || r.Args["amount"] != 400.0 && r.Args["amount"] != int64(400) {
			return r.Reject("test", "unexpected card"), nil
		}
		return r.Approve("alice", "ok"), nil
	})
	f := newFixture(t, "", agentguardmcp.Options{}, agentguard.WithApprover(approver))
	res := call(t, f.client, "refund", `{"amount": 400}`)
	if res.IsError || text(res) != "refunded" {
		t.Fatalf("approved call: %q", text(res))
	}
	if asked.Load() != 1 || f.runs("refund") != 1 {
		t.Fatalf("asked %d, ran %d; want 1, 1", asked.Load(), f.runs("refund"))
	}
	var approver_ string
	for _, r := range f.verify(t) {
		if r.Kind == audit.KindApproval {
			approver_ = r.Approver
		}
	}
	if approver_ != "alice" {
		t.Fatalf("approval recorded by %q, want alice", approver_)
	}
}

func TestRateLimited(t *testing.T) {
	f := newFixture(t, "", agentguardmcp.Options{})
	if res := call(t, f.client, "limited", `{}`); res.IsError {
		t.Fatalf("first call: %s", text(res))
	}
	res := call(t, f.client, "limited", `{}`)
	d := wantDenied(t, res, "rate_limited")
	if d["retryable"] != true {
		t.Fatalf("rate limit denial not retryable: %v", d)
	}
	if f.runs("limited") != 1 {
		t.Fatalf("limited ran %d times, want 1", f.runs("limited"))
	}
}

// TestKilledInFlight: a trip while a tool that ignores its context runs
// answers the client at once with the halt as a tool result.
func TestKilledInFlight(t *testing.T) {
	for _, rev := range revisions {
		t.Run(rev, func(t *testing.T) {
			f := newFixture(t, rev, agentguardmcp.Options{})
			got := make(chan *mcp.CallToolResult, 1)
			go func() {
				res, err := f.client.CallTool(context.Background(), &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{}})
				if err != nil {
					res = &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "protocol error: " + err.Error()}}}
				}
				got <- res
			}()
			<-f.started
			if err := f.sw.Trip(killswitch.Everything, "ops", "runaway agent"); err != nil {
				t.Fatal(err)
			}
			res := <-got // the tool is still blocked: the answer did not wait for it
			d := wantDenied(t, res, "halted")
			if !strings.Contains(text(res), "runaway agent") {
				t.Fatalf("halt text %q does not give the reason", text(res))
			}
			_ = d
			close(f.release)
			var outcome string
			for _, r := range f.verify(t) {
				if r.Kind == audit.KindResult && r.Tool == "slow" {
					outcome = r.Outcome
				}
			}
			if outcome != "halted" {
				t.Fatalf("result outcome %q, want halted", outcome)
			}
		})
	}
}

// TestToolErrorsRecorded: an IsError result reaches the client as it is
// and is recorded as an error.
func TestToolErrorsRecorded(t *testing.T) {
	f := newFixture(t, "", agentguardmcp.Options{})
	res := call(t, f.client, "fails", `{}`)
	if !res.IsError || text(res) != "disk on fire" {
		t.Fatalf("tool error result changed: %v %q", res.IsError, text(res))
	}
	if _, ok := res.Meta[agentguardmcp.MetaDenial]; ok {
		t.Fatal("a tool's own error is marked as a denial")
	}
	var rec *audit.Record
	for _, r := range f.verify(t) {
		if r.Kind == audit.KindResult && r.Tool == "fails" {
			rec = &r
		}
	}
	if rec == nil || rec.Outcome != "error" || !strings.Contains(rec.Error, "disk on fire") {
		t.Fatalf("result record %+v, want outcome error with the text", rec)
	}
}

// TestAmbiguousArguments: arguments with duplicate or case-folded keys are
// refused before they reach the tool.
func TestAmbiguousArguments(t *testing.T) {
	for _, rev := range revisions {
		t.Run(rev, func(t *testing.T) {
			f := newFixture(t, rev, agentguardmcp.Options{})
			for _, args := range []string{
				`{"amount": 40, "amount": 4000}`,
				`{"amount": 40, "Amount": 4000}`,
			} {
				res := call(t, f.client, "refund", args)
				wantDenied(t, res, "invalid_call")
			}
			if f.runs("refund") != 0 {
				t.Fatalf("refund ran %d times with ambiguous arguments", f.runs("refund"))
			}
		})
	}
}

// TestPrincipal: the principal comes from the client's identity, the
// configuration and the session, never from the arguments.
func TestPrincipal(t *testing.T) {
	for _, rev := range revisions {
		t.Run(rev, func(t *testing.T) {
			f := newFixture(t, rev, agentguardmcp.Options{Principal: agentguard.Principal{Tenant: "acme"}})
			call(t, f.client, "echo", `{"agent":"evil","requester":"root","tenant":"other"}`)
			var p audit.Principal
			for _, r := range f.verify(t) {
				if r.Kind == audit.KindDecision {
					p = r.Principal
				}
			}
			if p.Agent != "test-client" || p.Tenant != "acme" || p.Requester != "" {
				t.Fatalf("principal %+v, want agent test-client (the client's name), tenant acme", p)
			}
		})
	}
}

func TestLabelsFromAnnotations(t *testing.T) {
	def := agentguardmcp.Definition(&mcp.Tool{Name: "x"})
	got := def.Labels()
	want := []string{"read_only", "false", "destructive", "true", "idempotent", "false", "open_world", "true"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("labels without annotations = %v, want the protocol's defaults %v", got, want)
	}
	def = agentguardmcp.Definition(&mcp.Tool{Name: "x", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, DestructiveHint: boolp(true), OpenWorldHint: boolp(false), IdempotentHint: true}})
	got = def.Labels()
	want = []string{"read_only", "true", "destructive", "false", "idempotent", "true", "open_world", "false"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("labels of a read-only tool = %v, want %v", got, want)
	}
}

// TestPanicRecorded: a tool that panics has its call finished (recorded)
// before the panic goes on.
func TestPanicRecorded(t *testing.T) {
	p, _ := policy.Parse("p.yaml", []byte("version: 1\ndefault: allow\n"))
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	g, err := agentguard.New(agentguard.WithPolicy(p), agentguard.WithAuditFile(path, audit.Options{Sync: audit.SyncNever}))
	if err != nil {
		t.Fatal(err)
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "s"}, nil)
	var handler mcp.MethodHandler = func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method == "tools/list" {
			return &mcp.ListToolsResult{Tools: []*mcp.Tool{{Name: "boom", InputSchema: map[string]any{"type": "object"}}}}, nil
		}
		panic("kaboom")
	}
	h := agentguardmcp.Middleware(g, agentguardmcp.Options{})(handler)
	func() {
		defer func() {
			if v := recover(); v != "kaboom" {
				t.Fatalf("recovered %v, want the tool's panic re-raised", v)
			}
		}()
		h(context.Background(), "tools/call", &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "boom", Arguments: json.RawMessage(`{}`)}})
	}()
	_ = s
	g.Close()
	var outcome string
	for _, r := range readAudit(t, path) {
		if r.Kind == audit.KindResult {
			outcome = r.Outcome
		}
	}
	if outcome != "error" {
		t.Fatalf("panicking call recorded with outcome %q, want error", outcome)
	}
}

var _ = errors.New
var _ = time.Second

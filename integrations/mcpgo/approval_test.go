package agentguardmcpgo_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	agentguardmcpgo "github.com/hardstop-labs/agentguard/integrations/mcpgo"
	"github.com/hardstop-labs/agentguard/policy"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// user is a client's elicitation handler: answer decides each question.
type user func(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error)

func (u user) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return u(ctx, req)
}

func answer(action mcp.ElicitationResponseAction, content any) *mcp.ElicitationResult {
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: action, Content: content}}
}

// answering is a user who answers a question about refund 400 with res,
// and declines any other, counting the questions.
func answering(res *mcp.ElicitationResult, asked *atomic.Int32) []client.ClientOption {
	return []client.ClientOption{client.WithElicitationHandler(user(func(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
		asked.Add(1)
		if !strings.Contains(req.Params.Message, `"refund"`) || !strings.Contains(req.Params.Message, "400") {
			return answer(mcp.ElicitationResponseActionDecline, nil), nil
		}
		return res, nil
	}))}
}

func trusted(fallback approval.Approver) agentguard.Option {
	return agentguard.WithApprover(agentguardmcpgo.ClientApprover(agentguardmcpgo.ClientApproval{Trusted: true, Fallback: fallback}))
}

func (f *fixture) approvers(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, r := range f.records(t) {
		if r.Kind == audit.KindApproval {
			out = append(out, r.Approver+":"+r.Decision)
		}
	}
	return out
}

// TestClientApproval: on a session-based revision and on 2026-07-28 (in
// process, where mcp-go lets the server ask), a trusted client's user
// approves a call through elicitation and the tool runs once; any other answer (decline, cancel,
// approve false, approve not a boolean, no content) refuses it and the
// tool never runs.
func TestClientApproval(t *testing.T) {
	cases := []struct {
		name string
		res  *mcp.ElicitationResult
		ok   bool
	}{
		{"approved", answer(mcp.ElicitationResponseActionAccept, map[string]any{"approve": true}), true},
		{"declined", answer(mcp.ElicitationResponseActionDecline, nil), false},
		{"cancelled", answer(mcp.ElicitationResponseActionCancel, nil), false},
		{"approve-false", answer(mcp.ElicitationResponseActionAccept, map[string]any{"approve": false}), false},
		{"approve-string", answer(mcp.ElicitationResponseActionAccept, map[string]any{"approve": "true"}), false},
		{"no-content", answer(mcp.ElicitationResponseActionAccept, nil), false},
	}
	for _, rev := range []string{"2025-06-18", mcp.LATEST_PROTOCOL_VERSION} {
		for _, tc := range cases {
			t.Run(rev+"/"+tc.name, func(t *testing.T) {
				var asked atomic.Int32
				f := newFixtureWith(t, rev, answering(tc.res, &asked), trusted(nil))
				if got := f.c.ProtocolVersion(); got != rev {
					t.Fatalf("the client speaks %s, want %s", got, rev)
				}
				res := f.call(t, "refund", map[string]any{"amount": 400})
				if asked.Load() != 1 {
					t.Fatalf("the user was asked %d times, want 1", asked.Load())
				}
				if tc.ok {
					if res.IsError || text(res) != "refunded" || f.ran["refund"].Load() != 1 {
						t.Fatalf("approved call: %q, ran %d", text(res), f.ran["refund"].Load())
					}
				} else {
					wantDenied(t, res, "approval_rejected")
					if f.ran["refund"].Load() != 0 {
						t.Fatal("a refused call ran")
					}
				}
				want := map[bool]string{true: "allow", false: "deny"}[tc.ok]
				// On 2026-07-28 the first round, which asks, is recorded as a
				// refusal, and the retry with the answer decides.
				rounds := map[bool]int{true: 2, false: 1}[rev == mcp.LATEST_PROTOCOL_VERSION]
				got := f.approvers(t)
				if len(got) != rounds || got[len(got)-1] != "mcp-client:test-client:"+want {
					t.Fatalf("approvals recorded %v, want the client's user, %s", got, want)
				}
			})
		}
	}
}

// TestClientApprovalUntrusted: by default the client is not asked, even
// though it would approve: the fallback decides, and without one the call
// is refused.
func TestClientApprovalUntrusted(t *testing.T) {
	yes := answer(mcp.ElicitationResponseActionAccept, map[string]any{"approve": true})
	var fellBack atomic.Int32
	fallback := approval.Func(func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
		fellBack.Add(1)
		return r.Reject("ops", "no"), nil
	})
	for _, fb := range []approval.Approver{fallback, nil} {
		var asked atomic.Int32
		f := newFixtureWith(t, mcp.LATEST_PROTOCOL_VERSION, answering(yes, &asked), agentguard.WithApprover(agentguardmcpgo.ClientApprover(agentguardmcpgo.ClientApproval{Fallback: fb})))
		wantDenied(t, f.call(t, "refund", map[string]any{"amount": 400}), "approval_rejected")
		if asked.Load() != 0 || f.ran["refund"].Load() != 0 {
			t.Fatalf("fallback %v: asked the client %d times, the tool ran %d; want 0, 0", fb != nil, asked.Load(), f.ran["refund"].Load())
		}
	}
	if fellBack.Load() != 1 {
		t.Fatalf("the fallback decided %d calls, want 1", fellBack.Load())
	}
}

// TestClientApprovalNoElicitation: a trusted client that declared no
// elicitation is not asked: the Guard's fallback approver decides, and
// without one the call is refused.
func TestClientApprovalNoElicitation(t *testing.T) {
	f := newFixture(t, trusted(approval.Func(func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
		return r.Approve("alice", "ok"), nil
	})))
	if res := f.call(t, "refund", map[string]any{"amount": 400}); res.IsError || text(res) != "refunded" {
		t.Fatalf("fallback approval: %q", text(res))
	}
	if got := f.approvers(t); len(got) != 1 || got[0] != "alice:allow" {
		t.Fatalf("approvals recorded %v, want alice's", got)
	}

	f = newFixture(t, trusted(nil))
	wantDenied(t, f.call(t, "refund", map[string]any{"amount": 400}), "approval_rejected")
	if f.ran["refund"].Load() != 0 {
		t.Fatal("a call nobody approved ran")
	}
	if got := f.approvers(t); len(got) != 1 || got[0] != "agentguard:deny" {
		t.Fatalf("approvals recorded %v, want the guard's refusal", got)
	}
}

// TestClientApprovalTimeout: on a session-based revision, a client whose
// user never answers is refused when the approval's deadline passes; the
// tool never runs.
func TestClientApprovalTimeout(t *testing.T) {
	gone := make(chan struct{})
	opts := []client.ClientOption{client.WithElicitationHandler(user(func(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
		<-ctx.Done() // the user walked away; only the deadline ends the wait
		close(gone)
		return answer(mcp.ElicitationResponseActionAccept, map[string]any{"approve": true}), nil
	}))}
	f := newFixtureWith(t, "2025-06-18", opts, trusted(nil), agentguard.WithApprovalTimeout(50*time.Millisecond))
	wantDenied(t, f.call(t, "refund", map[string]any{"amount": 400}), "approval_timeout")
	<-gone
	if f.ran["refund"].Load() != 0 {
		t.Fatal("a call whose approval timed out ran")
	}
}

// TestClientApprovalBound: each answer decides the call it was asked
// about, once. Two calls in flight at once get one question each, and the
// user's yes to one does not carry to the other; the same call again is
// asked again.
func TestClientApprovalBound(t *testing.T) {
	var asked atomic.Int32
	var mu sync.Mutex
	seen := map[string]int{}
	opts := []client.ClientOption{client.WithElicitationHandler(user(func(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
		asked.Add(1)
		mu.Lock()
		seen[req.Params.Message]++
		n := seen[req.Params.Message]
		mu.Unlock()
		// Yes, once, to the refund of 400; no to anything else.
		if n == 1 && strings.Contains(req.Params.Message, "400") {
			return answer(mcp.ElicitationResponseActionAccept, map[string]any{"approve": true}), nil
		}
		return answer(mcp.ElicitationResponseActionAccept, map[string]any{"approve": false}), nil
	}))}
	f := newFixtureWith(t, mcp.LATEST_PROTOCOL_VERSION, opts, trusted(nil))
	results := make([]*mcp.CallToolResult, 2)
	var wg sync.WaitGroup
	for i, amount := range []int{400, 5000} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = f.call(t, "refund", map[string]any{"amount": amount})
		}()
	}
	wg.Wait()
	if results[0].IsError || text(results[0]) != "refunded" {
		t.Fatalf("refund 400: %q, want approved", text(results[0]))
	}
	wantDenied(t, results[1], "approval_rejected")
	// The approved call again: asked again, and this time refused.
	wantDenied(t, f.call(t, "refund", map[string]any{"amount": 400}), "approval_rejected")
	if asked.Load() != 3 || f.ran["refund"].Load() != 1 {
		t.Fatalf("asked %d times, the tool ran %d; want 3, 1", asked.Load(), f.ran["refund"].Load())
	}
	if raw, _ := f.lastRaw.Load().(string); raw != `{"amount":400}` {
		t.Fatalf("the tool ran with %s, want the approved arguments", raw)
	}
}

// TestClientApproverOutsideMiddleware: a call that did not come through
// Middleware is never decided by a client, even a trusted one.
func TestClientApproverOutsideMiddleware(t *testing.T) {
	a := agentguardmcpgo.ClientApprover(agentguardmcpgo.ClientApproval{Trusted: true})
	r := &approval.Request{ID: "r1", Tool: "refund"}
	v, err := a.Approve(context.Background(), r)
	if err != nil || v.Approved || v.By != "agentguard" {
		t.Fatalf("verdict %+v, %v; want a rejection by agentguard", v, err)
	}
}

// TestClientApprovalModernHTTP: over streamable HTTP on 2026-07-28 the
// server asks with an input-required result, mcp-go's client asks its user
// and retries with the answer, and the approved call runs once; the
// fallback is never used.
func TestClientApprovalModernHTTP(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	var fellBack atomic.Int32
	g, err := agentguard.New(agentguard.WithPolicy(p), trusted(approval.Func(func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
		fellBack.Add(1)
		return r.Reject("ops", "no"), nil
	})))
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
	hs := httptest.NewServer(server.NewStreamableHTTPServer(s))
	defer hs.Close()
	tr, err := transport.NewStreamableHTTP(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	c := client.NewClient(tr, answering(answer(mcp.ElicitationResponseActionAccept, map[string]any{"approve": true}), &asked)...)
	defer c.Close()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "test-client", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	if got := c.ProtocolVersion(); got != mcp.LATEST_PROTOCOL_VERSION {
		t.Fatalf("the client speaks %s, want %s", got, mcp.LATEST_PROTOCOL_VERSION)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "refund"
	req.Params.Arguments = map[string]any{"amount": 400}
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || text(res) != "refunded" {
		t.Fatalf("approved over HTTP: %v %q", res.IsError, text(res))
	}
	if asked.Load() != 1 || fellBack.Load() != 0 || ran.Load() != 1 {
		t.Fatalf("asked the client %d times, the fallback %d, the tool ran %d; want 1, 0, 1", asked.Load(), fellBack.Load(), ran.Load())
	}
}

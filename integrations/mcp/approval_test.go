package agentguardmcp_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	agentguardmcp "github.com/hardstop-labs/agentguard/integrations/mcp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// answering is a client whose user answers every question with approve.
func answering(approve bool, asked *atomic.Int32) *mcp.ClientOptions {
	return &mcp.ClientOptions{ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
		asked.Add(1)
		if !strings.Contains(req.Params.Message, `"refund"`) || !strings.Contains(req.Params.Message, "400") {
			return &mcp.ElicitResult{Action: "decline"}, nil
		}
		return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"approve": approve}}, nil
	}}
}

// TestClientApproval: a trusted client's user approves a call through the
// protocol, on both revisions (input-required round trip, elicitation).
func TestClientApproval(t *testing.T) {
	for _, rev := range revisions {
		for _, yes := range []bool{true, false} {
			t.Run(rev+map[bool]string{true: "/approved", false: "/refused"}[yes], func(t *testing.T) {
				f := newFixture(t, rev, agentguardmcp.Options{}, agentguard.WithApprover(agentguardmcp.ClientApprover(agentguardmcp.ClientApproval{Trusted: true})))
				var asked atomic.Int32
				cs := connect(t, f.server, rev, answering(yes, &asked))
				res := call(t, cs, "refund", `{"amount":400}`)
				if asked.Load() != 1 {
					t.Fatalf("the user was asked %d times, want 1", asked.Load())
				}
				if yes {
					if res.IsError || text(res) != "refunded" || f.runs("refund") != 1 {
						t.Fatalf("approved call: %q, ran %d", text(res), f.runs("refund"))
					}
				} else {
					wantDenied(t, res, "approval_rejected")
					if f.runs("refund") != 0 {
						t.Fatal("a refused call ran")
					}
				}
				var approvers []string
				for _, r := range f.verify(t) {
					if r.Kind == audit.KindApproval {
						approvers = append(approvers, r.Approver+":"+r.Decision)
					}
				}
				if len(approvers) == 0 || !strings.HasPrefix(approvers[len(approvers)-1], "mcp-client:test-client") {
					t.Fatalf("approvals recorded %v, want the client's user", approvers)
				}
			})
		}
	}
}

// TestClientApprovalUntrusted: by default the client is not asked and the
// fallback decides.
func TestClientApprovalUntrusted(t *testing.T) {
	var fellBack atomic.Int32
	fallback := approval.Func(func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
		fellBack.Add(1)
		return r.Reject("ops", "no"), nil
	})
	f := newFixture(t, "", agentguardmcp.Options{}, agentguard.WithApprover(agentguardmcp.ClientApprover(agentguardmcp.ClientApproval{Fallback: fallback})))
	var asked atomic.Int32
	cs := connect(t, f.server, "", answering(true, &asked))
	res := call(t, cs, "refund", `{"amount":400}`)
	wantDenied(t, res, "approval_rejected")
	if asked.Load() != 0 || fellBack.Load() != 1 {
		t.Fatalf("asked the client %d times, the fallback %d; want 0, 1", asked.Load(), fellBack.Load())
	}
}

// TestClientApprovalBound: on the stateless revision the sealed state is
// bound to the call: other arguments, a forged state and a replayed answer
// are refused.
func TestClientApprovalBound(t *testing.T) {
	f := newFixture(t, "2026-07-28", agentguardmcp.Options{}, agentguard.WithApprover(agentguardmcp.ClientApprover(agentguardmcp.ClientApproval{Trusted: true})))
	cs := connect(t, f.server, "2026-07-28", &mcp.ClientOptions{
		MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true},
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"approve": true}}, nil
		},
	})
	ctx := context.Background()
	first, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "refund", Arguments: json.RawMessage(`{"amount":400}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !first.NeedsInput() || first.RequestState == "" || len(first.InputRequests) != 1 {
		t.Fatalf("first round: %+v, want an input-required result", first)
	}
	yes := mcp.InputResponseMap{"agentguard-approval": &mcp.ElicitResult{Action: "accept", Content: map[string]any{"approve": true}}}
	retry := func(args, state string) *mcp.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "refund", Arguments: json.RawMessage(args), InputResponses: yes, RequestState: state})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Other arguments with the state of the approved ones.
	wantDenied(t, retry(`{"amount":4000}`, first.RequestState), "approval_rejected")
	// A forged state.
	wantDenied(t, retry(`{"amount":400}`, "eyJmb28iOjF9.AAAA"), "approval_rejected")
	// The right call.
	if res := retry(`{"amount":400}`, first.RequestState); res.IsError || text(res) != "refunded" {
		t.Fatalf("retry with the answer: %q", text(res))
	}
	// The same answer again.
	wantDenied(t, retry(`{"amount":400}`, first.RequestState), "approval_rejected")
	if f.runs("refund") != 1 {
		t.Fatalf("refund ran %d times, want 1", f.runs("refund"))
	}
}

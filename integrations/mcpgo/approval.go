package agentguardmcpgo

import (
	"context"

	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// ClientApproval configures ClientApprover.
type ClientApproval struct {
	// Trusted says that the client asks a human (its user) and shows them
	// the question as it was put: only then does its answer count as a
	// human's approval. False, the default, never asks the client: the
	// Fallback decides.
	Trusted bool
	// Fallback decides the calls the client is not asked about: calls that
	// did not come through Middleware, calls from an untrusted client, or
	// a client that cannot be asked (it declared no elicitation, or its
	// protocol revision forbids server-initiated requests). Nil rejects
	// them.
	Fallback approval.Approver
}

// ClientApprover returns an approver that asks the MCP client's user
// whether a call the policy sent for approval may run, through the
// protocol (install it with agentguard.WithApprover): it sends an
// elicitation request (MCPServer.RequestElicitation) from inside the call
// and waits for the answer. The question names the tool and its arguments
// and is asked while the call waits, so its answer decides that call
// only, once; a client that does not answer before the approval's
// deadline is refused by the Guard (approval_timeout).
//
// The answer counts as a human's only when c.Trusted says the client
// asks its user; otherwise c.Fallback decides. The approver is safe for
// concurrent use.
//
// Unlike the go-sdk integration it does not answer the stateless
// 2026-07-28 revision with an input-required round trip: mcp-go refuses
// server-initiated requests there, and such a call goes to c.Fallback.
func ClientApprover(c ClientApproval) approval.Approver {
	return &clientApprover{c: c}
}

type clientApprover struct{ c ClientApproval }

// callKey marks a context as the one Middleware built for a tools/call;
// its value is the call's request.
type callKey struct{}

func (a *clientApprover) Approve(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
	req, _ := ctx.Value(callKey{}).(*mcp.CallToolRequest)
	if req == nil || !a.c.Trusted {
		return a.fallback(ctx, r, "the MCP client is not trusted to ask a human")
	}
	srv := server.ServerFromContext(ctx)
	session := server.ClientSessionFromContext(ctx)
	if srv == nil || session == nil {
		return a.fallback(ctx, r, "the MCP request has no session to ask through")
	}
	if ci, ok := session.(server.SessionWithClientInfo); !ok || ci.GetClientCapabilities().Elicitation == nil {
		return a.fallback(ctx, r, "the MCP client declared no elicitation capability")
	}
	by := "mcp-client"
	if r.Principal.Agent != "" {
		by += ":" + r.Principal.Agent
	}
	res, err := srv.RequestElicitation(ctx, mcp.ElicitationRequest{Params: question(r)})
	if err != nil {
		return a.fallback(ctx, r, "the MCP client could not be asked: "+err.Error())
	}
	if approved(res) {
		return r.Approve(by, "approved through elicitation"), nil
	}
	return r.Reject(by, "refused through elicitation"), nil
}

func (a *clientApprover) fallback(ctx context.Context, r *approval.Request, why string) (approval.Verdict, error) {
	if a.c.Fallback != nil {
		return a.c.Fallback.Approve(ctx, r)
	}
	return r.Reject("agentguard", why), nil
}

// question is the elicitation that asks the user about r (the same words
// as the go-sdk integration's and the proxy's).
func question(r *approval.Request) mcp.ElicitationParams {
	msg, schema := mcpproxy.ApprovalQuestion(r)
	return mcp.ElicitationParams{Mode: mcp.ElicitationModeForm, Message: msg, RequestedSchema: schema}
}

// approved reports whether res accepts with approve set to true.
func approved(res *mcp.ElicitationResult) bool {
	return res != nil && mcpproxy.ApprovalAnswer(string(res.Action), res.Content)
}

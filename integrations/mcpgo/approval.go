package agentguardmcpgo

import (
	"context"
	"time"

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
	// a client that cannot be asked (it declared no elicitation). Nil
	// rejects them.
	Fallback approval.Approver
	// Key seals the requestState of the 2026-07-28 revision (HMAC-SHA256).
	// Nil means a random key for this process: a question asked before a
	// restart cannot be answered after it.
	Key []byte
	// Clock is the source of time; nil means time.Now.
	Clock func() time.Time
}

// inputID is the ID of the guard's question in an input-required result.
const inputID = "agentguard-approval"

// ClientApprover returns an approver that asks the MCP client's user
// whether a call the policy sent for approval may run, through the
// protocol (install it with agentguard.WithApprover):
//
//   - On the 2026-07-28 revision, where a server sends no requests of its
//     own, the call is answered with an input-required result that asks
//     (an elicitation) and carries a sealed requestState bound to the
//     call's hash (tool, arguments, principal) and to the approval's
//     deadline. The client retries with the answer; a retry with other
//     arguments, a second use of the same state, or an answer after the
//     deadline is refused. The first round is recorded as a refusal whose
//     note says the client was asked.
//   - On the older revisions it sends an elicitation request
//     (MCPServer.RequestElicitation) from inside the call and waits: the
//     answer decides that call only, once; a client that does not answer
//     before the approval's deadline is refused by the Guard
//     (approval_timeout).
//
// The question names the tool and its arguments. The answer counts as a
// human's only when c.Trusted says the client asks its user; otherwise
// c.Fallback decides. The approver is safe for concurrent use.
func ClientApprover(c ClientApproval) approval.Approver {
	return &clientApprover{c: c, seal: mcpproxy.NewSealer(c.Key, c.Clock)}
}

type clientApprover struct {
	c    ClientApproval
	seal *mcpproxy.Sealer
}

// callKey marks a context as the one Middleware built for a tools/call.
type callKey struct{}

// call is what Middleware tells ClientApprover about a tools/call.
type call struct {
	req   *mcp.CallToolRequest
	input *mcp.CallToolResult // set by ClientApprover: ask the client instead of denying
}

func (a *clientApprover) Approve(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
	c, _ := ctx.Value(callKey{}).(*call)
	if c == nil || !a.c.Trusted {
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
	if mcp.IsModernProtocol(server.RequestProtocolVersion(ctx)) {
		p := c.req.Params
		if p.RequestState != "" || p.InputResponses != nil {
			if err := a.seal.Open(p.RequestState, r.Hash); err != nil {
				return r.Reject("agentguard", "the answer does not belong to this call: "+err.Error()), nil
			}
			if approved(server.ElicitationResponse(p.InputResponses, inputID)) {
				return r.Approve(by, "approved through an input-required round trip"), nil
			}
			return r.Reject(by, "refused through an input-required round trip"), nil
		}
		state, err := a.seal.Seal(r.Hash, r.Deadline)
		if err != nil {
			return approval.Verdict{}, err
		}
		c.input = server.NewInputRequestBuilder(state).Elicit(inputID, question(r)).ToolResult()
		return r.Reject(by, "the client was asked to approve; its answer comes with a retry of the call"), nil
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

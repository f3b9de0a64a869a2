package agentguardmcp

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
	"github.com/modelcontextprotocol/go-sdk/mcp"
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
	// a client that cannot be asked (no elicitation). Nil rejects them.
	Fallback approval.Approver
	// Key seals the requestState of the stateless revision (HMAC-SHA256).
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
//   - On the stateless 2026-07-28 revision, where a server sends no
//     requests of its own, the call is answered with an input-required
//     result that asks (an elicitation) and carries a sealed requestState
//     bound to the call's hash (tool, arguments, principal) and to the
//     approval's deadline. The client retries with the answer; a retry
//     with other arguments, or a second use of the same state, is
//     refused. The first round is recorded as a refusal whose note says
//     the client was asked.
//   - On the older revisions it asks with an elicitation request and
//     waits for the answer.
//
// The answer counts as a human's only when c.Trusted says the client
// asks its user; otherwise c.Fallback decides. The approver is safe for
// concurrent use.
func ClientApprover(c ClientApproval) approval.Approver {
	return &clientApprover{c: c, sealer: mcpproxy.NewSealer(c.Key, c.Clock)}
}

type clientApprover struct {
	c      ClientApproval
	sealer *mcpproxy.Sealer // the stateless revision's requestState, one use per call
}

// inputRequired is the question the middleware returns instead of the
// denial, on the stateless revision.
type inputRequired struct {
	state  string
	params *mcp.ElicitParams
}

func (a *clientApprover) Approve(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
	call, _ := ctx.Value(callKey{}).(*Call)
	if call == nil || call.Request == nil || call.Request.Params == nil || !a.c.Trusted {
		return a.fallback(ctx, r, "the MCP client is not trusted to ask a human")
	}
	req := call.Request
	by := "mcp-client"
	if r.Principal.Agent != "" {
		by += ":" + r.Principal.Agent
	}
	if statelessRequest(req) {
		if req.Params.RequestState != "" || req.Params.InputResponses != nil {
			return a.answer(r, req, by), nil
		}
		state, err := a.sealer.Seal(r.Hash, r.Deadline)
		if err != nil {
			return approval.Verdict{}, err
		}
		call.input = &inputRequired{state: state, params: question(r)}
		return r.Reject(by, "the client was asked to approve; its answer comes with a retry of the call"), nil
	}
	if req.Session == nil {
		return a.fallback(ctx, r, "the MCP request has no session to ask through")
	}
	res, err := req.Session.Elicit(ctx, question(r))
	if err != nil {
		return a.fallback(ctx, r, "the MCP client could not be asked: "+err.Error())
	}
	if approved(res) {
		return r.Approve(by, "approved through elicitation"), nil
	}
	return r.Reject(by, "refused through elicitation"), nil
}

// inputRequiredResult is the result that asks the client in: an
// input-required result (its result type is set the only way the SDK
// offers outside a tool handler: by decoding it).
func inputRequiredResult(in *inputRequired) *mcp.CallToolResult {
	res := &mcp.CallToolResult{}
	_ = json.Unmarshal([]byte(`{"content":[],"resultType":"input_required"}`), res)
	res.InputRequests = mcp.InputRequestMap{inputID: in.params}
	res.RequestState = in.state
	return res
}

func (a *clientApprover) fallback(ctx context.Context, r *approval.Request, why string) (approval.Verdict, error) {
	if a.c.Fallback != nil {
		return a.c.Fallback.Approve(ctx, r)
	}
	return r.Reject("agentguard", why), nil
}

// question is the elicitation that asks the user about r, in the words
// the proxy and the mcp-go integration use.
func question(r *approval.Request) *mcp.ElicitParams {
	msg, schema := mcpproxy.ApprovalQuestion(r)
	return &mcp.ElicitParams{Mode: "form", Message: msg, RequestedSchema: schema}
}

func approved(res *mcp.ElicitResult) bool {
	return res != nil && mcpproxy.ApprovalAnswer(res.Action, res.Content)
}

// answer checks a retry's sealed state and its answer.
func (a *clientApprover) answer(r *approval.Request, req *mcp.CallToolRequest, by string) approval.Verdict {
	if err := a.sealer.Open(req.Params.RequestState, r.Hash); err != nil {
		return r.Reject("agentguard", "the answer does not belong to this call: "+err.Error())
	}
	res, _ := req.Params.InputResponses[inputID].(*mcp.ElicitResult)
	if approved(res) {
		return r.Approve(by, "approved through an input-required round trip")
	}
	return r.Reject(by, "refused through an input-required round trip")
}

// statelessRequest reports whether a request follows the stateless
// 2026-07-28 revision.
func statelessRequest(req *mcp.CallToolRequest) bool {
	return statelessSession(req.Session, req.Params.Meta)
}

// statelessSession reports whether a request with this session and _meta
// follows the stateless 2026-07-28 revision.
func statelessSession(ss *mcp.ServerSession, meta mcp.Meta) bool {
	if v, ok := meta[mcp.MetaKeyProtocolVersion].(string); ok && v >= "2026-07-28" {
		return true
	}
	if ss != nil {
		if ip := ss.InitializeParams(); ip != nil && ip.ProtocolVersion >= "2026-07-28" {
			return true
		}
	}
	return false
}

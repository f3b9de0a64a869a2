package agentguardmcp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hardstop-labs/agentguard/approval"
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
	a := &clientApprover{c: c, used: map[string]time.Time{}}
	if len(a.c.Key) == 0 {
		a.c.Key = make([]byte, 32)
		_, _ = rand.Read(a.c.Key)
	}
	if a.c.Clock == nil {
		a.c.Clock = time.Now
	}
	return a
}

type clientApprover struct {
	c    ClientApproval
	mu   sync.Mutex
	used map[string]time.Time // nonces answered, until they expire
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
		state, err := a.seal(r.Hash, r.Deadline)
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

// question is the elicitation that asks the user about r.
func question(r *approval.Request) *mcp.ElicitParams {
	args, _ := json.Marshal(r.Args)
	msg := fmt.Sprintf("The assistant wants to call the tool %q with %s.", r.Tool, args)
	if r.Reason != "" {
		msg += " " + r.Reason + "."
	}
	msg += " Do you approve this call?"
	return &mcp.ElicitParams{
		Mode:    "form",
		Message: msg,
		RequestedSchema: map[string]any{
			"type": "object",
			"properties": map[string]any{
				"approve": map[string]any{"type": "boolean", "title": "Approve this call"},
			},
			"required": []string{"approve"},
		},
	}
}

func approved(res *mcp.ElicitResult) bool {
	if res == nil || res.Action != "accept" {
		return false
	}
	v, ok := res.Content["approve"].(bool)
	return ok && v
}

// answer checks a retry's sealed state and its answer.
func (a *clientApprover) answer(r *approval.Request, req *mcp.CallToolRequest, by string) approval.Verdict {
	if err := a.open(req.Params.RequestState, r.Hash); err != nil {
		return r.Reject("agentguard", "the answer does not belong to this call: "+err.Error())
	}
	res, _ := req.Params.InputResponses[inputID].(*mcp.ElicitResult)
	if approved(res) {
		return r.Approve(by, "approved through an input-required round trip")
	}
	return r.Reject(by, "refused through an input-required round trip")
}

// seal returns the requestState for the call of hash, valid until
// deadline: hash|nonce|deadline and its HMAC.
func (a *clientApprover) seal(hash string, deadline time.Time) (string, error) {
	n := make([]byte, 16)
	if _, err := rand.Read(n); err != nil {
		return "", err
	}
	payload := hash + "|" + hex.EncodeToString(n) + "|" + strconv.FormatInt(deadline.UnixNano(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(a.mac(payload)), nil
}

func (a *clientApprover) mac(payload string) []byte {
	m := hmac.New(sha256.New, a.c.Key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// open checks a requestState: sealed by this approver, for the call of
// hash, before its deadline, and not used before. It marks it used.
func (a *clientApprover) open(state, hash string) error {
	p64, m64, ok := strings.Cut(state, ".")
	if !ok {
		return fmt.Errorf("malformed requestState")
	}
	payload, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil {
		return fmt.Errorf("malformed requestState")
	}
	mac, err := base64.RawURLEncoding.DecodeString(m64)
	if err != nil || !hmac.Equal(mac, a.mac(string(payload))) {
		return fmt.Errorf("requestState not sealed by this server")
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 3 {
		return fmt.Errorf("malformed requestState")
	}
	if parts[0] != hash {
		return fmt.Errorf("the call is not the one asked about (other arguments, tool or principal)")
	}
	ns, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return fmt.Errorf("malformed requestState")
	}
	now := a.c.Clock()
	deadline := time.Unix(0, ns)
	if !now.Before(deadline) {
		return fmt.Errorf("the question expired")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for n, exp := range a.used {
		if !now.Before(exp) {
			delete(a.used, n)
		}
	}
	if _, dup := a.used[parts[1]]; dup {
		return fmt.Errorf("the answer was already used")
	}
	a.used[parts[1]] = deadline
	return nil
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

// Package agentguardmcp guards the tools of MCP servers built with
// github.com/modelcontextprotocol/go-sdk: one receiving middleware checks
// every tools/call with an agentguard.Guard.
//
//	server.AddReceivingMiddleware(agentguardmcp.Middleware(g, agentguardmcp.Options{}))
//
// # What the policy sees
//
// call.tool is the tool's name; call.args are the request's arguments,
// read by the Guard from the raw JSON the client sent (duplicate or
// case-folded keys are refused, integers stay exact), never the request
// around them; call.labels are the tool's annotations (read_only,
// destructive, idempotent, open_world: see mcpproxy.Tool.Labels). The
// principal comes from the context, the token's subject, Options.Principal
// and the client's own name (see Principal), never from the arguments.
//
// # What the model sees
//
// A refused call is a CallToolResult with IsError, the denial's text (what
// was tried, what stopped it, what would let it through) and its JSON
// under MetaDenial in _meta, never a protocol error the model would not
// read. The tool does not run.
//
// # Tool definitions
//
// Options.Pins pins each definition by hash and holds the calls of a tool
// whose definition changed until a person accepts it; Options.HideTools
// hides what the policy or the kill switch can never allow, and
// NotifyChanges tells clients to list again when that changes.
//
// # Approval through the protocol
//
// ClientApprover asks the client's user: an input-required round trip on
// the stateless 2026-07-28 revision, an elicitation before it. The answer
// counts only when the client is configured as trusted.
package agentguardmcp

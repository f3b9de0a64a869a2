package agentguardmcp

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Options configures Middleware. The zero value guards every tools/call
// with the principal the client and the Guard give, and neither pins nor
// hides tools.
type Options struct {
	// Principal holds the principal fields the server's configuration
	// fixes. A field set here wins over what the client says about itself
	// (its client info), but not over a principal the server's own code
	// put in the context (agentguard.WithPrincipal) nor over an
	// authenticated token's subject. See Principal for the order.
	Principal agentguard.Principal

	// Pins, when set, pins tool definitions on first sight and holds the
	// calls of a tool whose definition changed until a person accepts
	// the new one (see Pins).
	Pins *mcpproxy.Pins

	// HideTools removes from tools/list the tools that the Guard's policy
	// can never allow (policy.Policy.MayAllow) and, with KillSwitch, the
	// tools a trip covers for the caller. Calls to hidden tools are still
	// guarded (and denied) as any other.
	HideTools bool
	// KillSwitch is the switch given to the Guard (agentguard.WithKillSwitch),
	// for HideTools. Use Notifier to refresh clients' lists when it trips.
	KillSwitch *killswitch.Switch
}

// Middleware returns a receiving middleware for a go-sdk server that
// guards every tools/call with g:
//
//	server.AddReceivingMiddleware(agentguardmcp.Middleware(g, agentguardmcp.Options{}))
//
// The policy sees the tool's name as call.tool, its decoded arguments (the
// request's "arguments", never the rest of the request) as call.args, and
// its annotations as call.labels (see Labels). The arguments are checked
// as raw JSON by the Guard, so arguments with duplicate or case-folded
// keys are refused before they reach the tool, and the tool receives the
// very bytes the policy saw.
//
// A refused call is answered with a tool result with IsError set, the
// denial's text for the model, and its JSON under MetaDenial in _meta; the
// tool does not run. A call that runs is finished (agentguard.Ticket.Done)
// on every path: a result, an IsError result or a protocol error (recorded
// as errors), a panic (recorded, then re-raised), and a trip of the kill
// switch while it runs, which answers at once with the halt as a tool
// result even if the tool ignores its context.
//
// Both protocol models work: the stateless 2026-07-28 revision and the
// older session-based ones. Other methods pass through untouched, except
// tools/list, whose tools are pinned (Options.Pins) and hidden
// (Options.HideTools) as configured.
func Middleware(g *agentguard.Guard, opts Options) mcp.Middleware {
	m := &guard{g: g, opts: opts, defs: map[string]*toolDef{}}
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			switch method {
			case "tools/call":
				if r, ok := req.(*mcp.CallToolRequest); ok && r.Params != nil {
					return m.call(ctx, next, r)
				}
			case "tools/list":
				res, err := next(ctx, method, req)
				if lr, ok := res.(*mcp.ListToolsResult); ok && err == nil {
					lr.Tools = m.listed(ctx, req, lr.Tools)
				}
				return res, err
			}
			return next(ctx, method, req)
		}
	}
}

// guard is the state of one Middleware.
type guard struct {
	g    *agentguard.Guard
	opts Options

	mu   sync.Mutex
	defs map[string]*toolDef // by name: the last definition seen
}

// toolDef is what the guard derived from one tool definition.
type toolDef struct {
	tool *mcp.Tool     // the definition, compared by identity to notice a new one
	def  mcpproxy.Tool // as the wire has it, for its hash and labels
	hash string
	opts []agentguard.ToolOption // the labels
}

// Definition returns t as the wire has it, for its hash and its labels
// (mcpproxy.Tool.Hash, mcpproxy.Tool.Labels): the same definition hashes
// the same through the middleware and through the proxy.
func Definition(t *mcp.Tool) mcpproxy.Tool {
	d := mcpproxy.Tool{Name: t.Name, Description: t.Description}
	if t.InputSchema != nil {
		d.InputSchema, _ = json.Marshal(t.InputSchema)
	}
	if t.Annotations != nil {
		d.Annotations, _ = json.Marshal(t.Annotations)
	}
	return d
}

// def returns what the guard knows of t, computing it once per definition.
func (m *guard) def(t *mcp.Tool) *toolDef {
	m.mu.Lock()
	d := m.defs[t.Name]
	m.mu.Unlock()
	if d != nil && d.tool == t {
		return d
	}
	d = &toolDef{tool: t, def: Definition(t)}
	d.hash = d.def.Hash()
	d.opts = []agentguard.ToolOption{agentguard.Labels(d.def.Labels()...)}
	m.mu.Lock()
	m.defs[t.Name] = d
	m.mu.Unlock()
	return d
}

// maxPages bounds the pages of tools/list read to find one definition.
const maxPages = 100

// lookup finds the definition of the tool named name by listing the
// server's tools (through the handlers below the middleware). It returns
// nil without error when the server has no such tool.
func lookup(ctx context.Context, next mcp.MethodHandler, req *mcp.CallToolRequest, name string) (*mcp.Tool, error) {
	params := &mcp.ListToolsParams{}
	for range maxPages {
		res, err := next(ctx, "tools/list", &mcp.ListToolsRequest{Session: req.Session, Params: params, Extra: req.Extra})
		if err != nil {
			return nil, err
		}
		lr, ok := res.(*mcp.ListToolsResult)
		if !ok || lr == nil {
			return nil, fmt.Errorf("tools/list returned %T", res)
		}
		for _, t := range lr.Tools {
			if t != nil && t.Name == name {
				return t, nil
			}
		}
		if lr.NextCursor == "" {
			return nil, nil
		}
		params = &mcp.ListToolsParams{Cursor: lr.NextCursor}
	}
	return nil, fmt.Errorf("tools/list has more than %d pages", maxPages)
}

type callKey struct{}

// Call is what the guard tells an approver (see Approver) about the MCP
// request behind a call, through the context.
type Call struct {
	Request *mcp.CallToolRequest

	input *inputRequired // set by ClientApprover: ask the client instead of denying
}

func (m *guard) call(ctx context.Context, next mcp.MethodHandler, req *mcp.CallToolRequest) (mcp.Result, error) {
	name := req.Params.Name
	var t *mcp.Tool
	var err error
	if name != refreshTool { // the placeholder of ToolsChanged is no tool: held below
		if t, err = lookup(ctx, next, req, name); err == nil && t == nil {
			// No such tool: the server answers with its protocol error and
			// runs nothing.
			return next(ctx, "tools/call", req)
		}
	}
	var opts []agentguard.ToolOption
	switch {
	case err != nil:
		opts = []agentguard.ToolOption{agentguard.Hold("tool-definition", "the server's tool definitions could not be read")}
	case t == nil:
		opts = []agentguard.ToolOption{agentguard.Hold("tool-unlisted", "the server does not list this tool")}
	default:
		d := m.def(t)
		opts = d.opts
		if m.opts.Pins != nil {
			if hold := m.opts.Pins.Check(ctx, m.g, &d.def, d.hash); hold != nil {
				opts = append(opts[:len(opts):len(opts)], hold)
			}
		}
	}
	p := Principal(ctx, req.Session, req.Extra, req.Params.Meta, m.opts.Principal)
	c := &Call{Request: req}
	cctx := context.WithValue(agentguard.WithPrincipal(ctx, p), callKey{}, c)
	ticket, err := m.g.Check(cctx, name, json.RawMessage(req.Params.Arguments), opts...)
	if err != nil {
		if c.input != nil { // ClientApprover asks the client first (stateless revision)
			return inputRequiredResult(c.input), nil
		}
		return DenialResult(err), nil
	}
	return mcpproxy.Run(ticket, func(ctx context.Context) (mcp.Result, error) { return next(ctx, "tools/call", req) },
		func(res mcp.Result, err error) error {
			if err != nil {
				return err
			}
			cr, _ := res.(*mcp.CallToolResult)
			return resultError(cr)
		},
		func(err error) mcp.Result { return DenialResult(err) })
}

// Principal returns the principal of a request, from, in order (the first
// non-empty value of each field wins): a principal the server's own code
// put in ctx (agentguard.WithPrincipal); the subject of the request's
// authenticated token as Requester; the configured fixed fields; the
// client's name from the request's _meta (2026-07-28) or from the
// session's initialization (older revisions) as Agent; the session's ID
// as Session. Nothing comes from the tool's arguments, which the model
// writes. The Guard's default principal fills what is left.
func Principal(ctx context.Context, ss *mcp.ServerSession, extra *mcp.RequestExtra, meta mcp.Meta, fixed agentguard.Principal) agentguard.Principal {
	p, _ := agentguard.PrincipalFrom(ctx)
	if p.Requester == "" && extra != nil && extra.TokenInfo != nil {
		p.Requester = extra.TokenInfo.UserID
	}
	fill(&p.Agent, fixed.Agent)
	fill(&p.Requester, fixed.Requester)
	fill(&p.Tenant, fixed.Tenant)
	fill(&p.Session, fixed.Session)
	if p.Agent == "" {
		p.Agent = clientName(ss, meta)
	}
	if p.Session == "" && ss != nil && !statelessSession(ss, meta) {
		p.Session = ss.ID()
	}
	return p
}

func fill(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// clientName is the name the client gave for itself: per request in _meta
// on 2026-07-28, at initialization before.
func clientName(ss *mcp.ServerSession, meta mcp.Meta) string {
	switch ci := meta[mcp.MetaKeyClientInfo].(type) {
	case map[string]any:
		if s, ok := ci["name"].(string); ok && s != "" {
			return s
		}
	case *mcp.Implementation:
		if ci != nil && ci.Name != "" {
			return ci.Name
		}
	}
	if ss != nil {
		if ip := ss.InitializeParams(); ip != nil && ip.ClientInfo != nil {
			return ip.ClientInfo.Name
		}
	}
	return ""
}

// listed pins the tools of a tools/list result and removes those hidden.
func (m *guard) listed(ctx context.Context, req mcp.Request, tools []*mcp.Tool) []*mcp.Tool {
	var p agentguard.Principal
	if m.opts.HideTools {
		var meta mcp.Meta
		if lp, ok := req.GetParams().(*mcp.ListToolsParams); ok && lp != nil {
			meta = lp.Meta
		}
		ss, _ := req.GetSession().(*mcp.ServerSession)
		p = Principal(ctx, ss, req.GetExtra(), meta, m.opts.Principal)
	}
	out := tools[:0:0]
	for _, t := range tools {
		if t == nil || t.Name == refreshTool {
			continue
		}
		if m.opts.Pins != nil {
			d := m.def(t)
			m.opts.Pins.Check(ctx, m.g, &d.def, d.hash)
		}
		if m.opts.HideTools && m.never(p, t.Name) {
			continue
		}
		out = append(out, t)
	}
	return out
}

// never reports whether no call to tool by p can be allowed now.
func (m *guard) never(p agentguard.Principal, tool string) bool {
	return mcpproxy.Hidden(m.g, m.opts.KillSwitch, p, tool)
}

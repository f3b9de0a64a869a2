// Package agentguardmcpgo guards the tools of MCP servers built with
// github.com/mark3labs/mcp-go: one middleware checks every tools/call
// with an agentguard.Guard.
//
//	s := server.NewMCPServer("shop", "1.0",
//		server.WithToolHandlerMiddleware(agentguardmcpgo.Middleware(g, agentguardmcpgo.Options{})))
//
// It is the same contract as the go-sdk integration
// (github.com/hardstop-labs/agentguard/integrations/mcp): the policy sees
// the tool's name, its raw arguments (never the request around them) and
// its annotations as labels (see mcpproxy.Tool.Labels); a refused call is
// a tool result with IsError (mcp.NewToolResultError) carrying the text the
// model reads and the JSON denial in _meta; the call is finished on every
// path. The adapter decides nothing itself. A call the policy sends for
// approval waits for the Guard's approver; ClientApprover asks the
// client's user through the protocol (elicitation) when the configuration
// trusts the client to (elicitation, or an input-required round trip on
// 2026-07-28).
package agentguardmcpgo

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Options configures Middleware and ToolFilter. The zero value guards
// every call with the principal the client and the Guard give.
type Options struct {
	// Principal holds the principal fields the configuration fixes; a
	// principal in the context (agentguard.WithPrincipal) wins over them,
	// and they win over the client's own name (Agent). Nothing comes from
	// the arguments.
	Principal agentguard.Principal
	// Pins, when set, pins tool definitions on first sight and refuses the
	// calls of a tool whose definition changed until a person accepts it.
	Pins *mcpproxy.Pins
	// KillSwitch is the Guard's switch, for ToolFilter.
	KillSwitch *killswitch.Switch
}

// MetaDenial is the _meta key of the JSON denial in a refused call's result.
const MetaDenial = mcpproxy.MetaDenial

// Middleware returns a tool handler middleware that guards every call
// with g (install it with server.WithToolHandlerMiddleware or
// MCPServer.Use).
func Middleware(g *agentguard.Guard, opts Options) server.ToolHandlerMiddleware {
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			name := req.Params.Name
			var topts []agentguard.ToolOption
			srv := server.ServerFromContext(ctx)
			var st *server.ServerTool
			if srv != nil {
				st = srv.GetTool(name)
			}
			switch {
			case srv == nil:
				topts = []agentguard.ToolOption{agentguard.Hold("tool-definition", "the server's tool definitions could not be read")}
			case st == nil:
				topts = []agentguard.ToolOption{agentguard.Hold("tool-unlisted", "the server does not list this tool")}
			default:
				def := Definition(st.Tool)
				hash := def.Hash()
				topts = []agentguard.ToolOption{agentguard.Labels(def.Labels()...)}
				if opts.Pins != nil {
					if hold := opts.Pins.Check(ctx, g, &def, hash); hold != nil {
						topts = append(topts, hold)
					}
				}
			}
			raw := json.RawMessage(req.Params.RawArguments)
			if len(raw) == 0 && req.Params.Arguments != nil {
				b, err := json.Marshal(req.Params.Arguments)
				if err != nil {
					topts = append(topts, agentguard.Hold("arguments", "the arguments cannot be encoded as JSON"))
				}
				raw = b
			}
			c := &call{req: &req}
			pctx := context.WithValue(agentguard.WithPrincipal(ctx, principal(ctx, opts.Principal)), callKey{}, c)
			t, err := g.Check(pctx, name, raw, topts...)
			if err != nil {
				if c.input != nil { // ClientApprover asks the client first (2026-07-28)
					return c.input, nil
				}
				return DenialResult(err), nil
			}
			return mcpproxy.Run(t, func(ctx context.Context) (*mcp.CallToolResult, error) { return next(ctx, req) },
				resultError, DenialResult)
		}
	}
}

// ToolFilter returns a filter (server.WithToolFilter) that hides the tools
// g's policy can never allow and, with opts.KillSwitch, those a trip
// covers. mcp-go applies it to calls too: a hidden tool is refused as
// unknown and never runs.
func ToolFilter(g *agentguard.Guard, opts Options) server.ToolFilterFunc {
	return func(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
		p := principal(ctx, opts.Principal)
		out := tools[:0:0]
		for _, t := range tools {
			if !mcpproxy.Hidden(g, opts.KillSwitch, p, t.Name) {
				out = append(out, t)
			}
		}
		return out
	}
}

// Definition returns t as the wire has it, for its hash and its labels.
func Definition(t mcp.Tool) mcpproxy.Tool {
	d := mcpproxy.Tool{Name: t.Name, Description: t.Description}
	if b, err := json.Marshal(t); err == nil {
		var wire struct {
			InputSchema json.RawMessage `json:"inputSchema"`
			Annotations json.RawMessage `json:"annotations"`
		}
		if json.Unmarshal(b, &wire) == nil {
			d.InputSchema, d.Annotations = wire.InputSchema, wire.Annotations
		}
	}
	return d
}

// principal is the call's principal: the context's, the configured
// fields, the client's name as Agent and the session's ID.
func principal(ctx context.Context, fixed agentguard.Principal) agentguard.Principal {
	p, _ := agentguard.PrincipalFrom(ctx)
	fill(&p.Agent, fixed.Agent)
	fill(&p.Requester, fixed.Requester)
	fill(&p.Tenant, fixed.Tenant)
	fill(&p.Session, fixed.Session)
	if s := server.ClientSessionFromContext(ctx); s != nil {
		if ci, ok := s.(server.SessionWithClientInfo); ok {
			fill(&p.Agent, ci.GetClientInfo().Name)
		}
		fill(&p.Session, s.SessionID())
	}
	return p
}

func fill(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// DenialResult returns the tool result of a refused call: IsError, the
// denial's text, and its JSON under MetaDenial in _meta.
func DenialResult(err error) *mcp.CallToolResult {
	var d *agentguard.DeniedError
	if !errors.As(err, &d) {
		d = &agentguard.DeniedError{Code: agentguard.CodeInternal, Reason: "the guard failed", Needs: "a human to look at the guard's logs"}
	}
	res := mcp.NewToolResultError(d.Error())
	if j, jerr := json.Marshal(d); jerr == nil {
		res.Meta = mcp.NewMetaFromMap(map[string]any{MetaDenial: json.RawMessage(j)})
	}
	return res
}

// maxErrorText bounds the text of a tool's error result kept for the log.
const maxErrorText = 512

// resultError is the error a handler's answer stands for: its error, or
// the first text of an IsError result.
func resultError(res *mcp.CallToolResult, err error) error {
	if err != nil || res == nil || !res.IsError {
		return err
	}
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok && t.Text != "" {
			s := t.Text
			if len(s) > maxErrorText {
				s = s[:maxErrorText] + "..."
			}
			return errors.New(s)
		}
	}
	return errors.New("the tool returned an error result")
}

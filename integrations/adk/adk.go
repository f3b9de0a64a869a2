// Package guardadk guards every tool call of an ADK-Go agent
// (google.golang.org/adk) with one plugin: each call is checked, limited,
// approved, recorded and stoppable by the guard before the tool runs.
//
//	p, err := guardadk.Plugin(g)
//	r, err := runner.New(runner.Config{..., PluginConfig: runner.PluginConfig{Plugins: []*plugin.Plugin{p}}})
//
// A denial becomes the tool's response, {"error": "<the denial's text>"},
// so the model reads it; the tool does not run. Inside a tool,
// agentguard.Charge(tc, …) and agentguard.CallFrom(tc) accept ADK's
// tool.Context as it is, and agentguard.Context(tc) is the context that the
// kill switch cancels: a tool that passes it to its slow work ends when
// the switch is tripped, and the model reads the halt.
//
// ADK calls a tool on the agent's own goroutine, so a plugin cannot return
// before a tool that ignores its context does. For such a tool, guard the
// function itself instead of (or as well as) the agent: agentguard.Wrap
// takes ADK's tool.Context as it is, and a trip returns at once:
//
//	functiontool.New(cfg, agentguard.Wrap(g, "search", search, agentguard.Preemptive()))
//
// Every tool the model calls is guarded, ADK's own (transfer_to_agent,
// exit_loop) too: the policy must allow those it should.
package guardadk

import (
	"sync"

	"google.golang.org/adk/agent"
	"google.golang.org/adk/plugin"
	"google.golang.org/adk/tool"

	"github.com/hardstop-labs/agentguard"
)

// Plugin returns an ADK plugin named "agentguard" that guards every tool
// call with g, with opts for every tool. Its tool.Context's arguments are
// what the policy sees as call.args.
func Plugin(g *agentguard.Guard, opts ...agentguard.ToolOption) (*plugin.Plugin, error) {
	var tickets sync.Map // agent.ToolContext → *agentguard.Ticket, from before to after the tool
	return plugin.New(plugin.Config{
		Name: "agentguard",
		BeforeToolCallback: func(tc agent.ToolContext, t tool.Tool, args map[string]any) (map[string]any, error) {
			tk, err := g.Check(tc, t.Name(), args, opts...)
			if err != nil {
				return response(err), nil // the tool is skipped; the model reads the denial
			}
			tk.Bind(tc)
			tickets.Store(tc, tk)
			return nil, nil
		},
		// ADK runs the after-callbacks even for a tool the before-callback
		// skipped: only a call with a ticket is ours to finish.
		AfterToolCallback: func(tc agent.ToolContext, _ tool.Tool, _, result map[string]any, err error) (map[string]any, error) {
			v, ok := tickets.LoadAndDelete(tc)
			if !ok {
				return nil, nil
			}
			derr := v.(*agentguard.Ticket).Done(result, err)
			if d, ok := derr.(*agentguard.DeniedError); ok {
				if own, ok := err.(*agentguard.DeniedError); !ok || own != d {
					return response(d), nil // halted while it ran: its result is discarded
				}
			}
			return nil, nil
		},
	})
}

// response is the tool response the model reads for a denial.
func response(err error) map[string]any {
	return map[string]any{"error": err.Error()}
}

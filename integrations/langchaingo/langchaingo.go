// Package guardlangchaingo guards the tools of a langchaingo agent
// (github.com/tmc/langchaingo): Tools wraps every tools.Tool so that each
// call is checked, limited, approved, recorded and stoppable by the guard,
// in one line.
//
//	agent := agents.NewOneShotAgent(llm, guardlangchaingo.Tools(g, tools))
//
// langchaingo's executor ends the whole run on a tool error, so a denial is
// the tool's result, the denial's text, which the model reads as the
// observation; the tool does not run. The tool's own errors pass through.
// The policy sees an input that is a JSON object (the OpenAI functions
// agent's) as call.args (an input that starts with "{" must be valid
// JSON), and any other input as call.args.value. A kill
// switch trip during a call returns the halt at once, even when the tool
// ignores its context.
package guardlangchaingo

import (
	"bytes"
	"context"

	"github.com/tmc/langchaingo/tools"

	"github.com/hardstop-labs/agentguard"
)

// Tools returns tools, each guarded as the tool of its own Name with opts
// (Preemptive first; opts may say agentguard.Cooperative() instead).
func Tools(g *agentguard.Guard, ts []tools.Tool, opts ...agentguard.ToolOption) []tools.Tool {
	out := make([]tools.Tool, len(ts))
	for i, t := range ts {
		out[i] = Tool(g, t, opts...)
	}
	return out
}

// Tool returns t guarded as the tool of its own Name.
func Tool(g *agentguard.Guard, t tools.Tool, opts ...agentguard.ToolOption) tools.Tool {
	opts = append([]agentguard.ToolOption{agentguard.Preemptive()}, opts...)
	opts = append(opts, agentguard.DenyAsValue())
	return &tool{
		Tool:  t,
		text:  agentguard.Wrap(g, t.Name(), t.Call, opts...),
		jsonc: agentguard.WrapJSON(g, t.Name(), t.Call, opts...),
	}
}

type tool struct {
	tools.Tool
	text  func(context.Context, string) (string, error) // the policy sees call.args.value
	jsonc func(context.Context, string) (string, error) // the policy sees the object's fields
}

// Call runs the call through the guard.
func (t *tool) Call(ctx context.Context, input string) (string, error) {
	if in := bytes.TrimSpace([]byte(input)); len(in) > 0 && in[0] == '{' {
		return t.jsonc(ctx, input)
	}
	return t.text(ctx, input)
}

// Package guardanthropic guards the tools of an Anthropic tool runner
// (github.com/anthropics/anthropic-sdk-go): Tools wraps every BetaTool so
// that each call is checked, limited, approved, recorded and stoppable by
// the guard, in one line.
//
//	runner := client.Beta.Messages.NewToolRunner(guardanthropic.Tools(g, tools), params)
//
// A denial is the tool's error, which the runner sends to the model as a
// tool_result with is_error and the denial's text. A kill switch trip
// during a call ends it at once, even when the tool ignores its context.
package guardanthropic

import (
	"context"
	"encoding/json"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/hardstop-labs/agentguard"
)

// Tools returns tools, each guarded as the tool of its own Name with opts
// (see agentguard.WrapJSON: the policy sees the input object as
// call.args).
func Tools(g *agentguard.Guard, tools []anthropic.BetaTool, opts ...agentguard.ToolOption) []anthropic.BetaTool {
	out := make([]anthropic.BetaTool, len(tools))
	for i, t := range tools {
		out[i] = Tool(g, t, opts...)
	}
	return out
}

// Tool returns t guarded as the tool of its own Name. It is Preemptive: a
// trip of the kill switch returns at once, whatever the tool does (opts may
// say agentguard.Cooperative() instead).
func Tool(g *agentguard.Guard, t anthropic.BetaTool, opts ...agentguard.ToolOption) anthropic.BetaTool {
	opts = append([]agentguard.ToolOption{agentguard.Preemptive()}, opts...)
	return &tool{BetaTool: t, exec: agentguard.WrapJSON(g, t.Name(), t.Execute, opts...)}
}

type tool struct {
	anthropic.BetaTool
	exec func(context.Context, json.RawMessage) ([]anthropic.BetaToolResultBlockParamContentUnion, error)
}

// Execute runs the call through the guard.
func (t *tool) Execute(ctx context.Context, input json.RawMessage) ([]anthropic.BetaToolResultBlockParamContentUnion, error) {
	return t.exec(ctx, input)
}

// Package guardgenkit defines Genkit tools (github.com/firebase/genkit/go)
// whose every call is checked, limited, approved, recorded and stoppable
// by the guard: DefineTool takes what genkit.DefineTool takes, plus the
// guard.
//
//	weather := guardgenkit.DefineTool(gk, g, "get_weather", "…", getWeather)
//
// Genkit ends the whole generation on a tool error, so a denial is the
// tool's output, {"error": "<the denial's text>"}, which the model reads;
// the tool does not run. The tool's own errors pass through. Inside the
// tool, the *ai.ToolContext carries the guarded context: the kill switch
// cancels it, and agentguard.Charge and agentguard.CallFrom accept it. A
// trip during a call returns the halt at once, even when the tool ignores
// its context.
//
// The tools are Genkit multipart tools (their output is the tool's Out,
// or the denial), so a denial needs no field in the tool's own Out type.
package guardgenkit

import (
	"github.com/firebase/genkit/go/ai"
	"github.com/firebase/genkit/go/genkit"

	"github.com/hardstop-labs/agentguard"
)

// DefineTool defines fn as the Genkit tool name, registered with gk and
// guarded by g with opts.
func DefineTool[In, Out any](gk *genkit.Genkit, g *agentguard.Guard, name, description string, fn ai.ToolFunc[In, Out], opts ...agentguard.ToolOption) *ai.ToolDef[In, *ai.MultipartToolResponse] {
	return genkit.DefineMultipartTool(gk, name, description, Guard(g, name, fn, opts...))
}

// NewTool is DefineTool for a tool that is not registered: pass it to
// genkit.Generate with ai.WithTools.
func NewTool[In, Out any](g *agentguard.Guard, name, description string, fn ai.ToolFunc[In, Out], opts ...agentguard.ToolOption) *ai.ToolDef[In, *ai.MultipartToolResponse] {
	return ai.NewMultipartTool(name, description, Guard(g, name, fn, opts...))
}

// Guard returns fn guarded as the tool name, as a multipart tool function
// whose output is fn's, or the denial as {"error": text}. It is
// Preemptive: a trip of the kill switch returns at once, whatever the tool
// does (opts may say agentguard.Cooperative() instead).
func Guard[In, Out any](g *agentguard.Guard, name string, fn ai.ToolFunc[In, Out], opts ...agentguard.ToolOption) ai.MultipartToolFunc[In] {
	opts = append([]agentguard.ToolOption{agentguard.Preemptive()}, opts...)
	return agentguard.Wrap(g, name, func(tc *ai.ToolContext, in In) (*ai.MultipartToolResponse, error) {
		out, err := fn(tc, in)
		if err != nil {
			return nil, err
		}
		return &ai.MultipartToolResponse{Output: out}, nil
	}, append(opts, agentguard.DenyAs(Denial))...)
}

// Denial is the output a denied call returns to the model.
func Denial(d *agentguard.DeniedError) *ai.MultipartToolResponse {
	return &ai.MultipartToolResponse{Output: map[string]any{"error": d.Error()}}
}

// Package guardeino guards every tool call of an Eino agent or tools node
// (github.com/cloudwego/eino) with one tool middleware: each call is
// checked, limited, approved, recorded and stoppable by the guard before
// the tool runs.
//
//	ToolsConfig: compose.ToolsNodeConfig{
//		Tools:               tools,
//		ToolCallMiddlewares: []compose.ToolMiddleware{guardeino.Middleware(g)},
//	}
//
// Eino ends the whole run on a tool error, so a denial is returned as the
// tool's result, the denial's text, which the model reads; the tool does
// not run. A kill switch trip during a call returns the halt at once, even
// when the tool ignores its context. The policy sees the call's JSON
// arguments as call.args. A streaming tool's output is read whole before
// it is handed on, so that the guard records its result and a trip can
// stop it.
package guardeino

import (
	"context"
	"errors"
	"io"

	"github.com/cloudwego/eino/compose"
	"github.com/cloudwego/eino/schema"

	"github.com/hardstop-labs/agentguard"
)

// Middleware returns the tool middleware that guards every call with g,
// with opts for every tool, for invokable, streaming and enhanced tools
// alike. The tools are Preemptive: a trip of the kill switch returns at
// once, whatever the tool does (opts may say agentguard.Cooperative()
// instead).
func Middleware(g *agentguard.Guard, opts ...agentguard.ToolOption) compose.ToolMiddleware {
	opts = append([]agentguard.ToolOption{agentguard.Preemptive()}, opts...)
	return compose.ToolMiddleware{
		Invokable: func(next compose.InvokableToolEndpoint) compose.InvokableToolEndpoint {
			return func(ctx context.Context, in *compose.ToolInput) (*compose.ToolOutput, error) {
				return guard(g, ctx, in, next, func(d *agentguard.DeniedError) *compose.ToolOutput {
					return &compose.ToolOutput{Result: d.Error()}
				}, opts)
			}
		},
		Streamable: func(next compose.StreamableToolEndpoint) compose.StreamableToolEndpoint {
			return func(ctx context.Context, in *compose.ToolInput) (*compose.StreamToolOutput, error) {
				return guard(g, ctx, in, buffered(next, func(o *compose.StreamToolOutput) *schema.StreamReader[string] { return o.Result },
					func(r *schema.StreamReader[string]) *compose.StreamToolOutput {
						return &compose.StreamToolOutput{Result: r}
					}),
					func(d *agentguard.DeniedError) *compose.StreamToolOutput {
						return &compose.StreamToolOutput{Result: schema.StreamReaderFromArray([]string{d.Error()})}
					}, opts)
			}
		},
		EnhancedInvokable: func(next compose.EnhancedInvokableToolEndpoint) compose.EnhancedInvokableToolEndpoint {
			return func(ctx context.Context, in *compose.ToolInput) (*compose.EnhancedInvokableToolOutput, error) {
				return guard(g, ctx, in, next, func(d *agentguard.DeniedError) *compose.EnhancedInvokableToolOutput {
					return &compose.EnhancedInvokableToolOutput{Result: text(d)}
				}, opts)
			}
		},
		EnhancedStreamable: func(next compose.EnhancedStreamableToolEndpoint) compose.EnhancedStreamableToolEndpoint {
			return func(ctx context.Context, in *compose.ToolInput) (*compose.EnhancedStreamableToolOutput, error) {
				return guard(g, ctx, in, buffered(next, func(o *compose.EnhancedStreamableToolOutput) *schema.StreamReader[*schema.ToolResult] {
					return o.Result
				},
					func(r *schema.StreamReader[*schema.ToolResult]) *compose.EnhancedStreamableToolOutput {
						return &compose.EnhancedStreamableToolOutput{Result: r}
					}),
					func(d *agentguard.DeniedError) *compose.EnhancedStreamableToolOutput {
						return &compose.EnhancedStreamableToolOutput{Result: schema.StreamReaderFromArray([]*schema.ToolResult{text(d)})}
					}, opts)
			}
		},
	}
}

// guard runs one call of the tool in.Name through the guard, the denial
// made into a result by deny.
func guard[Out any](g *agentguard.Guard, ctx context.Context, in *compose.ToolInput, next func(context.Context, *compose.ToolInput) (Out, error), deny func(*agentguard.DeniedError) Out, opts []agentguard.ToolOption) (Out, error) {
	run := agentguard.WrapJSON(g, in.Name, func(ctx context.Context, args string) (Out, error) {
		call := *in
		call.Arguments = args
		return next(ctx, &call)
	}, append(opts[:len(opts):len(opts)], agentguard.DenyAs(deny))...)
	return run(ctx, in.Arguments)
}

// buffered reads a streaming tool's whole output inside the guarded call
// and hands it on as a stream.
func buffered[Out, T any](next func(context.Context, *compose.ToolInput) (Out, error), reader func(Out) *schema.StreamReader[T], wrap func(*schema.StreamReader[T]) Out) func(context.Context, *compose.ToolInput) (Out, error) {
	return func(ctx context.Context, in *compose.ToolInput) (Out, error) {
		out, err := next(ctx, in)
		if err != nil {
			return out, err
		}
		r := reader(out)
		if r == nil {
			return out, nil
		}
		defer r.Close()
		var items []T
		for {
			v, err := r.Recv()
			if errors.Is(err, io.EOF) {
				return wrap(schema.StreamReaderFromArray(items)), nil
			}
			if err != nil {
				var zero Out
				return zero, err
			}
			items = append(items, v)
		}
	}
}

func text(d *agentguard.DeniedError) *schema.ToolResult {
	return &schema.ToolResult{Parts: []schema.ToolOutputPart{{Type: schema.ToolPartTypeText, Text: d.Error()}}}
}

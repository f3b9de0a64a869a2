// Package guardopenai guards the tool calls of an OpenAI chat-completions
// or Responses loop (github.com/openai/openai-go): one Dispatch turns the
// model's tool calls into the tool messages to send back, each call
// checked, limited, approved, recorded and stoppable by the guard.
//
//	tools := guardopenai.New(g, map[string]guardopenai.Func{"get_weather": getWeather})
//	...
//	params.Messages = append(params.Messages, tools.Dispatch(ctx, msg.ToolCalls)...)
//
// A denial comes back as the tool message's content (the denial text,
// written for the model), never as an error the model does not see. A
// tool's own error is sent as "error: " and its text. A kill switch trip
// during a call returns its message at once, even when the tool ignores
// its context.
package guardopenai

import (
	"context"
	"errors"
	"fmt"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/hardstop-labs/agentguard"
)

// Func is a tool as OpenAI delivers its calls: the arguments as the JSON
// text the model wrote. Its result is the tool message's content.
type Func func(ctx context.Context, arguments string) (string, error)

// Tools is a set of guarded tools. It is safe for concurrent use.
type Tools struct {
	funcs map[string]Func
}

// New guards each of funcs as the tool of its key, with opts for every one
// (see agentguard.WrapJSON). The tools are Preemptive: a trip of the kill
// switch returns at once, whatever the tool does (opts may say
// agentguard.Cooperative() instead).
func New(g *agentguard.Guard, funcs map[string]Func, opts ...agentguard.ToolOption) *Tools {
	opts = append([]agentguard.ToolOption{agentguard.Preemptive()}, opts...)
	t := &Tools{funcs: make(map[string]Func, len(funcs))}
	for name, fn := range funcs {
		t.funcs[name] = agentguard.WrapJSON(g, name, fn, opts...)
	}
	return t
}

// Run runs the tool named name with arguments and returns the content to
// send back to the model: the tool's result, its error as "error: …", or
// the guard's denial. A name that is not one of the tools runs nothing.
func (t *Tools) Run(ctx context.Context, name, arguments string) string {
	fn, ok := t.funcs[name]
	if !ok {
		return fmt.Sprintf("error: there is no tool named %q", name)
	}
	out, err := fn(ctx, arguments)
	var d *agentguard.DeniedError
	switch {
	case errors.As(err, &d):
		return d.Error()
	case err != nil:
		return "error: " + err.Error()
	}
	return out
}

// Call runs one chat-completions tool call and returns its tool message.
func (t *Tools) Call(ctx context.Context, call openai.ChatCompletionMessageToolCallUnion) openai.ChatCompletionMessageParamUnion {
	if call.Type == "custom" {
		return openai.ToolMessage(fmt.Sprintf("error: custom tool %q is not one of the guarded tools", call.Custom.Name), call.ID)
	}
	return openai.ToolMessage(t.Run(ctx, call.Function.Name, call.Function.Arguments), call.ID)
}

// Dispatch runs the calls in order and returns their tool messages, to
// append to the conversation.
func (t *Tools) Dispatch(ctx context.Context, calls []openai.ChatCompletionMessageToolCallUnion) []openai.ChatCompletionMessageParamUnion {
	msgs := make([]openai.ChatCompletionMessageParamUnion, 0, len(calls))
	for _, c := range calls {
		msgs = append(msgs, t.Call(ctx, c))
	}
	return msgs
}

// CallResponse runs one Responses API function call and returns its
// function_call_output item, to add to the next request's input.
func (t *Tools) CallResponse(ctx context.Context, call responses.ResponseFunctionToolCall) responses.ResponseInputItemUnionParam {
	item := responses.ResponseInputItemParamOfFunctionCallOutput(t.Run(ctx, call.Name, call.Arguments))
	item.OfFunctionCallOutput.CallID = openai.String(call.CallID)
	return item
}

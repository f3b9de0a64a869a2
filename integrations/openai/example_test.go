package guardopenai_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/hardstop-labs/agentguard/integrations/adaptertest"
	guardopenai "github.com/hardstop-labs/agentguard/integrations/openai"
)

// An OpenAI tool loop, guarded in one line, against a fake model on
// loopback: the model asks for two tools; one runs, the other is denied,
// and the model reads the denial as the tool's message.
func Example() {
	g := adaptertest.ExampleGuard() // a real program: agentguard.New(agentguard.WithPolicyFile(...), ...)
	defer g.Close()
	tools := guardopenai.New(g, map[string]guardopenai.Func{
		"read_weather":   func(context.Context, string) (string, error) { return "sunny in Paris", nil },
		"delete_account": func(context.Context, string) (string, error) { return "deleted", nil },
	})

	model := httptest.NewServer(&fakeModel{calls: []string{"read_weather", "delete_account"}, seen: map[string]string{}})
	defer model.Close()
	client := openai.NewClient(option.WithBaseURL(model.URL), option.WithAPIKey("none"))

	ctx := context.Background()
	params := openai.ChatCompletionNewParams{Model: "fake", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("weather, then delete me")}}
	for {
		resp, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			panic(err)
		}
		msg := resp.Choices[0].Message
		if len(msg.ToolCalls) == 0 {
			fmt.Println(msg.Content) // the fake model repeats what it was sent
			return
		}
		params.Messages = append(params.Messages, msg.ToParam())
		params.Messages = append(params.Messages, tools.Dispatch(ctx, msg.ToolCalls)...) // the guard
	}
	// Output:
	// sunny in Paris
	// agentguard: call to tool "delete_account" was not run (policy_denied): no rule matched; the policy's default is deny. It needs a human: the policy does not allow this call. Retrying will not help. Do not try to work around this; tell the user and ask a human to decide.
}

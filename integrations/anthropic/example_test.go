package guardanthropic_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/hardstop-labs/agentguard/integrations/adaptertest"
	guardanthropic "github.com/hardstop-labs/agentguard/integrations/anthropic"
)

// An Anthropic tool runner, its tools guarded in one line, against a fake
// model on loopback: one call runs, the other is denied, and the model
// gets the denial as a tool_result with is_error.
func Example() {
	g := adaptertest.ExampleGuard() // a real program: agentguard.New(agentguard.WithPolicyFile(...), ...)
	defer g.Close()
	tools := []anthropic.BetaTool{
		textTool("read_weather", func(city string) string { return "sunny in " + city }),
		textTool("delete_account", func(string) string { return "deleted" }),
	}

	fake := &fakeModel{calls: []string{"read_weather", "delete_account"}, seen: map[string]result{}}
	model := httptest.NewServer(fake)
	defer model.Close()
	client := anthropic.NewClient(option.WithBaseURL(model.URL), option.WithAPIKey("none"))
	runner := client.Beta.Messages.NewToolRunner(guardanthropic.Tools(g, tools), anthropic.BetaToolRunnerParams{ // the guard
		BetaMessageNewParams: anthropic.BetaMessageNewParams{Model: "fake", MaxTokens: 256,
			Messages: []anthropic.BetaMessageParam{anthropic.NewBetaUserMessage(anthropic.NewBetaTextBlock("weather, then delete me"))}},
	})
	if _, err := runner.RunToCompletion(context.Background()); err != nil {
		panic(err)
	}
	for _, id := range []string{"toolu_0", "toolu_1"} {
		fmt.Printf("is_error=%v %s\n", fake.seen[id].IsError, fake.seen[id].Text)
	}
	// Output:
	// is_error=false sunny in Paris
	// is_error=true Error: agentguard: call to tool "delete_account" was not run (policy_denied): no rule matched; the policy's default is deny. It needs a human: the policy does not allow this call. Retrying will not help. Do not try to work around this; tell the user and ask a human to decide.
}

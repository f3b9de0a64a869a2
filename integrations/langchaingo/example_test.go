package guardlangchaingo_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/tmc/langchaingo/agents"
	"github.com/tmc/langchaingo/chains"
	"github.com/tmc/langchaingo/tools"

	"github.com/hardstop-labs/agentguard/integrations/adaptertest"
	guardlangchaingo "github.com/hardstop-labs/agentguard/integrations/langchaingo"
)

// A langchaingo agent whose tools are guarded in one line, against a fake
// model: one call runs, the other is denied, and the model reads the
// denial as the observation (the executor would end the run on an error).
func Example() {
	g := adaptertest.ExampleGuard() // a real program: agentguard.New(agentguard.WithPolicyFile(...), ...)
	defer g.Close()
	ts := []tools.Tool{
		textTool{"read_weather", func(city string) string { return "sunny in " + city }},
		textTool{"delete_account", func(string) string { return "deleted" }},
	}
	fake := &fakeModel{script: []string{"read_weather|Paris", "delete_account|bob"}}
	agent := agents.NewOneShotAgent(fake, guardlangchaingo.Tools(g, ts)) // the guard
	if _, err := chains.Run(context.Background(), agents.NewExecutor(agent), "weather, then delete me"); err != nil {
		panic(err)
	}
	for _, line := range strings.Split(fake.last, "\n") {
		if strings.HasPrefix(line, "Observation: ") && line != "Observation: the result of the action" { // not the prompt's template
			fmt.Println(line)
		}
	}
	// Output:
	// Observation: sunny in Paris
	// Observation: agentguard: call to tool "delete_account" was not run (policy_denied): no rule matched; the policy's default is deny. It needs a human: the policy does not allow this call. Retrying will not help. Do not try to work around this; tell the user and ask a human to decide.
}

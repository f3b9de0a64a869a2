package guardgenkit_test

import (
	"context"
	"fmt"

	"github.com/firebase/genkit/go/ai"
	"github.com/firebase/genkit/go/genkit"

	"github.com/hardstop-labs/agentguard/integrations/adaptertest"
	guardgenkit "github.com/hardstop-labs/agentguard/integrations/genkit"
)

// Genkit tools defined through the guard, against a fake model: one call
// runs, the other is denied, and the model reads the denial as the tool's
// output (Genkit would end the generation on an error).
func Example() {
	g := adaptertest.ExampleGuard() // a real program: agentguard.New(agentguard.WithPolicyFile(...), ...)
	defer g.Close()
	ctx := context.Background()
	gk := genkit.Init(ctx)
	weather := guardgenkit.DefineTool(gk, g, "read_weather", "the weather", func(_ *ai.ToolContext, in cityArgs) (reply, error) { // the guard
		return reply{"sunny in " + in.City}, nil
	})
	del := guardgenkit.DefineTool(gk, g, "delete_account", "delete", func(*ai.ToolContext, cityArgs) (reply, error) {
		return reply{"deleted"}, nil
	})

	fake := &fakeModel{calls: []string{"read_weather", "delete_account"}, seen: map[string]string{}}
	model := genkit.DefineModel(gk, "fake/model", &ai.ModelOptions{Supports: &ai.ModelSupports{Tools: true, Multiturn: true}}, fake.generate)
	if _, err := genkit.Generate(ctx, gk, ai.WithModel(model), ai.WithPrompt("weather, then delete me"), ai.WithTools(weather, del)); err != nil {
		panic(err)
	}
	fmt.Println(fake.seen["ref_0"])
	fmt.Println(fake.seen["ref_1"])
	// Output:
	// {"text":"sunny in Paris"}
	// {"error":"agentguard: call to tool \"delete_account\" was not run (policy_denied): no rule matched; the policy's default is deny. It needs a human: the policy does not allow this call. Retrying will not help. Do not try to work around this; tell the user and ask a human to decide."}
}

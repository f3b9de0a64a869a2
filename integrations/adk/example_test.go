package guardadk_test

import (
	"context"
	"fmt"

	"google.golang.org/adk/agent"
	"google.golang.org/adk/agent/llmagent"
	"google.golang.org/adk/plugin"
	"google.golang.org/adk/runner"
	"google.golang.org/adk/session"
	"google.golang.org/adk/tool"
	"google.golang.org/adk/tool/functiontool"
	"google.golang.org/genai"

	"github.com/hardstop-labs/agentguard/integrations/adaptertest"
	guardadk "github.com/hardstop-labs/agentguard/integrations/adk"
)

// An ADK agent whose every tool call is guarded by one plugin, against a
// fake model: one call runs, the other is denied, and the model reads the
// denial as the tool's response.
func Example() {
	g := adaptertest.ExampleGuard() // a real program: agentguard.New(agentguard.WithPolicyFile(...), ...)
	defer g.Close()
	weather, _ := functiontool.New(functiontool.Config{Name: "read_weather", Description: "the weather"},
		func(_ tool.Context, in cityArgs) (reply, error) { return reply{"sunny in " + in.City}, nil })
	del, _ := functiontool.New(functiontool.Config{Name: "delete_account", Description: "delete"},
		func(tool.Context, cityArgs) (reply, error) { return reply{"deleted"}, nil })

	fake := &fakeModel{calls: []string{"read_weather", "delete_account"}, seen: map[string]map[string]any{}}
	a, err := llmagent.New(llmagent.Config{Name: "helper", Model: fake, Tools: []tool.Tool{weather, del}})
	if err != nil {
		panic(err)
	}
	guard, err := guardadk.Plugin(g)
	if err != nil {
		panic(err)
	}
	r, err := runner.New(runner.Config{AppName: "example", Agent: a, SessionService: session.InMemoryService(), AutoCreateSession: true,
		PluginConfig: runner.PluginConfig{Plugins: []*plugin.Plugin{guard}}}) // the guard
	if err != nil {
		panic(err)
	}
	for _, err := range r.Run(context.Background(), "user", "s1", genai.NewContentFromText("weather, then delete me", genai.RoleUser), agent.RunConfig{}) {
		if err != nil {
			panic(err)
		}
	}
	fmt.Println(fake.seen["fc_0"])
	fmt.Println(fake.seen["fc_1"])
	// Output:
	// map[text:sunny in Paris]
	// map[error:agentguard: call to tool "delete_account" was not run (policy_denied): no rule matched; the policy's default is deny. It needs a human: the policy does not allow this call. Retrying will not help. Do not try to work around this; tell the user and ask a human to decide.]
}

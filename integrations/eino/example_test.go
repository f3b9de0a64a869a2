package guardeino_test

import (
	"context"
	"fmt"

	"github.com/cloudwego/eino/components/tool"
	"github.com/cloudwego/eino/components/tool/utils"
	"github.com/cloudwego/eino/compose"
	"github.com/cloudwego/eino/flow/agent/react"
	"github.com/cloudwego/eino/schema"

	"github.com/hardstop-labs/agentguard/integrations/adaptertest"
	guardeino "github.com/hardstop-labs/agentguard/integrations/eino"
)

// An Eino ReAct agent whose every tool call is guarded by one middleware,
// against a fake model: one call runs, the other is denied, and the model
// reads the denial as the tool's result (Eino would end the run on an
// error).
func Example() {
	g := adaptertest.ExampleGuard() // a real program: agentguard.New(agentguard.WithPolicyFile(...), ...)
	defer g.Close()
	weather, _ := utils.InferTool("read_weather", "the weather", func(_ context.Context, in cityArgs) (string, error) { return "sunny in " + in.City, nil })
	del, _ := utils.InferTool("delete_account", "delete", func(context.Context, cityArgs) (string, error) { return "deleted", nil })

	ctx := context.Background()
	fake := &fakeModel{calls: []string{"read_weather", "delete_account"}, seen: map[string]string{}}
	agent, err := react.NewAgent(ctx, &react.AgentConfig{
		ToolCallingModel: fake,
		ToolsConfig: compose.ToolsNodeConfig{
			Tools:               []tool.BaseTool{weather, del},
			ToolCallMiddlewares: []compose.ToolMiddleware{guardeino.Middleware(g)}, // the guard
		},
	})
	if err != nil {
		panic(err)
	}
	if _, err := agent.Generate(ctx, []*schema.Message{schema.UserMessage("weather, then delete me")}); err != nil {
		panic(err)
	}
	fmt.Println(fake.seen["call_0"])
	fmt.Println(fake.seen["call_1"])
	// Output:
	// sunny in Paris
	// agentguard: call to tool "delete_account" was not run (policy_denied): no rule matched; the policy's default is deny. It needs a human: the policy does not allow this call. Retrying will not help. Do not try to work around this; tell the user and ask a human to decide.
}

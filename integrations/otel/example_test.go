package guardotel_test

import (
	"context"
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hardstop-labs/agentguard"
	guardotel "github.com/hardstop-labs/agentguard/integrations/otel"
	"github.com/hardstop-labs/agentguard/policy"
)

// The guard's decisions as spans: one per guarded call, with the GenAI
// attributes and the guard's. A real program passes its own providers (or
// none, for the global ones) and exports them.
func Example() {
	spans := tracetest.NewSpanRecorder()
	obs, err := guardotel.New(guardotel.Options{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))})
	if err != nil {
		panic(err)
	}
	pol, _ := policy.Parse("policy.yaml", []byte("version: 1\ndefault: deny\n"))
	g, err := agentguard.New(agentguard.WithPolicy(pol), agentguard.WithObserver(obs)) // the observer
	if err != nil {
		panic(err)
	}
	defer g.Close()
	del := agentguard.Wrap(g, "delete_account", func(context.Context, string) (string, error) { return "deleted", nil })
	del(context.Background(), "bob")

	s := spans.Ended()[0]
	fmt.Println(s.Name(), s.Status().Code)
	for _, a := range s.Attributes() {
		switch a.Key {
		case "gen_ai.tool.name", "agentguard.effect", "agentguard.code", "agentguard.stage":
			fmt.Printf("  %s=%s\n", a.Key, a.Value.Emit())
		}
	}
	// Output:
	// execute_tool delete_account Error
	//   gen_ai.tool.name=delete_account
	//   agentguard.effect=deny
	//   agentguard.code=policy_denied
	//   agentguard.stage=policy
}

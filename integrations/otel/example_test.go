package guardotel_test

import (
	"context"
	"fmt"

	"github.com/hardstop-labs/agentguard"
	guardotel "github.com/hardstop-labs/agentguard/integrations/otel"
	"github.com/hardstop-labs/agentguard/policy"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// The Observer is installed with WithObserver: each guarded call becomes
// an "execute_tool" span under the caller's span, with the guard's
// decision on it.
func ExampleNew() {
	spans := tracetest.NewSpanRecorder() // in production: an OTLP exporter
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	obs, err := guardotel.New(guardotel.Options{TracerProvider: tp}) // MeterProvider: the global one
	if err != nil {
		panic(err)
	}
	pol, _ := policy.Parse("policy.yaml", []byte("version: 1\nrules:\n  - name: reads\n    match: call.tool == \"read\"\n    effect: allow\n"))
	g, err := agentguard.New(agentguard.WithPolicy(pol), agentguard.WithObserver(obs))
	if err != nil {
		panic(err)
	}
	defer g.Close()
	read := agentguard.Wrap(g, "read", func(_ context.Context, path string) (string, error) { return "contents", nil })
	write := agentguard.Wrap(g, "write", func(_ context.Context, path string) (string, error) { return "written", nil })

	ctx, parent := tp.Tracer("my-agent").Start(context.Background(), "agent turn")
	read(ctx, "notes.txt")
	write(ctx, "notes.txt")
	parent.End()
	for _, s := range spans.Ended() {
		if s.Parent().IsValid() {
			a := map[string]string{}
			for _, kv := range s.Attributes() {
				a[string(kv.Key)] = kv.Value.String()
			}
			fmt.Printf("%s: %s %s %s\n", s.Name(), a["agentguard.effect"], a["agentguard.code"], s.Status().Code)
		}
	}
	// Output:
	// execute_tool read: allow  Unset
	// execute_tool write: deny policy_denied Error
}

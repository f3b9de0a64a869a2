package guardotel_test

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hardstop-labs/agentguard"
	guardotel "github.com/hardstop-labs/agentguard/integrations/otel"
	"github.com/hardstop-labs/agentguard/policy"
)

// BenchmarkObserver is what the observer adds to an allowed guarded call:
// none (the baseline), on OpenTelemetry's no-op providers (the globals
// when no SDK is installed), and on the SDK with every span sampled and
// kept in memory and the metrics aggregated.
func BenchmarkObserver(b *testing.B) {
	p, err := policy.Parse("p.yaml", []byte("version: 1\ndefault: allow\n"))
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, opts ...agentguard.Option) {
		g, err := agentguard.New(append([]agentguard.Option{agentguard.WithPolicy(p)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		f := agentguard.Wrap(g, "inc", func(_ context.Context, n int) (int, error) { return n + 1, nil })
		ctx := context.Background()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := f(ctx, i); err != nil {
				b.Fatal(err)
			}
		}
	}
	observer := func(b *testing.B, o guardotel.Options) agentguard.Option {
		obs, err := guardotel.New(o)
		if err != nil {
			b.Fatal(err)
		}
		return agentguard.WithObserver(obs)
	}
	b.Run("none", func(b *testing.B) { run(b) })
	b.Run("noop-providers", func(b *testing.B) { run(b, observer(b, guardotel.Options{})) })
	b.Run("sdk", func(b *testing.B) {
		spans := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		run(b, observer(b, guardotel.Options{TracerProvider: tp, MeterProvider: mp}))
	})
}

package agentguard_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/killswitch"
)

// BenchmarkStageCost measures what the kill switch and the budget stages
// (a rate limit and a cap with an estimate, as in bench's Stages) add to
// an allowed call: an allow-all policy, a recorder that keeps nothing,
// and each stage on or off. The differences are the stages' cost.
func BenchmarkStageCost(b *testing.B) {
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bench-bot", Tenant: "acme"})
	tool := func(context.Context, struct{}) (string, error) { return "ok", nil }
	limits := []budget.Limit{{Name: "calls", Per: budget.PerAgent, Rate: 1e9, Burst: 1 << 30}}
	caps := []budget.Cap{{Name: "daily", Per: budget.PerTenant, Limit: budget.Amount{Micros: budget.MaxMicros, Unit: "USD"}, Window: budget.Day(time.UTC)}}
	est := []agentguard.Cost{{Unit: "USD", Micros: 1000}}
	for _, tc := range []struct {
		name       string
		ks, budget bool
	}{{"none", false, false}, {"killswitch", true, false}, {"budget", false, true}, {"killswitch+budget", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			opts := []agentguard.Option{agentguard.WithPolicy(mustPolicy(b, "version: 1\ndefault: allow\n")), agentguard.WithRecorder(discardRecorder{})}
			if tc.ks {
				opts = append(opts, agentguard.WithKillSwitch(killswitch.New(killswitch.Options{})))
			}
			if tc.budget {
				opts = append(opts, agentguard.WithRateLimits(limits, budget.LimiterOptions{}), agentguard.WithBudget(caps, budget.Options{}))
			}
			g, err := agentguard.New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			call := agentguard.Wrap(g, "t", tool, agentguard.Estimate(est...))
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if _, err := call(ctx, struct{}{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime returns the process's CPU time (user and system) in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

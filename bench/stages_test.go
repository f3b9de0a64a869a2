package bench

import (
	"path/filepath"
	"testing"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

// BenchmarkStages adds the stages of Call/guarded-cooperative one at a
// time: the policy alone, then the audit log (sync never), the kill
// switch, and the rate limit with the budget cap. The differences are
// what each stage costs; see README.md.
func BenchmarkStages(b *testing.B) {
	pol, err := policy.Compile(policySpec(realisticRules))
	if err != nil {
		b.Fatal(err)
	}
	ctx := benchContext()
	auditFile := func(b *testing.B) agentguard.Option {
		return agentguard.WithAuditFile(filepath.Join(b.TempDir(), "audit.jsonl"), audit.Options{Sync: audit.SyncNever})
	}
	killSwitch := func(*testing.B) agentguard.Option {
		return agentguard.WithKillSwitch(killswitch.New(killswitch.Options{}))
	}
	limits := func(*testing.B) agentguard.Option {
		return agentguard.WithRateLimits(benchLimits, budget.LimiterOptions{})
	}
	caps := func(*testing.B) agentguard.Option { return agentguard.WithBudget(benchCaps, budget.Options{}) }
	steps := []struct {
		name string
		opts []func(*testing.B) agentguard.Option
	}{
		{"policy", nil},
		{"+audit", []func(*testing.B) agentguard.Option{auditFile}},
		{"+audit+killswitch", []func(*testing.B) agentguard.Option{auditFile, killSwitch}},
		{"+audit+killswitch+budget", []func(*testing.B) agentguard.Option{auditFile, killSwitch, limits, caps}},
	}
	for _, st := range steps {
		b.Run(st.name, func(b *testing.B) {
			opts := []agentguard.Option{agentguard.WithPolicy(pol), agentguard.WithEnv(benchEnv)}
			for _, o := range st.opts {
				opts = append(opts, o(b))
			}
			g, err := agentguard.New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { g.Close() })
			send := agentguard.Wrap(g, "send_email", sendEmail, agentguard.Estimate(estimate), agentguard.Cooperative())
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				if out, err := send(ctx, emailArgs); err != nil || out != "sent" {
					b.Fatalf("send = %q, %v", out, err)
				}
			}
			cpu.stop(b)
		})
	}
}

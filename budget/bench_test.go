package budget_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/hardstop-labs/agentguard/budget"
)

// BenchmarkReserveCommit reserves and commits against two caps (a global
// cap and a per-tenant daily cap) from parallel callers spread over 64
// tenants.
func BenchmarkReserveCommit(b *testing.B) {
	l := mustLedger(b, []budget.Cap{
		{Name: "global", Limit: budget.Amount{Micros: budget.MaxMicros, Unit: "USD"}},
		{Name: "tenant", Per: budget.PerTenant, Limit: budget.Amount{Micros: budget.MaxMicros, Unit: "USD"}, Window: budget.Day(nil)},
	}, budget.Options{})
	tenants := make([]budget.Subject, 64)
	for i := range tenants {
		tenants[i] = budget.Subject{Tenant: fmt.Sprint("tenant-", i), Agent: "bot", Tool: "llm"}
	}
	est := []budget.Amount{usd("0.01")}
	var next atomic.Int64
	var ids atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		s := tenants[next.Add(1)%int64(len(tenants))]
		for pb.Next() {
			r, err := l.Reserve(bg, budget.Request{ID: fmt.Sprint(ids.Add(1)), Subject: s, Estimate: est})
			if err != nil {
				b.Fatal(err)
			}
			if err := r.Commit(bg, est); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLimiterAllow admits calls under one per-agent limit from
// parallel callers spread over 1024 agents.
func BenchmarkLimiterAllow(b *testing.B) {
	l := mustLimiter(b, []budget.Limit{{Per: budget.PerAgent, Tools: []string{"llm"}, Rate: 1e9, Burst: 1 << 20}}, budget.LimiterOptions{})
	agents := make([]budget.Subject, 1024)
	for i := range agents {
		agents[i] = budget.Subject{Agent: fmt.Sprint("agent-", i), Tool: "llm"}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1)
		for pb.Next() {
			i++
			if err := l.AllowAt(t0, agents[i%int64(len(agents))]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

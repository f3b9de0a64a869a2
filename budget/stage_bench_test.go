package budget_test

import (
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/budget"
)

// BenchmarkGuardPath is what the guard's budget stages do per allowed
// call, from one goroutine: a rate limit per agent, then a reservation
// against a per-tenant daily cap, committed.
func BenchmarkGuardPath(b *testing.B) {
	lim := mustLimiter(b, []budget.Limit{{Name: "calls", Per: budget.PerAgent, Rate: 1e9, Burst: 1 << 30}}, budget.LimiterOptions{})
	led := mustLedger(b, []budget.Cap{{Name: "daily", Per: budget.PerTenant, Limit: budget.Amount{Micros: budget.MaxMicros, Unit: "USD"}, Window: budget.Day(time.UTC)}}, budget.Options{})
	s := budget.Subject{Agent: "bot", Tenant: "acme", Requester: "alice", Tool: "send_email"}
	est := []budget.Amount{usd("0.001")}
	at := t0
	b.Run("limit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			at = at.Add(time.Microsecond)
			if err := lim.AllowAt(at, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reserve+commit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			at = at.Add(time.Microsecond)
			r, err := led.ReserveAt(bg, at, budget.Request{ID: "call", Subject: s, Estimate: est})
			if err != nil {
				b.Fatal(err)
			}
			if err := r.CommitAt(bg, at, est); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reserveinto+commit", func(b *testing.B) {
		var r budget.Reservation
		b.ReportAllocs()
		for b.Loop() {
			at = at.Add(time.Microsecond)
			if err := led.ReserveInto(bg, at, &r, budget.Request{ID: "call", Subject: s, Estimate: est}); err != nil {
				b.Fatal(err)
			}
			if err := r.CommitAt(bg, at, est); err != nil {
				b.Fatal(err)
			}
		}
	})
}

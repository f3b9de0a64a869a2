package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

// benchGuard builds a guard with a cap, a rate limit, the kill switch
// (following a store) and an audit log, on the given stores.
func benchGuard(b *testing.B, ledger budget.Store, limits budget.LimitStore, kill killswitch.Store, log audit.Store) *agentguard.Guard {
	b.Helper()
	pol, err := policy.Parse("bench.yaml", []byte("version: 1\ndefault: allow\n"))
	if err != nil {
		b.Fatal(err)
	}
	al, err := audit.OpenStore(log, audit.StoreOptions{ID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	caps := []budget.Cap{{Name: "daily", Limit: budget.Amount{Unit: "USD", Micros: 1 << 60}, Window: budget.Day(time.UTC)}}
	lims := []budget.Limit{{Name: "calls", Rate: rate.Inf, Burst: 1 << 20}}
	g, err := agentguard.New(
		agentguard.WithPolicy(pol),
		agentguard.WithBudget(caps, budget.Options{Store: ledger}),
		agentguard.WithRateLimits(lims, budget.LimiterOptions{Store: limits}),
		agentguard.WithKillSwitch(killswitch.New(killswitch.Options{})),
		agentguard.WithKillStore(kill, time.Second, killswitch.StoreOptions{Stale: time.Minute}),
		agentguard.WithAuditStore(al),
	)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	return g
}

// BenchmarkGuardedCall is the latency of one allowed guarded call with a
// cap, a rate limit, the kill switch and the audit log, on the in-memory
// stores and on PostgreSQL: the difference is what the fleet costs a
// call. A call on PostgreSQL makes a reservation, a settle, a token take
// and two audit appends (decision and result), each a transaction; the
// kill switch costs nothing per call (it is pushed).
func BenchmarkGuardedCall(b *testing.B) {
	run := func(b *testing.B, g *agentguard.Guard) {
		tool := agentguard.Wrap(g, "t", func(ctx context.Context, n int) (int, error) { return n, nil },
			agentguard.Estimate(agentguard.Cost{Unit: "USD", Micros: 10}))
		ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot", Tenant: "acme"})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := tool(ctx, i); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("memory", func(b *testing.B) {
		run(b, benchGuard(b, budget.NewMem(), new(budget.MemLimits), new(killswitch.Mem), new(audit.MemStore)))
	})
	b.Run("postgres", func(b *testing.B) {
		db := testDB(b)
		run(b, benchGuard(b, db.Ledger(), db.Limits(), db.KillStore(), db.AuditStore()))
	})
}

// BenchmarkStores is the latency of each store's operation on PostgreSQL.
func BenchmarkStores(b *testing.B) {
	db := testDB(b)
	ctx := context.Background()
	// The floor: a round trip, and a durable commit of one row.
	b.Run("RoundTrip", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.pool.Exec(ctx, `SELECT 1`); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DurableCommit", func(b *testing.B) {
		ks := db.KillStore()
		for b.Loop() {
			if err := ks.Trip(ctx, killswitch.Halt{Scope: killswitch.Scope{Tool: "bench"}, Who: "b", Why: "b", At: time.Now()}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LedgerReserveSettle", func(b *testing.B) {
		l := db.Ledger()
		at := time.Now()
		for i := 0; b.Loop(); i++ {
			h := &budget.Hold{ID: fmt.Sprint("h", i), At: at, Deadline: at.Add(time.Hour),
				Entries: []budget.Entry{{Key: "a", Limit: 1 << 60, Amount: 1}, {Key: "b", Limit: 1 << 60, Amount: 1}}}
			if err := l.Reserve(ctx, h); err != nil {
				b.Fatal(err)
			}
			if err := l.Settle(ctx, h.ID, []int64{1, 1}, at); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LimitsTake", func(b *testing.B) {
		l := db.Limits()
		bs := []budget.Bucket{{Key: "k", Interval: time.Nanosecond, Burst: 1 << 20}}
		for b.Loop() {
			if _, _, err := l.Take(ctx, time.Now(), bs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AuditAppend", func(b *testing.B) {
		al, _ := audit.OpenStore(db.AuditStore(), audit.StoreOptions{ID: "bench"})
		for b.Loop() {
			if err := al.Append(ctx, &audit.Record{Kind: audit.KindDecision, Call: "c", Tool: "t"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

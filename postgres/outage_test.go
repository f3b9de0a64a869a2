package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

// fleetGuard builds a guard on the PostgreSQL stores of db: the ledger
// under one cap, the kill switch (stale after staleAfter), and the audit
// log "fleet".
func fleetGuard(t testing.TB, db *DB, staleAfter time.Duration) *agentguard.Guard {
	t.Helper()
	pol, err := policy.Parse("fleet.yaml", []byte("version: 1\ndefault: allow\n"))
	if err != nil {
		t.Fatal(err)
	}
	al, err := audit.OpenStore(db.AuditStore(), audit.StoreOptions{ID: "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	caps := []budget.Cap{{Name: "daily", Limit: budget.Amount{Unit: "USD", Micros: 1 << 50}, Window: budget.Day(time.UTC)}}
	g, err := agentguard.New(
		agentguard.WithPolicy(pol),
		agentguard.WithBudget(caps, budget.Options{Store: db.Ledger()}),
		agentguard.WithKillSwitch(killswitch.New(killswitch.Options{})),
		agentguard.WithKillStore(db.KillStore(), 50*time.Millisecond, killswitch.StoreOptions{Stale: staleAfter, Timeout: time.Second}),
		agentguard.WithAuditStore(al),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// The database becomes unreachable (every connection cut, new ones
// refused) in the middle of a run of two guards, each with a pool of its
// own as two processes would have: every call made while it is away is
// denied and never runs; every call that ran has its decision in the log;
// the guards recover when it is back; and the chain verifies.
func TestFleetOutage(t *testing.T) {
	dsn := testDSN(t)
	schema := testDB(t).Schema()
	proxy, pdsn := newCutProxy(t, dsn)
	var guards []*agentguard.Guard
	for range 2 {
		db, err := Open(context.Background(), pdsn, Options{Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		guards = append(guards, fleetGuard(t, db, 300*time.Millisecond))
	}
	type args struct{ ID string }
	var (
		phase        atomic.Int32 // 0 before the outage, 1 during, 2 after
		mu           sync.Mutex
		ran          []string // the IDs of the calls whose tool ran
		ok           [3]atomic.Int64
		deniedDuring atomic.Int64
		violations   []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for gi, g := range guards {
		tool := agentguard.Wrap(g, "charge", func(ctx context.Context, a args) (string, error) {
			mu.Lock()
			ran = append(ran, a.ID)
			mu.Unlock()
			return "ok", nil
		}, agentguard.Estimate(agentguard.Cost{Unit: "USD", Micros: 10}))
		for w := range 2 {
			wg.Go(func() {
				ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot", Tenant: "acme"})
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("g%d-w%d-%d", gi, w, i)
					p := phase.Load()
					cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					_, err := tool(cctx, args{ID: id})
					cancel()
					// A call that started during the outage but met the
					// database after it came back may run: its decision
					// was recorded. One that ended before it came back
					// must not.
					if p == 1 && phase.Load() != 1 {
						continue
					}
					switch {
					case p == 1 && err == nil:
						mu.Lock()
						violations = append(violations, id+" ran while the database was away")
						mu.Unlock()
					case p == 1:
						deniedDuring.Add(1)
					case err == nil:
						ok[p].Add(1)
					}
				}
			})
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("calls before the outage", func() bool { return ok[0].Load() >= 40 })
	proxy.Cut()
	phase.Store(1)
	waitFor("denials during the outage", func() bool { return deniedDuring.Load() >= 20 })
	// The phase changes first, so that a call that finds phase 1 never
	// meets a database that is back.
	phase.Store(2)
	proxy.Restore()
	waitFor("calls after the outage", func() bool { return ok[2].Load() >= 40 })
	close(stop)
	wg.Wait()
	for _, v := range violations {
		t.Error(v)
	}

	// The log, read straight from the database.
	db, err := Open(context.Background(), dsn, Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, _ := exportVerify(t, db, "fleet")
	decided := map[string]bool{}
	if err := db.AuditStore().Read(context.Background(), "fleet", 0, func(_ uint64, line []byte) error {
		r, err := audit.ParseRecord(line)
		if err != nil {
			return err
		}
		if r.Kind == audit.KindDecision && r.Decision == "allow" {
			if id, ok := r.Args["ID"].(string); ok {
				decided[id] = true
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, id := range ran {
		if !decided[id] {
			missing++
			if missing < 5 {
				t.Errorf("call %s ran, but its decision is not in the log", id)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d calls that ran have no decision in the log", missing, len(ran))
	}
	t.Logf("%d calls ran, %d denied during the outage; the chain of %d records verifies", len(ran), deniedDuring.Load(), rep.Records)
}

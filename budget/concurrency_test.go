package budget_test

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hardstop-labs/agentguard/budget"
)

// TestLedgerExactUnderContention starts 10,000 goroutines that each
// reserve a against caps of N·a (a global cap and a tenant cap) and commit
// what they reserved. Exactly N must succeed, and an observer reading the
// usage all along must never see spent plus reserved above the cap.
func TestLedgerExactUnderContention(t *testing.T) {
	for _, procs := range []int{1, 4} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			const (
				callers = 10_000
				n       = 1_234
			)
			a := usd("0.013")
			limit := budget.Amount{Micros: n * a.Micros, Unit: "USD"}
			l := mustLedger(t, []budget.Cap{
				{Name: "global", Limit: limit},
				{Name: "tenant", Per: budget.PerTenant, Limit: limit, Window: budget.Day(nil)},
			}, budget.Options{})
			s := budget.Subject{Tenant: "acme", Tool: "llm"}

			stop := make(chan struct{})
			var observed atomic.Int64
			var observer sync.WaitGroup
			observer.Add(1)
			go func() {
				defer observer.Done()
				for {
					us, err := l.Usage(bg, s)
					if err != nil {
						t.Errorf("Usage: %v", err)
						return
					}
					for _, u := range us {
						if used := u.Spent.Micros + u.Reserved.Micros; used > limit.Micros {
							t.Errorf("observer saw %s: spent %v + reserved %v > %v", u.Cap, u.Spent, u.Reserved, limit)
						}
					}
					observed.Add(1)
					select {
					case <-stop:
						return
					default:
						runtime.Gosched()
					}
				}
			}()

			var ok, refused atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					r, err := l.Reserve(bg, budget.Request{Subject: s, Estimate: []budget.Amount{a}})
					if err != nil {
						if !errors.Is(err, budget.ErrExceeded) {
							t.Errorf("Reserve: %v", err)
						}
						refused.Add(1)
						return
					}
					ok.Add(1)
					runtime.Gosched()
					if err := r.CommitAt(bg, t0, []budget.Amount{a}); err != nil {
						t.Errorf("Commit: %v", err)
					}
				}()
			}
			close(start)
			wg.Wait()
			close(stop)
			observer.Wait()
			if ok.Load() != n || refused.Load() != callers-n {
				t.Errorf("%d callers for room %d: %d reserved, %d refused", callers, n, ok.Load(), refused.Load())
			}
			us, err := l.Usage(bg, s)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range us {
				if u.Spent != limit || u.Reserved.Micros != 0 || u.Calls != n {
					t.Errorf("final usage of %s = %+v, want %v spent in %d calls", u.Cap, u, limit, n)
				}
			}
			if observed.Load() == 0 {
				t.Errorf("the observer never read the usage")
			}
		})
	}
}

// TestLedgerSharedMemLockOrder runs two ledgers on one Mem whose caps
// (the same accounts) come in opposite orders, from parallel callers: no
// deadlock, and exactly the cap is admitted.
func TestLedgerSharedMemLockOrder(t *testing.T) {
	const n = 500
	a := usd("0.01")
	limit := budget.Amount{Micros: n * a.Micros, Unit: "USD"}
	x := budget.Cap{Name: "x", Limit: limit}
	y := budget.Cap{Name: "y", Per: budget.PerTenant, Limit: budget.Amount{Micros: budget.MaxMicros, Unit: "USD"}}
	mem := budget.NewMem()
	l1 := mustLedger(t, []budget.Cap{x, y}, budget.Options{Store: mem})
	l2 := mustLedger(t, []budget.Cap{y, x}, budget.Options{Store: mem})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := l1
			if i%2 == 1 {
				l = l2
			}
			for j := range 2 * n / 8 {
				var r budget.Reservation
				err := l.ReserveInto(bg, t0, &r, budget.Request{ID: fmt.Sprint(i, "-", j), Subject: budget.Subject{Tenant: "acme"}, Estimate: []budget.Amount{a}})
				if err != nil {
					if !errors.Is(err, budget.ErrExceeded) {
						t.Errorf("ReserveInto: %v", err)
					}
					continue
				}
				ok.Add(1)
				if err := r.CommitAt(bg, t0, []budget.Amount{a}); err != nil {
					t.Errorf("Commit: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != n {
		t.Errorf("%d reservations admitted, want exactly %d", ok.Load(), n)
	}
	us, err := l2.UsageAt(bg, t0, budget.Subject{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.Spent.Micros != n*a.Micros || u.Calls != n {
			t.Errorf("%s: spent %v in %d calls, want %d calls of %v", u.Cap, u.Spent, u.Calls, n, a)
		}
	}
}

// TestLedgerReserveIntoAllocatesNothing: a reservation kept in the
// caller's state, committed, costs no allocation once its subject was
// seen.
func TestLedgerReserveIntoAllocatesNothing(t *testing.T) {
	l := mustLedger(t, []budget.Cap{
		{Name: "global", Limit: budget.Amount{Micros: budget.MaxMicros, Unit: "USD"}},
		{Name: "tenant", Per: budget.PerTenant, Limit: budget.Amount{Micros: budget.MaxMicros, Unit: "USD"}, Window: budget.Day(nil)},
	}, budget.Options{})
	est := []budget.Amount{usd("0.01")}
	req := budget.Request{ID: "call", Subject: budget.Subject{Tenant: "acme", Agent: "bot", Tool: "llm"}, Estimate: est}
	var r budget.Reservation
	n := testing.AllocsPerRun(1000, func() {
		if err := l.ReserveInto(bg, t0, &r, req); err != nil {
			t.Fatal(err)
		}
		if err := r.CommitAt(bg, t0, est); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("ReserveInto+Commit: %v allocations, want 0", n)
	}
	us, err := l.UsageAt(bg, t0, req.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if us[0].Calls < 1000 || us[0].Reserved.Micros != 0 {
		t.Errorf("usage after the loop: %+v", us[0])
	}
}

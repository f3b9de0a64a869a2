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
					if err := r.Commit(bg, []budget.Amount{a}); err != nil {
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

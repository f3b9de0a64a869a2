package budget_test

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// TestLedgerExactWithExpiry: parallel callers reserve, then commit,
// release or abandon their reservations while the clock passes holds'
// deadlines, so that expiry (by any caller touching the account) races
// with reservations and settles. The cap is never passed, and at the end
// every commit and every abandoned estimate is charged, exactly once.
func TestLedgerExactWithExpiry(t *testing.T) {
	const (
		workers = 8
		rounds  = 300
		amount  = 10
	)
	limit := budget.Amount{Micros: 600 * amount, Unit: "u"}
	clk := newClock(t0)
	l := mustLedger(t, []budget.Cap{
		{Name: "all", Limit: budget.Amount{Micros: budget.MaxMicros, Unit: "u"}},
		// A window that does not slide during the test: an observer's Usage
		// at a time before a reservation's would see more than a window.
		{Name: "tenant", Per: budget.PerTenant, Limit: limit, Window: budget.Hour()},
	}, budget.Options{Clock: clk.Now, Hold: 5 * time.Second})
	s := budget.Subject{Tenant: "acme", Tool: "x"}
	est := []budget.Amount{{Micros: amount, Unit: "u"}}
	var charged, calls, refused atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				// A reservation is reused only once settled: an abandoned
				// one stays held by the ledger until it expires.
				r := new(budget.Reservation)
				clk.Add(time.Duration(w+i%3) * 10 * time.Millisecond)
				if err := l.ReserveInto(bg, clk.Now(), r, budget.Request{ID: fmt.Sprint(w, "/", i), Subject: s, Estimate: est}); err != nil {
					if !errors.Is(err, budget.ErrExceeded) {
						t.Errorf("ReserveInto: %v", err)
					}
					refused.Add(1)
					continue
				}
				switch i % 4 {
				case 0: // abandoned: charged its estimate when it expires
					charged.Add(amount)
					calls.Add(1)
				case 1:
					if err := r.Release(bg); err != nil && !errors.Is(err, budget.ErrExpired) {
						t.Errorf("Release: %v", err)
					} else if err != nil { // expired meanwhile: charged its estimate
						charged.Add(amount)
						calls.Add(1)
					}
				default:
					actual := int64(i % amount)
					err := r.Commit(bg, []budget.Amount{{Micros: actual, Unit: "u"}})
					switch {
					case err == nil:
						charged.Add(actual)
					case errors.Is(err, budget.ErrExpired):
						charged.Add(max(actual, amount))
					default:
						t.Errorf("Commit: %v", err)
					}
					calls.Add(1)
				}
				us, err := l.Usage(bg, s)
				if err != nil {
					t.Errorf("Usage: %v", err)
					return
				}
				if u := us[1]; u.Spent.Micros+u.Reserved.Micros > limit.Micros {
					t.Errorf("tenant cap: spent %v + reserved %v > %v", u.Spent, u.Reserved, limit)
				}
			}
		}()
	}
	wg.Wait()
	if refused.Load() == 0 || calls.Load() < workers*rounds/4 {
		t.Errorf("%d calls, %d refused: the test must fill the cap and admit many", calls.Load(), refused.Load())
	}
	clk.Add(time.Minute) // past every deadline
	us, err := l.Usage(bg, s)
	if err != nil {
		t.Fatal(err)
	}
	if u := us[0]; u.Spent.Micros != charged.Load() || u.Calls != calls.Load() || u.Reserved.Micros != 0 {
		t.Errorf("all: spent %d in %d calls, reserved %d; want %d in %d calls, none reserved",
			u.Spent.Micros, u.Calls, u.Reserved.Micros, charged.Load(), calls.Load())
	}
}

// TestLedgerLateAfterOtherAccountExpired: a hold over two accounts whose
// first account expired it (a Usage there past the deadline) is late for
// both, even when settled at a time before its deadline: each account is
// charged the estimate, or the actual cost when larger, as one call.
func TestLedgerLateAfterOtherAccountExpired(t *testing.T) {
	l := mustLedger(t, []budget.Cap{
		{Name: "x", Per: budget.PerTenant, Limit: budget.Amount{Micros: 1000, Unit: "u"}},
		{Name: "y", Per: budget.PerAgent, Limit: budget.Amount{Micros: 1000, Unit: "u"}},
	}, budget.Options{Hold: time.Minute})
	s := budget.Subject{Tenant: "acme", Agent: "bot", Tool: "t"}
	r, err := l.ReserveAt(bg, t0, budget.Request{ID: "h", Subject: s, Estimate: []budget.Amount{{Micros: 50, Unit: "u"}}})
	if err != nil {
		t.Fatal(err)
	}
	// A Usage of the tenant alone (another agent) past the deadline.
	if _, err := l.UsageAt(bg, t0.Add(2*time.Minute), budget.Subject{Tenant: "acme", Agent: "other", Tool: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := r.CommitAt(bg, t0.Add(time.Second), []budget.Amount{{Micros: 70, Unit: "u"}}); !errors.Is(err, budget.ErrExpired) {
		t.Fatalf("CommitAt after the tenant's account expired the hold = %v, want ErrExpired", err)
	}
	us, err := l.UsageAt(bg, t0.Add(2*time.Minute), s)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.Spent.Micros != 70 || u.Calls != 1 || u.Reserved.Micros != 0 {
			t.Errorf("%s: spent %d in %d calls, reserved %d; want 70 in 1 call", u.Cap, u.Spent.Micros, u.Calls, u.Reserved.Micros)
		}
	}
}

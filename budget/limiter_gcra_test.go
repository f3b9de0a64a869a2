package budget_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/hardstop-labs/agentguard/budget"
)

// TestLimiterMatchesRate checks the limiter against golang.org/x/time/rate
// call by call: the same admissions, for rates and times where both are
// exact (dyadic rates, times in eighths of a second).
func TestLimiterMatchesRate(t *testing.T) {
	for _, tc := range []struct {
		r     rate.Limit
		burst int
	}{{1, 1}, {1, 3}, {2, 5}, {4, 2}, {0.5, 4}, {0.25, 1}, {8, 20}} {
		t.Run(fmt.Sprintf("%v/s,burst=%d", tc.r, tc.burst), func(t *testing.T) {
			l := mustLimiter(t, []budget.Limit{{Per: budget.PerAgent, Rate: tc.r, Burst: tc.burst}}, budget.LimiterOptions{})
			ref := rate.NewLimiter(tc.r, tc.burst)
			rng := rand.New(rand.NewPCG(uint64(tc.burst), uint64(tc.r*8)))
			at := t0
			s := budget.Subject{Agent: "bot", Tool: "x"}
			for i := range 5000 {
				if rng.IntN(3) == 0 {
					at = at.Add(time.Duration(rng.IntN(12)) * time.Second / 8)
				}
				got := l.AllowAt(at, s) == nil
				if want := ref.AllowN(at, 1); got != want {
					t.Fatalf("call %d at %v: admitted %v, x/time/rate %v", i, at.Sub(t0), got, want)
				}
			}
		})
	}
}

// TestLimiterEvictionUnderLoad makes buckets be dropped and made again
// while parallel callers hold them: no subject is ever admitted more than
// its burst plus its rate over the time elapsed.
func TestLimiterEvictionUnderLoad(t *testing.T) {
	const (
		agents  = 300
		workers = 4
		calls   = 3000
		burst   = 2
	)
	l := mustLimiter(t, []budget.Limit{{Per: budget.PerAgent, Rate: 1, Burst: burst}}, budget.LimiterOptions{MaxBuckets: 64})
	var clock atomic.Int64 // milliseconds after t0
	admitted := make([]atomic.Int64, agents)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range calls {
				ms := clock.Add(1)
				a := rng.IntN(agents)
				at := t0.Add(time.Duration(ms) * time.Millisecond)
				if l.AllowAt(at, budget.Subject{Agent: fmt.Sprint("agent-", a)}) == nil {
					admitted[a].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Duration(clock.Load()) * time.Millisecond
	for a := range admitted {
		if n, limit := admitted[a].Load(), int64(burst)+int64(elapsed/time.Second)+1; n > limit {
			t.Errorf("agent-%d: %d admitted in %v, more than burst %d + 1/s", a, n, elapsed, burst)
		}
	}
	if n := l.Len(); n > 64 {
		t.Errorf("%d buckets kept, want at most 64", n)
	}
}

// TestLimiterRefilledBucketDropped: a bucket that refilled is dropped and
// made again, full, and a caller that had it resolved takes from the new
// one: exactly burst calls again, not twice that.
func TestLimiterRefilledBucketDropped(t *testing.T) {
	l := mustLimiter(t, []budget.Limit{{Per: budget.PerAgent, Rate: 1, Burst: 3}}, budget.LimiterOptions{})
	bot := budget.Subject{Agent: "bot"}
	for range 3 {
		if err := l.AllowAt(t0, bot); err != nil {
			t.Fatal(err)
		}
	}
	// An hour later bot's bucket is full: filling the shards past their
	// sweep points drops it.
	later := t0.Add(time.Hour)
	for i := range 5000 {
		l.AllowAt(later, budget.Subject{Agent: fmt.Sprint("other-", i)})
	}
	n := 0
	for range 10 {
		if l.AllowAt(later, bot) == nil {
			n++
		}
	}
	if n != 3 {
		t.Errorf("after the refill: %d admitted at once, want the burst, 3", n)
	}
}

// TestLimiterAllocatesNothing: an admitted call under one limit makes no
// allocation once its subject is resolved.
func TestLimiterAllocatesNothing(t *testing.T) {
	l := mustLimiter(t, []budget.Limit{{Per: budget.PerAgent, Rate: 1e9, Burst: 1 << 20}}, budget.LimiterOptions{})
	s := budget.Subject{Agent: "bot", Tenant: "acme", Tool: "x"}
	if n := testing.AllocsPerRun(1000, func() {
		if err := l.AllowAt(t0, s); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("AllowAt: %v allocations, want 0", n)
	}
}

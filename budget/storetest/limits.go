package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hardstop-labs/agentguard/budget"
)

// RunLimits checks a budget.LimitStore against the contract written on the
// interface, calling newStore for a store per subtest. Bucket keys carry a
// random prefix, so a shared store needs no cleaning.
func RunLimits(t *testing.T, newStore func() budget.LimitStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, budget.LimitStore, string)
	}{
		{"Burst", testBurst},
		{"Refill", testRefill},
		{"Atomic", testAtomicTake},
		{"Cancelled", testTakeCancelled},
		{"Parallel", testTakeParallel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(), uuid.NewString()+"/") })
	}
}

func take(t *testing.T, s budget.LimitStore, at time.Time, bs ...budget.Bucket) (int, time.Duration) {
	t.Helper()
	i, retry, err := s.Take(ctx, at, bs)
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	return i, retry
}

func testBurst(t *testing.T, s budget.LimitStore, p string) {
	b := budget.Bucket{Key: p + "a", Interval: time.Second, Burst: 3}
	for i := range 3 {
		if r, _ := take(t, s, t0, b); r != -1 {
			t.Fatalf("call %d of a burst of 3 refused", i)
		}
	}
	r, retry := take(t, s, t0, b)
	if r != 0 || retry != time.Second {
		t.Fatalf("fourth call = %d, %v; want refused (0) with retry 1s", r, retry)
	}
	if r, retry := take(t, s, t0.Add(400*time.Millisecond), b); r != 0 || retry != 600*time.Millisecond {
		t.Fatalf("0.4s later = %d, %v; want refused with retry 600ms", r, retry)
	}
}

func testRefill(t *testing.T, s budget.LimitStore, p string) {
	b := budget.Bucket{Key: p + "a", Interval: time.Minute, Burst: 2}
	take(t, s, t0, b)
	take(t, s, t0, b)
	if r, _ := take(t, s, t0.Add(time.Minute), b); r != -1 {
		t.Fatal("a token refilled after one interval was refused")
	}
	if r, _ := take(t, s, t0.Add(time.Minute), b); r != 0 {
		t.Fatal("a second token after one interval was admitted")
	}
	// A long idle time refills the bucket to Burst, no more.
	later := t0.Add(time.Hour)
	for i := range 2 {
		if r, _ := take(t, s, later, b); r != -1 {
			t.Fatalf("call %d after an idle hour refused", i)
		}
	}
	if r, _ := take(t, s, later, b); r != 0 {
		t.Fatal("an idle bucket refilled beyond its burst")
	}
}

func testAtomicTake(t *testing.T, s budget.LimitStore, p string) {
	a := budget.Bucket{Key: p + "a", Interval: time.Hour, Burst: 1}
	b := budget.Bucket{Key: p + "b", Interval: time.Hour, Burst: 1}
	if r, _ := take(t, s, t0, b); r != -1 {
		t.Fatal("first take of b refused")
	}
	if r, _ := take(t, s, t0, a, b); r != 1 {
		t.Fatalf("take of a and a full b = %d, want 1 (b refused)", r)
	}
	// a gave nothing away.
	if r, _ := take(t, s, t0, a); r != -1 {
		t.Fatal("a lost its token to a refused take")
	}
}

func testTakeCancelled(t *testing.T, s budget.LimitStore, p string) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.Take(c, t0, []budget.Bucket{{Key: p + "a", Interval: time.Second, Burst: 1}}); err == nil {
		t.Fatal("Take with a cancelled context succeeded")
	}
}

func testTakeParallel(t *testing.T, s budget.LimitStore, p string) {
	const callers, burst = 100, 17
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			r, _, err := s.Take(ctx, t0, []budget.Bucket{{Key: p + "a", Interval: time.Hour, Burst: burst}, {Key: p + "b", Interval: time.Nanosecond, Burst: 1 << 20}})
			if err != nil {
				t.Errorf("Take: %v", err)
			}
			if r == -1 {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != burst {
		t.Fatalf("%d callers on a burst of %d: %d admitted", callers, burst, ok.Load())
	}
}

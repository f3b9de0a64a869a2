package killswitch

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestTripHaltsThousandInFlight(t *testing.T) {
	const n = 1000
	sw := New(Options{})
	release := make(chan struct{})
	type call struct {
		ctx  context.Context
		exit func() bool
	}
	calls := make([]call, n)
	var entered, done sync.WaitGroup
	results := make([]bool, n)
	for i := range n {
		entered.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			key := Key{Tenant: "acme", Agent: fmt.Sprintf("agent-%d", i%7), Tool: "slow"}
			ctx, exit, err := sw.Enter(context.Background(), key)
			if err != nil {
				t.Errorf("Enter(%v) = %v before any trip", key, err)
				entered.Done()
				return
			}
			calls[i] = call{ctx, exit}
			entered.Done()
			if i%2 == 0 {
				<-ctx.Done() // a tool that honours its context
			} else {
				<-release // a tool that ignores it
			}
			results[i] = exit()
		}()
	}
	entered.Wait()
	if got := sw.InFlight(); got != n {
		t.Fatalf("InFlight() = %d before the trip, want %d", got, n)
	}
	if err := sw.Trip(Everything, "ops", "runaway"); err != nil {
		t.Fatalf("Trip: %v", err)
	}
	// The moment Trip returns, every context is done with the trip as cause.
	for i, c := range calls {
		if c.ctx == nil {
			continue
		}
		if c.ctx.Err() == nil {
			t.Fatalf("call %d: context not done after Trip returned", i)
		}
		var h *Halt
		if cause := context.Cause(c.ctx); !errors.As(cause, &h) || !errors.Is(cause, ErrHalted) || h.Why != "runaway" {
			t.Fatalf("call %d: Cause = %v, want a *Halt for runaway", i, cause)
		}
	}
	if got := sw.InFlight(); got != 0 {
		t.Errorf("InFlight() = %d after the trip, want 0", got)
	}
	close(release)
	done.Wait()
	for i, r := range results {
		if r {
			t.Errorf("call %d: exit() = true after the trip, want false", i)
		}
	}
}

func TestTripEventCountsHalted(t *testing.T) {
	var events []Event
	sw := New(Options{OnEvent: func(e Event) { events = append(events, e) }})
	var exits []func() bool
	for _, agent := range []string{"a", "a", "b"} {
		_, exit, err := sw.Enter(context.Background(), Key{Agent: agent})
		if err != nil {
			t.Fatal(err)
		}
		exits = append(exits, exit)
	}
	if err := sw.Trip(Scope{Agent: "a"}, "ops", "loop"); err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Kind != EventTrip || events[0].Halted != 2 || events[0].Who != "ops" {
		t.Fatalf("events = %+v, want one trip that halted 2 calls", events)
	}
	if got := []bool{exits[0](), exits[1](), exits[2]()}; got[0] || got[1] || !got[2] {
		t.Errorf("exits = %v, want [false false true]", got)
	}
}

func TestExitBeforeTripCommits(t *testing.T) {
	sw := New(Options{})
	ctx, exit, err := sw.Enter(context.Background(), Key{Agent: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if !exit() {
		t.Fatal("exit() = false with no trip")
	}
	if exit() {
		t.Error("second exit() = true, want false")
	}
	if ctx.Err() == nil {
		t.Error("exit did not release the context")
	}
	if err := sw.Trip(Everything, "ops", "late"); err != nil {
		t.Fatal(err)
	}
	if errors.Is(context.Cause(ctx), ErrHalted) {
		t.Error("a trip after exit changed the finished call's cause")
	}
}

func TestScopes(t *testing.T) {
	keys := []Key{
		{Tenant: "acme", Agent: "a", Tool: "email"},
		{Tenant: "acme", Agent: "a", Tool: "sql"},
		{Tenant: "acme", Agent: "b", Tool: "email"},
		{Tenant: "zeta", Agent: "a", Tool: "email"},
		{Agent: "c", Tool: "sql"},
	}
	tests := []struct {
		scope Scope
		want  []bool // per key: halted?
	}{
		{Everything, []bool{true, true, true, true, true}},
		{Scope{Agent: "a"}, []bool{true, true, false, true, false}},
		{Scope{Tool: "email"}, []bool{true, false, true, true, false}},
		{Scope{Tenant: "acme"}, []bool{true, true, true, false, false}},
		{Scope{Agent: "a", Tool: "sql"}, []bool{false, true, false, false, false}},
		{Scope{Tenant: "acme", Agent: "a"}, []bool{true, true, false, false, false}},
		{Scope{Tenant: "zeta", Agent: "a", Tool: "email"}, []bool{false, false, false, true, false}},
		{Scope{Agent: "nobody"}, []bool{false, false, false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.scope.String(), func(t *testing.T) {
			sw := New(Options{})
			ctxs := make([]context.Context, len(keys))
			exits := make([]func() bool, len(keys))
			for i, k := range keys {
				var err error
				ctxs[i], exits[i], err = sw.Enter(context.Background(), k)
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := sw.Trip(tt.scope, "ops", "test"); err != nil {
				t.Fatal(err)
			}
			for i, k := range keys {
				if got := ctxs[i].Err() != nil; got != tt.want[i] {
					t.Errorf("Trip(%v): in-flight %v done = %v, want %v", tt.scope, k, got, tt.want[i])
				}
				if got := !exits[i](); got != tt.want[i] {
					t.Errorf("Trip(%v): in-flight %v halted = %v, want %v", tt.scope, k, got, tt.want[i])
				}
				_, _, err := sw.Enter(context.Background(), k)
				if got := err != nil; got != tt.want[i] {
					t.Errorf("Trip(%v): new call %v refused = %v, want %v", tt.scope, k, got, tt.want[i])
				}
				if _, got := sw.Tripped(k); got != tt.want[i] {
					t.Errorf("Trip(%v): Tripped(%v) = %v, want %v", tt.scope, k, got, tt.want[i])
				}
			}
		})
	}
}

func TestManyTripsLookup(t *testing.T) {
	// More trips than masks: covering switches from a scan to lookups.
	sw := New(Options{})
	for i := range 20 {
		if err := sw.Trip(Scope{Agent: fmt.Sprintf("a%d", i)}, "ops", "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Trip(Scope{Tenant: "t", Tool: "sql"}, "ops", "sql off"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		k    Key
		want string // the covering scope, "" for none
	}{
		{Key{Agent: "a3"}, "agent=a3"},
		{Key{Agent: "a20"}, ""},
		{Key{Tenant: "t", Agent: "zz", Tool: "sql"}, "tenant=t,tool=sql"},
		{Key{Tenant: "t", Agent: "a1", Tool: "sql"}, "agent=a1"},
		{Key{Tenant: "u", Tool: "sql"}, ""},
	}
	for _, tt := range tests {
		h, ok := sw.Tripped(tt.k)
		got := ""
		if ok {
			got = h.Scope.String()
		}
		if got != tt.want {
			t.Errorf("Tripped(%+v) = %q, want %q", tt.k, got, tt.want)
		}
	}
	if got := len(sw.Status()); got != 21 {
		t.Errorf("len(Status()) = %d, want 21", got)
	}
}

func TestBroadestTripReported(t *testing.T) {
	sw := New(Options{})
	for _, s := range []Scope{{Agent: "a", Tool: "t"}, {Agent: "a"}, Everything} {
		if err := sw.Trip(s, "ops", s.String()); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := sw.Enter(context.Background(), Key{Agent: "a", Tool: "t"})
	var h *Halt
	if !errors.As(err, &h) || h.Scope != Everything {
		t.Fatalf("Enter = %v, want the halt of everything", err)
	}
	st := sw.Status()
	if len(st) != 3 || st[0].Scope != Everything || st[1].Scope != (Scope{Agent: "a"}) {
		t.Errorf("Status() = %+v, want broadest first", st)
	}
}

func TestStickyUntilResume(t *testing.T) {
	clk := newFakeClock()
	var events []Event
	sw := New(Options{Clock: clk.Now, OnEvent: func(e Event) { events = append(events, e) }})
	k := Key{Agent: "a", Tool: "t"}
	if err := sw.Trip(Scope{Agent: "a"}, "ops", "stop"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{time.Minute, 24 * time.Hour, 10 * 365 * 24 * time.Hour} {
		clk.Advance(d)
		if _, _, err := sw.Enter(context.Background(), k); !errors.Is(err, ErrHalted) {
			t.Fatalf("after %v: Enter = %v, want ErrHalted", d, err)
		}
	}
	h, _ := sw.Lookup(Scope{Agent: "a"})
	if want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC); !h.At.Equal(want) {
		t.Errorf("Halt.At = %v, want %v", h.At, want)
	}
	// Resuming another scope does not help.
	if err := sw.Resume(Everything, "ops", "wrong"); !errors.Is(err, ErrNotTripped) {
		t.Errorf("Resume(everything) = %v, want ErrNotTripped", err)
	}
	if err := sw.Resume(Scope{Agent: "a"}, "ops", "fixed"); err != nil {
		t.Fatal(err)
	}
	_, exit, err := sw.Enter(context.Background(), k)
	if err != nil {
		t.Fatalf("Enter after Resume = %v", err)
	}
	exit()
	if len(events) != 2 || events[1].Kind != EventResume || events[1].Why != "fixed" || !events[1].Time.Equal(clk.Now()) {
		t.Errorf("events = %+v, want trip then resume", events)
	}
	if len(sw.Status()) != 0 {
		t.Errorf("Status() = %v after resume, want none", sw.Status())
	}
}

func TestHooks(t *testing.T) {
	var (
		mu     sync.Mutex
		events []Event
	)
	sw := New(Options{OnEvent: func(e Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	errRevoke := errors.New("vault down")
	var revoked []string
	sw.OnTrip("revoke", func(ctx context.Context, h *Halt) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("hook context has no deadline")
		}
		if h.Scope.Agent == "b" {
			return errRevoke
		}
		revoked = append(revoked, h.Scope.Agent)
		return nil
	})
	sw.OnTrip("page", func(ctx context.Context, h *Halt) error {
		if h.Scope.Agent == "c" {
			panic("pager exploded")
		}
		return nil
	})
	if err := sw.Trip(Scope{Agent: "a"}, "ops", "x"); err != nil {
		t.Errorf("Trip(a) = %v, want nil", err)
	}
	err := sw.Trip(Scope{Agent: "b"}, "ops", "x")
	if !errors.Is(err, errRevoke) {
		t.Errorf("Trip(b) = %v, want the hook's error", err)
	}
	err = sw.Trip(Scope{Agent: "c"}, "ops", "x")
	if err == nil {
		t.Error("Trip(c) = nil, want the hook's panic as an error")
	}
	// The trips are in force whatever the hooks did.
	for _, a := range []string{"a", "b", "c"} {
		if _, ok := sw.Tripped(Key{Agent: a}); !ok {
			t.Errorf("agent %s not tripped", a)
		}
	}
	if len(revoked) != 2 || revoked[0] != "a" || revoked[1] != "c" {
		t.Errorf("revoked = %v, want [a c]", revoked)
	}
	var hookFailures []string
	for _, e := range events {
		if e.Kind == EventHook && e.Err != nil {
			hookFailures = append(hookFailures, e.Hook+"@"+e.Scope.Agent)
		}
	}
	if len(hookFailures) != 2 || hookFailures[0] != "revoke@b" || hookFailures[1] != "page@c" {
		t.Errorf("hook failure events = %v, want [revoke@b page@c]", hookFailures)
	}
}

func TestHookTimeout(t *testing.T) {
	sw := New(Options{HookTimeout: time.Millisecond})
	sw.OnTrip("slow", func(ctx context.Context, h *Halt) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if err := sw.Trip(Everything, "ops", "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Trip = %v, want the hook's deadline error", err)
	}
}

// TestEnterTripRace checks the commit point under concurrency: a call
// whose exit reports true was never cancelled by the trip, a call whose
// exit reports false has a done context with the trip's cause, and no call
// enters after Trip returns.
func TestEnterTripRace(t *testing.T) {
	sw := New(Options{})
	var stop atomic.Bool
	var wg sync.WaitGroup
	var ok, halted, refused atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				ctx, exit, err := sw.Enter(context.Background(), Key{Agent: "a"})
				if err != nil {
					refused.Add(1)
					continue
				}
				if exit() {
					ok.Add(1)
					if errors.Is(context.Cause(ctx), ErrHalted) {
						t.Error("exit() = true but the context was halted")
						return
					}
				} else {
					halted.Add(1)
					if !errors.Is(context.Cause(ctx), ErrHalted) {
						t.Error("exit() = false but the context was not halted")
						return
					}
				}
			}
		}()
	}
	for ok.Load() < 100 {
		// let the workers run
		runtime.Gosched()
	}
	if err := sw.Trip(Scope{Agent: "a"}, "ops", "x"); err != nil {
		t.Fatal(err)
	}
	before := ok.Load() + halted.Load()
	for refused.Load() < 100 {
		runtime.Gosched()
	}
	stop.Store(true)
	wg.Wait()
	if after := ok.Load() + halted.Load(); after > before+8 {
		t.Errorf("%d calls entered after Trip returned", after-before-8)
	}
}

func TestHaltError(t *testing.T) {
	h := &Halt{Scope: Scope{Agent: "a", Tool: "t"}, Who: "ops", Why: "runaway"}
	if got, want := h.Error(), "killswitch: halted (agent=a,tool=t) by ops: runaway"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(h, ErrHalted) {
		t.Error("Halt does not match ErrHalted")
	}
	if got := (&Halt{}).Error(); got != "killswitch: halted (everything)" {
		t.Errorf("zero Halt Error() = %q", got)
	}
}

func TestZeroSwitch(t *testing.T) {
	var sw Switch
	_, exit, err := sw.Enter(context.Background(), Key{})
	if err != nil || !exit() {
		t.Fatalf("zero Switch: Enter = %v", err)
	}
	if err := sw.Trip(Everything, "ops", "x"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sw.Enter(context.Background(), Key{}); !errors.Is(err, ErrHalted) {
		t.Errorf("zero Switch after trip: Enter = %v, want ErrHalted", err)
	}
}

func BenchmarkEnterExit(b *testing.B) {
	// What Enter cannot avoid: the cancellable context it returns. The
	// switch's own cost is the difference with the other cases.
	b.Run("baseline-context-only", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				_, cancel := context.WithCancelCause(ctx)
				cancel(nil)
			}
		})
	})
	b.Run("untripped", func(b *testing.B) {
		sw := New(Options{})
		k := Key{Tenant: "acme", Agent: "bot", Tool: "email"}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				_, exit, err := sw.Enter(ctx, k)
				if err != nil {
					b.Fatal(err)
				}
				exit()
			}
		})
	})
	b.Run("other-scope-tripped", func(b *testing.B) {
		sw := New(Options{})
		if err := sw.Trip(Scope{Agent: "other"}, "ops", "x"); err != nil {
			b.Fatal(err)
		}
		k := Key{Tenant: "acme", Agent: "bot", Tool: "email"}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				_, exit, err := sw.Enter(ctx, k)
				if err != nil {
					b.Fatal(err)
				}
				exit()
			}
		})
	})
	// Admit with the call's state in a Flight the caller keeps: what the
	// guard does per call.
	b.Run("admit", func(b *testing.B) {
		sw := New(Options{})
		k := Key{Tenant: "acme", Agent: "bot", Tool: "email"}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			var fl Flight
			for pb.Next() {
				if err := sw.Admit(ctx, k, &fl); err != nil {
					b.Fatal(err)
				}
				fl.Exit()
			}
		})
	})
	b.Run("refused", func(b *testing.B) {
		sw := New(Options{})
		if err := sw.Trip(Scope{Agent: "bot"}, "ops", "x"); err != nil {
			b.Fatal(err)
		}
		k := Key{Tenant: "acme", Agent: "bot", Tool: "email"}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if _, _, err := sw.Enter(ctx, k); err == nil {
					b.Fatal("not refused")
				}
			}
		})
	})
}

func TestWatch(t *testing.T) {
	var a, b []EventKind
	sw := New(Options{OnEvent: func(e Event) { a = append(a, e.Kind) }})
	stop := sw.Watch(func(e Event) { b = append(b, e.Kind) })
	sw.OnTrip("h", func(context.Context, *Halt) error { return nil })
	sw.Trip(Everything, "ops", "x")
	sw.Resume(Everything, "ops", "y")
	stop()
	stop()
	sw.Trip(Everything, "ops", "z")
	if want := []EventKind{EventTrip, EventHook, EventResume}; fmt.Sprint(b) != fmt.Sprint(want) {
		t.Errorf("watched %v, want %v", b, want)
	}
	if len(a) != 5 {
		t.Errorf("OnEvent saw %v, want 5 events", a)
	}
	sw.Watch(nil)() // harmless
}

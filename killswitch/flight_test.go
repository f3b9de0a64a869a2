package killswitch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"

	"go.uber.org/goleak"
)

// admit admits a flight for key k or fails the test.
func admit(t *testing.T, sw *Switch, ctx context.Context, k Key) *Flight {
	t.Helper()
	fl := new(Flight)
	if err := sw.Admit(ctx, k, fl); err != nil {
		t.Fatalf("Admit(%v) = %v", k, err)
	}
	return fl
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// wantHalted checks that ctx reports the trip why: Err, Cause and Done.
func wantHalted(t *testing.T, ctx context.Context, why string) {
	t.Helper()
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() = %v, want context.Canceled", err)
	}
	var h *Halt
	if cause := context.Cause(ctx); !errors.As(cause, &h) || !errors.Is(cause, ErrHalted) || h.Why != why {
		t.Errorf("Cause = %v, want a *Halt for %q", cause, why)
	}
	if !isClosed(ctx.Done()) {
		t.Error("Done() is not closed after the trip")
	}
}

// TestFlightTripBeforeDone: a call whose tool never asked for Done is
// halted all the same; Done, asked after the trip, is closed.
func TestFlightTripBeforeDone(t *testing.T) {
	sw := New(Options{})
	fl := admit(t, sw, context.Background(), Key{Agent: "a"})
	if fl.inner.Load() != nil {
		t.Fatal("Admit made a context")
	}
	if err := fl.Err(); err != nil {
		t.Fatalf("Err() = %v before the trip", err)
	}
	if err := sw.Trip(Scope{Agent: "a"}, "ops", "runaway"); err != nil {
		t.Fatal(err)
	}
	wantHalted(t, fl, "runaway")
	if h, ok := fl.Halted(); !ok || h.Why != "runaway" {
		t.Errorf("Halted() = %v, %v", h, ok)
	}
	if fl.Exit() {
		t.Error("Exit() = true after the trip")
	}
	wantHalted(t, fl, "runaway") // exit does not change the cause
}

// TestFlightTripWhileWaiting: a tool blocked on Done is woken by the trip.
func TestFlightTripWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := New(Options{})
		fl := admit(t, sw, context.Background(), Key{Tool: "x"})
		woke := make(chan error, 1)
		go func() {
			<-fl.Done()
			woke <- context.Cause(fl)
		}()
		synctest.Wait() // the goroutine is blocked on Done
		select {
		case err := <-woke:
			t.Fatalf("woke before the trip: %v", err)
		default:
		}
		if err := sw.Trip(Scope{Tool: "x"}, "ops", "stop"); err != nil {
			t.Fatal(err)
		}
		if cause := <-woke; !errors.Is(cause, ErrHalted) {
			t.Errorf("Cause = %v, want ErrHalted", cause)
		}
		wantHalted(t, fl, "stop")
		if fl.Exit() {
			t.Error("Exit() = true after the trip")
		}
	})
}

// TestFlightDoneAfterExit: exit releases the context; a later trip does
// not touch it; Done asked for after exit is closed.
func TestFlightDoneAfterExit(t *testing.T) {
	sw := New(Options{})
	fl := admit(t, sw, context.Background(), Key{Agent: "a"})
	if !fl.Exit() {
		t.Fatal("Exit() = false with no trip")
	}
	if fl.Exit() {
		t.Error("second Exit() = true")
	}
	if err := fl.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() after exit = %v, want context.Canceled", err)
	}
	if err := sw.Trip(Everything, "ops", "late"); err != nil {
		t.Fatal(err)
	}
	if !isClosed(fl.Done()) {
		t.Error("Done() after exit is not closed")
	}
	if errors.Is(context.Cause(fl), ErrHalted) {
		t.Error("a trip after exit became the finished call's cause")
	}
}

// TestFlightDoneBeforeExit: a Done channel asked for during the call is
// closed by the exit.
func TestFlightDoneBeforeExit(t *testing.T) {
	sw := New(Options{})
	fl := admit(t, sw, context.Background(), Key{Agent: "a"})
	done := fl.Done()
	if isClosed(done) {
		t.Fatal("Done() closed before anything happened")
	}
	if !fl.Exit() {
		t.Fatal("Exit() = false with no trip")
	}
	if !isClosed(done) {
		t.Error("Exit did not close Done")
	}
	if sw.InFlight() != 0 {
		t.Errorf("InFlight() = %d after exit", sw.InFlight())
	}
}

// TestFlightParent: the parent's cancel and values reach the flight, with
// or without a Done channel made.
func TestFlightParent(t *testing.T) {
	type key struct{}
	for _, early := range []bool{false, true} {
		sw := New(Options{})
		base := context.WithValue(context.Background(), key{}, "v")
		parent, cancel := context.WithCancelCause(base)
		fl := admit(t, sw, parent, Key{Agent: "a"})
		var done <-chan struct{}
		if early {
			done = fl.Done()
		}
		if fl.Value(key{}) != "v" {
			t.Errorf("Value = %v, want the parent's", fl.Value(key{}))
		}
		boom := errors.New("caller gave up")
		cancel(boom)
		if err := fl.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("early=%v: Err() = %v after the parent's cancel", early, err)
		}
		if cause := context.Cause(fl); cause != boom {
			t.Errorf("early=%v: Cause = %v, want the parent's", early, cause)
		}
		if !early {
			done = fl.Done()
		}
		if !isClosed(done) {
			t.Errorf("early=%v: Done not closed after the parent's cancel", early)
		}
		if !fl.Exit() {
			t.Errorf("early=%v: Exit() = false: a caller's cancel is no trip", early)
		}
	}
}

// TestFlightDerived: a context derived from the flight is cancelled by a
// trip, with the trip as cause.
func TestFlightDerived(t *testing.T) {
	sw := New(Options{})
	fl := admit(t, sw, context.Background(), Key{Agent: "a"})
	child, cancel := context.WithCancel(fl)
	defer cancel()
	if err := sw.Trip(Everything, "ops", "all"); err != nil {
		t.Fatal(err)
	}
	wantHalted(t, child, "all")
}

// TestFlightTripRacesDone asks for Done from many goroutines while a trip
// sweeps: once Trip has returned, every flight is halted and every Done
// channel, asked for before or after, is closed.
func TestFlightTripRacesDone(t *testing.T) {
	const n = 200
	sw := New(Options{})
	fls := make([]*Flight, n)
	for i := range fls {
		fls[i] = admit(t, sw, context.Background(), Key{Agent: "a"})
	}
	chans := make([]<-chan struct{}, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range fls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			chans[i] = fls[i].Done()
		}()
	}
	tripped := make(chan error, 1)
	go func() {
		<-start
		tripped <- sw.Trip(Scope{Agent: "a"}, "ops", "race")
	}()
	close(start)
	if err := <-tripped; err != nil {
		t.Fatal(err)
	}
	for i, fl := range fls {
		if !isClosed(fl.Done()) || fl.Err() == nil {
			t.Fatalf("flight %d not halted once Trip returned", i)
		}
	}
	wg.Wait()
	for i, fl := range fls {
		if !isClosed(chans[i]) {
			t.Errorf("flight %d: the Done channel asked for during the trip is open", i)
		}
		if fl.Exit() {
			t.Errorf("flight %d: Exit() = true", i)
		}
	}
}

// TestFlightTripRacesAdmit: an Admit racing a trip is either refused or
// halted by it, never missed.
func TestFlightTripRacesAdmit(t *testing.T) {
	for round := 0; round < 50; round++ {
		sw := New(Options{})
		const n = 8
		fls := make([]*Flight, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range fls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				fls[i] = new(Flight)
				errs[i] = sw.Admit(context.Background(), Key{Agent: "a"}, fls[i])
			}()
		}
		close(start)
		if err := sw.Trip(Everything, "ops", "race"); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for i := range fls {
			if errs[i] != nil {
				if !errors.Is(errs[i], ErrHalted) {
					t.Fatalf("Admit = %v, want ErrHalted", errs[i])
				}
				continue
			}
			// Admitted before the trip published: the sweep must have
			// halted it.
			if fls[i].Exit() {
				t.Fatalf("round %d: a call admitted across the trip exited as not halted", round)
			}
			wantHalted(t, fls[i], "race")
		}
	}
}

// TestFlightNoLeak: a flight whose Done was asked for under a parent that
// is not one of package context's leaves no goroutine once it exits.
func TestFlightNoLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	sw := New(Options{})
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 10 {
		fl := admit(t, sw, customCtx{parent}, Key{Agent: "a"})
		_ = fl.Done()
		if !fl.Exit() {
			t.Fatal("Exit() = false")
		}
	}
}

// customCtx hides its parent's type, so that package context watches it
// with a goroutine.
type customCtx struct{ context.Context }

// TestFlightReuseNoAlloc: an admitted call that never watches its
// context allocates nothing, and a flight is admitted again after exit.
func TestFlightReuseNoAlloc(t *testing.T) {
	sw := New(Options{})
	if err := sw.Trip(Scope{Agent: "other"}, "ops", "x"); err != nil {
		t.Fatal(err)
	}
	var fl Flight
	ctx := context.Background()
	k := Key{Tenant: "acme", Agent: "bot", Tool: "email"}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := sw.Admit(ctx, k, &fl); err != nil {
			t.Fatal(err)
		}
		if fl.Err() != nil {
			t.Fatal("Err() != nil in flight")
		}
		if !fl.Exit() {
			t.Fatal("Exit() = false")
		}
	})
	if allocs != 0 {
		t.Errorf("Admit+Exit: %v allocations, want 0", allocs)
	}
	if err := sw.Admit(ctx, k, &fl); err != nil {
		t.Fatal(err)
	}
	if err := fl.Err(); err != nil {
		t.Errorf("Err() = %v on a flight admitted again", err)
	}
	if err := sw.Trip(Everything, "ops", "again"); err != nil {
		t.Fatal(err)
	}
	wantHalted(t, &fl, "again")
}

package killswitch

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// A store that cannot be read trips everything once it has been so for
// longer than Stale, and the trip ends when the store answers again.
func TestStoreTriggerStale(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	st := new(Mem)
	sw := New(Options{})
	tr, err := NewStoreTrigger(sw, st, StoreOptions{Stale: 10 * time.Second, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := Key{Agent: "bot"}
	if err := tr.Check(ctx); err != nil {
		t.Fatal(err)
	}
	st.SetErr(errors.New("connection refused"))
	advance(9 * time.Second)
	if err := tr.Check(ctx); err == nil {
		t.Fatal("Check of a broken store returned nil")
	}
	if h, on := sw.Tripped(key); on {
		t.Fatalf("tripped before the staleness bound: %v", h)
	}
	advance(time.Second)
	tr.Check(ctx)
	h, on := sw.Tripped(key)
	if !on || h.Scope != (Scope{}) || !strings.Contains(h.Why, "unreadable") {
		t.Fatalf("at the staleness bound: tripped %v, %v; want everything tripped", h, on)
	}
	// A resume cannot go through a broken store.
	if err := tr.Resume(ctx, Scope{}, "alice", "no"); err == nil {
		t.Fatal("Resume through a broken store succeeded")
	}
	st.SetErr(nil)
	if err := tr.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if h, on := sw.Tripped(key); on {
		t.Fatalf("still tripped once the store answers: %v", h)
	}
}

// A trip in the store stays when the store later breaks: the trigger
// never resumes on an error.
func TestStoreTriggerKeepsTripOnError(t *testing.T) {
	st := new(Mem)
	sw := New(Options{})
	tr, _ := NewStoreTrigger(sw, st, StoreOptions{Stale: time.Hour})
	ctx := context.Background()
	if err := tr.Trip(ctx, Scope{Agent: "bot"}, "alice", "stop"); err != nil {
		t.Fatal(err)
	}
	st.SetErr(errors.New("down"))
	tr.Check(ctx)
	if _, on := sw.Tripped(Key{Agent: "bot"}); !on {
		t.Fatal("a failed read resumed a trip")
	}
}

// With Run, a trip through one trigger reaches another switch by push
// alone (the polling interval is an hour) and halts its call in flight.
func TestStoreTriggerRunPush(t *testing.T) {
	st := new(Mem)
	a, b := New(Options{}), New(Options{})
	ta, _ := NewStoreTrigger(a, st, StoreOptions{})
	tb, _ := NewStoreTrigger(b, st, StoreOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { tb.Run(ctx, time.Hour) })
	// Wait until b's trigger listens.
	for {
		st.mu.Lock()
		n := len(st.watchers)
		st.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cctx, exit, err := b.Enter(ctx, Key{Agent: "bot"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.Trip(ctx, Scope{}, "alice", "stop everything"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the call in the other switch was not halted by the push")
	}
	if exit() {
		t.Fatal("exit of a halted call reported true")
	}
}

// With Publish, a trip made in one switch some other way (a breaker) is
// written to the store and stops the other switch too; a resume in the
// store ends it in both.
func TestStoreTriggerPublish(t *testing.T) {
	st := new(Mem)
	a, b := New(Options{}), New(Options{})
	events := func(sw *Switch) chan Event {
		ch := make(chan Event, 16)
		sw.Watch(func(e Event) { ch <- e })
		return ch
	}
	evA, evB := events(a), events(b)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, sw := range []*Switch{a, b} {
		tr, _ := NewStoreTrigger(sw, st, StoreOptions{Publish: true})
		wg.Go(func() { tr.Run(ctx, time.Hour) })
	}
	await := func(ch chan Event, kind EventKind, what string) Event {
		t.Helper()
		for {
			select {
			case e := <-ch:
				if e.Kind == kind {
					return e
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no %s event: %s", kind, what)
			}
		}
	}
	scope := Scope{Agent: "bot"}
	if err := a.Trip(scope, "breaker:errors", "5 failures in a row"); err != nil {
		t.Fatal(err)
	}
	await(evA, EventTrip, "the breaker's own trip")
	if e := await(evB, EventTrip, "the other switch"); e.Scope != scope || e.Who != "breaker:errors" {
		t.Fatalf("the other switch tripped %+v", e)
	}
	if hs, _ := st.Trips(ctx); len(hs) != 1 || hs[0].Why != "5 failures in a row" {
		t.Fatalf("the store holds %+v", hs)
	}
	if err := st.Resume(ctx, scope); err != nil {
		t.Fatal(err)
	}
	await(evA, EventResume, "the resume in the tripping switch")
	await(evB, EventResume, "the resume in the other switch")
	if hs, _ := st.Trips(ctx); len(hs) != 0 {
		t.Fatalf("a resumed trip came back: %+v", hs)
	}
}

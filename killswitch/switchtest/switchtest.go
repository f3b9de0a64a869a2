// Package switchtest checks a killswitch.Store against the contract
// written on the interface, and a StoreTrigger over it. A driver's test is
// one line:
//
//	func TestStore(t *testing.T) { switchtest.Run(t, func(t *testing.T) killswitch.Store { return newStore(t) }) }
package switchtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/killswitch"
)

// Run checks the store that newStore returns; each subtest gets a fresh,
// empty store.
func Run(t *testing.T, newStore func(t *testing.T) killswitch.Store) {
	ctx := context.Background()
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	halt := func(s killswitch.Scope, why string) killswitch.Halt {
		return killswitch.Halt{Scope: s, Who: "alice", Why: why, At: at}
	}
	trips := func(t *testing.T, s killswitch.Store) map[killswitch.Scope]killswitch.Halt {
		t.Helper()
		hs, err := s.Trips(ctx)
		if err != nil {
			t.Fatalf("Trips: %v", err)
		}
		m := map[killswitch.Scope]killswitch.Halt{}
		for _, h := range hs {
			if _, dup := m[h.Scope]; dup {
				t.Fatalf("Trips lists %s twice", h.Scope)
			}
			m[h.Scope] = h
		}
		return m
	}

	t.Run("Empty", func(t *testing.T) {
		s := newStore(t)
		if m := trips(t, s); len(m) != 0 {
			t.Fatalf("Trips = %v, want none", m)
		}
		if err := s.Resume(ctx, killswitch.Scope{}); !errors.Is(err, killswitch.ErrNotTripped) {
			t.Fatalf("Resume of nothing = %v, want ErrNotTripped", err)
		}
	})

	t.Run("TripReplaceResume", func(t *testing.T) {
		s := newStore(t)
		all, agent := killswitch.Scope{}, killswitch.Scope{Tenant: "acme", Agent: "bot", Tool: "refund"}
		for _, h := range []killswitch.Halt{halt(all, "stop"), halt(agent, "loop"), halt(agent, "loop again")} {
			if err := s.Trip(ctx, h); err != nil {
				t.Fatalf("Trip(%s): %v", h.Scope, err)
			}
		}
		m := trips(t, s)
		if len(m) != 2 {
			t.Fatalf("Trips = %v, want 2 trips", m)
		}
		got := m[agent]
		if got.Who != "alice" || got.Why != "loop again" || !got.At.Equal(at) {
			t.Fatalf("trip of %s = %+v, want the replacing trip", agent, got)
		}
		if err := s.Resume(ctx, all); err != nil {
			t.Fatalf("Resume: %v", err)
		}
		if err := s.Resume(ctx, all); !errors.Is(err, killswitch.ErrNotTripped) {
			t.Fatalf("second Resume = %v, want ErrNotTripped", err)
		}
		if m := trips(t, s); len(m) != 1 || m[agent].Why != "loop again" {
			t.Fatalf("after Resume: %v, want only %s", m, agent)
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		s := newStore(t)
		c, cancel := context.WithCancel(ctx)
		cancel()
		if hs, err := s.Trips(c); err == nil {
			t.Fatalf("Trips with a cancelled context = %v, nil; want an error (an empty list would resume the fleet)", hs)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		const n = 40
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				sc := killswitch.Scope{Agent: fmt.Sprintf("a%02d", i)}
				if err := s.Trip(ctx, halt(sc, "x")); err != nil {
					t.Errorf("Trip: %v", err)
				}
				if i%2 == 0 {
					if err := s.Resume(ctx, sc); err != nil {
						t.Errorf("Resume: %v", err)
					}
				}
			})
		}
		wg.Wait()
		if m := trips(t, s); len(m) != n/2 {
			t.Fatalf("%d trips, want %d", len(m), n/2)
		}
	})

	t.Run("Watch", func(t *testing.T) {
		s := newStore(t)
		w, ok := s.(killswitch.Watcher)
		if !ok {
			t.Skip("the store does not push changes")
		}
		c, cancel := context.WithCancel(ctx)
		changed := make(chan struct{}, 16)
		done := make(chan error, 1)
		go func() { done <- w.Watch(c, func() { changed <- struct{}{} }) }()
		wait := func(what string) {
			t.Helper()
			select {
			case <-changed:
			case err := <-done:
				t.Fatalf("Watch returned %v before %s", err, what)
			case <-time.After(10 * time.Second):
				t.Fatalf("no change reported for %s", what)
			}
		}
		wait("the start of the watch")
		if err := s.Trip(ctx, halt(killswitch.Scope{Tool: "x"}, "w")); err != nil {
			t.Fatal(err)
		}
		wait("a trip")
		if err := s.Resume(ctx, killswitch.Scope{Tool: "x"}); err != nil {
			t.Fatal(err)
		}
		wait("a resume")
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Watch did not return after its context ended")
		}
	})

	t.Run("Trigger", func(t *testing.T) {
		s := newStore(t)
		a, b := killswitch.New(killswitch.Options{}), killswitch.New(killswitch.Options{})
		ta, err := killswitch.NewStoreTrigger(a, s, killswitch.StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tb, _ := killswitch.NewStoreTrigger(b, s, killswitch.StoreOptions{})
		key := killswitch.Key{Tenant: "acme", Agent: "bot", Tool: "refund"}
		// A local trip of b, made some other way, must survive the store.
		local := killswitch.Scope{Tool: "wire"}
		if err := b.Trip(local, "breaker", "too many errors"); err != nil {
			t.Fatal(err)
		}
		cctx, exit, err := b.Enter(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if err := ta.Trip(ctx, killswitch.Scope{Agent: "bot"}, "alice", "refund loop"); err != nil {
			t.Fatalf("Trip through the trigger: %v", err)
		}
		if _, on := a.Tripped(key); !on {
			t.Fatal("the tripping process is not tripped")
		}
		if err := tb.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if cctx.Err() == nil || exit() {
			t.Fatal("a call in flight in the other process was not halted")
		}
		var h *killswitch.Halt
		if !errors.As(context.Cause(cctx), &h) || h.Who != "alice" || h.Why != "refund loop" {
			t.Fatalf("cause = %v, want alice's trip", context.Cause(cctx))
		}
		if err := ta.Resume(ctx, killswitch.Scope{Agent: "bot"}, "alice", "fixed"); err != nil {
			t.Fatalf("Resume: %v", err)
		}
		if err := tb.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if _, on := b.Tripped(key); on {
			t.Fatal("the other process stayed tripped after the resume")
		}
		if _, on := b.Lookup(local); !on {
			t.Fatal("the store's resume ended a trip the trigger did not make")
		}
	})
}

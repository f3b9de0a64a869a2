// Package storetest checks that an approval.Store keeps the contract the
// approval.Gate relies on. A driver's test is one line:
//
//	func TestStore(t *testing.T) { storetest.Run(t, func(t *testing.T) approval.Store { return newStore(t) }) }
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/approval"
)

// Run checks the store that newStore returns; each subtest gets a fresh,
// empty store.
func Run(t *testing.T, newStore func(t *testing.T) approval.Store) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	permit := func(id string, created time.Time) approval.Permit {
		return approval.Permit{ID: id, Scope: approval.ScopeTool, Tool: "refund", Agent: "bot", Tenant: "acme",
			By: "alice", Note: "n", Request: "r-" + id, Created: created, Expires: created.Add(time.Hour)}
	}
	ctx := context.Background()

	t.Run("Empty", func(t *testing.T) {
		s := newStore(t)
		l, err := s.List(ctx)
		if err != nil || len(l) != 0 {
			t.Fatalf("List = %v, %v; want empty", l, err)
		}
		if err := s.Delete(ctx, "nope"); !errors.Is(err, approval.ErrNoGrant) {
			t.Fatalf("Delete(unknown) = %v, want ErrNoGrant", err)
		}
	})

	t.Run("PutListDelete", func(t *testing.T) {
		s := newStore(t)
		// Put out of order; List sorts by Created, then ID.
		for _, p := range []approval.Permit{permit("c", t0.Add(time.Second)), permit("b", t0), permit("a", t0)} {
			if err := s.Put(ctx, p); err != nil {
				t.Fatalf("Put(%s) = %v", p.ID, err)
			}
		}
		l, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(l) != 3 || l[0].ID != "a" || l[1].ID != "b" || l[2].ID != "c" {
			t.Fatalf("List = %+v, want a, b, c", l)
		}
		want := permit("a", t0)
		if got := l[0]; got.Scope != want.Scope || got.Tool != want.Tool || got.Agent != want.Agent || got.Tenant != want.Tenant ||
			got.By != want.By || got.Note != want.Note || got.Request != want.Request || !got.Created.Equal(want.Created) || !got.Expires.Equal(want.Expires) {
			t.Fatalf("List[0] = %+v, want %+v", got, want)
		}
		// Put with an existing ID replaces.
		repl := permit("b", t0)
		repl.Note = "replaced"
		if err := s.Put(ctx, repl); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "a"); !errors.Is(err, approval.ErrNoGrant) {
			t.Fatalf("second Delete = %v, want ErrNoGrant", err)
		}
		l, _ = s.List(ctx)
		if len(l) != 2 || l[0].ID != "b" || l[0].Note != "replaced" || l[1].ID != "c" {
			t.Fatalf("List = %+v, want b (replaced), c", l)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		const n = 50
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				id := fmt.Sprintf("p%03d", i)
				if err := s.Put(ctx, permit(id, t0)); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				if _, err := s.List(ctx); err != nil {
					t.Errorf("List: %v", err)
				}
				if i%2 == 0 {
					if err := s.Delete(ctx, id); err != nil {
						t.Errorf("Delete: %v", err)
					}
				}
			})
		}
		wg.Wait()
		l, err := s.List(ctx)
		if err != nil || len(l) != n/2 {
			t.Fatalf("List = %d permits, %v; want %d", len(l), err, n/2)
		}
	})

	t.Run("WithGate", func(t *testing.T) {
		s := newStore(t)
		now := t0
		var mu sync.Mutex
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		asked := 0
		a := approval.Func(func(_ context.Context, r *approval.Request) (approval.Verdict, error) {
			mu.Lock()
			asked++
			mu.Unlock()
			return r.ApproveFor("alice", "", approval.Grant{Scope: approval.ScopeAgent, Duration: time.Minute}), nil
		})
		g, err := approval.NewGate(a, approval.Options{Store: s, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		ask := func(id string) {
			t.Helper()
			if _, err := g.Ask(ctx, &approval.Request{ID: id, Tool: "x", Principal: approval.Principal{Agent: "bot"}}); err != nil {
				t.Fatal(err)
			}
		}
		ask("1")
		ask("2")
		if asked != 1 {
			t.Fatalf("asked %d times, want 1: the store lost the grant", asked)
		}
		mu.Lock()
		now = now.Add(time.Minute)
		mu.Unlock()
		ask("3")
		if asked != 2 {
			t.Fatalf("asked %d times, want 2: an expired grant still covered", asked)
		}
	})
}

package agentguard_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/killswitch"
)

// observerFunc adapts a function to an Observer.
type observerFunc func(*agentguard.Event)

func (f observerFunc) Observe(e *agentguard.Event) { f(e) }

// pooledGuard is a guard whose stages are all built in, so that its calls'
// flights are pooled, with an observer that keeps, for each call ID, what
// its result event said it cost.
func pooledGuard(t *testing.T) (*agentguard.Guard, func() map[string][]agentguard.Cost) {
	t.Helper()
	var mu sync.Mutex
	costs := map[string][]agentguard.Cost{}
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)),
		agentguard.WithKillSwitch(killswitch.New(killswitch.Options{})),
		agentguard.WithAuditFile(filepath.Join(t.TempDir(), "audit.jsonl"), audit.Options{Sync: audit.SyncNever}),
		agentguard.WithObserver(observerFunc(func(e *agentguard.Event) {
			if e.Kind != agentguard.EventResult {
				return
			}
			mu.Lock()
			costs[e.Call.ID] = append([]agentguard.Cost(nil), e.Actual...) // a copy: observers keep no event
			mu.Unlock()
		})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, func() map[string][]agentguard.Cost {
		mu.Lock()
		defer mu.Unlock()
		return costs
	}
}

type readArgs struct {
	Path string `json:"path"`
}

// TestStaleContextOfAPooledCall: a tool keeps its context after its call
// ended, and the call's state carries the next call. Through the stale
// context, Charge is refused, CallFrom never yields the next call, and the
// context reads as done; the next call's cost and ID are its own.
func TestStaleContextOfAPooledCall(t *testing.T) {
	g, costs := pooledGuard(t)
	var kept context.Context
	var firstID string
	read := agentguard.Wrap(g, "read_file", func(ctx context.Context, a readArgs) (string, error) {
		c, ok := agentguard.CallFrom(ctx)
		if !ok {
			return "", errors.New("no call in the tool's context")
		}
		if kept == nil {
			kept, firstID = ctx, c.ID
		} else if err := agentguard.Charge(kept, agentguard.Cost{Unit: "USD", Micros: 999}); err == nil {
			return "", errors.New("Charge through the previous call's context was accepted")
		}
		if err := agentguard.Charge(ctx, agentguard.Cost{Unit: "USD", Micros: 7}); err != nil {
			return "", err
		}
		return a.Path, nil
	})
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot"})
	for i := range 3 {
		if _, err := read(ctx, readArgs{Path: fmt.Sprint("/data/", i)}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if err := agentguard.Charge(kept, agentguard.Cost{Unit: "USD", Micros: 1}); err == nil {
		t.Error("Charge through an ended call's context: nil error")
	}
	if c, ok := agentguard.CallFrom(kept); ok && c.ID != firstID {
		t.Errorf("CallFrom(an ended call's context) = call %s, want its own %s or none", c.ID, firstID)
	}
	select {
	case <-kept.Done():
	default:
		t.Error("an ended call's context is not done")
	}
	if kept.Err() == nil {
		t.Error("an ended call's context: Err() = nil")
	}
	got := costs()
	if len(got) != 3 {
		t.Fatalf("%d results observed, want 3: %v", len(got), got)
	}
	for id, cs := range got {
		if len(cs) != 1 || cs[0].Micros != 7 {
			t.Errorf("call %s cost %v, want 7 USD (its own charge only)", id, cs)
		}
	}
	if _, ok := got[firstID]; !ok {
		t.Errorf("the first call's ID %s, kept from CallFrom, is not among the results %v", firstID, got)
	}
}

// TestPooledCallsConcurrent: calls run from many goroutines while
// goroutines left behind by earlier calls charge and read through their
// stale contexts, each charging in a unit named after its own call. Every
// call is charged only in USD and its own unit, and CallFrom in a stale
// context never yields another call. Run it with -race.
func TestPooledCallsConcurrent(t *testing.T) {
	g, costs := pooledGuard(t)
	stop := make(chan struct{})
	var leaked sync.WaitGroup
	var bad sync.Map // a problem seen by a leaked goroutine
	read := agentguard.Wrap(g, "read_file", func(ctx context.Context, a readArgs) (string, error) {
		c, _ := agentguard.CallFrom(ctx)
		id := c.ID
		leaked.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				agentguard.Charge(ctx, agentguard.Cost{Unit: id, Micros: 1})
				if c, ok := agentguard.CallFrom(ctx); ok && c.ID != id {
					bad.Store("CallFrom", fmt.Sprintf("a stale context of %s yielded %s", id, c.ID))
				}
				if ctx.Err() != nil {
					return
				}
			}
		})
		if err := agentguard.Charge(ctx, agentguard.Cost{Unit: "USD", Micros: 7}); err != nil {
			return "", err
		}
		return a.Path, nil
	})
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot"})
	var wg sync.WaitGroup
	const workers, calls = 4, 200
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				if _, err := read(ctx, readArgs{Path: fmt.Sprintf("/data/%d/%d", w, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	leaked.Wait()
	bad.Range(func(k, v any) bool { t.Errorf("%s: %s", k, v); return true })
	got := costs()
	if len(got) != workers*calls {
		t.Fatalf("%d results observed, want %d", len(got), workers*calls)
	}
	for id, cs := range got {
		usd := 0
		for _, c := range cs {
			switch c.Unit {
			case "USD":
				usd++
			case id:
			default:
				t.Errorf("call %s was charged by call %s's context", id, c.Unit)
			}
		}
		if usd != 1 {
			t.Errorf("call %s: %d charges in USD, want its own one: %v", id, usd, cs)
		}
	}
}

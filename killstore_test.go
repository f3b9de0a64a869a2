package agentguard_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/killswitch"
)

// Two guards (two processes of a fleet) follow one store: a trip through
// one's KillStore halts the other's call in flight, by push, and is
// recorded there; a trip in the store at start refuses the first call.
func TestWithKillStore(t *testing.T) {
	st := new(killswitch.Mem)
	ga, _ := ksGuard(t, killswitch.New(killswitch.Options{}), ksAllowAll, agentguard.WithKillStore(st, time.Hour, killswitch.StoreOptions{}))
	gb, recB := ksGuard(t, killswitch.New(killswitch.Options{}), ksAllowAll, agentguard.WithKillStore(st, time.Hour, killswitch.StoreOptions{}))
	if ga.KillStore() == nil {
		t.Fatal("KillStore() = nil with WithKillStore")
	}
	started := make(chan struct{})
	tool := agentguard.Wrap(gb, "slow", func(ctx context.Context, _ struct{}) (string, error) {
		close(started)
		<-ctx.Done()
		return "", ctx.Err()
	})
	errc := make(chan error, 1)
	go func() {
		_, err := tool(as("bot"), struct{}{})
		errc <- err
	}()
	ksAwait(t, started, errc)
	if err := ga.KillStore().Trip(context.Background(), killswitch.Scope{Agent: "bot"}, "alice", "fleet stop"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, agentguard.ErrHalted) {
			t.Fatalf("in-flight call in the other guard: %v, want ErrHalted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other guard's call was not halted")
	}
	// The trip cancels the call before the guard records the halt, so the
	// record may come just after the call returned: wait for it.
	countHalts := func(events []agentguard.Event) int {
		n := 0
		for _, e := range events {
			if e.Kind == agentguard.EventHalt && e.Control.Why == "fleet stop" {
				n++
			}
		}
		return n
	}
	recB.await(10*time.Second, func(events []agentguard.Event) bool { return countHalts(events) > 0 })
	if halts := countHalts(recB.snapshot()); halts != 1 {
		t.Errorf("the other guard recorded %d halts, want 1", halts)
	}
	// A third guard starting while the trip is in force refuses at once.
	gc, _ := ksGuard(t, killswitch.New(killswitch.Options{}), ksAllowAll, agentguard.WithKillStore(st, time.Hour, killswitch.StoreOptions{}))
	ran := false
	quick := agentguard.Wrap(gc, "quick", func(context.Context, struct{}) (string, error) { ran = true; return "", nil })
	if _, err := quick(as("bot"), struct{}{}); !errors.Is(err, agentguard.ErrHalted) || ran {
		t.Fatalf("first call of a guard started during a trip: %v (ran %v), want ErrHalted", err, ran)
	}
}

func TestWithKillStoreNeedsSwitch(t *testing.T) {
	_, err := agentguard.New(agentguard.WithPolicy(ksPolicy(t, ksAllowAll)), agentguard.WithKillStore(new(killswitch.Mem), time.Second, killswitch.StoreOptions{}))
	if err == nil {
		t.Fatal("WithKillStore without WithKillSwitch succeeded")
	}
}

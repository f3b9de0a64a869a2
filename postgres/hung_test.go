package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/budget"
)

// A database that stops answering (connections open, nothing coming
// back) does not hold a guarded call: the stores' Timeout ends the
// operation and the call is denied, although the caller's context has no
// deadline; when the database answers again, calls run again.
func TestHungDatabase(t *testing.T) {
	dsn := testDSN(t)
	schema := testDB(t).Schema()
	proxy, pdsn := newCutProxy(t, dsn)
	db, err := Open(context.Background(), pdsn, Options{Schema: schema, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	defer proxy.Unhang()
	at := time.Now()
	h := func(id string) *budget.Hold {
		return &budget.Hold{ID: id, At: at, Deadline: at.Add(time.Hour), Entries: []budget.Entry{{Key: "k", Limit: 100, Amount: 1}}}
	}
	if err := db.Ledger().Reserve(context.Background(), h("a")); err != nil {
		t.Fatal(err)
	}
	g := fleetGuard(t, db, time.Hour)
	ran := false
	tool := agentguard.Wrap(g, "t", func(context.Context, struct{}) (string, error) { ran = true; return "", nil },
		agentguard.Estimate(agentguard.Cost{Unit: "USD", Micros: 1}))
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot"})
	if _, err := tool(ctx, struct{}{}); err != nil || !ran {
		t.Fatalf("a call before the stall: %v (ran %v)", err, ran)
	}
	proxy.Hang()
	done := make(chan error, 2)
	go func() { done <- db.Ledger().Reserve(context.Background(), h("b")) }()
	ran = false
	go func() { _, err := tool(ctx, struct{}{}); done <- err }()
	for range 2 {
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("an operation on a stalled database succeeded")
			}
			var d *agentguard.DeniedError
			if !errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &d) {
				t.Fatalf("refused with %v, want the deadline or a denial", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("an operation on a stalled database did not return")
		}
	}
	if ran {
		t.Fatal("the tool ran while the database was stalled")
	}
	proxy.Unhang()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := tool(ctx, struct{}{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls did not recover after the stall: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

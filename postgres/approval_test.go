package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/approval/storetest"
)

func TestGrantsConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) approval.Store { return testDB(t).Grants() })
}

type askResult struct {
	Approved bool
	By, Note string
	Err      string
}

func init() {
	// Process B: asks for approval of one call through a Gate over the
	// fleet's inbox, and reports the outcome.
	childRoles["ask"] = func(ctx context.Context, a childArgs) (any, error) {
		db, err := Open(ctx, a.DSN, Options{Schema: a.Schema, MaxConns: 3})
		if err != nil {
			return nil, err
		}
		defer db.Close()
		g, err := approval.NewGate(db.Approvals(), approval.Options{Timeout: time.Minute})
		if err != nil {
			return nil, err
		}
		out, err := g.Ask(ctx, &approval.Request{ID: "req-1", Tool: "refund", Args: map[string]any{"amount": 250},
			Principal: approval.Principal{Agent: "bot", Tenant: "acme"}})
		if err != nil {
			return askResult{Err: err.Error()}, nil
		}
		return askResult{Approved: true, By: out.Verdict.By, Note: out.Verdict.Note}, nil
	}
}

// An approval answered through this process releases the call waiting in
// another, exactly once: a second answer, and an answer with another
// call's hash, are refused.
func TestApprovalAcrossProcesses(t *testing.T) {
	db := testDB(t)
	c := startChild(t, "ask", childArgs{DSN: testDSN(t), Schema: db.Schema()})
	ctx := context.Background()
	ap := db.Approvals()
	var card approval.Request
	deadline := time.Now().Add(60 * time.Second)
	for {
		ps, err := ap.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 1 {
			card = ps[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pending request appeared: %s", c.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if card.ID != "req-1" || card.Tool != "refund" || len(card.Hash) != 64 {
		t.Fatalf("pending card = %+v", card)
	}
	bad := approval.Answer{ID: card.ID, Hash: "0000000000000000000000000000000000000000000000000000000000000000", By: "mallory"}
	if err := ap.Answer(ctx, bad, true); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("answer with another hash = %v, want ErrHashMismatch", err)
	}
	ans := approval.Answer{ID: card.ID, Hash: card.Hash, By: "alice", Note: "ok once"}
	if err := ap.Answer(ctx, ans, true); err != nil {
		t.Fatalf("Answer: %v", err)
	}
	if err := ap.Answer(ctx, approval.Answer{ID: card.ID, Hash: card.Hash, By: "bob"}, false); !errors.Is(err, ErrNotPending) {
		t.Fatalf("second answer = %v, want ErrNotPending", err)
	}
	var r askResult
	c.wait(t, &r)
	if !r.Approved || r.By != "alice" || r.Note != "ok once" {
		t.Fatalf("the waiting call got %+v, want alice's approval", r)
	}
	if ps, _ := ap.Pending(ctx); len(ps) != 0 {
		t.Fatalf("still pending after the answer: %+v", ps)
	}
}

// A rejection reaches the waiting call as a rejection.
func TestApprovalRejected(t *testing.T) {
	db := testDB(t)
	ap := db.Approvals()
	g, _ := approval.NewGate(ap, approval.Options{Timeout: time.Minute})
	errc := make(chan error, 1)
	go func() {
		_, err := g.Ask(context.Background(), &approval.Request{ID: "r2", Tool: "wire", Principal: approval.Principal{Agent: "bot"}})
		errc <- err
	}()
	ctx := context.Background()
	var card approval.Request
	for card.ID == "" {
		ps, err := ap.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) > 0 {
			card = ps[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := ap.Answer(ctx, approval.Answer{ID: card.ID, Hash: card.Hash, By: "alice", Note: "no"}, false); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, approval.ErrRejected) {
			t.Fatalf("Ask = %v, want ErrRejected", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the rejection never reached the call")
	}
}

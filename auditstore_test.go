package agentguard_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
)

// Two guards record into one store: one chain that verifies. A store that
// cannot record denies the call before the tool runs, and the guard
// records again once the store is back.
func TestWithAuditStore(t *testing.T) {
	st := new(audit.MemStore)
	var gs []*agentguard.Guard
	for range 2 {
		l, err := audit.OpenStore(st, audit.StoreOptions{ID: "fleet"})
		if err != nil {
			t.Fatal(err)
		}
		g, err := agentguard.New(agentguard.WithPolicy(ksPolicy(t, ksAllowAll)), agentguard.WithAuditStore(l))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		gs = append(gs, g)
	}
	runs := 0
	tool := func(context.Context, struct{ Token string }) (string, error) { runs++; return "ok", nil }
	for i := range 4 {
		if _, err := agentguard.Wrap(gs[i%2], "t", tool)(as("bot"), struct{ Token string }{"s3cr3t-value"}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	st.SetErr(errors.New("connection reset"))
	_, err := agentguard.Wrap(gs[0], "t", tool)(as("bot"), struct{ Token string }{"x"})
	if !errors.Is(err, agentguard.ErrAuditUnavailable) || runs != 4 {
		t.Fatalf("call with the store down: %v (tool ran %d times), want ErrAuditUnavailable and no run", err, runs)
	}
	st.SetErr(nil)
	if _, err := agentguard.Wrap(gs[1], "t", tool)(as("bot"), struct{ Token string }{"y"}); err != nil {
		t.Fatalf("call after the store came back: %v", err)
	}
	var buf bytes.Buffer
	if err := audit.Export(context.Background(), st, "fleet", 0, &buf); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("s3cr3t-value")) {
		t.Fatal("a secret argument reached the store")
	}
	rep, err := audit.VerifyReaders(audit.VerifyOptions{}, audit.Source{Name: "fleet", R: &buf})
	if err != nil {
		t.Fatalf("the chain of two guards does not verify: %v", err)
	}
	if rep.Records != 10 { // 5 calls that ran: a decision and a result each
		t.Fatalf("%d records, want 10", rep.Records)
	}
}

func TestWithAuditStoreNil(t *testing.T) {
	if _, err := agentguard.New(agentguard.WithAuditStore(nil)); err == nil {
		t.Fatal("WithAuditStore(nil) succeeded")
	}
}

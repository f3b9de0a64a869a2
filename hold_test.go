package agentguard_test

import (
	"context"
	"errors"
	"testing"

	"github.com/hardstop-labs/agentguard"
)

// TestHold: a call made with Hold is refused and recorded even though the
// policy would allow it, and the tool never runs.
func TestHold(t *testing.T) {
	rec := &memRecorder{}
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)), agentguard.WithRecorder(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ran := false
	read := agentguard.Wrap(g, "read_file", func(ctx context.Context, in map[string]any) (string, error) {
		ran = true
		return "ok", nil
	}, agentguard.Hold("tool-changed", "the tool's definition changed"))
	_, err = read(context.Background(), map[string]any{"path": "a"})
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Code != agentguard.CodePolicyDenied || d.Rule != "tool-changed" || d.Stage != agentguard.StagePolicy {
		t.Fatalf("held call: err = %#v, want a policy denial by tool-changed", err)
	}
	if ran {
		t.Fatal("a held call ran")
	}
	if got := rec.kinds(); len(got) != 1 || got[0] != "decision:deny:policy_denied" {
		t.Fatalf("recorded %v, want one policy denial", got)
	}
	// Without Hold the same call runs.
	if _, err := agentguard.Wrap(g, "read_file", func(ctx context.Context, in map[string]any) (string, error) { return "ok", nil })(context.Background(), nil); err != nil {
		t.Fatalf("unheld call: %v", err)
	}
}

// TestRecordTool: Guard.Record writes tool events and refuses the kinds
// that belong to the guard.
func TestRecordTool(t *testing.T) {
	rec := &memRecorder{}
	g, err := agentguard.New(agentguard.WithRecorder(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Record(context.Background(), &agentguard.Event{Kind: agentguard.EventTool, Call: &agentguard.Call{Tool: "x"}, Rule: "tool-new", Note: "abc"}); err != nil {
		t.Fatalf("Record(tool) = %v", err)
	}
	for _, k := range []agentguard.EventKind{agentguard.EventDecision, agentguard.EventResult, agentguard.EventHalt, ""} {
		if err := g.Record(context.Background(), &agentguard.Event{Kind: k}); err == nil {
			t.Errorf("Record(%q) = nil, want an error", k)
		}
	}
	if err := g.Record(context.Background(), nil); err == nil {
		t.Error("Record(nil) = nil, want an error")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.events) != 1 || rec.events[0].Kind != agentguard.EventTool || rec.events[0].Note != "abc" {
		t.Fatalf("recorded %+v, want the one tool event", rec.events)
	}
}

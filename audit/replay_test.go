package audit

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hardstop-labs/agentguard/policy"
)

func TestReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Record{
		// approved by a human: approve; stays approve
		{Kind: KindDecision, Call: "a", Tool: "refund", Decision: "allow", Approver: "bob"},
		// rate limited after an allow: only a deny is a change
		{Kind: KindDecision, Call: "b", Tool: "refund", Decision: "deny", Code: "rate_limited", Stage: "rate"},
		// rate limited, and the new policy denies: changed
		{Kind: KindDecision, Call: "c", Tool: "delete", Decision: "deny", Code: "rate_limited", Stage: "rate"},
		// allowed; the new policy denies: changed
		{Kind: KindDecision, Call: "d", Tool: "delete", Decision: "allow"},
		// halted before the policy: skipped
		{Kind: KindDecision, Call: "e", Tool: "delete", Decision: "deny", Code: "halted", Stage: "killswitch"},
		// not a decision
		{Kind: KindResult, Call: "d", Tool: "delete", Outcome: "ok"},
		// a redacted secret stays redacted: the rule that reads it sees the mark
		{Kind: KindDecision, Call: "f", Tool: "login", Args: map[string]any{"password": "hunter2!"}, Decision: "allow"},
	} {
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	pol, err := policy.Parse("new.yaml", []byte(`
version: 1
default: deny
rules:
  - name: refunds
    match: call.tool == "refund"
    effect: approve
  - name: logins
    match: call.tool == "login" && call.args.password.startsWith("[REDACTED:")
    effect: allow
`))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Replay(context.Background(), pol, path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decisions != 5 || rep.Skipped != 1 {
		t.Errorf("Replay = %+v, want 5 decisions and 1 skipped", rep)
	}
	var calls []string
	for _, c := range rep.Changes {
		calls = append(calls, c.Call+":"+c.Old.String()+">"+c.New.Effect.String())
	}
	if got, want := calls, []string{"c:allow>deny", "d:allow>deny"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("changes %v, want %v", got, want)
	}
	// A torn log is an error, not a partial replay.
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:len(data)-1], 0o600)
	if _, err := Replay(context.Background(), pol, path); err == nil {
		t.Error("Replay of a torn log succeeded")
	}
}

// TestRecordedEffectOfNewCodes: what the policy had decided, read back
// from a denial with the codes of issue 11: a verdict that did not count
// was asked of a human (approve); an unavailable control or the caller's
// cancel after the policy keeps the policy's effect; before it, the policy
// did not decide.
func TestRecordedEffectOfNewCodes(t *testing.T) {
	for _, c := range []struct {
		code, stage, approver string
		want                  policy.Effect
		ok                    bool
	}{
		{"approval_invalid", "approval", "", policy.Approve, true},
		{"unavailable", "approval", "", policy.Approve, true},
		{"cancelled", "approval", "", policy.Approve, true},
		{"unavailable", "budget", "", policy.Allow, true},
		{"unavailable", "rate", "bob", policy.Approve, true},
		{"cancelled", "budget", "", policy.Allow, true},
		{"unavailable", "policy", "", policy.Deny, false},
		{"cancelled", "policy", "", policy.Deny, false},
		{"cancelled", "killswitch", "", policy.Deny, false},
		{"halted", "killswitch", "", policy.Deny, false},
	} {
		got, ok := recordedEffect(&Record{Code: c.code, Stage: c.stage, Approver: c.approver})
		if got != c.want || ok != c.ok {
			t.Errorf("recordedEffect(%s at %s) = %v, %v; want %v, %v", c.code, c.stage, got, ok, c.want, c.ok)
		}
	}
}

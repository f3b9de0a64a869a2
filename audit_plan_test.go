package agentguard

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/policy"
)

// TestAuditPlanSameLog records the same events with the recorder's
// per-tool plans and without them (plans used up), into two logs with the
// same ID, key and clock, and checks that the files are the same byte for
// byte: plans change no record and no hash. The events cover a typed
// tool's keys, a key the plan learns later, secret keys and values, a
// secret in the tool's error, labels, and principals that change.
func TestAuditPlanSameLog(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	open := func(name string) (*audit.Log, string) {
		path := filepath.Join(dir, name)
		l, err := audit.Open(path, audit.Options{Sync: audit.SyncNever, ID: "plan-test",
			Redaction: audit.Redaction{HashKey: []byte("key")}, Clock: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return l, path
	}
	lp, pathP := open("plans.jsonl")
	lg, pathG := open("general.jsonl")
	withPlans := &auditRecorder{log: lp}
	general := &auditRecorder{log: lg}
	general.nplans.Store(maxPlans)

	labels := map[string]string{"team": "support"}
	calls := []Call{
		{ID: "c1", Tool: "send_email", Env: "prod", Labels: labels, Principal: Principal{Agent: "bot", Tenant: "acme"},
			Args: map[string]any{"to": "bob@example.com", "subject": "hi", "body": "Hello"}},
		{ID: "c2", Tool: "send_email", Env: "prod", Labels: labels, Principal: Principal{Agent: "bot", Tenant: "acme"},
			Args: map[string]any{"to": "bob@example.com", "subject": "token=abc123secret", "body": "Bearer abcdefghijklmnop"}},
		{ID: "c3", Tool: "send_email", Env: "prod", Labels: labels, Principal: Principal{Agent: "other", Requester: "alice"},
			Args: map[string]any{"to": "x@example.com", "password": "hunter22", "body": "see hunter22"}},
		{ID: "c4", Tool: "send_email", Env: "prod", Labels: labels, Principal: Principal{Agent: "bot", Tenant: "acme"},
			Args: map[string]any{"to": "y@example.com", "password": "hunter23", "cc": int64(3)}},
		{ID: "c5", Tool: "lookup", Env: "prod", Args: map[string]any{"q": "plain", "n": 1.5, "deep": map[string]any{"apiKey": "k-123456"}}},
		{ID: "c6", Tool: "lookup", Env: "prod", Args: map[string]any{"q": "plain", "n": 2.0}},
		{ID: "c7", Tool: "nothing", Env: "prod"},
	}
	ctx := context.Background()
	// The calls with plans come from wrapped tools, which keep their plan
	// (see auditRecorder.plan).
	tools := map[string]*toolConfig{}
	for _, rec := range []*auditRecorder{withPlans, general} {
		for i := range calls {
			c := &calls[i]
			var tc *toolConfig
			if rec == withPlans {
				if tools[c.Tool] == nil {
					tools[c.Tool] = &toolConfig{labels: c.Labels}
				}
				tc = tools[c.Tool]
			}
			events := []Event{
				{Kind: EventDecision, Call: c, Decision: policy.Allow, Rule: "r", Reason: "ok", PolicyVersion: "v1",
					Estimate: []Cost{{Unit: "USD", Micros: 5}}, tool: tc},
				{Kind: EventResult, Call: c, Outcome: OutcomeError, Err: errors.New("failed with hunter22 and hunter23"),
					Duration: time.Millisecond, Actual: []Cost{{Unit: "USD", Micros: 5}}, tool: tc},
			}
			for j := range events {
				if err := rec.Record(ctx, &events[j]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, l := range []*audit.Log{lp, lg} {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	a, err := os.ReadFile(pathP)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pathG)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("the log written with plans differs:\n%s\nwithout:\n%s", a, b)
	}
	for _, line := range bytes.Split(a, []byte("\n")) {
		// c3's password is scrubbed from its error; c2's token is redacted.
		if bytes.Contains(line, []byte(`"kind":"result"`)) && bytes.Contains(line, []byte(`"call":"c3"`)) && bytes.Contains(line, []byte("hunter22")) ||
			bytes.Contains(line, []byte("abc123secret")) {
			t.Fatalf("a secret is in the log: %s", line)
		}
	}
	v, ok := withPlans.plans.Load("send_email")
	if !ok {
		t.Fatal("no plan kept for send_email")
	}
	if n := v.(*audit.Plan).NumKeys(); n != 5 {
		t.Errorf("send_email's plan knows %d keys, want 5 (learnt from later calls)", n)
	}
	if tp := tools["send_email"].plan.Load(); tp == nil || tp.p != v.(*audit.Plan) || tp.r != withPlans {
		t.Errorf("send_email's configuration keeps %+v, want the recorder's latest plan %p", tp, v)
	}
	if tp := tools["nothing"].plan.Load(); tp == nil || tp.p == nil || tp.tool != "nothing" {
		t.Errorf("a tool without arguments keeps %+v, want its plan", tp)
	}
	if _, ok := general.plans.Load("send_email"); ok {
		t.Error("a recorder past maxPlans made a plan")
	}
}

// TestAuditRecordAllocs checks that recording an allowed call's decision
// and result allocates nothing once the tool's plan is made: the record
// comes from the pool, redaction finds the arguments clean through the
// plan, and the encoding goes to the log's buffer.
func TestAuditRecordAllocs(t *testing.T) {
	if raceDetector {
		t.Skip("under the race detector sync.Pool drops items, so pooled buffers allocate")
	}
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.jsonl"), audit.Options{Sync: audit.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := &auditRecorder{log: l}
	c := &Call{ID: "0193b6c8-7c4e-7000-8000-000000000000", Tool: "send_email", Env: "prod",
		Principal: Principal{Agent: "support-bot", Requester: "alice", Tenant: "acme", Session: "s1"},
		Labels:    map[string]string{"team": "support"},
		Args:      map[string]any{"to": "bob@example.com", "subject": "Your refund", "body": "Hello Bob"},
		Estimate:  []Cost{{Unit: "USD", Micros: 1000}}}
	// A tool whose calls bring a key too long for a plan: it must not
	// remake its plan at every call.
	odd := &Call{ID: "0193b6c8-7c4e-7000-8000-000000000001", Tool: "lookup", Env: "prod",
		Args: map[string]any{"q": "x", strings.Repeat("k", 200): "y"}}
	ctx := context.Background()
	dec := Event{Kind: EventDecision, Call: c, Decision: policy.Allow, Rule: "support-mail", PolicyVersion: "v1", Estimate: c.Estimate}
	res := Event{Kind: EventResult, Call: c, Outcome: OutcomeOK, Duration: time.Microsecond, Actual: c.Estimate}
	oddDec := Event{Kind: EventDecision, Call: odd, Decision: policy.Allow}
	call := func() {
		for _, e := range []*Event{&dec, &res, &oddDec} {
			if err := r.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	call() // makes the plan
	if n := testing.AllocsPerRun(200, call); n != 0 {
		t.Errorf("recording three records: %v allocations, want 0", n)
	}
}

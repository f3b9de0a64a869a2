package agentguard

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/policy"
)

// memo is a planned struct without secret-named fields: its records take
// the audit reader's path unless a value needs redaction.
type memo struct {
	To      string  `json:"to"`
	Subject string  `json:"subject,omitempty"`
	Count   int     `json:"count"`
	Big     uint64  `json:"big"`
	Ratio   float64 `json:"ratio,omitempty"`
	Urgent  bool    `json:"urgent"`
}

// login has a secret-named field: its records are redacted from the map.
type login struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// lazyFlight returns a lazy flight holding v's arguments for call c, as
// begin makes one for a pooled call.
func lazyFlight[T any](t *testing.T, c Call, v T) *flight {
	t.Helper()
	f := &flight{}
	f.call = c
	if !planArgs(reflect.TypeFor[T]()).view(unsafe.Pointer(&v), &f.view) {
		t.Fatalf("no view of %#v", v)
	}
	f.lazy = true
	return f
}

// TestAuditReaderSameLog records the same calls from lazy flights (the
// log reads the arguments through audit.ArgReader) and with their maps,
// into two logs with the same ID and clock, and checks that the files
// are the same byte for byte: decisions, denials and results (a tool's
// error scrubbed of a secret among the arguments); plain arguments,
// secret-shaped values, secret-named keys, omitted fields, long strings,
// big and negative numbers; and a struct whose keys the tool's plan does
// not know (the same tool name wrapped twice).
func TestAuditReaderSameLog(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	open := func(name string) (*audit.Log, string) {
		path := filepath.Join(dir, name)
		l, err := audit.Open(path, audit.Options{Sync: audit.SyncNever, ID: "reader-test",
			Redaction: audit.Redaction{HashKey: []byte("key")}, Clock: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return l, path
	}
	lr, pathR := open("reader.jsonl")
	lm, pathM := open("map.jsonl")
	byReader := &auditRecorder{log: lr}
	byMap := &auditRecorder{log: lm}

	labels := map[string]string{"team": "support"}
	base := Call{Tool: "send", Env: "prod", Labels: labels, Principal: Principal{Agent: "bot", Tenant: "acme"}}
	var flights []*flight
	for i, v := range []memo{
		{To: "bob@example.com", Subject: "hi", Count: 3, Urgent: true},
		{To: "bob@example.com", Count: -9, Big: 1<<63 + 5, Ratio: 0.25},
		{To: "carol@example.com", Subject: "Authorization: Bearer abcdefghijklmnopqrstuvwxyz"},
		{To: "dan@example.com", Subject: "sk-abcdefghijklmnopqrstu and ghp_abcdefghijklmnopqrstuvwxyz0123456789"},
		{To: "erin@example.com", Subject: strings.Repeat("long ", 3000)},
		{To: "日本@example.com", Subject: "hunter22"},
		{},
	} {
		c := base
		c.ID = "m" + string(rune('0'+i))
		flights = append(flights, lazyFlight(t, c, v))
	}
	for i, v := range []login{{User: "root", Password: "hunter22"}, {User: "alice"}} {
		c := base
		c.ID, c.Tool = "l"+string(rune('0'+i)), "login"
		flights = append(flights, lazyFlight(t, c, v))
	}
	// The same tool name with another struct: keys the plan does not know.
	c := base
	c.ID = "x0"
	flights = append(flights, lazyFlight(t, c, login{User: "mallory", Password: "pw-123456"}))

	ctx := context.Background()
	for _, f := range flights {
		fm := &flight{}
		fm.call = f.call
		fm.call.Args = f.view.Args()
		f.view.m = nil // the reader's own: built only if the log needs it
		for _, rec := range []struct {
			r *auditRecorder
			f *flight
		}{{byReader, f}, {byMap, fm}} {
			events := []Event{
				{Kind: EventDecision, Call: &rec.f.call, lazy: rec.f.lazyArgs(), Decision: policy.Allow, Rule: "r", PolicyVersion: "v1"},
				{Kind: EventResult, Call: &rec.f.call, lazy: rec.f.lazyArgs(), Outcome: OutcomeError,
					Err: errors.New("failed with hunter22 and pw-123456"), Duration: time.Millisecond},
				{Kind: EventResult, Call: &rec.f.call, lazy: rec.f.lazyArgs(), Outcome: OutcomeOK},
				{Kind: EventDecision, Call: &rec.f.call, lazy: rec.f.lazyArgs(), Decision: policy.Deny, Code: CodePolicyDenied,
					Stage: StagePolicy, Rule: "no", Reason: "no hunter22"},
			}
			for j := range events {
				if err := rec.r.Record(ctx, &events[j]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, l := range []*audit.Log{lr, lm} {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	a, err := os.ReadFile(pathR)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pathM)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		al, bl := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
		for i := range min(len(al), len(bl)) {
			if !bytes.Equal(al[i], bl[i]) {
				t.Fatalf("line %d read from the flights:\n%s\nfrom maps:\n%s", i, al[i], bl[i])
			}
		}
		t.Fatalf("the logs differ in length: %d and %d lines", len(al), len(bl))
	}
	// The passwords are scrubbed wherever the call has them; a token
	// shape everywhere.
	for _, line := range bytes.Split(a, []byte("\n")) {
		if bytes.Contains(line, []byte(`"call":"l0"`)) && bytes.Contains(line, []byte("hunter22")) ||
			bytes.Contains(line, []byte(`"call":"x0"`)) && bytes.Contains(line, []byte("pw-123456")) ||
			bytes.Contains(line, []byte("abcdefghijklmnopqrstuvwxyz")) {
			t.Errorf("a secret is in the log: %s", line)
		}
	}
}

// TestAuditReaderNoMap: a lazy flight's allowed call whose arguments need
// no redaction is recorded (decision and result, failed or not) without
// its map.
func TestAuditReaderNoMap(t *testing.T) {
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.jsonl"), audit.Options{Sync: audit.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := &auditRecorder{log: l}
	f := lazyFlight(t, Call{ID: "c", Tool: "send", Env: "prod"}, memo{To: "bob@example.com", Count: 3})
	for _, e := range []Event{
		{Kind: EventDecision, Call: &f.call, lazy: f, Decision: policy.Allow},
		{Kind: EventResult, Call: &f.call, lazy: f, Outcome: OutcomeOK},
		{Kind: EventResult, Call: &f.call, lazy: f, Outcome: OutcomeError, Err: errors.New("plain failure")},
	} {
		if err := r.Record(context.Background(), &e); err != nil {
			t.Fatal(err)
		}
		if f.view.m != nil {
			t.Fatalf("recording a %s built the map", e.Kind)
		}
	}
	// A failed result's error is scrubbed of the secrets among the
	// arguments: the plan says there are none.
	if f.view.m != nil {
		t.Error("recording a failed result built the map")
	}
	// A secret-shaped value: redacted from the map.
	g := lazyFlight(t, Call{ID: "d", Tool: "send", Env: "prod"}, memo{To: "Bearer abcdefghijklmnopqrstuvwxyz"})
	if err := r.Record(context.Background(), &Event{Kind: EventDecision, Call: &g.call, lazy: g, Decision: policy.Allow}); err != nil {
		t.Fatal(err)
	}
	if g.view.m == nil {
		t.Error("a secret-shaped value was not redacted from the map")
	}
}

// TestLazyArgsEgress: a tool of a lazy flight makes HTTP requests through
// the guard's client: the request is attributed to the tool's call
// (CallFrom), the policy reads the caller, and a request refused by the
// address check shows its arguments in the denial.
func TestLazyArgsEgress(t *testing.T) {
	srv := newEgServer(t, okHandler)
	p, err := policy.Parse("egress.yaml", []byte(`
version: 1
default: deny
rules:
  - name: memo-may-call
    match: call.tool == "http" && call.args.caller.tool == "memo" && call.args.host == "api.example.com"
    effect: allow
  - name: memo
    match: call.tool == "memo" && call.args.count > 0
    effect: allow
`))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(WithPolicy(p), WithAuditFile(filepath.Join(t.TempDir(), "audit.jsonl"), audit.Options{Sync: audit.SyncNever}))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	res := newEgResolver("api.example.com", "127.0.0.1")
	allowed := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))
	refused := egClient(t, g, EgressResolver(res.resolve))
	u := "http://api.example.com:" + srv.port + "/q"
	var lazy bool
	var refusal error
	tool := Wrap(g, "memo", func(ctx context.Context, m memo) (string, error) {
		fc, _ := flightOf(ctx)
		lazy = fc.f.lazy
		if _, err := egGet(refused, ctx, u); err != nil {
			refusal = err
		}
		return egGet(allowed, ctx, u)
	})
	ctx := WithPrincipal(context.Background(), Principal{Agent: "bot", Tenant: "acme"})
	if out, err := tool(ctx, memo{To: "bob@example.com", Count: 2}); err != nil || out != "ok" {
		t.Fatalf("memo = %q, %v", out, err)
	}
	if !lazy {
		t.Fatal("the tool's flight builds its map: not the case under test")
	}
	d := egDenied(t, refusal, CodePolicyDenied, ErrPolicyDenied)
	caller, _ := d.Args["caller"].(map[string]any)
	if d.Stage != StageEgress || d.Args["host"] != "api.example.com" || caller["tool"] != "memo" || caller["agent"] != "bot" {
		t.Fatalf("egress denial %+v, args %v", d, d.Args)
	}
	if srv.hits.Load() != 1 {
		t.Fatalf("%d requests reached the server, want 1", srv.hits.Load())
	}
}

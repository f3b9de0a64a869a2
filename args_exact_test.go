package agentguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
)

const exactPolicy = `
version: 1
default: deny
rules:
  - name: acme-only
    match: call.tool == "send_email" && has(call.args.to) && !call.args.to.endsWith("@acme.com")
    effect: deny
  - name: send
    match: call.tool == "send_email"
    effect: allow
  - name: no-etc
    match: call.tool == "read_file" && has(call.args.path) && call.args.path.startsWith("/etc")
    effect: deny
  - name: read
    match: call.tool == "read_file"
    effect: allow
  - name: the-account
    match: call.tool == "pay" && call.args.account == 9007199254740993
    effect: allow
  - name: the-snowflake
    match: call.tool == "pay" && call.args.account == 18446744073709551615u
    effect: allow
  - name: approve-all
    match: call.tool == "approve_me"
    effect: approve
`

// TestRawJSONAmbiguousArgsDenied is the regression test for issue 11's
// first hole: raw JSON that the policy reads one way and a struct decoder
// another is denied as invalid, recorded, and never runs, through every
// raw JSON entry point.
func TestRawJSONAmbiguousArgsDenied(t *testing.T) {
	rec := &memRecorder{}
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, exactPolicy)), agentguard.WithRecorder(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var ran int
	send := agentguard.WrapJSON(g, "send_email", func(_ context.Context, raw string) (string, error) { ran++; return raw, nil })
	read := agentguard.WrapJSON(g, "read_file", func(_ context.Context, raw json.RawMessage) (string, error) { ran++; return "", nil })
	readRaw := agentguard.Wrap(g, "read_file", func(_ context.Context, raw json.RawMessage) (string, error) { ran++; return "", nil })
	check := func(ctx context.Context, raw json.RawMessage) (string, error) {
		tk, err := g.Check(ctx, "read_file", raw)
		if err != nil {
			return "", err
		}
		ran++
		return "", tk.Done("", nil)
	}
	for _, tc := range []struct {
		call func(context.Context, string) (string, error)
		raw  string
		want string
	}{
		{send, `{"to":"bob@acme.com","TO":"x@evil.com"}`, `keys "to" and "TO" in args differ only in letter case`},
		{send, `{"to":"bob@acme.com","to":"x@evil.com"}`, `duplicate key "to"`},
		{send, `{"to":"bob@acme.com","tO":"x@evil.com"}`, `"to" and "tO"`},
		{func(ctx context.Context, s string) (string, error) { return read(ctx, json.RawMessage(s)) }, `{"path":"/srv/x","Path":"/etc/shadow"}`, `"path" and "Path"`},
		{func(ctx context.Context, s string) (string, error) { return readRaw(ctx, json.RawMessage(s)) }, `{"path":"/srv/x","Path":"/etc/shadow"}`, `"path" and "Path"`},
		{func(ctx context.Context, s string) (string, error) { return check(ctx, json.RawMessage(s)) }, `{"path":"/srv/x","PATH":"/etc/shadow"}`, `"path" and "PATH"`},
		{func(ctx context.Context, s string) (string, error) { return check(ctx, json.RawMessage(s)) }, `{"opts":{"path":"/srv/x","pAth":"/etc"}}`, `in args.opts`},
		{send, `{"task":"a","tas` + "\u212a" + `":"b","to":"bob@acme.com"}`, "\"task\" and \"tas\u212a\""},
		{send, `{"to":"bob@acme.com","\u017fubject":"a","subject":"b"}`, "differ only in letter case"},
		{send, "{\"to\":\"bob@acme.com\",\"subject\":\"\xff\"}", `a string at args.subject is not valid UTF-8`},
		{send, `{"to":"bob@acme.com","subject":"\udead"}`, `lone surrogate`},
	} {
		before := ran
		_, err := tc.call(context.Background(), tc.raw)
		d := wantDenied(t, err, agentguard.CodeInvalidCall, agentguard.ErrInvalidCall)
		if !strings.Contains(d.Reason, tc.want) || d.Stage != agentguard.StageIdentify {
			t.Errorf("%s: denial %q at %s, want a reason containing %q", tc.raw, d.Reason, d.Stage, tc.want)
		}
		if ran != before {
			t.Errorf("%s: the tool ran", tc.raw)
		}
		rec.mu.Lock()
		last := rec.events[len(rec.events)-1]
		rec.mu.Unlock()
		if last.Kind != agentguard.EventDecision || last.Code != agentguard.CodeInvalidCall || !strings.Contains(last.Reason, tc.want) {
			t.Errorf("%s: recorded %s %s %q, want the invalid-call denial", tc.raw, last.Kind, last.Code, last.Reason)
		}
	}
	// A framework's decoded JSON, handed over as a map (Check, or Wrap
	// with a map input), is checked the same way: a tool that turns the
	// map into a struct through encoding/json would read either key.
	checkMap := func(ctx context.Context, m map[string]any) (string, error) {
		tk, err := g.Check(ctx, "read_file", m)
		if err != nil {
			return "", err
		}
		ran++
		return "", tk.Done("", nil)
	}
	readMap := agentguard.Wrap(g, "read_file", func(_ context.Context, m map[string]any) (string, error) { ran++; return "", nil })
	for _, tc := range []struct {
		call func(context.Context, map[string]any) (string, error)
		m    map[string]any
		want string
	}{
		{checkMap, map[string]any{"maxTokens": 1, "maxtokens": 100000}, `keys "maxTokens" and "maxtokens" in args differ only in letter case`},
		{readMap, map[string]any{"opts": map[string]any{"task": 1, "tasK": 2}}, "in args.opts differ only in letter case"},
		{checkMap, map[string]any{"list": []any{"x", map[string]any{"s": 1, "ſ": 2}}}, "in args.list[1] differ only in letter case"},
	} {
		before := ran
		_, err := tc.call(context.Background(), tc.m)
		d := wantDenied(t, err, agentguard.CodeInvalidCall, agentguard.ErrInvalidCall)
		if !strings.Contains(d.Reason, tc.want) || ran != before {
			t.Errorf("%v: denial %q (ran %v), want a reason containing %q and no run", tc.m, d.Reason, ran != before, tc.want)
		}
	}
	if _, err := checkMap(context.Background(), map[string]any{"path": "/srv/x", "opts": map[string]any{"a": 1, "b": []any{map[string]any{"c": 1}}}}); err != nil {
		t.Errorf("a plain map: %v", err)
	}

	// Unambiguous arguments still pass, and the policy still judges them.
	if _, err := send(context.Background(), `{"to":"bob@acme.com","subject":"hi"}`); err != nil {
		t.Errorf("a plain call: %v", err)
	}
	if _, err := send(context.Background(), `{"to":"eve@evil.com"}`); !errors.Is(err, agentguard.ErrPolicyDenied) {
		t.Errorf("a call to evil.com: %v, want the policy's denial", err)
	}
}

// TestIntegersExactEndToEnd is the regression test for issue 11's second
// hole: an integer past 2^53 is seen by the policy, shown on the card,
// hashed and logged exactly, through raw JSON and through a struct.
func TestIntegersExactEndToEnd(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.jsonl")
	var mu sync.Mutex
	var cards []*approval.Request
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, exactPolicy)),
		agentguard.WithAuditFile(logPath, audit.Options{Sync: audit.SyncNever}),
		agentguard.WithApprover(approval.Func(func(_ context.Context, r *approval.Request) (approval.Verdict, error) {
			mu.Lock()
			cards = append(cards, r)
			mu.Unlock()
			return r.Approve("carol", ""), nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	type payArgs struct {
		Account uint64 `json:"account"`
	}
	var paid []uint64
	payJSON := agentguard.WrapJSON(g, "pay", func(_ context.Context, raw string) (string, error) {
		var a payArgs
		err := json.Unmarshal([]byte(raw), &a)
		paid = append(paid, a.Account)
		return "", err
	})
	payStruct := agentguard.Wrap(g, "pay", func(_ context.Context, a payArgs) (string, error) {
		paid = append(paid, a.Account)
		return "", nil
	})
	for _, tc := range []struct {
		name    string
		call    func() error
		allowed bool
	}{
		{"JSON 2^53+1", func() error { _, err := payJSON(context.Background(), `{"account":9007199254740993}`); return err }, true},
		{"JSON 2^53", func() error { _, err := payJSON(context.Background(), `{"account":9007199254740992}`); return err }, false},
		{"JSON 2^64-1", func() error { _, err := payJSON(context.Background(), `{"account":18446744073709551615}`); return err }, true},
		{"JSON 2^64-2", func() error { _, err := payJSON(context.Background(), `{"account":18446744073709551614}`); return err }, false},
		{"struct 2^53+1", func() error { _, err := payStruct(context.Background(), payArgs{9007199254740993}); return err }, true},
		{"struct 2^53", func() error { _, err := payStruct(context.Background(), payArgs{9007199254740992}); return err }, false},
		{"struct 2^64-1", func() error { _, err := payStruct(context.Background(), payArgs{1<<64 - 1}); return err }, true},
		{"struct 2^64-2", func() error { _, err := payStruct(context.Background(), payArgs{1<<64 - 2}); return err }, false},
	} {
		err := tc.call()
		if tc.allowed && err != nil {
			t.Errorf("%s: %v, want the policy's exact rule to allow it", tc.name, err)
		}
		if !tc.allowed && !errors.Is(err, agentguard.ErrPolicyDenied) {
			t.Errorf("%s: %v, want a policy denial (no rule names this number)", tc.name, err)
		}
	}
	want := []uint64{9007199254740993, 1<<64 - 1, 9007199254740993, 1<<64 - 1}
	if len(paid) != len(want) {
		t.Fatalf("paid %v, want %v", paid, want)
	}

	// The card and its hash.
	card := agentguard.WrapJSON(g, "approve_me", func(context.Context, string) (string, error) { return "", nil })
	for _, raw := range []string{`{"n":9007199254740993}`, `{"n":9007199254740992}`, `{"n":18446744073709551615}`, `{"n":18446744073709551614}`} {
		if _, err := card(context.Background(), raw); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	if got := cards[0].Args["n"]; got != int64(9007199254740993) {
		t.Errorf("card shows n = %#v, want int64 9007199254740993", got)
	}
	if got := cards[2].Args["n"]; got != uint64(18446744073709551615) {
		t.Errorf("card shows n = %#v, want uint64 18446744073709551615", got)
	}
	if cards[0].Hash == cards[1].Hash || cards[2].Hash == cards[3].Hash {
		t.Errorf("calls with integers past 2^53 that differ have the same approval hash")
	}
	mu.Unlock()

	// The audit log.
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"args":{"account":9007199254740993}`, `"args":{"account":18446744073709551615}`, `"args":{"account":18446744073709551614}`, `"args":{"n":9007199254740992}`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("the audit log does not hold %s", s)
		}
	}
	if _, err := audit.Verify(audit.VerifyOptions{}, logPath); err != nil {
		t.Errorf("audit.Verify: %v", err)
	}
}

// TestApprovalCardEditsChangeNothing is the regression test for issue 11's
// third hole: with an audit log and nothing to redact, an approver that
// edits its card changes neither what runs, nor what is recorded, nor the
// hash.
func TestApprovalCardEditsChangeNothing(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	var hash string
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, exactPolicy)),
		agentguard.WithAuditFile(logPath, audit.Options{Sync: audit.SyncNever}),
		agentguard.WithApprover(approval.Func(func(_ context.Context, r *approval.Request) (approval.Verdict, error) {
			hash = r.Hash
			v := r.Approve("mallory", "")
			r.Args["to"] = "mallory@evil.com"
			r.Args["n"] = int64(2)
			r.Args["opts"].(map[string]any)["cc"] = "mallory@evil.com"
			r.Args["list"].([]any)[0] = "evil"
			return v, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	tool := agentguard.Wrap(g, "approve_me", func(_ context.Context, m map[string]any) (string, error) {
		b, _ := json.Marshal(m)
		return string(b), json.Unmarshal(b, &got)
	})
	in := map[string]any{"to": "bob@acme.com", "n": int64(1), "opts": map[string]any{"cc": "carol@acme.com"}, "list": []any{"a"}}
	const want = `{"list":["a"],"n":1,"opts":{"cc":"carol@acme.com"},"to":"bob@acme.com"}`
	wantHash, err := approval.HashCall("approve_me", map[string]any{"to": "bob@acme.com", "n": int64(1), "opts": map[string]any{"cc": "carol@acme.com"}, "list": []any{"a"}}, approval.Principal{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tool(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if out != want {
		t.Errorf("the tool ran with %s, want %s", out, want)
	}
	if hash != wantHash {
		t.Errorf("card hash %s, want %s (the call's)", hash, wantHash)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "mallory@evil.com") || strings.Contains(string(b), `"evil"`) {
		t.Errorf("the audit log records the approver's edits:\n%s", b)
	}
	if !strings.Contains(string(b), `"args":`+want) {
		t.Errorf("the audit log does not record the call's arguments %s:\n%s", want, b)
	}
}

// TestApprovalHashDiffersForEveryArgument checks that two calls whose
// arguments differ in any way have different approval hashes: integers
// past 2^53, keys that differ only in case, nesting, types.
func TestApprovalHashDiffersForEveryArgument(t *testing.T) {
	var mu sync.Mutex
	hashes := map[string]string{}
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, exactPolicy)),
		agentguard.WithApprover(approval.Func(func(_ context.Context, r *approval.Request) (approval.Verdict, error) {
			b, _ := json.Marshal(r.Args)
			mu.Lock()
			hashes[r.Hash] = string(b)
			mu.Unlock()
			return r.Approve("carol", ""), nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tool := agentguard.WrapJSON(g, "approve_me", func(context.Context, string) (string, error) { return "", nil })
	raws := []string{
		`{"n":9007199254740993}`, `{"n":9007199254740992}`, `{"n":9007199254740994}`,
		`{"n":18446744073709551615}`, `{"n":18446744073709551614}`, `{"n":-9223372036854775808}`, `{"n":-9223372036854775807}`,
		`{"n":1}`, `{"n":1.5}`, `{"n":"1"}`, `{"n":[1]}`, `{"n":{"n":1}}`, `{"n":null}`, `{"n":true}`,
		`{"to":"x"}`, `{"TO":"x"}`, `{"To":"x"}`, `{"tasK":"x"}`, `{"task":"x"}`, `{"tas` + "\u212a" + `":"x"}`,
		`{"a":{"b":9007199254740993}}`, `{"a":{"b":9007199254740992}}`, `{"a":{"B":9007199254740993}}`,
		`{}`, `{"":""}`,
	}
	for _, raw := range raws {
		if _, err := tool(context.Background(), raw); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
	}
	if len(hashes) != len(raws) {
		t.Errorf("%d calls with different arguments gave %d hashes: %v", len(raws), len(hashes), hashes)
	}
}

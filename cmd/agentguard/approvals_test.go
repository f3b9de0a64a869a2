package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/approval"
)

const apprTestToken = "cli-test-token-0123456789"

type apprAsked struct {
	out approval.Outcome
	err error
}

// apprInbox serves an inbox with two calls waiting: r1 (refund) and r2
// (send_email, with a terminal escape in its arguments).
func apprInbox(t *testing.T) (url string, results map[string]chan apprAsked) {
	t.Helper()
	in, err := approval.NewInbox(approval.InboxOptions{Token: apprTestToken})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)
	gate, err := approval.NewGate(in, approval.Options{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	results = map[string]chan apprAsked{}
	for i, r := range []*approval.Request{
		{ID: "r1", Tool: "refund", Args: map[string]any{"amount": 250, "memo": strings.Repeat("m", 200) + "END"}, Principal: approval.Principal{Agent: "bot"}, Rule: "big-refunds"},
		{ID: "r2", Tool: "send_email", Args: map[string]any{"to": "x\x1b[31m@evil\u202e"}, Principal: approval.Principal{Agent: "bot\x1b[2J"}},
	} {
		r.Created = time.Date(2026, 11, 30, 12, 0, i, 0, time.UTC)
		ch := make(chan apprAsked, 1)
		results[r.ID] = ch
		go func() {
			out, err := gate.Ask(ctx, r)
			ch <- apprAsked{out, err}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(in.Pending()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("requests never became pending")
		}
		time.Sleep(time.Millisecond)
	}
	return srv.URL, results
}

func apprRun(args ...string) (int, string, string) {
	var out, errb strings.Builder
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestApprovalsCLI(t *testing.T) {
	url, results := apprInbox(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(apprTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AGENTGUARD_TOKEN", "")

	code, out, errs := apprRun("approvals", "list", "--url", url, "--token-file", tokenFile)
	if code != 0 || !strings.Contains(out, "r1") || !strings.Contains(out, "refund") || !strings.Contains(out, "big-refunds") || !strings.Contains(out, "r2") {
		t.Fatalf("list: %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out, "\x1b") {
		t.Fatalf("list prints terminal escapes: %q", out)
	}
	if i1, i2 := strings.Index(out, "r1"), strings.Index(out, "r2"); i1 > i2 {
		t.Errorf("list is not oldest first:\n%s", out)
	}

	// The token from the environment; JSON output.
	t.Setenv("AGENTGUARD_TOKEN", apprTestToken)
	code, out, _ = apprRun("approvals", "list", "--url", url+"/", "--json")
	var cards []approval.Request
	if code != 0 || json.Unmarshal([]byte(out), &cards) != nil || len(cards) != 2 || cards[0].ID != "r1" {
		t.Fatalf("list --json: %d %s", code, out)
	}

	// Approve r1 with a grant, deny r2.
	code, out, errs = apprRun("approvals", "approve", "--url", url, "--id", "r1", "--hash", cards[0].Hash[:8], "--by", "alice", "--note", "ok", "--grant", "tool 10m")
	if code != 0 || !strings.Contains(out, "approved r1 (refund) as alice") {
		t.Fatalf("approve: %d %s%s", code, out, errs)
	}
	r := <-results["r1"]
	if r.err != nil || r.out.Verdict.By != "typed:alice" || r.out.Verdict.Note != "ok" || r.out.Permit == nil || r.out.Permit.Scope != approval.ScopeTool {
		t.Fatalf("r1 = %+v, %v", r.out, r.err)
	}
	code, out, errs = apprRun("approvals", "deny", "--url", url, "--id", "r2", "--by", "bob", "--note", "no")
	if code != 0 || !strings.Contains(out, "denied r2") {
		t.Fatalf("deny: %d %s%s", code, out, errs)
	}
	r = <-results["r2"]
	var re *approval.RefusedError
	if !errors.As(r.err, &re) || !errors.Is(r.err, approval.ErrRejected) || re.By != "typed:bob" || re.Note != "no" {
		t.Fatalf("r2 = %v", r.err)
	}
	code, out, _ = apprRun("approvals", "list", "--url", url)
	if code != 0 || !strings.Contains(out, "no call is waiting") {
		t.Fatalf("empty list: %d %s", code, out)
	}
	// Answering again: nothing waits.
	if code, _, errs = apprRun("approvals", "approve", "--url", url, "--id", "r1"); code != 1 || !strings.Contains(errs, `no call is waiting for request "r1"`) {
		t.Fatalf("second approve: %d %s", code, errs)
	}
}

func TestApprovalsCLIErrors(t *testing.T) {
	url, _ := apprInbox(t)
	t.Setenv("AGENTGUARD_TOKEN", "wrong-token-0123456789")
	if code, _, errs := apprRun("approvals", "list", "--url", url); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("wrong token: %d %s", code, errs)
	}
	t.Setenv("AGENTGUARD_TOKEN", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"approvals"}, "usage"},
		{[]string{"approvals", "sing"}, "unknown subcommand"},
		{[]string{"approvals", "list"}, "one of --url or --postgres is required"},
		{[]string{"approvals", "list", "--url", url, "--postgres", "postgres://x"}, "one of --url or --postgres is required"},
		{[]string{"approvals", "list", "--url", url}, "no token"},
		{[]string{"approvals", "list", "--url", url, "--token", apprTestToken}, "flag provided but not defined"},
		{[]string{"approvals", "approve", "--url", url}, "--id is required"},
		{[]string{"approvals", "approve", "--url", url, "--id", "r1", "--grant", "forever"}, "want SCOPE DURATION"},
		{[]string{"approvals", "approve", "--url", url, "--id", "r1", "--grant", "call 1h"}, "want SCOPE DURATION"},
		{[]string{"approvals", "deny", "--url", url, "--id", "r1", "--grant", "tool 1h"}, "goes with approve"},
		{[]string{"approvals", "list", "--url", url, "extra"}, "unexpected argument"},
		{[]string{"approvals", "list", "--url", url, "--token-file", "/nonexistent/token"}, "reading the token"},
	} {
		code, _, errs := apprRun(c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: %d %q, want exit 2 with %q", c.args, code, errs, c.want)
		}
	}
	t.Setenv("AGENTGUARD_TOKEN", apprTestToken)
	if code, _, errs := apprRun("approvals", "deny", "--url", url, "--id", "nope"); code != 1 || !strings.Contains(errs, "no call is waiting") {
		t.Fatalf("unknown id: %d %s", code, errs)
	}
	if code, _, _ := apprRun("approvals", "list", "--url", "http://127.0.0.1:1"); code != 1 {
		t.Fatalf("unreachable inbox: exit %d, want 1", code)
	}
}

// TestApprovalsCLIShowsWhatItApproves: list shows each card whole (no cut
// arguments, invisible characters escaped); approve without --hash shows
// the card and answers nothing; a hash prefix that is not the card's
// answers nothing; the right prefix approves exactly that card
// (issue 11, item 6).
func TestApprovalsCLIShowsWhatItApproves(t *testing.T) {
	url, results := apprInbox(t)
	t.Setenv("AGENTGUARD_TOKEN", apprTestToken)
	code, out, errs := apprRun("approvals", "list", "--url", url)
	if code != 0 || !strings.Contains(out, strings.Repeat("m", 200)+"END") || !strings.Contains(out, `@evil\u202e`) || strings.Contains(out, "\u202e") {
		t.Fatalf("list does not show whole, visible cards: %d\n%s%s", code, out, errs)
	}
	_, js, _ := apprRun("approvals", "list", "--url", url, "--json")
	var cards []approval.Request
	if err := json.Unmarshal([]byte(js), &cards); err != nil || len(cards) != 2 || strings.Contains(js, "\u202e") || cards[1].Args["to"] != "x\x1b[31m@evil\u202e" {
		t.Fatalf("list --json: %v\n%s", err, js)
	}
	h := cards[0].Hash
	if !strings.Contains(out, "--id r1 --hash "+h[:8]) {
		t.Errorf("list does not say how to approve r1:\n%s", out)
	}
	other := cards[1].Hash
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--id", "r1"}, 2, "run again with --hash " + h[:8]},
		{[]string{"--id", "r1", "--hash", h[:7]}, 1, "nothing was answered"},
		{[]string{"--id", "r1", "--hash", other[:8]}, 1, "nothing was answered"},
	} {
		code, out, errs := apprRun(append([]string{"approvals", "approve", "--url", url}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.want) || !strings.Contains(out, strings.Repeat("m", 200)+"END") {
			t.Errorf("approve %v: %d\n%s%s\nwant exit %d, the whole card, and %q", c.args, code, out, errs, c.code, c.want)
		}
	}
	select {
	case r := <-results["r1"]:
		t.Fatalf("r1 was answered without its hash: %+v %v", r.out, r.err)
	default:
	}
	code, out, errs = apprRun("approvals", "approve", "--url", url, "--id", "r1", "--hash", strings.ToUpper(h[:10]), "--by", "alice")
	if code != 0 || !strings.Contains(out, "hash:     "+h) || !strings.Contains(out, "approved r1") {
		t.Fatalf("approve with the hash: %d\n%s%s", code, out, errs)
	}
	if r := <-results["r1"]; r.err != nil || !r.out.Verdict.Approved {
		t.Fatalf("r1 = %+v, %v", r.out, r.err)
	}
}

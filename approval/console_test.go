package approval

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestConsoleAnswers(t *testing.T) {
	for _, c := range []struct {
		input    string
		approved bool
		note     string
		grant    *Grant
		err      error
	}{
		{"y\n", true, "", nil, nil},
		{"YES looks fine\n", true, "looks fine", nil, nil},
		{"n too risky\n", false, "too risky", nil, ErrRejected},
		{"\n", false, "empty answer", nil, ErrRejected},
		{"always\n", true, "always (tool for 10m0s)", &Grant{ScopeTool, 10 * time.Minute}, nil},
		{"always 1h args\n", true, "always (args for 1h0m0s)", &Grant{ScopeSameArgs, time.Hour}, nil},
		{"a agent 30s", true, "always (agent for 30s)", &Grant{ScopeAgent, 30 * time.Second}, nil},
		{"maybe\nalways forever\ny\n", true, "", nil, nil},
		{"", false, "", nil, ErrApprover},
	} {
		var out strings.Builder
		con := NewConsole(strings.NewReader(c.input), &out, ConsoleOptions{By: "op"})
		g := newGate(t, con, Options{})
		r := req("r1", "refund", map[string]any{"amount": 120})
		r.Rule, r.Reason = "big-refunds", "over 100"
		r.Estimate = []Amount{{"USD", 1_500_000}}
		res, err := g.Ask(t.Context(), r)
		if c.err != nil {
			re := wantRefused(t, err, c.err)
			if c.err == ErrRejected && (re.Note != c.note || re.By != "op") {
				t.Errorf("input %q: refusal %+v, want note %q by op", c.input, re, c.note)
			}
		} else if err != nil {
			t.Errorf("input %q: Ask = %v", c.input, err)
		} else {
			if res.Verdict.Note != c.note || res.Verdict.By != "op" {
				t.Errorf("input %q: verdict %+v, want note %q", c.input, res.Verdict, c.note)
			}
			if (c.grant == nil) != (res.Permit == nil) || c.grant != nil && (res.Permit.Scope != c.grant.Scope || res.Permit.Expires.Sub(res.Permit.Created) != c.grant.Duration) {
				t.Errorf("input %q: permit %+v, want %+v", c.input, res.Permit, c.grant)
			}
		}
		for _, want := range []string{"approval request r1", "tool:     refund", `args:     {"amount":120}`, "rule:     big-refunds: over 100", "estimate: 1.50 USD", "hash:     " + r.Hash, "approve? "} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("input %q: card lacks %q:\n%s", c.input, want, out.String())
			}
		}
	}
}

func TestConsoleLateAnswerIsNotReused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr, pw := io.Pipe()
		var out strings.Builder
		con := NewConsole(pr, &out, ConsoleOptions{})
		g := newGate(t, con, Options{Timeout: time.Minute})
		// The first card times out with no answer; then "y", meant for it,
		// arrives while no card is shown. It must not approve the next card.
		_, err := g.Ask(t.Context(), req("r1", "refund", nil))
		wantRefused(t, err, ErrTimeout)
		io.WriteString(pw, "y\n")
		synctest.Wait()
		res := make(chan error, 1)
		go func() {
			_, err := g.Ask(t.Context(), req("r2", "delete", nil))
			res <- err
		}()
		synctest.Wait()
		io.WriteString(pw, "n\n")
		if err := <-res; !errors.Is(err, ErrRejected) {
			t.Fatalf("second card: %v, want rejected by the second answer", err)
		}
		if !strings.Contains(out.String(), `(answer "y" was for an earlier card and is ignored)`) {
			t.Errorf("console output lacks the notice:\n%s", out.String())
		}
		pw.Close()
		synctest.Wait()
	})
}

func TestConsoleCancelWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr, pw := io.Pipe()
		con := NewConsole(pr, io.Discard, ConsoleOptions{})
		ctx, cancel := context.WithCancel(t.Context())
		first := make(chan error, 1)
		go func() {
			_, err := con.Approve(t.Context(), &Request{ID: "a", Tool: "x"})
			first <- err
		}()
		synctest.Wait()
		second := make(chan error, 1)
		go func() {
			_, err := con.Approve(ctx, &Request{ID: "b", Tool: "x"})
			second <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-second; !errors.Is(err, context.Canceled) {
			t.Fatalf("queued Approve = %v, want canceled", err)
		}
		io.WriteString(pw, "y\n")
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		pw.Close()
	})
}

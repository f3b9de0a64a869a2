package approval

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"
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
		io.WriteString(pw, "n 2\n")
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

// TestConsoleAnswerBoundToItsCard: a "y" typed for card #1 that reaches
// the console just after #1 timed out and #2 took its place does not
// approve #2 (issue 11, item 6); neither does an answer naming #1. Only an
// answer naming #2 decides it, and the console says which card it decided.
func TestConsoleAnswerBoundToItsCard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr, pw := io.Pipe()
		out := &syncBuilder{}
		con := NewConsole(pr, out, ConsoleOptions{})
		g := newGate(t, con, Options{Timeout: time.Minute})
		_, err := g.Ask(t.Context(), req("r1", "refund", map[string]any{"amount": 5}))
		wantRefused(t, err, ErrTimeout)
		res := make(chan error, 1)
		go func() {
			_, err := g.Ask(t.Context(), req("r2", "refund", map[string]any{"amount": 5000}))
			res <- err
		}()
		synctest.Wait() // card #2 is shown; the read begun for #1 still waits
		for _, line := range []string{"y\n", "y 1\n", "\n", "n\n"} {
			io.WriteString(pw, line)
			synctest.Wait()
			select {
			case err := <-res:
				t.Fatalf("%q decided card #2: %v", line, err)
			default:
			}
		}
		io.WriteString(pw, "y #2 checked the amount\n")
		if err := <-res; err != nil {
			t.Fatalf("card #2 answered by name: %v", err)
		}
		text := out.String()
		for _, want := range []string{"== card #2 ==", `answer "y" names no card`, `names card #1, but card #2 is waiting`,
			"an empty line names no card", "(card #2 r2: approved)", "name the card: y 2"} {
			if !strings.Contains(text, want) {
				t.Errorf("console output lacks %q:\n%s", want, text)
			}
		}
		pw.Close()
		synctest.Wait()
	})
}

// syncBuilder is a strings.Builder safe for the console's writes and the
// test's reads.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCardShowsInvisibleCharacters: bidi controls, zero-width and control
// characters in any field of a card are shown escaped, and no field can
// start a line of its own (issue 11, item 6).
func TestCardShowsInvisibleCharacters(t *testing.T) {
	r := req("r1", "send_email", map[string]any{
		"to":      "bob@acme.com\u202e@evil.com",
		"note":    "ok\u200b\u2066x\u2069",
		"k\u202e": "\x1b[2Jcleared",
	})
	r.Rule, r.Reason = "ext", "needs a human\n  hash:     "+strings.Repeat("0", 64)
	r.Principal.Agent = "bot\u202e"
	var b strings.Builder
	if err := WriteCard(&b, r); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, raw := range []string{"\u202e", "\u200b", "\u2066", "\x1b"} {
		if strings.Contains(text, raw) {
			t.Errorf("card shows %q raw:\n%s", raw, text)
		}
	}
	for _, want := range []string{`bob@acme.com\u202e@evil.com`, `ok\u200b\u2066x\u2069`, `"k\u202e"`, `\u001b[2Jcleared`, `agent="bot\u202e"`, `needs a human\u000a`} {
		if !strings.Contains(text, want) {
			t.Errorf("card lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "\n  hash:"); n != 1 {
		t.Errorf("%d hash lines: a field started a line of its own:\n%s", n, text)
	}
}

func TestVisible(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text, é, 中文, 🙂, <&>", "plain text, é, 中文, 🙂, <&>"},
		{"a\u202eb", `a\u202eb`},
		{"\u200b\u200c\u200d\ufeff", `\u200b\u200c\u200d\ufeff`},
		{"a\u00a0b\u3000c", `a\u00a0b\u3000c`},
		{"\u3164\u115f\u2800", `\u3164\u115f\u2800`},
		{"x\ufe0fy", `x\ufe0fy`},
		{"\U000e0041tag", `\udb40\udc41tag`},
		{"\n\r\t\x00\x7f", `\u000a\u000d\u0009\u0000\u007f`},
		{"bad\xffbyte", `bad\xffbyte`},
		{"\ufffd", "\ufffd"},
		{`back\slash`, `back\slash`},
	} {
		if got := Visible(c.in); got != c.want {
			t.Errorf("Visible(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzVisibleJSON: Visible of a card's JSON shows no invisible character,
// and still decodes to the same value.
func FuzzVisibleJSON(f *testing.F) {
	for _, s := range []string{"a\u202eb", "\u2028", "\x00\xff", "\U000e0041", "\\u202e", "\u3164"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := marshal(map[string]any{s: s})
		if err != nil {
			t.Fatal(err)
		}
		v := Visible(string(j))
		for i, r := range v {
			if invisible(r, utf8.RuneLen(r)) || r == utf8.RuneError && !strings.HasPrefix(v[i:], "\ufffd") {
				t.Fatalf("Visible(%q) = %q shows %U", j, v, r)
			}
		}
		var back map[string]string
		if err := json.Unmarshal([]byte(v), &back); err != nil {
			t.Fatalf("Visible(%q) = %q is no longer JSON: %v", j, v, err)
		}
		var w strings.Builder // what JSON makes of s: U+FFFD for each byte that is not UTF-8
		for _, r := range s {
			w.WriteRune(r)
		}
		want := w.String()
		if back[want] != want || len(back) != 1 {
			t.Fatalf("Visible(%q) decodes to %q, want {%q: %q}", j, back, want, want)
		}
	})
}

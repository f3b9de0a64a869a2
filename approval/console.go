package approval

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ConsoleOptions configure a Console. The zero value answers as "console"
// and makes "always" grant the tool for ten minutes.
type ConsoleOptions struct {
	// By names who answers at this console. Empty means "console".
	By string
	// Grant is how long "always" lasts when no duration is typed. Zero
	// means ten minutes.
	Grant time.Duration
	// Scope is what "always" covers when no scope is typed. Zero
	// (ScopeCall) means ScopeTool.
	Scope Scope
}

// Console is an Approver for a person at a terminal: it writes each card
// to Out, numbered (card #1, #2, …), and reads the answer, one line, from
// In:
//
//	y N [NOTE]                            approve card N
//	n N [NOTE]                            reject it
//	always N [DURATION] [args|tool|agent] approve, and remember for DURATION
//
// An answer is bound to the card it answers. For the first card the
// Console shows, the number may be left out ("y", "n", and an empty line,
// which rejects). Once a second card has been shown, every answer must
// name its card ("y 2" or "y #2"): a "y" typed for a card that timed out
// just as the next appeared names no card, or the wrong one, and is
// ignored with a notice instead of approving the card that took its place.
// A line read before the card was shown is discarded too. The Console
// says which card each accepted answer decided.
//
// Requests are asked one at a time; others wait their turn (or their
// deadline). Cards show invisible and control characters escaped (see
// Visible). The Console reads In in a goroutine, which ends when a read
// returns. It is safe for concurrent use.
type Console struct {
	br   *bufio.Reader
	out  io.Writer
	opts ConsoleOptions
	sem  chan struct{}

	gen      atomic.Uint64    // the card being shown
	inflight chan consoleLine // a read still running for an earlier card; guarded by sem
	shown    uint64           // cards shown so far; guarded by sem
}

type consoleLine struct {
	line string
	gen  uint64 // which card was shown when the line was read
	err  error
}

var _ Approver = (*Console)(nil)

// NewConsole returns a Console that reads answers from in and writes cards
// to out.
func NewConsole(in io.Reader, out io.Writer, opts ConsoleOptions) *Console {
	if opts.By == "" {
		opts.By = "console"
	}
	if opts.Grant <= 0 {
		opts.Grant = 10 * time.Minute
	}
	if opts.Scope == ScopeCall {
		opts.Scope = ScopeTool
	}
	return &Console{br: bufio.NewReader(in), out: out, opts: opts, sem: make(chan struct{}, 1)}
}

// Approve shows r and waits for an answer.
func (c *Console) Approve(ctx context.Context, r *Request) (Verdict, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return Verdict{}, context.Cause(ctx)
	}
	defer func() { <-c.sem }()

	c.shown++
	n, bound := c.shown, c.shown > 1
	gen := c.gen.Add(1)
	fmt.Fprintf(c.out, "\n== card #%d ==\n", n)
	if err := WriteCard(c.out, r); err != nil {
		return Verdict{}, fmt.Errorf("approval: console: %w", err)
	}
	for {
		if bound {
			fmt.Fprintf(c.out, "card #%d: approve? name the card: y %d [NOTE] | n %d [NOTE] | always %d [DURATION] [args|tool|agent]\n", n, n, n, n)
		} else {
			fmt.Fprintf(c.out, "card #%d: approve? y [NOTE] | n [NOTE] | always [DURATION] [args|tool|agent]\n", n)
		}
		if c.inflight == nil {
			ch := make(chan consoleLine, 1)
			go func() {
				line, err := c.br.ReadString('\n')
				if err == io.EOF && line != "" {
					err = nil
				}
				ch <- consoleLine{line: line, gen: c.gen.Load(), err: err}
			}()
			c.inflight = ch
		}
		var l consoleLine
		select {
		case l = <-c.inflight:
			c.inflight = nil
		case <-ctx.Done():
			fmt.Fprintln(c.out, "\n(no answer in time; request refused)")
			return Verdict{}, context.Cause(ctx)
		}
		if l.err != nil {
			return Verdict{}, fmt.Errorf("approval: console: reading the answer: %w", l.err)
		}
		line := Visible(strings.TrimSpace(l.line))
		if l.gen != gen {
			fmt.Fprintf(c.out, "(answer %q was for an earlier card and is ignored)\n", line)
			continue
		}
		v, msg := c.parse(r, l.line, n, bound)
		if msg != "" {
			fmt.Fprintf(c.out, "(%s)\n", msg)
			continue
		}
		if v.Approved {
			fmt.Fprintf(c.out, "(card #%d %s: approved)\n", n, Visible(r.ID))
		} else {
			fmt.Fprintf(c.out, "(card #%d %s: rejected)\n", n, Visible(r.ID))
		}
		return v, nil
	}
}

// parse reads one answer for card n; bound says the answer must name it.
// It returns a message instead of a verdict when the line is no answer
// to this card.
func (c *Console) parse(r *Request, line string, n uint64, bound bool) (Verdict, string) {
	f := strings.Fields(line)
	quoted := Visible(strings.TrimSpace(line))
	if len(f) == 0 {
		if bound {
			return Verdict{}, fmt.Sprintf("an empty line names no card; to reject card #%d type: n %d", n, n)
		}
		return r.Reject(c.opts.By, "empty answer"), ""
	}
	named := false
	if len(f) > 1 {
		if k, err := strconv.ParseUint(strings.TrimPrefix(f[1], "#"), 10, 64); err == nil {
			if k != n {
				return Verdict{}, fmt.Sprintf("answer %q names card #%d, but card #%d is waiting; ignored", quoted, k, n)
			}
			named = true
			f = append(f[:1], f[2:]...)
		}
	}
	if bound && !named {
		return Verdict{}, fmt.Sprintf("answer %q names no card; more than one card has been shown, so type e.g. y %d", quoted, n)
	}
	v, ok := c.verdict(r, f)
	if !ok {
		return Verdict{}, fmt.Sprintf("cannot read %q", quoted)
	}
	return v, ""
}

// verdict reads the words of an answer whose card number was taken out.
func (c *Console) verdict(r *Request, f []string) (Verdict, bool) {
	note := strings.Join(f[1:], " ")
	switch strings.ToLower(f[0]) {
	case "y", "yes":
		return r.Approve(c.opts.By, note), true
	case "n", "no":
		return r.Reject(c.opts.By, note), true
	case "always", "a":
		g := Grant{Scope: c.opts.Scope, Duration: c.opts.Grant}
		for _, w := range f[1:] {
			if d, err := time.ParseDuration(w); err == nil && d > 0 {
				g.Duration = d
			} else if s, err := ParseScope(w); err == nil && s != ScopeCall {
				g.Scope = s
			} else {
				return Verdict{}, false
			}
		}
		return r.ApproveFor(c.opts.By, fmt.Sprintf("always (%s for %s)", g.Scope, g.Duration), g), true
	}
	return Verdict{}, false
}

// WriteCard writes r as plain text, for people: the whole card, its
// arguments in full, with every field on its own line and invisible and
// control characters escaped (Visible), so that what a person reads is
// what the call holds.
func WriteCard(w io.Writer, r *Request) error {
	if r == nil {
		return errors.New("approval: nil request")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "approval request %s\n", Visible(r.ID))
	fmt.Fprintf(&b, "  tool:     %s\n", Visible(r.Tool))
	p := r.Principal
	fmt.Fprintf(&b, "  for:      agent=\"%s\" requester=\"%s\" tenant=\"%s\" session=\"%s\"\n",
		Visible(p.Agent), Visible(p.Requester), Visible(p.Tenant), Visible(p.Session))
	args, err := marshal(r.Args)
	if err != nil {
		args = []byte("(arguments cannot be shown)")
	}
	fmt.Fprintf(&b, "  args:     %s\n", Visible(string(args)))
	if len(r.Labels) > 0 {
		l, _ := json.Marshal(r.Labels)
		fmt.Fprintf(&b, "  labels:   %s\n", Visible(string(l)))
	}
	if r.Rule != "" || r.Reason != "" {
		fmt.Fprintf(&b, "  rule:     %s: %s\n", Visible(r.Rule), Visible(r.Reason))
	}
	if len(r.Estimate) > 0 {
		fmt.Fprintf(&b, "  estimate: %s\n", Visible(amounts(r.Estimate)))
	}
	if len(r.BudgetLeft) > 0 {
		fmt.Fprintf(&b, "  left:     %s\n", Visible(amounts(r.BudgetLeft)))
	}
	if !r.Deadline.IsZero() {
		fmt.Fprintf(&b, "  deadline: %s\n", r.Deadline.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "  hash:     %s\n", Visible(r.Hash))
	_, err = io.WriteString(w, b.String())
	return err
}

func amounts(as []Amount) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

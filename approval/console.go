package approval

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// to Out and reads the answer, one line, from In:
//
//	y [NOTE]                          approve this call
//	n [NOTE]                          reject it (so does an empty line)
//	always [DURATION] [args|tool|agent] approve, and remember for DURATION
//
// Requests are asked one at a time; others wait their turn (or their
// deadline). A line that arrives after its card stopped waiting is
// discarded, never applied to the next card. The Console reads In in a
// goroutine, which ends when a read returns. It is safe for concurrent use.
type Console struct {
	br   *bufio.Reader
	out  io.Writer
	opts ConsoleOptions
	sem  chan struct{}

	gen      atomic.Uint64    // the card being shown
	inflight chan consoleLine // a read still running for an earlier card; guarded by sem
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

	gen := c.gen.Add(1)
	if err := WriteCard(c.out, r); err != nil {
		return Verdict{}, fmt.Errorf("approval: console: %w", err)
	}
	for {
		fmt.Fprintln(c.out, "approve? y [NOTE] | n [NOTE] | always [DURATION] [args|tool|agent]")
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
		if l.gen != gen {
			fmt.Fprintf(c.out, "(answer %q was for an earlier card and is ignored)\n", strings.TrimSpace(l.line))
			continue
		}
		v, ok := c.parse(r, l.line)
		if ok {
			return v, nil
		}
		fmt.Fprintf(c.out, "(cannot read %q)\n", strings.TrimSpace(l.line))
	}
}

// parse reads one answer.
func (c *Console) parse(r *Request, line string) (Verdict, bool) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return r.Reject(c.opts.By, "empty answer"), true
	}
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

// WriteCard writes r as plain text, for people.
func WriteCard(w io.Writer, r *Request) error {
	if r == nil {
		return errors.New("approval: nil request")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "approval request %s\n", r.ID)
	fmt.Fprintf(&b, "  tool:     %s\n", r.Tool)
	p := r.Principal
	fmt.Fprintf(&b, "  for:      agent=%q requester=%q tenant=%q session=%q\n", p.Agent, p.Requester, p.Tenant, p.Session)
	args, err := marshal(r.Args)
	if err != nil {
		args = []byte("(arguments cannot be shown)")
	}
	fmt.Fprintf(&b, "  args:     %s\n", args)
	if len(r.Labels) > 0 {
		l, _ := json.Marshal(r.Labels)
		fmt.Fprintf(&b, "  labels:   %s\n", l)
	}
	if r.Rule != "" || r.Reason != "" {
		fmt.Fprintf(&b, "  rule:     %s: %s\n", r.Rule, r.Reason)
	}
	if len(r.Estimate) > 0 {
		fmt.Fprintf(&b, "  estimate: %s\n", amounts(r.Estimate))
	}
	if len(r.BudgetLeft) > 0 {
		fmt.Fprintf(&b, "  left:     %s\n", amounts(r.BudgetLeft))
	}
	if !r.Deadline.IsZero() {
		fmt.Fprintf(&b, "  deadline: %s\n", r.Deadline.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "  hash:     %s\n", r.Hash)
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

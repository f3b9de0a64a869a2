// Command approver shows a custom approval callback, the template to copy
// when calls that a policy marks "approve" must wait for a person.
//
// The callback gets a decision card (approval.Request) and returns a
// verdict bound to it. This one stands in for a person in a chat: it
// approves one refund, rejects another, never answers a third (the call
// times out and is denied), and approves an email "always, for 10
// minutes", so the next email skips the wait until the grant expires.
//
//	go run ./examples/approver
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/policy"
)

const rules = `
version: 1
default: deny
rules:
  - name: small-refunds
    match: call.tool == "refund" && call.args.amount <= 100.0
    effect: allow
  - name: big-refunds
    match: call.tool == "refund" && call.args.amount > 100.0
    effect: approve
    reason: refunds over 100 need a person
  - name: external-email
    match: call.tool == "send_email" && !call.args.to.endsWith("@acme.example")
    effect: approve
    reason: mail leaves the company
`

// Refund and Email are the tools' arguments.
type Refund struct {
	Order  string  `json:"order"`
	Amount float64 `json:"amount"`
}

type Email struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// person stands in for a human answering in a chat. A real callback
// would post the card and wait for a reply.
func person(ctx context.Context, r *approval.Request) (answer string, err error) {
	switch {
	case r.Tool == "refund" && r.Args["order"] == "A-1":
		return "yes", nil
	case r.Tool == "refund" && r.Args["order"] == "A-2":
		return "no: over 1000 goes to finance", nil
	case r.Tool == "refund":
		<-ctx.Done() // out to lunch: the guard's deadline ends the wait
		return "", ctx.Err()
	}
	return "always", nil
}

// askHuman is the approval callback: copy it, and replace person with
// your chat, ticket or pager. It must return when ctx is done, and build
// its verdict with r.Approve, r.ApproveFor or r.Reject so that the
// verdict names this card's ID and hash; the guard refuses any other.
func askHuman(out io.Writer) approval.Func {
	return func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
		fmt.Fprintf(out, "  card: %s %v, for agent %s; rule %s: %s\n", r.Tool, r.Args, r.Principal.Agent, r.Rule, r.Reason)
		answer, err := person(ctx, r)
		if err != nil {
			return approval.Verdict{}, err // no answer: the call is denied
		}
		switch {
		case answer == "yes":
			return r.Approve("carol", "checked the order"), nil
		case answer == "always":
			return r.ApproveFor("carol", "partner mail is fine today",
				approval.Grant{Scope: approval.ScopeTool, Duration: 10 * time.Minute}), nil
		}
		return r.Reject("carol", answer[len("no: "):]), nil
	}
}

// clock is a clock the example moves by hand, so that the grant's expiry
// shows without waiting ten minutes.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// lockedWriter serialises writes: the callback runs on the guard's
// goroutines, concurrently with the program.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func run(w io.Writer) error {
	out := &lockedWriter{w: w}
	p, err := policy.Parse("rules.yaml", []byte(rules))
	if err != nil {
		return err
	}
	clk := &clock{now: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	g, err := agentguard.New(
		agentguard.WithPolicy(p),
		agentguard.WithApprover(askHuman(out)),
		agentguard.WithApprovalTimeout(100*time.Millisecond), // a real deployment waits minutes
		agentguard.WithClock(clk.Now),
		agentguard.WithDefaultPrincipal(agentguard.Principal{Agent: "support-bot", Tenant: "acme"}),
	)
	if err != nil {
		return err
	}
	defer g.Close()

	refund := agentguard.Wrap(g, "refund", func(_ context.Context, r Refund) (string, error) {
		return fmt.Sprintf("refunded %.2f on order %s", r.Amount, r.Order), nil
	})
	send := agentguard.Wrap(g, "send_email", func(_ context.Context, e Email) (string, error) {
		return "sent to " + e.To, nil
	})
	show := func(what string, result string, err error) {
		var d *agentguard.DeniedError
		switch {
		case errors.As(err, &d):
			fmt.Fprintf(out, "%s: denied (%s): %s\n", what, d.Code, d.Reason)
		case err != nil:
			fmt.Fprintf(out, "%s: failed: %v\n", what, err)
		default:
			fmt.Fprintf(out, "%s: %s\n", what, result)
		}
	}
	ctx := context.Background()

	fmt.Fprintln(out, "1. approve")
	r, err := refund(ctx, Refund{Order: "A-1", Amount: 250})
	show("refund A-1", r, err)

	fmt.Fprintln(out, "2. reject")
	r, err = refund(ctx, Refund{Order: "A-2", Amount: 5000})
	show("refund A-2", r, err)
	fmt.Fprintf(out, "  the model reads: %v\n", err)

	fmt.Fprintln(out, "3. timeout")
	r, err = refund(ctx, Refund{Order: "A-3", Amount: 400})
	show("refund A-3", r, err)

	fmt.Fprintln(out, "4. always, for 10 minutes")
	r, err = send(ctx, Email{To: "bob@partner.example", Subject: "your order"})
	show("email bob", r, err)
	r, err = send(ctx, Email{To: "dan@partner.example", Subject: "your order"})
	show("email dan (no card: the grant covers it)", r, err)
	grants, err := g.Grants().List(ctx)
	if err != nil {
		return err
	}
	for _, gr := range grants {
		fmt.Fprintf(out, "grant: %s for agent %s by %s, until %s\n", gr.Scope, gr.Agent, gr.By, gr.Expires.Format(time.Kitchen))
	}
	clk.Advance(10 * time.Minute)
	r, err = send(ctx, Email{To: "erin@partner.example", Subject: "your order"})
	show("email erin, 10 minutes later (the grant expired: a new card)", r, err)
	return nil
}

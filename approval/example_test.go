package approval_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hardstop-labs/agentguard/approval"
)

// An approver is one function. This one approves refunds up to 500 and
// remembers its approval of small ones for ten minutes.
func ExampleFunc() {
	approver := approval.Func(func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
		amount, _ := r.Args["amount"].(float64)
		switch {
		case amount > 500:
			return r.Reject("finance-bot", "over 500 needs a person"), nil
		case amount < 50:
			return r.ApproveFor("finance-bot", "small", approval.Grant{Scope: approval.ScopeTool, Duration: 10 * time.Minute}), nil
		}
		return r.Approve("finance-bot", ""), nil
	})
	gate, err := approval.NewGate(approver, approval.Options{})
	if err != nil {
		panic(err)
	}
	for i, amount := range []float64{120, 900, 20, 300} {
		r := &approval.Request{ID: fmt.Sprint("call-", i), Tool: "refund", Args: map[string]any{"amount": amount},
			Principal: approval.Principal{Agent: "support-bot", Tenant: "acme"}}
		out, err := gate.Ask(context.Background(), r)
		switch {
		case errors.Is(err, approval.ErrRejected):
			fmt.Printf("refund %v: rejected: %v\n", amount, err)
		case err != nil:
			fmt.Printf("refund %v: refused: %v\n", amount, err)
		case out.Covered:
			fmt.Printf("refund %v: approved by a grant from %s\n", amount, out.Permit.By)
		case out.Permit != nil:
			fmt.Printf("refund %v: approved by %s, and %s granted for %s\n", amount, out.Verdict.By, out.Permit.Scope, out.Permit.Expires.Sub(out.Permit.Created))
		default:
			fmt.Printf("refund %v: approved by %s\n", amount, out.Verdict.By)
		}
	}
	// Output:
	// refund 120: approved by finance-bot
	// refund 900: rejected: approval: rejected: request call-1 by finance-bot: over 500 needs a person
	// refund 20: approved by finance-bot, and tool granted for 10m0s
	// refund 300: approved by a grant from finance-bot
}

// A console approver reads answers from a terminal; here, from a string.
func ExampleConsole() {
	con := approval.NewConsole(strings.NewReader("always 1h\n"), os.Stdout, approval.ConsoleOptions{By: "ops"})
	clock := func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }
	gate, _ := approval.NewGate(con, approval.Options{Clock: clock})
	r := &approval.Request{ID: "call-1", Tool: "send_email", Args: map[string]any{"to": "bob@other.example"},
		Principal: approval.Principal{Agent: "support-bot"}, Rule: "external-email", Reason: "mail leaves the company"}
	out, err := gate.Ask(context.Background(), r)
	fmt.Println(out.Verdict.By, out.Permit.Scope, err)
	// Output:
	// == card #1 ==
	// approval request call-1
	//   tool:     send_email
	//   for:      agent="support-bot" requester="" tenant="" session=""
	//   args:     {"to":"bob@other.example"}
	//   rule:     external-email: mail leaves the company
	//   deadline: 2026-11-30T12:05:00Z
	//   hash:     414f59d4553421f54b22eb082ff529f5bd152fbf3c767c42d489459557b1b18b
	// card #1: approve? y [NOTE] | n [NOTE] | always [DURATION] [args|tool|agent]
	// (card #1 call-1: approved)
	// ops tool <nil>
}

// Visible shows what a card holds, not what a terminal or a browser would
// make of it: here a right-to-left override, which reverses on screen
// whatever follows it, and a zero-width space.
func ExampleVisible() {
	fmt.Println(approval.Visible("eve@evil.com\u202e"))
	fmt.Println(approval.Visible("pay\u200bee"))
	// Output:
	// eve@evil.com\u202e
	// pay\u200bee
}

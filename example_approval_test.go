package agentguard_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/policy"
)

// A call that the policy sends for approval waits for the approver's
// verdict, bound to exactly that call; a rejection never runs the tool.
func ExampleWithApprover() {
	p, err := policy.Parse("policy.yaml", []byte(`
version: 1
rules:
  - name: big-refunds
    match: call.tool == "refund" && call.args.amount > 100.0
    effect: approve
    reason: refunds over 100 need a person
  - name: small-refunds
    match: call.tool == "refund" && call.args.amount <= 100.0
    effect: allow
`))
	if err != nil {
		panic(err)
	}
	approver := approval.Func(func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
		if r.Args["amount"].(float64) > 1000 {
			return r.Reject("carol", "too much"), nil
		}
		return r.Approve("carol", ""), nil
	})
	g, err := agentguard.New(agentguard.WithPolicy(p), agentguard.WithApprover(approver),
		agentguard.WithApprovalTimeout(time.Minute))
	if err != nil {
		panic(err)
	}
	defer g.Close()

	type Refund struct {
		Amount float64 `json:"amount"`
	}
	refund := agentguard.Wrap(g, "refund", func(_ context.Context, r Refund) (string, error) {
		return fmt.Sprintf("refunded %.2f", r.Amount), nil
	})
	for _, amount := range []float64{50, 250, 5000} {
		out, err := refund(context.Background(), Refund{Amount: amount})
		var d *agentguard.DeniedError
		if errors.As(err, &d) {
			fmt.Printf("%v: %s (%s)\n", amount, d.Code, d.Reason)
			continue
		}
		fmt.Printf("%v: %s\n", amount, out)
	}
	// Output:
	// 50: refunded 50.00
	// 250: refunded 250.00
	// 5000: approval_rejected (rejected by carol: too much)
}

// A verdict may grant a remembered approval; later calls in its scope
// skip the wait until it expires or is revoked.
func ExampleGuard_Grants() {
	p, _ := policy.Parse("policy.yaml", []byte(`
version: 1
default: approve
`))
	asked := 0
	approver := approval.Func(func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
		asked++
		return r.ApproveFor("carol", "", approval.Grant{Scope: approval.ScopeTool, Duration: 10 * time.Minute}), nil
	})
	g, _ := agentguard.New(agentguard.WithPolicy(p), agentguard.WithApprover(approver))
	defer g.Close()
	lookup := agentguard.Wrap(g, "lookup", func(_ context.Context, q string) (string, error) { return "found " + q, nil })
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "support-bot"})

	lookup(ctx, "a")
	lookup(ctx, "b")
	fmt.Println("asked:", asked)

	grants, _ := g.Grants().List(ctx)
	for _, gr := range grants {
		fmt.Println("grant:", gr.Scope, gr.Tool, gr.Agent, gr.Expires.Sub(gr.Created))
		g.Grants().Revoke(ctx, gr.ID, "dave")
	}
	lookup(ctx, "c")
	fmt.Println("asked:", asked)
	// Output:
	// asked: 1
	// grant: tool lookup support-bot 10m0s
	// asked: 2
}

package agentguard_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/policy"
)

// A cap from Go and a rate limit from the policy: the tool charges its
// real cost from inside with Charge.
func ExampleWithBudget() {
	pol, err := policy.Parse("policy.yaml", []byte(`
version: 1
default: allow
limits:
  - name: search-rate
    tools: ["search"]
    rate: 60/minute
    burst: 10
`))
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 6, 1, 20, 0, 0, 0, time.UTC)
	g, err := agentguard.New(
		agentguard.WithPolicy(pol),
		agentguard.WithClock(func() time.Time { return now }),
		agentguard.WithBudget([]budget.Cap{{
			Name:   "search-spend",
			Per:    budget.PerTenant,
			Limit:  budget.Amount{Micros: 1_000_000, Unit: "USD"}, // 1 USD
			Window: budget.Day(time.UTC),
		}}, budget.Options{}),
	)
	if err != nil {
		panic(err)
	}
	defer g.Close()

	search := agentguard.Wrap(g, "search", func(ctx context.Context, q string) (string, error) {
		// The search API bills 0.30 USD a query.
		if err := agentguard.Charge(ctx, agentguard.Cost{Unit: "USD", Micros: 300_000}); err != nil {
			return "", err
		}
		return "results for " + q, nil
	}, agentguard.Estimate(agentguard.Cost{Unit: "USD", Micros: 300_000}))

	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot", Tenant: "acme"})
	for i := 1; i <= 4; i++ {
		out, err := search(ctx, "token buckets")
		var d *agentguard.DeniedError
		if errors.As(err, &d) {
			fmt.Printf("%d: %s by %s: %s (retry after %s)\n", i, d.Code, d.Rule, d.Reason, d.RetryAfter)
			continue
		}
		fmt.Printf("%d: %s\n", i, out)
	}
	// Output:
	// 1: results for token buckets
	// 2: results for token buckets
	// 3: results for token buckets
	// 4: budget_exceeded by search-spend: tenant "acme" has spent 0.9 USD of 1 USD per day; this call needs 0.3 USD (retry after 4h0m0s)
}

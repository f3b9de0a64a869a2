package budget_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hardstop-labs/agentguard/budget"
)

func ExampleParseAmount() {
	for _, s := range []string{"25.00 USD", "1.5M tokens", "0.000002 USD", "-3 USD", "0.0000001 USD"} {
		a, err := budget.ParseAmount(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s = %d micro-%s\n", a, a.Micros, a.Unit)
	}
	// Output:
	// 25 USD = 25000000 micro-USD
	// 1500000 tokens = 1500000000000 micro-tokens
	// 0.000002 USD = 2 micro-USD
	// budget: invalid amount "-3 USD": negative
	// budget: invalid amount "0.0000001 USD": more than 6 decimals: finer than a micro-unit
}

func ExampleLedger() {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 18, 0, 0, 0, time.UTC)
	l, err := budget.NewLedger([]budget.Cap{{
		Name:   "daily-spend",
		Per:    budget.PerTenant,
		Limit:  budget.Amount{Micros: 25_000_000, Unit: "USD"},
		Window: budget.Day(time.UTC),
	}}, budget.Options{Clock: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	acme := budget.Subject{Tenant: "acme", Agent: "support-bot", Tool: "llm"}
	estimate := []budget.Amount{{Micros: 10_000_000, Unit: "USD"}}
	for i := 1; ; i++ {
		r, err := l.Reserve(ctx, budget.Request{Subject: acme, Estimate: estimate})
		var ex *budget.ExceededError
		if errors.As(err, &ex) {
			fmt.Println(err)
			fmt.Println("retry after", ex.RetryAfter)
			break
		}
		if err != nil {
			panic(err)
		}
		// The call ran and cost 8 USD.
		if err := r.Commit(ctx, []budget.Amount{{Micros: 8_000_000, Unit: "USD"}}); err != nil {
			panic(err)
		}
		fmt.Printf("call %d committed 8 USD\n", i)
	}
	// Output:
	// call 1 committed 8 USD
	// call 2 committed 8 USD
	// budget: cap "daily-spend" for tenant "acme" exceeded: spent 16 USD of 25 USD per day; this call needs 10 USD
	// retry after 6h0m0s
}

func ExampleLimiter() {
	l, err := budget.NewLimiter([]budget.Limit{{
		Name:  "email",
		Tools: []string{"send_email"},
		Per:   budget.PerAgent,
		Rate:  10.0 / 60, // 10 a minute
		Burst: 3,
	}}, budget.LimiterOptions{})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 6, 1, 18, 0, 0, 0, time.UTC)
	bot := budget.Subject{Agent: "support-bot", Tool: "send_email"}
	for i := 1; i <= 4; i++ {
		if err := l.AllowAt(now, bot); err != nil {
			var le *budget.LimitedError
			errors.As(err, &le)
			fmt.Printf("call %d: %v (retry after %s)\n", i, err, le.RetryAfter)
			continue
		}
		fmt.Printf("call %d: admitted\n", i)
	}
	// Output:
	// call 1: admitted
	// call 2: admitted
	// call 3: admitted
	// call 4: budget: rate limit "email" for agent "support-bot": at most 3 calls at once, then 10/minute, for tool "send_email" (retry after 6s)
}

package budget_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/budget/storetest"
)

func TestMemLimitsConformance(t *testing.T) {
	storetest.RunLimits(t, func() budget.LimitStore { return new(budget.MemLimits) })
}

// Two limiters on one store admit together what one limit allows.
func TestLimiterSharedStore(t *testing.T) {
	st := new(budget.MemLimits)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	lims := []budget.Limit{{Name: "email", Tools: []string{"send_email"}, Per: budget.PerAgent, Rate: rate.Every(time.Minute), Burst: 3}}
	a, err := budget.NewLimiter(lims, budget.LimiterOptions{Clock: clock, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := budget.NewLimiter(lims, budget.LimiterOptions{Clock: clock, Store: st})
	s := budget.Subject{Agent: "bot", Tool: "send_email"}
	admitted := 0
	for i := range 6 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if err := l.Allow(context.Background(), s); err == nil {
			admitted++
		} else {
			var le *budget.LimitedError
			if !errors.As(err, &le) || le.Limit != "email" || le.RetryAfter != time.Minute || le.Scope != "bot" {
				t.Fatalf("refusal = %#v, want the email limit with a retry of a minute", err)
			}
		}
	}
	if admitted != 3 {
		t.Fatalf("two limiters on one store admitted %d, want 3", admitted)
	}
	// Another agent has its own bucket; another tool is not limited.
	if err := b.Allow(context.Background(), budget.Subject{Agent: "other", Tool: "send_email"}); err != nil {
		t.Fatalf("another agent: %v", err)
	}
	if err := b.Allow(context.Background(), budget.Subject{Agent: "bot", Tool: "read"}); err != nil {
		t.Fatalf("an unlimited tool: %v", err)
	}
}

type brokenLimits struct{}

func (brokenLimits) Take(context.Context, time.Time, []budget.Bucket) (int, time.Duration, error) {
	return 0, 0, errors.New("connection refused")
}

// A store that fails refuses the call.
func TestLimiterStoreErrorRefuses(t *testing.T) {
	l, _ := budget.NewLimiter([]budget.Limit{{Rate: 1, Burst: 1}}, budget.LimiterOptions{Store: brokenLimits{}})
	if err := l.Allow(context.Background(), budget.Subject{Agent: "bot", Tool: "x"}); err == nil {
		t.Fatal("a broken store admitted the call")
	}
}

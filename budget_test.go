package agentguard_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/policy"
)

const budgetPolicy = `
version: 1
default: deny
rules:
  - name: llm
    match: call.tool == "llm"
    effect: allow
  - name: email
    match: call.tool == "send_email"
    effect: allow
limits:
  - name: email-rate
    tools: ["send_email"]
    rate: 10/minute
    burst: 3
budgets:
  - name: daily-spend
    per: tenant
    limit: "1.00 USD"
    window: day
`

func budgetPol(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("budget_test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("policy.Parse: %v", err)
	}
	return p
}

// budgetRecorder keeps the decision and result events.
type budgetRecorder struct {
	mu     sync.Mutex
	events []agentguard.Event
}

func (r *budgetRecorder) Record(_ context.Context, e *agentguard.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, *e)
	return nil
}

func (r *budgetRecorder) denials() []agentguard.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []agentguard.Event
	for _, e := range r.events {
		if e.Kind == agentguard.EventDecision && e.Code != "" {
			out = append(out, e)
		}
	}
	return out
}

type llmArgs struct {
	Prompt string `json:"prompt"`
	Tokens int    `json:"tokens"`
}

var budgetNow = time.Date(2026, 6, 1, 18, 0, 0, 0, time.UTC)

func usdCost(s string) agentguard.Cost {
	a, err := budget.ParseAmount(s + " USD")
	if err != nil {
		panic(err)
	}
	return agentguard.Cost{Unit: a.Unit, Micros: a.Micros}
}

func TestBudgetDeniesThroughWrap(t *testing.T) {
	rec := &budgetRecorder{}
	g, err := agentguard.New(
		agentguard.WithPolicy(budgetPol(t, budgetPolicy)),
		agentguard.WithClock(func() time.Time { return budgetNow }),
		agentguard.WithRecorder(rec),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var ran atomic.Int64
	llm := agentguard.Wrap(g, "llm", func(ctx context.Context, a llmArgs) (string, error) {
		ran.Add(1)
		return "ok", nil
	}, agentguard.Estimate(usdCost("0.40")))
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot", Tenant: "acme"})
	for i := range 2 {
		if _, err := llm(ctx, llmArgs{Prompt: "hi"}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err = llm(ctx, llmArgs{Prompt: "hi"})
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || !errors.Is(err, agentguard.ErrBudgetExceeded) || !errors.Is(err, agentguard.ErrDenied) {
		t.Fatalf("third call = %v, want a budget denial", err)
	}
	if ran.Load() != 2 {
		t.Errorf("the tool ran %d times, want 2", ran.Load())
	}
	if d.Code != agentguard.CodeBudgetExceeded || d.Stage != agentguard.StageBudget || d.Rule != "daily-spend" || d.RetryAfter != 6*time.Hour {
		t.Errorf("denial = %+v", d)
	}
	wantReason := `tenant "acme" has spent 0.8 USD of 1 USD per day; this call needs 0.4 USD`
	if d.Reason != wantReason {
		t.Errorf("Reason = %q, want %q", d.Reason, wantReason)
	}
	if msg := d.Error(); !strings.Contains(msg, wantReason) || !strings.Contains(msg, "A retry may succeed after 6h0m0s") {
		t.Errorf("the model reads %q", msg)
	}
	// The denial is audited with the cap and the amounts.
	ds := rec.denials()
	if len(ds) != 1 || ds[0].Rule != "daily-spend" || ds[0].Reason != wantReason || ds[0].RetryAfter != 6*time.Hour {
		t.Errorf("recorded denials = %+v", ds)
	}
	// Another tenant has its own cap.
	other := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot", Tenant: "globex"})
	if _, err := llm(other, llmArgs{}); err != nil {
		t.Errorf("another tenant: %v", err)
	}
}

func TestRateLimitDeniesThroughWrap(t *testing.T) {
	now := budgetNow
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g, err := agentguard.New(agentguard.WithPolicy(budgetPol(t, budgetPolicy)), agentguard.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	send := agentguard.Wrap(g, "send_email", func(ctx context.Context, to string) (string, error) { return "sent", nil })
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot", Tenant: "acme"})
	for i := range 3 {
		if _, err := send(ctx, "bob"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err = send(ctx, "bob")
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || !errors.Is(err, agentguard.ErrRateLimited) {
		t.Fatalf("fourth call = %v, want rate limited", err)
	}
	if d.Code != agentguard.CodeRateLimited || d.Rule != "email-rate" || d.RetryAfter != 6*time.Second ||
		d.Reason != `agent "bot" may make at most 3 calls at once, then 10/minute, for tool "send_email"` {
		t.Errorf("denial = %+v", d)
	}
	mu.Lock()
	now = now.Add(6 * time.Second)
	mu.Unlock()
	if _, err := send(ctx, "bob"); err != nil {
		t.Errorf("after RetryAfter: %v", err)
	}
	// Another agent has its own bucket.
	if _, err := send(agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "other"}), "bob"); err != nil {
		t.Errorf("another agent: %v", err)
	}
}

func TestBudgetExactInParallelThroughWrap(t *testing.T) {
	const callers, n = 500, 37
	a := usdCost("0.01")
	g, err := agentguard.New(
		agentguard.WithPolicy(budgetPol(t, budgetPolicy)),
		agentguard.WithBudget([]budget.Cap{{Name: "go-cap", Per: budget.PerAgent, Limit: budget.Amount{Micros: n * a.Micros, Unit: "USD"}}}, budget.Options{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var ran atomic.Int64
	llm := agentguard.Wrap(g, "llm", func(ctx context.Context, a llmArgs) (string, error) {
		ran.Add(1)
		return "ok", nil
	}, agentguard.Estimate(a))
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread over tenants, so that only the per-agent Go cap binds.
			ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot", Tenant: string(rune('a' + i%26))})
			<-start
			_, err := llm(ctx, llmArgs{})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, agentguard.ErrBudgetExceeded):
				refused.Add(1)
			default:
				t.Errorf("call: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != n || refused.Load() != callers-n || ran.Load() != n {
		t.Errorf("%d callers, room for %d: %d ran, %d succeeded, %d refused", callers, n, ran.Load(), ok.Load(), refused.Load())
	}
}

// brokenStore fails every call, or hangs until the context ends.
type brokenStore struct{ hang bool }

func (s brokenStore) fail(ctx context.Context) error {
	if s.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return errors.New("database is down")
}
func (s brokenStore) Reserve(ctx context.Context, _ *budget.Hold) error { return s.fail(ctx) }
func (s brokenStore) Settle(ctx context.Context, _ string, _ []int64, _ time.Time) error {
	return s.fail(ctx)
}
func (s brokenStore) Usage(ctx context.Context, _ time.Time, _ []budget.Query) ([]budget.Tally, error) {
	return nil, s.fail(ctx)
}

func TestBudgetStoreFailureDenies(t *testing.T) {
	for _, hang := range []bool{false, true} {
		g, err := agentguard.New(
			agentguard.WithPolicy(budgetPol(t, budgetPolicy)),
			agentguard.WithBudget(nil, budget.Options{Store: brokenStore{hang: hang}}),
		)
		if err != nil {
			t.Fatal(err)
		}
		ran := false
		llm := agentguard.Wrap(g, "llm", func(ctx context.Context, a llmArgs) (string, error) { ran = true; return "ok", nil })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err = llm(ctx, llmArgs{})
		cancel()
		// A broken store is an unavailable control, not an exceeded cap
		// ("a human can raise the cap" would be false); a store that hangs
		// until the caller's deadline is the caller's deadline.
		want, wantRule := agentguard.ErrUnavailable, "budget"
		if hang {
			want, wantRule = agentguard.ErrCancelled, ""
		}
		var d *agentguard.DeniedError
		if !errors.As(err, &d) || !errors.Is(err, want) || errors.Is(err, agentguard.ErrBudgetExceeded) || ran {
			t.Errorf("hang=%v: call with a broken store = %v (ran %v), want %v", hang, err, ran, want)
		} else if strings.Contains(d.Error(), "database is down") || d.Rule != wantRule {
			t.Errorf("hang=%v: the model reads %q (rule %q): the store's error must stay internal", hang, d.Error(), d.Rule)
		}
		g.Close()
	}
}

func TestUsageRuleAndChargedCost(t *testing.T) {
	src := `
version: 1
default: deny
rules:
  - name: llm
    match: call.tool == "llm"
    effect: allow
  - name: big-spenders
    match: call.tool == "llm" && usage.spend["USD"] > 20.0
    effect: deny
    reason: this tenant spent over 20 USD today
budgets:
  - name: daily-spend
    per: tenant
    limit: "100 USD"
    window: day
`
	g, err := agentguard.New(agentguard.WithPolicy(budgetPol(t, src)), agentguard.WithClock(func() time.Time { return budgetNow }))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// The tool reports its real cost from inside with Charge.
	llm := agentguard.Wrap(g, "llm", func(ctx context.Context, a llmArgs) (string, error) {
		if err := agentguard.Charge(ctx, usdCost("7.5")); err != nil {
			return "", err
		}
		return "ok", nil
	}, agentguard.Estimate(usdCost("1")))
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot", Tenant: "acme"})
	for i := range 3 { // 7.5, 15, 22.5 USD
		if _, err := llm(ctx, llmArgs{}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err = llm(ctx, llmArgs{})
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Code != agentguard.CodePolicyDenied || d.Rule != "big-spenders" {
		t.Fatalf("fourth call = %v, want denied by big-spenders", err)
	}
}

func TestPolicyCostEstimateAndOverage(t *testing.T) {
	src := `
version: 1
default: deny
rules:
  - name: llm
    match: call.tool == "llm"
    effect: allow
costs:
  - tools: ["llm"]
    estimate: double(call.args.tokens) * 0.001
    unit: USD
budgets:
  - name: hourly
    per: agent
    limit: "1 USD"
    window: hour
`
	now := budgetNow
	var mu sync.Mutex
	g, err := agentguard.New(agentguard.WithPolicy(budgetPol(t, src)), agentguard.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now }))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// Without ResultCost or Charge a call is charged its estimate; with a
	// ResultCost, what the result says.
	llm := agentguard.Wrap(g, "llm", func(ctx context.Context, a llmArgs) (int, error) { return a.Tokens * 2, nil },
		agentguard.ResultCost(func(used int) []agentguard.Cost {
			return []agentguard.Cost{{Unit: "USD", Micros: int64(used) * 1000}}
		}))
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot"})
	if _, err := llm(ctx, llmArgs{Tokens: 1200}); !errors.Is(err, agentguard.ErrBudgetExceeded) {
		t.Fatalf("a call estimated at 1.2 USD against a 1 USD cap = %v, want refused", err)
	}
	if _, err := llm(ctx, llmArgs{Tokens: 400}); err != nil { // estimated 0.4, costs 0.8
		t.Fatalf("call: %v", err)
	}
	_, err = llm(ctx, llmArgs{Tokens: 150}) // 0.8 + 0.15 fits
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	// Now 0.8 + 0.3 = 1.1 USD: overrun; the cap stays shut, even for a tiny call.
	_, err = llm(ctx, llmArgs{Tokens: 1})
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Rule != "hourly" || !strings.Contains(d.Reason, "stays shut until its window resets") || d.RetryAfter != time.Hour {
		t.Fatalf("call after the overrun = %v, want refused by hourly until the hour ends", err)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if _, err := llm(ctx, llmArgs{Tokens: 1}); err != nil {
		t.Errorf("in the next hour: %v", err)
	}
}

func TestBudgetPolicySwap(t *testing.T) {
	g, err := agentguard.New(agentguard.WithPolicy(budgetPol(t, budgetPolicy)), agentguard.WithClock(func() time.Time { return budgetNow }))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	llm := agentguard.Wrap(g, "llm", func(ctx context.Context, a llmArgs) (string, error) { return "ok", nil }, agentguard.Estimate(usdCost("0.6")))
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot", Tenant: "acme"})
	if _, err := llm(ctx, llmArgs{}); err != nil {
		t.Fatal(err)
	}
	if _, err := llm(ctx, llmArgs{}); !errors.Is(err, agentguard.ErrBudgetExceeded) {
		t.Fatalf("second call = %v, want refused by the 1 USD cap", err)
	}
	// A policy that raises the cap keeps what was spent under the same name.
	raised := strings.Replace(budgetPolicy, `limit: "1.00 USD"`, `limit: "1.50 USD"`, 1)
	if err := g.SetPolicy(budgetPol(t, raised)); err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	if _, err := llm(ctx, llmArgs{}); err != nil {
		t.Fatalf("after raising the cap: %v", err)
	}
	if _, err := llm(ctx, llmArgs{}); !errors.Is(err, agentguard.ErrBudgetExceeded) {
		t.Fatalf("fourth call = %v, want refused: 1.2 USD spent of 1.5", err)
	}
	// A policy whose budgets the ledger cannot take is refused whole.
	bad := strings.Replace(budgetPolicy, `limit: "1.00 USD"`, `limit: "0.0000001 USD"`, 1)
	if p, err := policy.Parse("bad.yaml", []byte(bad)); err == nil {
		if err := g.SetPolicy(p); err == nil || !strings.Contains(err.Error(), "daily-spend") {
			t.Errorf("SetPolicy of a too precise cap = %v, want an error naming daily-spend", err)
		}
		if g.Policy() == p {
			t.Errorf("the refused policy is in force")
		}
	}
}

func TestPolicyEstimateIsChargedWhenNothingIsReported(t *testing.T) {
	src := `
version: 1
default: deny
rules:
  - name: llm
    match: call.tool == "llm"
    effect: allow
costs:
  - tools: ["llm"]
    estimate: double(call.args.tokens) * 0.001
    unit: USD
budgets:
  - name: total
    limit: "1 USD"
`
	rec := &budgetRecorder{}
	g, err := agentguard.New(agentguard.WithPolicy(budgetPol(t, src)), agentguard.WithRecorder(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	llm := agentguard.Wrap(g, "llm", func(ctx context.Context, a llmArgs) (string, error) { return "ok", nil })
	ctx := context.Background()
	for i := range 2 {
		if _, err := llm(ctx, llmArgs{Tokens: 400}); err != nil { // 0.4 USD each
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err = llm(ctx, llmArgs{Tokens: 400})
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Rule != "total" || d.Reason != "spent 0.8 USD of 1 USD in total; this call needs 0.4 USD" || d.RetryAfter != 0 {
		t.Fatalf("third call = %v, want refused by total with 0.8 USD spent", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.events {
		if len(e.Estimate) != 1 || e.Estimate[0] != usdCost("0.4") {
			t.Errorf("%s event records the estimate %v, want 0.4 USD", e.Kind, e.Estimate)
		}
	}
}

func TestRateLimitWaitsWithinDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := `
version: 1
default: allow
limits:
  - name: slow-api
    tools: ["api"]
    rate: 1/s
    burst: 1
    wait: true
`
		g, err := agentguard.New(agentguard.WithPolicy(budgetPol(t, src)))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		api := agentguard.Wrap(g, "api", func(ctx context.Context, q string) (string, error) { return q, nil }, agentguard.Cooperative())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		for i := range 3 {
			if _, err := api(ctx, "q"); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("three calls at 1/s took %v, want 2s of waiting", d)
		}
		short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel2()
		_, err = api(short, "q")
		var d *agentguard.DeniedError
		if !errors.As(err, &d) || d.Code != agentguard.CodeRateLimited || d.Rule != "slow-api" || d.RetryAfter != time.Second {
			t.Errorf("call with a 300ms deadline = %v, want rate limited with retry after 1s", err)
		}
	})
}

// TestBudgetStagesAllocateNothing: a rate limit and a cap, with an
// estimate to reserve and commit, add no allocation to an allowed call.
func TestBudgetStagesAllocateNothing(t *testing.T) {
	est := []agentguard.ToolOption{agentguard.Estimate(agentguard.Cost{Unit: "USD", Micros: 1000})}
	without := allowedCallAllocs(t, est)
	with := allowedCallAllocs(t, est,
		agentguard.WithRateLimits([]budget.Limit{{Name: "calls", Per: budget.PerAgent, Rate: 1e9, Burst: 1 << 30}}, budget.LimiterOptions{}),
		agentguard.WithBudget([]budget.Cap{{Name: "daily", Per: budget.PerTenant, Limit: budget.Amount{Micros: budget.MaxMicros, Unit: "USD"}, Window: budget.Day(nil)}}, budget.Options{}))
	if with > without {
		t.Errorf("allowed call: %v allocations with a rate limit and a cap, %v without", with, without)
	}
}

// TestBudgetReservationsReused: one caller's calls in a row, each
// reserving 0.02 USD and charging 0.01, against a cap of 0.10: the
// reservations the pooled flights carry from call to call are settled
// and reused exactly, so nine calls run (0.08 spent + 0.02 fits) and the
// tenth is refused; a refused call holds nothing, so a cheaper tool of
// the same cap still fits the room that is left.
func TestBudgetReservationsReused(t *testing.T) {
	g, err := agentguard.New(
		agentguard.WithPolicy(budgetPol(t, budgetPolicy)),
		agentguard.WithBudget([]budget.Cap{{Name: "go-cap", Per: budget.PerAgent, Limit: budget.Amount{Micros: 10 * usdCost("0.01").Micros, Unit: "USD"}}}, budget.Options{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	charge := func(ctx context.Context, a llmArgs) (string, error) {
		return "ok", agentguard.Charge(ctx, usdCost("0.01"))
	}
	llm := agentguard.Wrap(g, "llm", charge, agentguard.Estimate(usdCost("0.02")))
	cheap := agentguard.Wrap(g, "llm", charge, agentguard.Estimate(usdCost("0.01")))
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot"})
	var ran int
	for i := range 12 {
		_, err := llm(ctx, llmArgs{})
		switch {
		case err == nil:
			ran++
		case errors.Is(err, agentguard.ErrBudgetExceeded):
		default:
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if ran != 9 {
		t.Errorf("%d calls of 0.02 charging 0.01 ran under a cap of 0.10, want 9", ran)
	}
	if _, err := cheap(ctx, llmArgs{}); err != nil {
		t.Errorf("a call of 0.01 with 0.01 left: %v", err)
	}
	if _, err := cheap(ctx, llmArgs{}); !errors.Is(err, agentguard.ErrBudgetExceeded) {
		t.Errorf("a call of 0.01 with nothing left: %v, want a budget denial", err)
	}
}

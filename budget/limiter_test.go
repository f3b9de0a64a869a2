package budget_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/policy"
	"golang.org/x/time/rate"
)

func mustLimiter(t testing.TB, limits []budget.Limit, opts budget.LimiterOptions) *budget.Limiter {
	t.Helper()
	l, err := budget.NewLimiter(limits, opts)
	if err != nil {
		t.Fatalf("NewLimiter: %v", err)
	}
	return l
}

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func TestLimiterBurstExact(t *testing.T) {
	l := mustLimiter(t, []budget.Limit{{Name: "email", Tools: []string{"send_email"}, Per: budget.PerAgent, Rate: 10.0 / 60, Burst: 5}}, budget.LimiterOptions{})
	s := budget.Subject{Agent: "bot", Tool: "send_email"}
	var ok atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 15 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := l.AllowAt(t0, s)
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, budget.ErrLimited):
				t.Errorf("AllowAt: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 5 {
		t.Errorf("15 simultaneous callers with burst 5: %d admitted, want 5", ok.Load())
	}
	err := l.AllowAt(t0, s)
	var le *budget.LimitedError
	if !errors.As(err, &le) || le.Limit != "email" || le.Scope != "bot" || le.Tool != "send_email" || le.RetryAfter != 6*time.Second {
		t.Fatalf("refusal = %v (%+v), want limit email for bot, retry after 6s", err, le)
	}
	want := `budget: rate limit "email" for agent "bot": at most 5 calls at once, then 10/minute, for tool "send_email"`
	if err.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", err, want)
	}
	if err := l.AllowAt(t0.Add(6*time.Second-time.Millisecond), s); err == nil {
		t.Errorf("admitted before RetryAfter")
	}
	if err := l.AllowAt(t0.Add(6*time.Second), s); err != nil {
		t.Errorf("refused at RetryAfter: %v", err)
	}
	// Other agents, and tools the limit does not cover, are not limited.
	if err := l.AllowAt(t0, budget.Subject{Agent: "other", Tool: "send_email"}); err != nil {
		t.Errorf("another agent: %v", err)
	}
	for range 100 {
		if err := l.AllowAt(t0, budget.Subject{Agent: "bot", Tool: "read"}); err != nil {
			t.Fatalf("a tool without a limit: %v", err)
		}
	}
}

func TestLimiterLongRun(t *testing.T) {
	const r, burst = 3.0, 4
	l := mustLimiter(t, []budget.Limit{{Rate: r, Burst: burst}}, budget.LimiterOptions{})
	rng := rand.New(rand.NewPCG(1, 2))
	at := t0
	admitted := 0
	for range 50_000 {
		at = at.Add(time.Duration(rng.IntN(int(20 * time.Millisecond))))
		if l.AllowAt(at, budget.Subject{}) == nil {
			admitted++
		}
		if limit := burst + r*at.Sub(t0).Seconds(); float64(admitted) > limit {
			t.Fatalf("after %v: %d admitted > burst + rate·t = %.2f", at.Sub(t0), admitted, limit)
		}
	}
	// Callers come far faster than the rate: nearly every token is used.
	if lower := r*at.Sub(t0).Seconds() - 1; float64(admitted) < lower {
		t.Errorf("after %v: %d admitted, want at least %.0f", at.Sub(t0), admitted, lower)
	}
}

func TestLimiterClockBackwards(t *testing.T) {
	l := mustLimiter(t, []budget.Limit{{Rate: 1, Burst: 2}}, budget.LimiterOptions{})
	s := budget.Subject{}
	later := t0.Add(time.Hour)
	for range 2 {
		if err := l.AllowAt(later, s); err != nil {
			t.Fatalf("AllowAt: %v", err)
		}
	}
	// An hour back, and then forward again to the same instant: nothing new.
	for _, at := range []time.Time{t0, t0.Add(30 * time.Minute), later, later.Add(999 * time.Millisecond)} {
		if err := l.AllowAt(at, s); err == nil {
			t.Errorf("AllowAt(%v) admitted after the clock went back", at.Sub(t0))
		}
	}
	if err := l.AllowAt(later.Add(time.Second), s); err != nil {
		t.Errorf("a second after the latest time: %v", err)
	}
}

func TestLimiterSeveralLimits(t *testing.T) {
	l := mustLimiter(t, []budget.Limit{
		{Name: "all", Per: budget.PerAgent, Rate: 1, Burst: 3},
		{Name: "search", Per: budget.PerAgent, Tools: []string{"search*"}, Rate: 1, Burst: 1},
	}, budget.LimiterOptions{})
	a := budget.Subject{Agent: "a", Tool: "search.web"}
	if err := l.AllowAt(t0, a); err != nil {
		t.Fatalf("first search: %v", err)
	}
	var le *budget.LimitedError
	for range 3 {
		if err := l.AllowAt(t0, a); !errors.As(err, &le) || le.Limit != "search" {
			t.Fatalf("second search = %v, want refused by search", err)
		}
	}
	// The refusals gave their tokens of "all" back: two are left.
	for i := range 2 {
		if err := l.AllowAt(t0, budget.Subject{Agent: "a", Tool: "read"}); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	err := l.AllowAt(t0, budget.Subject{Agent: "a", Tool: "read"})
	if !errors.As(err, &le) || le.Limit != "all" || le.Tool != "" || !strings.HasSuffix(err.Error(), "then 1/s, across all tools") {
		t.Errorf("fourth call = %v, want refused by all, across all tools", err)
	}
}

func TestLimiterWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustLimiter(t, []budget.Limit{{Name: "slow", Rate: 1, Burst: 1, Wait: true}}, budget.LimiterOptions{})
		s := budget.Subject{Tool: "x"}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		for i := range 3 {
			if err := l.Allow(ctx, s); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("three calls at 1/s took %v, want 2s of waiting", got)
		}
		// A deadline too close to wait for a token: refused at once.
		short, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel2()
		before := time.Now()
		err := l.Allow(short, s)
		var le *budget.LimitedError
		if !errors.As(err, &le) || le.RetryAfter != time.Second || time.Since(before) != 0 {
			t.Errorf("Allow with a 500ms deadline = %v after %v, want an immediate refusal with retry 1s", err, time.Since(before))
		}
		// A wait cut short by cancellation gives the token back.
		cctx, cancel3 := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- l.Allow(cctx, s) }()
		synctest.Wait()
		cancel3()
		if err := <-done; !errors.Is(err, budget.ErrLimited) || !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled wait = %v, want ErrLimited wrapping context.Canceled", err)
		}
		time.Sleep(time.Second)
		if err := l.AllowAt(time.Now(), s); err != nil {
			t.Errorf("after the cancelled wait a second later: %v", err)
		}
	})
}

func TestLimiterEviction(t *testing.T) {
	const max = 256
	l := mustLimiter(t, []budget.Limit{{Per: budget.PerAgent, Rate: 100, Burst: 2}}, budget.LimiterOptions{MaxBuckets: max})
	at := t0
	for i := range 100_000 {
		at = at.Add(time.Millisecond)
		if err := l.AllowAt(at, budget.Subject{Agent: fmt.Sprint("agent-", i)}); err != nil {
			t.Fatalf("agent %d: %v", i, err)
		}
	}
	if n := l.Len(); n > max {
		t.Errorf("%d buckets kept, want at most %d", n, max)
	}
	// When every bucket is in use at once, new keys are refused: no
	// bucket is dropped before it has refilled.
	l2 := mustLimiter(t, []budget.Limit{{Per: budget.PerAgent, Rate: 1, Burst: 1}}, budget.LimiterOptions{MaxBuckets: 32})
	var admitted []string
	for i := range 2000 {
		agent := fmt.Sprint("a", i)
		err := l2.AllowAt(t0, budget.Subject{Agent: agent})
		switch {
		case err == nil:
			admitted = append(admitted, agent)
		case !errors.Is(err, budget.ErrLimited):
			t.Fatalf("refusal %v is not ErrLimited", err)
		}
	}
	if len(admitted) == 2000 || len(admitted) == 0 || l2.Len() > 32 {
		t.Errorf("%d admitted, %d buckets: want refusals and at most 32 buckets", len(admitted), l2.Len())
	}
	// The agents admitted cannot go again before their buckets refill.
	for _, agent := range admitted {
		if err := l2.AllowAt(t0.Add(time.Millisecond), budget.Subject{Agent: agent}); err == nil {
			t.Errorf("%s admitted twice within a millisecond at 1/s", agent)
		}
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want rate.Limit
	}{
		{"10/minute", 10.0 / 60},
		{"5/s", 5},
		{"100/hour", 100.0 / 3600},
		{"1000/day", 1000.0 / 86400},
		{"3/30s", 0.1},
		{"0.5/sec", 0.5},
	}
	for _, tt := range tests {
		got, err := budget.ParseRate(tt.in)
		if err != nil || float64(got-tt.want) > 1e-12 || float64(tt.want-got) > 1e-12 {
			t.Errorf("ParseRate(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "10", "0/minute", "-1/s", "NaN/s", "Inf/s", "10/fortnight", "10/-1s", "x/s"} {
		if _, err := budget.ParseRate(bad); err == nil || !strings.HasPrefix(err.Error(), "budget: rate") {
			t.Errorf("ParseRate(%q) error = %v, want a budget: rate error", bad, err)
		}
	}
}

func TestNewLimiterErrors(t *testing.T) {
	_, err := budget.NewLimiter([]budget.Limit{{Rate: 0, Burst: 1}, {Name: "b", Rate: 1, Burst: 0}, {Name: "c", Rate: 1, Burst: 1, Tools: []string{""}}}, budget.LimiterOptions{})
	if err == nil {
		t.Fatal("NewLimiter accepted bad limits")
	}
	for _, want := range []string{`limit 0 "limits[0]": rate must be positive`, `limit 1 "b": burst`, `limit 2 "c": empty tool pattern`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

func TestFromPolicy(t *testing.T) {
	caps, err := budget.CapsFromPolicy([]policy.Budget{
		{Name: "daily-spend", Per: "tenant", Limit: "25.00 USD", Window: "day:Europe/Paris"},
		{Name: "tokens", Tools: []string{"llm"}, Limit: "1.5M tokens"},
	})
	if err != nil {
		t.Fatalf("CapsFromPolicy: %v", err)
	}
	if caps[0].Per != budget.PerTenant || caps[0].Limit != usd("25") || caps[0].Window.String() != "day:Europe/Paris" ||
		caps[1].Per != budget.PerGlobal || caps[1].Window.String() != "total" || caps[1].Limit.Micros != 1_500_000e6 {
		t.Errorf("CapsFromPolicy = %+v", caps)
	}
	_, err = budget.CapsFromPolicy([]policy.Budget{{Name: "x", Per: "planet", Limit: "5", Window: "week"}})
	for _, want := range []string{`budgets[0] "x": budget: per "planet"`, `budgets[0] "x": limit: budget: invalid amount "5": missing unit`, `budgets[0] "x": budget: window "week"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CapsFromPolicy error does not say %q:\n%v", want, err)
		}
	}
	limits, err := budget.LimitsFromPolicy([]policy.Limit{{Tools: []string{"send_email"}, Rate: "10/minute", Burst: 3}, {Name: "t", Per: "tenant", Rate: "5/s", Wait: true}})
	if err != nil {
		t.Fatalf("LimitsFromPolicy: %v", err)
	}
	if limits[0].Name != "limits[0]" || limits[0].Per != budget.PerAgent || limits[0].Burst != 3 ||
		limits[1].Per != budget.PerTenant || limits[1].Burst != 1 || !limits[1].Wait || limits[1].Rate != 5 {
		t.Errorf("LimitsFromPolicy = %+v", limits)
	}
	if _, err := budget.LimitsFromPolicy([]policy.Limit{{Rate: "fast", Burst: -1}}); err == nil || !strings.Contains(err.Error(), "limits[0]: budget: rate") || !strings.Contains(err.Error(), "negative burst") {
		t.Errorf("LimitsFromPolicy error = %v", err)
	}
}

func TestPolicyUsage(t *testing.T) {
	got := budget.PolicyUsage([]budget.Usage{
		{Cap: "global", Per: budget.PerGlobal, Limit: usd("100"), Spent: usd("50"), Calls: 90, Left: usd("50")},
		{Cap: "tenant", Per: budget.PerTenant, Limit: usd("25"), Spent: usd("20"), Reserved: usd("0.5"), Calls: 7, Left: usd("4.5")},
	})
	if got.Spend["USD"] != 20.5 || got.Calls != 7 || got.Caps["global"] != 50 || got.Caps["tenant"] != 4.5 {
		t.Errorf("PolicyUsage = %+v", got)
	}
}

package budget_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/budget"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func usd(s string) budget.Amount {
	a, err := budget.ParseAmount(s + " USD")
	if err != nil {
		panic(err)
	}
	return a
}

func mustLedger(t testing.TB, caps []budget.Cap, opts budget.Options) *budget.Ledger {
	t.Helper()
	l, err := budget.NewLedger(caps, opts)
	if err != nil {
		t.Fatalf("NewLedger: %v", err)
	}
	return l
}

var bg = context.Background()

func TestLedgerReserveCommit(t *testing.T) {
	clk := newClock(time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC))
	l := mustLedger(t, []budget.Cap{
		{Name: "global", Limit: usd("100"), Window: budget.Day(nil)},
		{Name: "tenant", Per: budget.PerTenant, Limit: usd("10"), Window: budget.Day(nil)},
	}, budget.Options{Clock: clk.Now})
	acme := budget.Subject{Tenant: "acme", Agent: "bot", Tool: "llm"}

	r, err := l.Reserve(bg, budget.Request{Subject: acme, Estimate: []budget.Amount{usd("4")}})
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if got := r.Left(); len(got) != 2 || got[0] != usd("96") || got[1] != usd("6") {
		t.Errorf("Left() = %v, want [96 USD 6 USD]", got)
	}
	us, err := l.Usage(bg, acme)
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	if us[1].Reserved != usd("4") || us[1].Spent != usd("0") || us[1].Left != usd("6") {
		t.Errorf("tenant usage while reserved = %+v", us[1])
	}
	if err := r.Commit(bg, []budget.Amount{usd("2.5")}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := r.Commit(bg, []budget.Amount{usd("2.5")}); !errors.Is(err, budget.ErrSettled) {
		t.Errorf("second Commit = %v, want ErrSettled", err)
	}
	if err := r.Release(bg); !errors.Is(err, budget.ErrSettled) {
		t.Errorf("Release after Commit = %v, want ErrSettled", err)
	}
	us, _ = l.Usage(bg, acme)
	for _, u := range us {
		if u.Spent != usd("2.5") || u.Reserved != usd("0") || u.Calls != 1 {
			t.Errorf("usage of %s after Commit = %+v, want 2.5 USD spent, 1 call", u.Cap, u)
		}
	}
	// Another tenant has its own tenant account but shares the global one.
	other := budget.Subject{Tenant: "globex", Tool: "llm"}
	us, _ = l.Usage(bg, other)
	if us[0].Spent != usd("2.5") || us[1].Spent != usd("0") {
		t.Errorf("globex usage = %+v, want global 2.5 USD, tenant 0", us)
	}
}

func TestLedgerRefusal(t *testing.T) {
	clk := newClock(time.Date(2026, 6, 1, 21, 0, 0, 0, time.UTC))
	l := mustLedger(t, []budget.Cap{
		{Name: "daily-spend", Per: budget.PerTenant, Limit: usd("25"), Window: budget.Day(nil)},
	}, budget.Options{Clock: clk.Now})
	s := budget.Subject{Tenant: "acme", Tool: "llm"}
	r, err := l.Reserve(bg, budget.Request{Subject: s, Estimate: []budget.Amount{usd("20")}})
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := r.Commit(bg, []budget.Amount{usd("20")}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if _, err := l.Reserve(bg, budget.Request{Subject: s, Estimate: []budget.Amount{usd("4.5")}}); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	_, err = l.Reserve(bg, budget.Request{Subject: s, Estimate: []budget.Amount{usd("0.75")}})
	var ex *budget.ExceededError
	if !errors.As(err, &ex) || !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("Reserve over the cap = %v, want an *ExceededError", err)
	}
	if ex.Cap != "daily-spend" || ex.Scope != "acme" || ex.Spent != usd("20") || ex.Reserved != usd("4.5") ||
		ex.Limit != usd("25") || ex.Asked != usd("0.75") || ex.Overage || ex.RetryAfter != 3*time.Hour {
		t.Errorf("ExceededError = %+v", *ex)
	}
	want := `budget: cap "daily-spend" for tenant "acme" exceeded: spent 20 USD and reserved 4.5 USD of 25 USD per day; this call needs 0.75 USD`
	if ex.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", ex.Error(), want)
	}
	// An ask larger than the cap itself cannot be helped by waiting.
	_, err = l.Reserve(bg, budget.Request{Subject: budget.Subject{Tenant: "new"}, Estimate: []budget.Amount{usd("26")}})
	if !errors.As(err, &ex) || ex.RetryAfter != 0 {
		t.Errorf("Reserve above the whole cap = %v (RetryAfter %v), want a refusal with no RetryAfter", err, ex.RetryAfter)
	}
}

func TestLedgerOverageBlocksUntilReset(t *testing.T) {
	clk := newClock(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	l := mustLedger(t, []budget.Cap{{Name: "hourly", Per: budget.PerAgent, Limit: usd("1"), Window: budget.Hour()}}, budget.Options{Clock: clk.Now})
	s := budget.Subject{Agent: "bot"}
	r, err := l.Reserve(bg, budget.Request{Subject: s, Estimate: []budget.Amount{usd("0.1")}})
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := r.Commit(bg, []budget.Amount{usd("1.7")}); err != nil {
		t.Fatalf("Commit above the estimate: %v", err)
	}
	if got := r.Overage(); len(got) != 1 || got[0] != usd("1.6") {
		t.Errorf("Overage() = %v, want [1.6 USD]", got)
	}
	clk.Add(59 * time.Minute)
	for _, est := range []string{"0", "0.01"} {
		_, err = l.Reserve(bg, budget.Request{Subject: s, Estimate: []budget.Amount{usd(est)}})
		var ex *budget.ExceededError
		if !errors.As(err, &ex) || !ex.Overage || ex.Spent != usd("1.7") || ex.RetryAfter != time.Minute {
			t.Fatalf("Reserve of %s after overage = %v, want a refusal with Overage, 1.7 USD spent, retry in 1m", est, err)
		}
		if !strings.Contains(ex.Error(), "stays shut until its window resets") {
			t.Errorf("overage refusal %q does not say the cap stays shut", ex.Error())
		}
	}
	clk.Add(time.Minute) // 11:00: a new hour
	if _, err := l.Reserve(bg, budget.Request{Subject: s, Estimate: []budget.Amount{usd("0.5")}}); err != nil {
		t.Errorf("Reserve in the next hour: %v", err)
	}
}

func TestLedgerUnknownCostNeedsRoom(t *testing.T) {
	l := mustLedger(t, []budget.Cap{{Name: "c", Limit: usd("1")}}, budget.Options{})
	r, err := l.Reserve(bg, budget.Request{Estimate: []budget.Amount{usd("1")}})
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if _, err := l.Reserve(bg, budget.Request{}); !errors.Is(err, budget.ErrExceeded) {
		t.Errorf("Reserve with no estimate on a full cap = %v, want ErrExceeded", err)
	}
	if err := r.Release(bg); err != nil {
		t.Fatalf("Release: %v", err)
	}
	r2, err := l.Reserve(bg, budget.Request{})
	if err != nil {
		t.Fatalf("Reserve with no estimate after Release: %v", err)
	}
	// The tool then reports what it cost.
	if err := r2.Commit(bg, []budget.Amount{usd("0.3")}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	us, _ := l.Usage(bg, budget.Subject{})
	if us[0].Spent != usd("0.3") {
		t.Errorf("Spent = %v, want 0.3 USD", us[0].Spent)
	}
}

func TestLedgerExpiry(t *testing.T) {
	clk := newClock(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	l := mustLedger(t, []budget.Cap{{Name: "c", Limit: usd("10")}}, budget.Options{Clock: clk.Now, Hold: time.Minute})
	r, err := l.Reserve(bg, budget.Request{Estimate: []budget.Amount{usd("3")}})
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	clk.Add(time.Minute)
	us, _ := l.Usage(bg, budget.Subject{})
	if us[0].Spent != usd("3") || us[0].Reserved != usd("0") || us[0].Calls != 1 {
		t.Errorf("usage after the deadline = %+v, want the estimate charged as one call", us[0])
	}
	if err := r.Commit(bg, []budget.Amount{usd("1")}); !errors.Is(err, budget.ErrExpired) {
		t.Errorf("Commit after the deadline = %v, want ErrExpired", err)
	}
	// Settling exactly at the deadline, before anything else expired it.
	r2, _ := l.Reserve(bg, budget.Request{Estimate: []budget.Amount{usd("2")}})
	clk.Add(time.Minute)
	if err := r2.Release(bg); !errors.Is(err, budget.ErrExpired) {
		t.Errorf("Release at the deadline = %v, want ErrExpired", err)
	}
	us, _ = l.Usage(bg, budget.Subject{})
	if us[0].Spent != usd("5") {
		t.Errorf("Spent = %v, want 5 USD (both estimates)", us[0].Spent)
	}
}

func TestLedgerToolCaps(t *testing.T) {
	l := mustLedger(t, []budget.Cap{
		{Name: "llm-tokens", Per: budget.PerAgent, Tools: []string{"llm.*"}, Limit: budget.Amount{Micros: 1000e6, Unit: "tokens"}},
		{Name: "spend", Limit: usd("5")},
	}, budget.Options{})
	r, err := l.Reserve(bg, budget.Request{Subject: budget.Subject{Agent: "a", Tool: "llm.chat"}, Estimate: []budget.Amount{{Micros: 600e6, Unit: "tokens"}, usd("1")}})
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if got := r.Caps(); len(got) != 2 || got[0] != "llm-tokens" || got[1] != "spend" {
		t.Errorf("Caps() = %v, want both caps", got)
	}
	_, err = l.Reserve(bg, budget.Request{Subject: budget.Subject{Agent: "a", Tool: "llm.embed"}, Estimate: []budget.Amount{{Micros: 600e6, Unit: "tokens"}}})
	var ex *budget.ExceededError
	if !errors.As(err, &ex) || ex.Cap != "llm-tokens" {
		t.Errorf("second token reservation = %v, want refused by llm-tokens", err)
	}
	r3, err := l.Reserve(bg, budget.Request{Subject: budget.Subject{Agent: "a", Tool: "search"}, Estimate: []budget.Amount{usd("1")}})
	if err != nil {
		t.Fatalf("Reserve of a tool without a token cap: %v", err)
	}
	if got := r3.Caps(); len(got) != 1 || got[0] != "spend" {
		t.Errorf("Caps() = %v, want [spend]", got)
	}
}

func TestLedgerBadInput(t *testing.T) {
	_, err := budget.NewLedger([]budget.Cap{
		{Name: "", Limit: usd("1")},
		{Name: "a", Limit: usd("1")},
		{Name: "a", Limit: usd("1")},
		{Name: "b", Limit: budget.Amount{Micros: -1, Unit: "USD"}},
		{Name: "c", Limit: budget.Amount{Micros: 1}},
		{Name: "d", Limit: usd("1"), Tools: []string{""}},
		{Name: "e", Limit: usd("1"), Window: budget.Rolling(time.Millisecond)},
	}, budget.Options{})
	if err == nil {
		t.Fatal("NewLedger accepted bad caps")
	}
	for _, want := range []string{`cap 0 "": missing name`, `cap 2 "a": duplicate name`, `cap 3 "b": limit`, `cap 4 "c": limit`, `cap 5 "d": empty tool pattern`, `cap 6 "e": budget: window`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NewLedger error does not say %q:\n%v", want, err)
		}
	}
	l := mustLedger(t, []budget.Cap{{Name: "a", Limit: usd("1")}}, budget.Options{})
	for _, est := range [][]budget.Amount{{{Micros: -1, Unit: "USD"}}, {usd("1"), usd("1")}, {{Micros: 1}}} {
		if _, err := l.Reserve(bg, budget.Request{Estimate: est}); err == nil || errors.Is(err, budget.ErrExceeded) {
			t.Errorf("Reserve(%v) = %v, want an estimate error", est, err)
		}
	}
	r, _ := l.Reserve(bg, budget.Request{Estimate: []budget.Amount{usd("0.5")}})
	if err := r.Commit(bg, []budget.Amount{{Micros: -5, Unit: "USD"}}); err == nil {
		t.Errorf("Commit of a negative amount succeeded")
	}
	if err := r.Commit(bg, []budget.Amount{usd("0.5")}); err != nil {
		t.Errorf("Commit after a rejected Commit: %v", err)
	}
}

// failingStore is a Store whose every method fails or hangs.
type failingStore struct{ hang bool }

func (f failingStore) wait(ctx context.Context) error {
	if f.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return errors.New("connection refused")
}

func (f failingStore) Reserve(ctx context.Context, h *budget.Hold) error { return f.wait(ctx) }
func (f failingStore) Settle(ctx context.Context, id string, actual []int64, at time.Time) error {
	return f.wait(ctx)
}
func (f failingStore) Usage(ctx context.Context, at time.Time, q []budget.Query) ([]budget.Tally, error) {
	return nil, f.wait(ctx)
}

func TestLedgerFailsClosed(t *testing.T) {
	for _, hang := range []bool{false, true} {
		l := mustLedger(t, []budget.Cap{{Name: "c", Limit: usd("10")}}, budget.Options{Store: failingStore{hang: hang}})
		ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
		r, err := l.Reserve(ctx, budget.Request{Estimate: []budget.Amount{usd("1")}})
		cancel()
		if err == nil || r != nil {
			t.Errorf("hang=%v: Reserve on a failing store = %v, %v, want an error and no reservation", hang, r, err)
		}
		if hang && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("hang=%v: error %v does not say the deadline passed", hang, err)
		}
		if !hang {
			if _, err := l.Usage(bg, budget.Subject{}); err == nil {
				t.Errorf("Usage on a failing store succeeded")
			}
		}
	}
}

func TestWindows(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	at := func(loc *time.Location, s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		w               string
		t, start, reset time.Time
		resets          bool
	}{
		{"day", at(time.UTC, "2026-06-01 13:14:15"), at(time.UTC, "2026-06-01 00:00:00"), at(time.UTC, "2026-06-02 00:00:00"), true},
		{"hour", at(time.UTC, "2026-06-01 13:14:15"), at(time.UTC, "2026-06-01 13:00:00"), at(time.UTC, "2026-06-01 14:00:00"), true},
		{"1h30m0s", at(time.UTC, "2026-06-01 13:14:15"), at(time.UTC, "2026-06-01 11:44:15"), at(time.UTC, "2026-06-01 14:44:15"), true},
		{"total", at(time.UTC, "2026-06-01 13:14:15"), time.Time{}, time.Time{}, false},
		// 8 March 2026: clocks in New York go from 02:00 EST to 03:00 EDT; the day lasts 23 hours.
		{"day:America/New_York", at(ny, "2026-03-08 23:30:00"), at(ny, "2026-03-08 00:00:00"), at(ny, "2026-03-09 00:00:00"), true},
		// 1 November 2026: back from 02:00 EDT to 01:00 EST; the day lasts 25 hours.
		{"day:America/New_York", at(ny, "2026-11-01 01:30:00"), at(ny, "2026-11-01 00:00:00"), at(ny, "2026-11-02 00:00:00"), true},
	}
	for _, tt := range tests {
		w, err := budget.ParseWindow(tt.w)
		if err != nil {
			t.Fatalf("ParseWindow(%q): %v", tt.w, err)
		}
		if w.String() != tt.w {
			t.Errorf("ParseWindow(%q).String() = %q", tt.w, w.String())
		}
		if got := w.Start(tt.t); !got.Equal(tt.start) {
			t.Errorf("%s.Start(%v) = %v, want %v", tt.w, tt.t, got, tt.start)
		}
		if got, ok := w.Reset(tt.t); !got.Equal(tt.reset) || ok != tt.resets {
			t.Errorf("%s.Reset(%v) = %v, %v, want %v, %v", tt.w, tt.t, got, ok, tt.reset, tt.resets)
		}
	}
	if d := at(ny, "2026-03-09 00:00:00").Sub(at(ny, "2026-03-08 00:00:00")); d != 23*time.Hour {
		t.Errorf("the spring-forward day lasts %v, want 23h", d)
	}
	for _, bad := range []string{"week", "day:", "day:Mars/Olympus", "500ms", "-1h", "0s"} {
		if _, err := budget.ParseWindow(bad); err == nil || !strings.HasPrefix(err.Error(), "budget: window") {
			t.Errorf("ParseWindow(%q) error = %v, want a budget: window error", bad, err)
		}
	}
}

// TestLedgerDayAcrossDST runs a cap of a calendar day in New York across
// the spring-forward night with a fake clock.
func TestLedgerDayAcrossDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	clk := newClock(time.Date(2026, 3, 7, 23, 0, 0, 0, ny)) // Saturday 23:00 EST = 04:00 UTC
	l := mustLedger(t, []budget.Cap{{Name: "daily", Limit: usd("1"), Window: budget.Day(ny)}}, budget.Options{Clock: clk.Now})
	spend := func(s string) error {
		r, err := l.Reserve(bg, budget.Request{Estimate: []budget.Amount{usd(s)}})
		if err != nil {
			return err
		}
		return r.Commit(bg, []budget.Amount{usd(s)})
	}
	if err := spend("1"); err != nil {
		t.Fatalf("spend on Saturday: %v", err)
	}
	err = spend("0.1")
	var ex *budget.ExceededError
	if !errors.As(err, &ex) || ex.RetryAfter != time.Hour {
		t.Fatalf("second spend on Saturday = %v, want a refusal with retry in 1h", err)
	}
	clk.Add(59*time.Minute + 59*time.Second) // 23:59:59 EST, still Saturday
	if err := spend("0.1"); !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("spend at 23:59:59 Saturday = %v, want refused", err)
	}
	clk.Add(time.Second) // midnight: Sunday, the short day
	if err := spend("1"); err != nil {
		t.Fatalf("spend at Sunday midnight: %v", err)
	}
	// Sunday 23:30 EDT is 22.5 hours after midnight, in the same day.
	clk.Set(time.Date(2026, 3, 8, 23, 30, 0, 0, ny))
	err = spend("0.1")
	if !errors.As(err, &ex) || ex.RetryAfter != 30*time.Minute {
		t.Fatalf("spend at Sunday 23:30 = %v, want a refusal with retry in 30m", err)
	}
	clk.Add(30 * time.Minute)
	if err := spend("1"); err != nil {
		t.Fatalf("spend on Monday: %v", err)
	}
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"", "total", "day", "hour", "day:Europe/Paris", "day:", "24h", "1s", "500ms", "-1h", "week"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := budget.ParseWindow(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "budget: window") {
				t.Fatalf("ParseWindow(%q) error %q lacks the budget: window prefix", s, err)
			}
			return
		}
		w2, err := budget.ParseWindow(w.String())
		if err != nil || w2.String() != w.String() {
			t.Fatalf("ParseWindow(%q).String() = %q, which parses to %v, %v", s, w.String(), w2, err)
		}
		now := time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC)
		if start := w.Start(now); start.After(now) {
			t.Fatalf("%s.Start(%v) = %v, after now", w, now, start)
		}
		if reset, ok := w.Reset(now); ok && !reset.After(now) {
			t.Fatalf("%s.Reset(%v) = %v, not after now", w, now, reset)
		}
	})
}

func TestLedgerClockBackwards(t *testing.T) {
	clk := newClock(time.Date(2026, 6, 2, 0, 30, 0, 0, time.UTC))
	l := mustLedger(t, []budget.Cap{{Name: "daily", Limit: usd("1"), Window: budget.Day(nil)}}, budget.Options{Clock: clk.Now})
	r, err := l.Reserve(bg, budget.Request{Estimate: []budget.Amount{usd("1")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(bg, []budget.Amount{usd("1")}); err != nil {
		t.Fatal(err)
	}
	// Back to yesterday, whose window was empty: still refused.
	clk.Add(-time.Hour)
	if _, err := l.Reserve(bg, budget.Request{Estimate: []budget.Amount{usd("0.5")}}); !errors.Is(err, budget.ErrExceeded) {
		t.Errorf("Reserve after the clock went back a day = %v, want refused", err)
	}
}

// TestLedgerCommitEstimate checks a Commit of the reservation's own
// estimate slice (what a call that reports no cost is charged): it is
// charged in every cap, counted as one call, never twice, with no
// overage; and calls settled in the same second and in later seconds add
// up, in and out of a rolling window.
func TestLedgerCommitEstimate(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	l := mustLedger(t, []budget.Cap{
		{Name: "day", Limit: usd("100"), Window: budget.Day(nil)},
		{Name: "tenant-10s", Per: budget.PerTenant, Limit: usd("100"), Window: budget.Rolling(10 * time.Second)},
	}, budget.Options{})
	s := budget.Subject{Tenant: "acme", Tool: "llm"}
	est := []budget.Amount{usd("1.5")}
	var r budget.Reservation
	for i, at := range []time.Duration{0, 0, 500 * time.Millisecond, 2 * time.Second, 2 * time.Second} {
		if err := l.ReserveInto(bg, t0.Add(at), &r, budget.Request{Subject: s, Estimate: est}); err != nil {
			t.Fatalf("ReserveInto %d: %v", i, err)
		}
		if err := r.CommitAt(bg, t0.Add(at), est); err != nil {
			t.Fatalf("CommitAt %d of the estimate: %v", i, err)
		}
		if err := r.CommitAt(bg, t0.Add(at), est); !errors.Is(err, budget.ErrSettled) {
			t.Fatalf("second CommitAt %d = %v, want ErrSettled", i, err)
		}
		if got := r.Overage(); len(got) != 0 {
			t.Errorf("Overage() after committing the estimate = %v, want none", got)
		}
	}
	for _, tc := range []struct {
		at          time.Duration
		day, recent budget.Amount
		calls       int64
	}{
		{3 * time.Second, usd("7.5"), usd("7.5"), 5},
		{11 * time.Second, usd("7.5"), usd("3"), 2}, // the calls of second 0 have left the window
		{13 * time.Second, usd("7.5"), usd("0"), 0},
	} {
		us, err := l.UsageAt(bg, t0.Add(tc.at), s)
		if err != nil {
			t.Fatalf("UsageAt: %v", err)
		}
		if us[0].Spent != tc.day || us[0].Calls != 5 || us[1].Spent != tc.recent || us[1].Calls != tc.calls || us[1].Reserved != usd("0") {
			t.Errorf("usage at +%v = %+v, want day %s in 5 calls, last 10s %s in %d calls", tc.at, us, tc.day, tc.recent, tc.calls)
		}
	}
}

// TestLedgerHoldCountsFromWait checks a reservation's deadline: its Hold
// after the call may start, that is after its Wait when it has one.
func TestLedgerHoldCountsFromWait(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	for _, wait := range []time.Duration{0, time.Hour} {
		l := mustLedger(t, []budget.Cap{{Name: "total", Limit: usd("10")}}, budget.Options{Hold: 10 * time.Minute})
		s := budget.Subject{Tool: "llm"}
		if _, err := l.ReserveAt(bg, t0, budget.Request{Subject: s, Estimate: []budget.Amount{usd("2")}, Wait: wait}); err != nil {
			t.Fatalf("ReserveAt with wait %v: %v", wait, err)
		}
		deadline := t0.Add(wait + 10*time.Minute)
		for _, tc := range []struct {
			at              time.Time
			spent, reserved budget.Amount
		}{
			{deadline.Add(-time.Second), usd("0"), usd("2")},
			{deadline, usd("2"), usd("0")},
		} {
			us, err := l.UsageAt(bg, tc.at, s)
			if err != nil {
				t.Fatalf("UsageAt: %v", err)
			}
			if us[0].Spent != tc.spent || us[0].Reserved != tc.reserved {
				t.Errorf("wait %v: usage at %v = %+v, want %s spent, %s reserved", wait, tc.at.Sub(t0), us[0], tc.spent, tc.reserved)
			}
		}
	}
}

package killswitch

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type breakerRig struct {
	t     *testing.T
	clk   *fakeClock
	sw    *Switch
	b     *Breaker
	trips []Event
}

func newRig(t *testing.T, s Settings) *breakerRig {
	t.Helper()
	r := &breakerRig{t: t, clk: newFakeClock()}
	r.sw = New(Options{Clock: r.clk.Now, OnEvent: func(e Event) {
		if e.Kind == EventTrip {
			r.trips = append(r.trips, e)
		}
	}})
	b, err := NewBreaker(r.sw, s)
	if err != nil {
		t.Fatal(err)
	}
	r.b = b
	return r
}

// feed observes outcomes for agent, one second apart, and returns the
// index of the observation that tripped, or -1.
func (r *breakerRig) feed(agent string, outs ...Outcome) int {
	r.t.Helper()
	tripped := -1
	for i, o := range outs {
		r.clk.Advance(time.Second)
		if r.b.Observe(agent, "tool", o, 0, r.clk.Now()) && tripped < 0 {
			tripped = i
		}
	}
	return tripped
}

func (r *breakerRig) tripped(agent string) bool {
	_, ok := r.sw.Lookup(Scope{Agent: agent})
	return ok
}

const (
	S = Success
	F = Failure
	D = Denied
)

func TestBreakerConsecutiveFailures(t *testing.T) {
	r := newRig(t, Settings{Name: "fails", ConsecutiveFailures: 3})
	if i := r.feed("a", F, F, S, F, F, D, D); i >= 0 {
		t.Fatalf("tripped at %d with no 3 failures in a row", i)
	}
	if i := r.feed("a", F); i != 0 {
		t.Fatal("third failure in a row (denials between) did not trip")
	}
	if len(r.trips) != 1 || r.trips[0].Scope != (Scope{Agent: "a"}) || r.trips[0].Who != "breaker:fails" ||
		r.trips[0].Why != `breaker "fails": 3 consecutive failures (limit 3)` {
		t.Errorf("trips = %+v", r.trips)
	}
	if c := r.b.Counts("a", r.clk.Now()); c != (Counts{}) {
		t.Errorf("counts after a trip = %+v, want reset", c)
	}
	// Already tripped: further failures do not trip again.
	if i := r.feed("a", F, F, F, F); i >= 0 {
		t.Error("a tripped agent tripped again")
	}
}

func TestBreakerErrorRate(t *testing.T) {
	r := newRig(t, Settings{ErrorRate: 0.5, MinCalls: 4, Window: 10 * time.Second})
	if i := r.feed("a", F, F, F); i >= 0 {
		t.Fatal("tripped under MinCalls")
	}
	r.clk.Advance(10 * time.Second) // the failures leave the window
	if i := r.feed("a", S, S, F, S, F); i >= 0 {
		t.Fatalf("tripped at %d; the old failures should have left the window", i)
	}
	if c := r.b.Counts("a", r.clk.Now()); c.Successes != 3 || c.Failures != 2 {
		t.Fatalf("counts = %+v, want 3 successes, 2 failures in the window", c)
	}
	if i := r.feed("a", F); i != 0 { // 3 of 6
		t.Fatal("error rate of 0.5 over 6 calls did not trip")
	}
	if !strings.Contains(r.trips[0].Why, "error rate 3/6 over 10s reached 0.5") {
		t.Errorf("why = %q", r.trips[0].Why)
	}
}

func TestBreakerErrorRateMinCallsDefault(t *testing.T) {
	r := newRig(t, Settings{ErrorRate: 1})
	if i := r.feed("a", S, F); i >= 0 {
		t.Fatal("1 of 2 tripped a rate of 1")
	}
	r.clk.Advance(time.Minute)
	if i := r.feed("a", F); i != 0 {
		t.Fatal("MinCalls zero: a single failure at rate 1 did not trip")
	}
}

func TestBreakerDeniesPerMinute(t *testing.T) {
	r := newRig(t, Settings{DeniesPerMinute: 3})
	if i := r.feed("a", D, D, D, S, S); i >= 0 {
		t.Fatal("tripped at the limit")
	}
	r.clk.Advance(55 * time.Second) // the first denial is 60s old at the next observation
	if i := r.feed("a", D); i >= 0 {
		t.Fatal("a denial a minute old still counted")
	}
	if r.b.Observe("a", "tool", D, 0, r.clk.Now()) != true {
		t.Fatal("4 denials within a minute did not trip")
	}
}

func TestBreakerCallsPerMinute(t *testing.T) {
	r := newRig(t, Settings{CallsPerMinute: 5})
	if i := r.feed("a", S, F, D, S, S); i >= 0 {
		t.Fatal("tripped at the limit")
	}
	if i := r.feed("a", S); i != 0 {
		t.Fatal("the 6th call in a minute did not trip")
	}
	if !strings.Contains(r.trips[0].Why, "6 calls in a minute (limit 5)") {
		t.Errorf("why = %q", r.trips[0].Why)
	}
}

func TestBreakerSpendPerMinute(t *testing.T) {
	r := newRig(t, Settings{SpendPerMinute: 1_000_000, SpendUnit: "USD"})
	at := r.clk.Now()
	if r.b.Observe("a", "llm", S, 600_000, at) || r.b.Observe("a", "llm", S, 400_000, at.Add(time.Second)) {
		t.Fatal("spending exactly the limit tripped")
	}
	if r.b.Observe("a", "llm", S, -5, at.Add(2*time.Second)) {
		t.Fatal("a negative spend tripped")
	}
	if c := r.b.Counts("a", at.Add(2*time.Second)); c.Spend != 1_000_000 {
		t.Fatalf("spend = %d, want 1000000 (negative spend counts as 0)", c.Spend)
	}
	if !r.b.Observe("a", "llm", S, 10_000, at.Add(3*time.Second)) {
		t.Fatal("spending over the limit in a minute did not trip")
	}
	if want := "spent 1.01 USD in a minute (limit 1)"; !strings.Contains(r.trips[0].Why, want) {
		t.Errorf("why = %q, want %q", r.trips[0].Why, want)
	}
}

func TestBreakerAgentsIndependent(t *testing.T) {
	r := newRig(t, Settings{ConsecutiveFailures: 2, Tools: []string{"sql*"}})
	r.b.Observe("a", "sql_read", F, 0, r.clk.Now())
	r.b.Observe("b", "sql_read", F, 0, r.clk.Now())
	r.b.Observe("a", "email", F, 0, r.clk.Now()) // not watched
	if r.tripped("a") {
		t.Fatal("a failure of an unwatched tool counted")
	}
	if !r.b.Observe("a", "sql_write", F, 0, r.clk.Now()) {
		t.Fatal("a not tripped")
	}
	if r.tripped("b") || len(r.sw.Status()) != 1 {
		t.Fatalf("agent a's breaker tripped more than a: %+v", r.sw.Status())
	}
	if c := r.b.Counts("b", r.clk.Now()); c.Consecutive != 1 {
		t.Errorf("b's counts = %+v", c)
	}
	for i := range 2 {
		if r.b.Observe("", "sql", F, 0, r.clk.Now()) {
			t.Errorf("failure %d of a call without an agent tripped", i+1)
		}
	}
	if _, ok := r.sw.Lookup(Everything); ok {
		t.Error("a call without an agent tripped everything")
	}
}

func TestBreakerParallelExact(t *testing.T) {
	const workers, each = 8, 125 // 1000 calls
	for _, limit := range []int{1000, 999} {
		r := newRig(t, Settings{CallsPerMinute: limit})
		var trips atomic.Int64
		var wg sync.WaitGroup
		now := r.clk.Now()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if r.b.Observe("a", "t", S, 0, now) {
						trips.Add(1)
					}
					r.b.Observe("other", "t", Outcome(1+(w+i)%3), 1, now)
				}
			}()
		}
		wg.Wait()
		wantTrips := int64(0)
		if limit < workers*each {
			wantTrips = 1
		}
		if got := trips.Load(); got != wantTrips {
			t.Errorf("limit %d: %d trips from %d parallel calls, want %d", limit, got, workers*each, wantTrips)
		}
		if limit == 1000 {
			if c := r.b.Counts("other", now); c.Calls != workers*each || c.Spend != workers*each || c.Denials != workers*each/3 {
				t.Errorf("other's counts = %+v, want %d calls and spend, %d denials", c, workers*each, workers*each/3)
			}
			if c := r.b.Counts("a", now); c.Calls != 1000 {
				t.Errorf("calls = %d, want exactly 1000", c.Calls)
			}
		}
	}
}

func TestBreakerSettingsErrors(t *testing.T) {
	sw := New(Options{})
	for _, s := range []Settings{
		{ConsecutiveFailures: -1},
		{ErrorRate: 1.5},
		{ErrorRate: -0.1},
		{Window: -time.Second},
		{SpendPerMinute: 5},
		{Tools: []string{"[a"}},
	} {
		if _, err := NewBreaker(sw, s); err == nil || !strings.HasPrefix(err.Error(), "killswitch: breaker") {
			t.Errorf("NewBreaker(%+v) = %v, want a killswitch error", s, err)
		}
	}
	if _, err := NewBreaker(nil, Settings{}); err == nil {
		t.Error("NewBreaker(nil) = nil error")
	}
	b, err := NewBreaker(sw, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if s := b.Settings(); s.Name != "breaker" || s.Window != time.Minute || s.MinCalls != 1 {
		t.Errorf("defaults = %+v", s)
	}
	for range 100 {
		if b.Observe("a", "t", F, 1e12, time.Now()) {
			t.Fatal("zero Settings tripped")
		}
	}
}

func TestMicros(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 1_500_000: "1.5", 1: "0.000001", -2_000_000: "-2", 10_010_000: "10.01"} {
		if got := micros(in); got != want {
			t.Errorf("micros(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestBreakerMatch(t *testing.T) {
	r := newRig(t, Settings{ConsecutiveFailures: 1, Tools: []string{"x"}, Match: func(tool string) bool { return strings.HasPrefix(tool, "db/") }})
	if r.b.Observe("a", "x", F, 0, r.clk.Now()) {
		t.Error("Match did not replace Tools")
	}
	if !r.b.Observe("a", "db/query", F, 0, r.clk.Now()) {
		t.Error("a tool Match accepts was not counted")
	}
}

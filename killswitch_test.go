package agentguard_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

// ksRecorder keeps copies of the events it records.
type ksRecorder struct {
	mu     sync.Mutex
	events []agentguard.Event
	wake   chan struct{} // closed at the next Record; see await
}

func (r *ksRecorder) Record(_ context.Context, e *agentguard.Event) error {
	r.mu.Lock()
	r.events = append(r.events, *e)
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
	r.mu.Unlock()
	return nil
}

// await waits until ok holds for the recorded events, or until d has
// passed, and reports whether it holds. It is for events recorded by
// another goroutine (a trip pushed from a store), never a sleep: it wakes
// on each Record.
func (r *ksRecorder) await(d time.Duration, ok func([]agentguard.Event) bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		if ok(r.events) {
			r.mu.Unlock()
			return true
		}
		if r.wake == nil {
			r.wake = make(chan struct{})
		}
		w := r.wake
		r.mu.Unlock()
		select {
		case <-w:
		case <-deadline.C:
			return ok(r.snapshot())
		}
	}
}

func (r *ksRecorder) snapshot() []agentguard.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]agentguard.Event(nil), r.events...)
}

func ksPolicy(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("killswitch-test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("policy.Parse: %v", err)
	}
	return p
}

const ksAllowAll = "version: 1\ndefault: allow\n"

func ksGuard(t testing.TB, sw *killswitch.Switch, src string, opts ...agentguard.Option) (*agentguard.Guard, *ksRecorder) {
	t.Helper()
	rec := &ksRecorder{}
	opts = append([]agentguard.Option{
		agentguard.WithPolicy(ksPolicy(t, src)),
		agentguard.WithRecorder(rec),
		agentguard.WithKillSwitch(sw),
	}, opts...)
	g, err := agentguard.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g, rec
}

func as(agent string) context.Context {
	return agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: agent, Tenant: "acme"})
}

// haltBound is the bound the kill switch promises through Wrap: every
// caller of a call in flight has ErrHalted within it after Trip returns.
const haltBound = 2 * time.Second

// TestKillSwitchHaltsThousandCallsThroughWrap trips the switch under 1,000
// calls in flight, half of them in a tool that ignores its context.
func TestKillSwitchHaltsThousandCallsThroughWrap(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const n = 1000
	sw := killswitch.New(killswitch.Options{})
	g, rec := ksGuard(t, sw, ksAllowAll)

	var started, finished sync.WaitGroup
	release := make(chan struct{})
	var returnedTools atomic.Int64
	tool := func(ctx context.Context, ignore bool) (string, error) {
		started.Done()
		defer finished.Done()
		if ignore {
			<-release // deaf to its context
		} else {
			<-ctx.Done()
		}
		returnedTools.Add(1)
		return "done", nil // after the trip: must never reach a caller
	}
	slow := agentguard.Wrap(g, "slow", tool, agentguard.Preemptive())

	type result struct {
		out string
		err error
		at  time.Time
	}
	results := make(chan result, n)
	started.Add(n)
	finished.Add(n)
	for i := range n {
		go func() {
			out, err := slow(as("bot"), i%2 == 1)
			results <- result{out, err, time.Now()}
		}()
	}
	allStarted := make(chan struct{})
	go func() { started.Wait(); close(allStarted) }()
	select {
	case <-allStarted:
	case r := <-results:
		t.Fatalf("a call returned before the trip: %q, %v", r.out, r.err)
	case <-time.After(time.Minute):
		t.Fatal("the tools did not all start within a minute")
	}
	if got := sw.InFlight(); got != n {
		t.Fatalf("InFlight() = %d, want %d", got, n)
	}
	if err := sw.Trip(killswitch.Everything, "ops", "runaway agent"); err != nil {
		t.Fatal(err)
	}
	returned := time.Now()

	var worst time.Duration
	deadline := time.After(haltBound)
	for range n {
		select {
		case r := <-results:
			if r.out != "" {
				t.Errorf("a caller got the tool's result %q after the trip", r.out)
			}
			var d *agentguard.DeniedError
			if !errors.Is(r.err, agentguard.ErrHalted) || !errors.Is(r.err, killswitch.ErrHalted) || !errors.As(r.err, &d) || d.Stage != agentguard.StageRun {
				t.Fatalf("caller error = %v, want a run-stage ErrHalted", r.err)
			}
			if lat := r.at.Sub(returned); lat > worst {
				worst = lat
			}
		case <-deadline:
			t.Fatalf("not every caller returned within %v of Trip", haltBound)
		}
	}
	t.Logf("all %d callers had ErrHalted within %v after Trip returned (bound %v)", n, worst.Round(time.Microsecond), haltBound)

	close(release)
	finished.Wait()
	if got := returnedTools.Load(); got != n {
		t.Errorf("%d tools returned, want %d", got, n)
	}
	// The audit trail: n allowed decisions, the halt, and n halted results;
	// no result of a tool was committed.
	counts := map[string]int{}
	for _, e := range rec.snapshot() {
		k := string(e.Kind)
		if e.Kind == agentguard.EventResult {
			k += ":" + string(e.Outcome)
		}
		counts[k]++
		if e.Kind == agentguard.EventHalt && (e.Control == nil || e.Control.Scope != "everything" || e.Control.Why != "runaway agent" || e.Reason != "in-flight calls halted: 1000") {
			t.Errorf("halt event = %+v %+v", e, e.Control)
		}
	}
	want := map[string]int{"decision": n, "halt": 1, "result:halted": n}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("recorded %d %s events, want %d (all: %v)", counts[k], k, v, counts)
		}
	}
	if len(counts) != len(want) {
		t.Errorf("recorded events %v, want only %v", counts, want)
	}
}

func TestKillSwitchCooperativeTool(t *testing.T) {
	sw := killswitch.New(killswitch.Options{})
	g, _ := ksGuard(t, sw, ksAllowAll)
	started := make(chan struct{})
	tool := agentguard.Wrap(g, "coop", func(ctx context.Context, _ struct{}) (string, error) {
		close(started)
		<-ctx.Done()
		return "partial", ctx.Err() // returned, but after the trip: discarded
	}, agentguard.Cooperative())
	errc := make(chan error)
	go func() {
		out, err := tool(as("bot"), struct{}{})
		if out != "" {
			err = errors.Join(err, errors.New("got a result: "+out))
		}
		errc <- err
	}()
	ksAwait(t, started, errc)
	sw.Trip(killswitch.Scope{Tool: "coop"}, "ops", "stop coop")
	if err := <-errc; !errors.Is(err, agentguard.ErrHalted) {
		t.Errorf("cooperative tool's caller got %v, want ErrHalted", err)
	}
}

func TestKillSwitchScopesThroughWrap(t *testing.T) {
	sw := killswitch.New(killswitch.Options{})
	g, _ := ksGuard(t, sw, ksAllowAll)
	ran := map[string]int{}
	var mu sync.Mutex
	mk := func(name string) func(context.Context, map[string]any) (string, error) {
		return agentguard.Wrap(g, name, func(ctx context.Context, _ map[string]any) (string, error) {
			mu.Lock()
			ran[name]++
			mu.Unlock()
			return "ok", nil
		})
	}
	email, sql := mk("email"), mk("sql")

	if err := sw.Trip(killswitch.Scope{Agent: "a"}, "alice", "agent a loops"); err != nil {
		t.Fatal(err)
	}
	_, err := email(as("a"), nil)
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Code != agentguard.CodeHalted || d.Stage != agentguard.StageHalt || d.Rule != "agent=a" || d.Reason != "agent a loops" || d.Tool != "email" || d.CallID == "" {
		t.Fatalf("agent a's call: %#v", err)
	}
	if !errors.Is(err, killswitch.ErrHalted) || !errors.Is(err, agentguard.ErrDenied) {
		t.Errorf("denial %v does not match ErrHalted and ErrDenied", err)
	}
	if _, err := email(as("b"), nil); err != nil {
		t.Errorf("agent b stopped by agent a's trip: %v", err)
	}
	if err := sw.Trip(killswitch.Scope{Tool: "sql"}, "alice", "sql off"); err != nil {
		t.Fatal(err)
	}
	if _, err := sql(as("b"), nil); !errors.Is(err, agentguard.ErrHalted) {
		t.Errorf("sql call with sql tripped: %v", err)
	}
	if _, err := email(as("b"), nil); err != nil {
		t.Errorf("a tool scope stopped another tool: %v", err)
	}
	if ran["email"] != 2 || ran["sql"] != 0 {
		t.Errorf("ran = %v, want email twice, sql never", ran)
	}
	if err := sw.Resume(killswitch.Scope{Agent: "a"}, "alice", "fixed"); err != nil {
		t.Fatal(err)
	}
	if _, err := email(as("a"), nil); err != nil {
		t.Errorf("after resume: %v", err)
	}
}

func TestKillSwitchAuditsTripResumeAndHooks(t *testing.T) {
	sw := killswitch.New(killswitch.Options{})
	sw.OnTrip("revoke-keys", func(ctx context.Context, h *killswitch.Halt) error {
		return errors.New("vault unreachable")
	})
	_, rec := ksGuard(t, sw, ksAllowAll)
	if err := sw.Trip(killswitch.Scope{Agent: "a"}, "alice", "loop"); err == nil {
		t.Error("Trip with a failing hook = nil error")
	}
	if err := sw.Resume(killswitch.Scope{Agent: "a"}, "bob", "fixed"); err != nil {
		t.Fatal(err)
	}
	evs := rec.snapshot()
	if len(evs) != 3 {
		t.Fatalf("recorded %d events, want halt, hook, resume: %+v", len(evs), evs)
	}
	for i, want := range []struct {
		kind     agentguard.EventKind
		who, why string
		err      bool
	}{
		{agentguard.EventHalt, "alice", "loop", false},
		{agentguard.EventHook, "alice", "loop", true},
		{agentguard.EventResume, "bob", "fixed", false},
	} {
		e := evs[i]
		if e.Kind != want.kind || e.Call != nil || e.Control == nil || e.Control.Scope != "agent=a" || e.Control.Who != want.who || e.Control.Why != want.why || (e.Err != nil) != want.err || e.Time.IsZero() {
			t.Errorf("event %d = %+v (control %+v), want %s by %s", i, e, e.Control, want.kind, want.who)
		}
	}
	if evs[1].Rule != "revoke-keys" {
		t.Errorf("hook event Rule = %q, want the hook's name", evs[1].Rule)
	}
}

func TestApprovalAfterTripDoesNotRun(t *testing.T) {
	sw := killswitch.New(killswitch.Options{})
	asked := make(chan struct{})
	answer := make(chan struct{})
	approver := approvalsFunc(func(ctx context.Context, c *agentguard.Call, req agentguard.ApprovalRequest) (agentguard.Approval, error) {
		close(asked)
		<-answer // a human who approves late, ignoring the context
		return agentguard.Approval{Approver: "late-human"}, nil
	})
	g, _ := ksGuard(t, sw, "version: 1\ndefault: approve\n", agentguard.WithApprovals(approver))
	var ran atomic.Bool
	tool := agentguard.Wrap(g, "wire", func(ctx context.Context, _ struct{}) (string, error) {
		ran.Store(true)
		return "sent", nil
	})
	errc := make(chan error)
	go func() {
		_, err := tool(as("bot"), struct{}{})
		errc <- err
	}()
	ksAwait(t, asked, errc)
	sw.Trip(killswitch.Everything, "ops", "stop")
	close(answer)
	if err := <-errc; !errors.Is(err, agentguard.ErrHalted) {
		t.Errorf("call approved after a trip: %v, want ErrHalted", err)
	}
	if ran.Load() {
		t.Error("the tool ran after an approval that came after the trip")
	}
}

type approvalsFunc func(context.Context, *agentguard.Call, agentguard.ApprovalRequest) (agentguard.Approval, error)

func (f approvalsFunc) Await(ctx context.Context, c *agentguard.Call, r agentguard.ApprovalRequest) (agentguard.Approval, error) {
	return f(ctx, c, r)
}

func TestWithBreakerTripsOnlyTheAgent(t *testing.T) {
	sw := killswitch.New(killswitch.Options{})
	g, _ := ksGuard(t, sw, ksAllowAll, agentguard.WithBreaker(killswitch.Settings{Name: "flaky", ConsecutiveFailures: 3}))
	errBoom := errors.New("boom")
	tool := agentguard.Wrap(g, "db", func(ctx context.Context, fail bool) (string, error) {
		if fail {
			return "", errBoom
		}
		return "ok", nil
	})
	for i := range 3 {
		if _, err := tool(as("a"), true); !errors.Is(err, errBoom) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	_, err := tool(as("a"), false)
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Code != agentguard.CodeHalted || d.Rule != "agent=a" {
		t.Fatalf("after 3 failures: %v, want halted", err)
	}
	if _, err := tool(as("b"), false); err != nil {
		t.Errorf("agent b: %v", err)
	}
	h, _ := sw.Lookup(killswitch.Scope{Agent: "a"})
	if h.Who != "breaker:flaky" {
		t.Errorf("trip by %q, want breaker:flaky", h.Who)
	}
}

func TestPolicyBreakers(t *testing.T) {
	sw := killswitch.New(killswitch.Options{})
	src := `version: 1
default: allow
rules:
  - name: no-drops
    match: call.tool == "drop"
    effect: deny
breakers:
  - name: deny-storm
    denies_per_minute: 2
  - name: llm-spend
    tools: ["llm.*"]
    spend_per_minute: "1.50 USD"
`
	g, _ := ksGuard(t, sw, src)
	drop := agentguard.Wrap(g, "drop", func(ctx context.Context, _ struct{}) (string, error) { return "", nil })
	for range 3 {
		if _, err := drop(as("a"), struct{}{}); !errors.Is(err, agentguard.ErrPolicyDenied) {
			t.Fatalf("drop: %v", err)
		}
	}
	if _, err := drop(as("a"), struct{}{}); !errors.Is(err, agentguard.ErrHalted) {
		t.Fatalf("after 3 denials in a minute (limit 2): %v, want halted", err)
	}
	llm := agentguard.Wrap(g, "llm.chat", func(ctx context.Context, _ struct{}) (string, error) {
		return "hi", agentguard.Charge(ctx, agentguard.Cost{Unit: "USD", Micros: 1_000_000})
	})
	if _, err := llm(as("b"), struct{}{}); err != nil {
		t.Fatal(err)
	}
	if _, err := llm(as("b"), struct{}{}); err != nil { // 2 USD: over the limit once recorded
		t.Fatal(err)
	}
	if _, err := llm(as("b"), struct{}{}); !errors.Is(err, agentguard.ErrHalted) {
		t.Fatalf("after 2 USD in a minute (limit 1.50): %v, want halted", err)
	}
	if h, _ := sw.Lookup(killswitch.Scope{Agent: "b"}); h == nil || h.Who != "breaker:llm-spend" {
		t.Errorf("b's trip = %+v", h)
	}
	if _, err := llm(as("c"), struct{}{}); err != nil {
		t.Errorf("agent c: %v", err)
	}
}

func TestBreakerOptionsNeedKillSwitch(t *testing.T) {
	p := ksPolicy(t, ksAllowAll)
	for _, o := range []agentguard.Option{
		agentguard.WithBreaker(killswitch.Settings{ConsecutiveFailures: 1}),
		agentguard.WithKillFile("KILL", time.Second, killswitch.FileOptions{}),
	} {
		if g, err := agentguard.New(agentguard.WithPolicy(p), o); err == nil {
			g.Close()
			t.Error("New without WithKillSwitch = nil error")
		}
	}
	sw := killswitch.New(killswitch.Options{})
	for _, o := range []agentguard.Option{
		agentguard.WithKillSwitch(nil),
		agentguard.WithBreaker(killswitch.Settings{ErrorRate: 2}),
		agentguard.WithKillFile("KILL", 0, killswitch.FileOptions{}),
	} {
		if g, err := agentguard.New(agentguard.WithPolicy(p), agentguard.WithKillSwitch(sw), o); err == nil {
			g.Close()
			t.Error("New with a bad kill-switch option = nil error")
		}
	}
	if g, err := agentguard.New(agentguard.WithPolicy(p), agentguard.WithKillSwitch(sw), agentguard.WithKillSwitch(sw)); err == nil {
		g.Close()
		t.Error("two kill switches accepted")
	}
}

func TestWithKillFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := killswitch.New(killswitch.Options{})
		path := filepath.Join(t.TempDir(), "KILL")
		g, rec := ksGuard(t, sw, ksAllowAll, agentguard.WithKillFile(path, time.Second, killswitch.FileOptions{}))
		started := make(chan struct{})
		tool := agentguard.Wrap(g, "slow", func(ctx context.Context, _ struct{}) (string, error) {
			close(started)
			<-ctx.Done()
			return "", ctx.Err()
		})
		errc := make(chan error)
		go func() {
			_, err := tool(as("bot"), struct{}{})
			errc <- err
		}()
		ksAwait(t, started, errc)
		if err := killswitch.WriteKillFile(path, killswitch.KillFile{Reason: "stop the bot", Scope: killswitch.Scope{Agent: "bot"}, By: "alice"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		err := <-errc
		if !errors.Is(err, agentguard.ErrHalted) {
			t.Fatalf("in-flight call: %v, want ErrHalted", err)
		}
		var h *killswitch.Halt
		if !errors.As(err, &h) || h.Why != "stop the bot" {
			t.Errorf("cause = %v", err)
		}
		g.Close()
		var halts int
		for _, e := range rec.snapshot() {
			if e.Kind == agentguard.EventHalt {
				halts++
			}
		}
		if halts != 1 {
			t.Errorf("recorded %d halts, want 1", halts)
		}
	})
}

func TestWithKillFilePresentAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "KILL")
	if err := os.WriteFile(path, []byte("still stopped\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sw := killswitch.New(killswitch.Options{})
	rec := &ksRecorder{}
	// WithKillFile before WithKillSwitch: the trip of the first check is
	// recorded all the same.
	g, err := agentguard.New(agentguard.WithPolicy(ksPolicy(t, ksAllowAll)), agentguard.WithRecorder(rec),
		agentguard.WithKillFile(path, time.Hour, killswitch.FileOptions{}), agentguard.WithKillSwitch(sw))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tool := agentguard.Wrap(g, "t", func(ctx context.Context, _ struct{}) (string, error) { return "ran", nil })
	if _, err := tool(as("bot"), struct{}{}); !errors.Is(err, agentguard.ErrHalted) {
		t.Errorf("first call with a kill file present at start: %v, want ErrHalted", err)
	}
	if evs := rec.snapshot(); len(evs) == 0 || evs[0].Kind != agentguard.EventHalt || evs[0].Control.Why != "still stopped" {
		t.Errorf("first recorded event = %+v, want the halt", evs)
	}
}

func BenchmarkKillSwitchCost(b *testing.B) {
	p := ksPolicy(b, ksAllowAll)
	ctx := as("bot")
	tool := func(ctx context.Context, n int) (int, error) { return n + 1, nil }
	run := func(b *testing.B, opts []agentguard.Option, topts ...agentguard.ToolOption) {
		g, err := agentguard.New(append([]agentguard.Option{agentguard.WithPolicy(p)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		f := agentguard.Wrap(g, "inc", tool, topts...)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := f(ctx, i); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("no-switch", func(b *testing.B) { run(b, nil) })
	b.Run("switch", func(b *testing.B) {
		run(b, []agentguard.Option{agentguard.WithKillSwitch(killswitch.New(killswitch.Options{}))})
	})
	b.Run("switch-cooperative", func(b *testing.B) {
		run(b, []agentguard.Option{agentguard.WithKillSwitch(killswitch.New(killswitch.Options{}))}, agentguard.Cooperative())
	})
}

// TestCallerCancelIsNotAHalt: a caller that gives up on a call in flight
// gets its context's error, and the audit log says the outcome is unknown,
// not that the kill switch halted it.
func TestCallerCancelIsNotAHalt(t *testing.T) {
	sw := killswitch.New(killswitch.Options{})
	g, rec := ksGuard(t, sw, ksAllowAll)
	release, started := make(chan struct{}), make(chan struct{})
	defer close(release)
	tool := agentguard.Wrap(g, "t", func(ctx context.Context, _ struct{}) (string, error) {
		close(started)
		<-release
		return "late", nil
	}, agentguard.Preemptive())
	ctx, cancel := context.WithCancel(as("bot"))
	errc := make(chan error)
	go func() {
		_, err := tool(ctx, struct{}{})
		errc <- err
	}()
	ksAwait(t, started, errc)
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) || errors.Is(err, agentguard.ErrHalted) {
		t.Errorf("caller cancelled: %v, want context.Canceled and not ErrHalted", err)
	}
	evs := rec.snapshot()
	if last := evs[len(evs)-1]; last.Kind != agentguard.EventResult || last.Outcome != agentguard.OutcomeUnknown {
		t.Errorf("recorded %s %s, want result unknown", last.Kind, last.Outcome)
	}
}

// ksBudget records how reservations are settled.
type ksBudget struct {
	mu      sync.Mutex
	settled []bool // known, per settlement
}

func (b *ksBudget) Reserve(context.Context, *agentguard.Call) (agentguard.Reservation, error) {
	return ksReservation{b}, nil
}

func (b *ksBudget) Usage(context.Context, *agentguard.Call) (policy.Usage, error) {
	return policy.Usage{}, nil
}

type ksReservation struct{ b *ksBudget }

func (r ksReservation) Settle(_ context.Context, _ []agentguard.Cost, known bool) error {
	r.b.mu.Lock()
	r.b.settled = append(r.b.settled, known)
	r.b.mu.Unlock()
	return nil
}

// TestHaltedCallChargedAsUnknown: a call halted in flight settles its
// reservation as an unknown outcome (its estimate is charged in full).
func TestHaltedCallChargedAsUnknown(t *testing.T) {
	sw := killswitch.New(killswitch.Options{})
	budget := &ksBudget{}
	g, _ := ksGuard(t, sw, ksAllowAll, agentguard.WithBudgeter(budget))
	release, started := make(chan struct{}), make(chan struct{})
	tool := agentguard.Wrap(g, "llm", func(ctx context.Context, _ struct{}) (string, error) {
		close(started)
		<-release
		return "tokens spent", nil
	}, agentguard.Estimate(agentguard.Cost{Unit: "USD", Micros: 500_000}), agentguard.Preemptive())
	errc := make(chan error)
	go func() {
		_, err := tool(as("bot"), struct{}{})
		errc <- err
	}()
	ksAwait(t, started, errc)
	sw.Trip(killswitch.Scope{Agent: "bot"}, "ops", "stop")
	if err := <-errc; !errors.Is(err, agentguard.ErrHalted) {
		t.Fatalf("in-flight call: %v", err)
	}
	close(release)
	budget.mu.Lock()
	defer budget.mu.Unlock()
	if len(budget.settled) != 1 || budget.settled[0] {
		t.Errorf("settlements (known?) = %v, want one unknown", budget.settled)
	}
}

// TestTicketHalted: the two-step form sees the trip on Ticket.Halted, and
// Done discards the late result.
func TestTicketHalted(t *testing.T) {
	sw := killswitch.New(killswitch.Options{})
	g, rec := ksGuard(t, sw, ksAllowAll)
	tk, err := g.Check(as("bot"), "adapter_tool", map[string]any{"q": 1})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tk.Halted():
		t.Fatal("Halted closed before any trip")
	default:
	}
	sw.Trip(killswitch.Scope{Tool: "adapter_tool"}, "ops", "stop adapters")
	<-tk.Halted() // closed by the time Trip returned
	if err := tk.Done("late result", nil); !errors.Is(err, agentguard.ErrHalted) {
		t.Errorf("Done after a trip = %v, want ErrHalted", err)
	}
	evs := rec.snapshot()
	if last := evs[len(evs)-1]; last.Kind != agentguard.EventResult || last.Outcome != agentguard.OutcomeHalted {
		t.Errorf("last event %s %s, want result halted", last.Kind, last.Outcome)
	}
}

// TestKillSwitchStickyThroughGuard: with the guard's and the switch's
// clocks advanced a year, a tripped agent stays halted until resumed.
func TestKillSwitchStickyThroughGuard(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sw := killswitch.New(killswitch.Options{Clock: clock})
	g, _ := ksGuard(t, sw, ksAllowAll, agentguard.WithClock(clock))
	tool := agentguard.Wrap(g, "t", func(ctx context.Context, _ struct{}) (string, error) { return "ran", nil }, agentguard.Cooperative())
	sw.Trip(killswitch.Scope{Agent: "bot"}, "ops", "stop")
	for _, d := range []time.Duration{time.Hour, 30 * 24 * time.Hour, 365 * 24 * time.Hour} {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
		if _, err := tool(as("bot"), struct{}{}); !errors.Is(err, agentguard.ErrHalted) {
			t.Fatalf("%v later: %v, want still halted", d, err)
		}
	}
	sw.Resume(killswitch.Scope{Agent: "bot"}, "ops", "ok")
	if out, err := tool(as("bot"), struct{}{}); err != nil || out != "ran" {
		t.Errorf("after Resume: %q, %v", out, err)
	}
}

// ksAwait waits for ready, failing instead of hanging when the call
// returns first (refused before its tool could start).
func ksAwait(t *testing.T, ready <-chan struct{}, errc <-chan error) {
	t.Helper()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("the call returned before its tool started: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the tool did not start within a minute")
	}
}

func TestPolicyBreakersWithoutSwitchAreRefused(t *testing.T) {
	p, err := policy.Parse("breakers.yaml", []byte(`
version: 1
rules:
  - name: all
    match: "true"
    effect: allow
breakers:
  - name: errors
    consecutive_failures: 3
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agentguard.New(agentguard.WithPolicy(p)); err == nil || !strings.Contains(err.Error(), "no kill switch") {
		t.Fatalf("New with breakers and no kill switch: err = %v, want a refusal", err)
	}
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.SetPolicy(p); err == nil {
		t.Fatal("SetPolicy with breakers and no kill switch succeeded")
	}
	if g.Policy().Spec().Breakers != nil {
		t.Error("the refused policy was installed")
	}
	if _, err := agentguard.New(agentguard.WithPolicy(p), agentguard.WithKillSwitch(killswitch.New(killswitch.Options{}))); err != nil {
		t.Errorf("New with breakers and a kill switch: %v", err)
	}
}

// discardRecorder records nothing.
type discardRecorder struct{}

func (discardRecorder) Record(context.Context, *agentguard.Event) error { return nil }

// TestKillSwitchAllocatesNothing: the built-in kill switch adds no
// allocation to an allowed call whose tool does not watch its context.
func TestKillSwitchAllocatesNothing(t *testing.T) {
	without := allowedCallAllocs(t, nil)
	with := allowedCallAllocs(t, nil, agentguard.WithKillSwitch(killswitch.New(killswitch.Options{})))
	if with > without {
		t.Errorf("allowed call: %v allocations with the kill switch, %v without", with, without)
	}
}

// allowedCallAllocs returns the allocations of an allowed call of a tool
// wrapped with topts by a Guard with opts, which allows every call and
// records to nowhere.
func allowedCallAllocs(t *testing.T, topts []agentguard.ToolOption, opts ...agentguard.Option) float64 {
	t.Helper()
	opts = append([]agentguard.Option{agentguard.WithPolicy(ksPolicy(t, ksAllowAll)), agentguard.WithRecorder(discardRecorder{})}, opts...)
	g, err := agentguard.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tool := agentguard.Wrap(g, "t", func(context.Context, struct{}) (string, error) { return "ok", nil }, topts...)
	ctx := as("bot")
	return testing.AllocsPerRun(200, func() {
		if out, err := tool(ctx, struct{}{}); err != nil || out != "ok" {
			t.Fatalf("tool = %q, %v", out, err)
		}
	})
}

// TestKillSwitchToolSeesCause: the tool's context, watched only after the
// call started, reports the trip as Err and Cause, and context.Cause of a
// context derived from it too.
func TestKillSwitchToolSeesCause(t *testing.T) {
	sw := killswitch.New(killswitch.Options{})
	g, _ := ksGuard(t, sw, ksAllowAll)
	started := make(chan struct{})
	type seen struct {
		err, cause, derived error
	}
	got := make(chan seen, 1)
	tool := agentguard.Wrap(g, "watch", func(ctx context.Context, _ struct{}) (string, error) {
		child, cancel := context.WithCancel(ctx)
		defer cancel()
		close(started)
		<-ctx.Done()
		got <- seen{ctx.Err(), context.Cause(ctx), context.Cause(child)}
		return "late", nil
	})
	errc := make(chan error)
	go func() {
		_, err := tool(as("bot"), struct{}{})
		errc <- err
	}()
	ksAwait(t, started, errc)
	if err := sw.Trip(killswitch.Scope{Agent: "bot"}, "ops", "why"); err != nil {
		t.Fatal(err)
	}
	s := <-got
	if !errors.Is(s.err, context.Canceled) || !errors.Is(s.cause, killswitch.ErrHalted) || !errors.Is(s.derived, killswitch.ErrHalted) {
		t.Errorf("tool saw Err %v, Cause %v, derived Cause %v; want Canceled and ErrHalted", s.err, s.cause, s.derived)
	}
	if err := <-errc; !errors.Is(err, agentguard.ErrHalted) {
		t.Errorf("caller got %v, want ErrHalted", err)
	}
}

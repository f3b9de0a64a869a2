package agentguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/policy"
)

const testPolicy = `
version: 1
default: deny
rules:
  - name: reads
    match: call.tool.startsWith("read_")
    effect: allow
  - name: small-refunds
    match: call.tool == "refund" && call.args.amount <= 100.0
    effect: allow
  - name: big-refunds
    match: call.tool == "refund" && call.args.amount > 100.0
    effect: approve
    reason: refunds over 100 need a human
  - name: no-prod-deletes
    match: call.tool == "db.delete" && call.env == "prod"
    effect: deny
    reason: deleting production data is never automatic
  - name: deletes
    match: call.tool == "db.delete"
    effect: allow
`

func mustPolicy(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("policy.Parse: %v", err)
	}
	return p
}

// memRecorder keeps copies of the events it is given.
type memRecorder struct {
	mu     sync.Mutex
	events []agentguard.Event
	calls  []agentguard.Call
	fail   error
}

func (r *memRecorder) Record(_ context.Context, e *agentguard.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, *e)
	if e.Call != nil {
		r.calls = append(r.calls, *e.Call)
	} else {
		r.calls = append(r.calls, agentguard.Call{})
	}
	return nil
}

func (r *memRecorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		s := string(e.Kind) + ":" + e.Decision.String()
		if e.Code != "" {
			s += ":" + string(e.Code)
		}
		if e.Outcome != "" {
			s += ":" + string(e.Outcome)
		}
		out = append(out, s)
	}
	return out
}

type RefundArgs struct {
	Order  string  `json:"order"`
	Amount float64 `json:"amount"`
}

func refund(_ context.Context, a RefundArgs) (string, error) {
	return "refunded " + a.Order, nil
}

func newGuard(t testing.TB, opts ...agentguard.Option) (*agentguard.Guard, *memRecorder) {
	t.Helper()
	rec := &memRecorder{}
	opts = append([]agentguard.Option{agentguard.WithPolicy(mustPolicy(t, testPolicy)), agentguard.WithRecorder(rec)}, opts...)
	g, err := agentguard.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g, rec
}

func TestWrapAllowsAndDenies(t *testing.T) {
	g, rec := newGuard(t, agentguard.WithEnv("prod"), agentguard.WithDefaultPrincipal(agentguard.Principal{Agent: "bot"}))
	ran := 0
	del := agentguard.Wrap(g, "db.delete", func(context.Context, string) (string, error) { ran++; return "deleted", nil })
	ref := agentguard.Wrap(g, "refund", refund)

	out, err := ref(context.Background(), RefundArgs{Order: "A1", Amount: 20})
	if err != nil || out != "refunded A1" {
		t.Fatalf("refund(20) = %q, %v; want allowed", out, err)
	}
	_, err = del(context.Background(), "users")
	var d *agentguard.DeniedError
	if !errors.As(err, &d) {
		t.Fatalf("db.delete in prod: err = %v, want *DeniedError", err)
	}
	if ran != 0 {
		t.Fatal("a denied tool ran")
	}
	if !errors.Is(err, agentguard.ErrDenied) || !errors.Is(err, agentguard.ErrPolicyDenied) || errors.Is(err, agentguard.ErrHalted) {
		t.Errorf("denial matches the wrong sentinels: %v", err)
	}
	if d.Code != agentguard.CodePolicyDenied || d.Stage != agentguard.StagePolicy || d.Rule != "no-prod-deletes" || d.Tool != "db.delete" || d.CallID == "" {
		t.Errorf("denial = %+v", d)
	}
	msg := d.Error()
	for _, want := range []string{`"db.delete"`, "policy_denied", "no-prod-deletes", "deleting production data is never automatic", "Retrying will not help", "human"} {
		if !strings.Contains(msg, want) {
			t.Errorf("denial text %q lacks %q", msg, want)
		}
	}
	j, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	json.Unmarshal(j, &fields)
	if fields["code"] != "policy_denied" || fields["rule"] != "no-prod-deletes" || fields["retryable"] != false || fields["error"] != msg {
		t.Errorf("denial JSON = %s", j)
	}
	got := rec.kinds()
	want := []string{"decision:allow", "result:allow:ok", "decision:deny:policy_denied"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("recorded %v, want %v", got, want)
	}
	if rec.calls[0].Principal.Agent != "bot" || rec.calls[0].Args["amount"] != 20.0 {
		t.Errorf("recorded call = %+v", rec.calls[0])
	}
}

func TestNoPolicyDeniesEverything(t *testing.T) {
	g, err := agentguard.New()
	if err != nil {
		t.Fatal(err)
	}
	read := agentguard.Wrap(g, "read_file", func(context.Context, string) (string, error) { return "data", nil })
	if _, err := read(context.Background(), "x"); !errors.Is(err, agentguard.ErrPolicyDenied) {
		t.Fatalf("read_file without a policy: err = %v, want ErrPolicyDenied", err)
	}
}

func TestBadInputIsDeniedNotPanicking(t *testing.T) {
	g, rec := newGuard(t)
	cases := []struct {
		name string
		call func() error
		want string
	}{
		{"nil function", func() error {
			var fn func(context.Context, string) (string, error)
			_, err := agentguard.Wrap(g, "read_x", fn)(context.Background(), "a")
			return err
		}, "nil function"},
		{"empty tool name", func() error {
			_, err := agentguard.Wrap(g, "", refund)(context.Background(), RefundArgs{})
			return err
		}, "empty tool name"},
		{"bad tool name", func() error {
			_, err := agentguard.Wrap(g, "read x\n", refund)(context.Background(), RefundArgs{})
			return err
		}, "is not a letter"},
		{"nil guard", func() error {
			_, err := agentguard.Wrap(nil, "read_x", refund)(context.Background(), RefundArgs{})
			return err
		}, "nil Guard"},
		{"odd labels", func() error {
			_, err := agentguard.Wrap(g, "read_x", refund, agentguard.Labels("a"))(context.Background(), RefundArgs{})
			return err
		}, "odd number"},
		{"unencodable args", func() error {
			_, err := agentguard.Wrap(g, "read_x", func(context.Context, chan int) (string, error) { return "", nil })(context.Background(), make(chan int))
			return err
		}, "cannot be encoded"},
		{"invalid JSON", func() error {
			_, err := agentguard.WrapJSON(g, "read_x", func(context.Context, string) (string, error) { return "", nil })(context.Background(), `{"a":`)
			return err
		}, "not valid JSON"},
		{"DenyAsValue on a struct result", func() error {
			_, err := agentguard.Wrap(g, "read_x", func(context.Context, string) (RefundArgs, error) { return RefundArgs{}, nil }, agentguard.DenyAsValue())(context.Background(), "")
			return err
		}, "not a string"},
	}
	for _, tc := range cases {
		err := tc.call()
		if !errors.Is(err, agentguard.ErrInvalidCall) || !strings.Contains(causeText(err), tc.want) {
			t.Errorf("%s: err = %v, want ErrInvalidCall naming %q", tc.name, err, tc.want)
		}
	}
	// Every one of them (but the nil Guard's) was recorded as a denial.
	if n := len(rec.kinds()); n != len(cases)-1 {
		t.Errorf("recorded %d denials, want %d", n, len(cases)-1)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	_, err := agentguard.New(agentguard.WithPolicy(nil), agentguard.WithClock(nil), nil, agentguard.WithRecorder(nil))
	if err == nil {
		t.Fatal("New with bad options succeeded")
	}
	for _, want := range []string{"nil policy", "nil clock", "option 2 is nil", "WithRecorder: nil"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New error %q lacks %q", err, want)
		}
	}
	if _, err := agentguard.New(agentguard.WithPolicyFile("/nonexistent/policy.yaml")); err == nil {
		t.Error("New with a missing policy file succeeded")
	}
}

func TestToolErrorPassesThroughUntouched(t *testing.T) {
	g, rec := newGuard(t)
	mine := errors.New("disk on fire")
	read := agentguard.Wrap(g, "read_file", func(context.Context, string) (string, error) { return "partial", mine })
	out, err := read(context.Background(), "x")
	if err != mine || out != "partial" {
		t.Fatalf("read = %q, %v; want the tool's own result and error", out, err)
	}
	if got := rec.kinds(); got[1] != "result:allow:error" {
		t.Errorf("recorded %v", got)
	}
}

func TestToolPanicIsRecordedAndReraised(t *testing.T) {
	g, rec := newGuard(t)
	read := agentguard.Wrap(g, "read_file", func(context.Context, string) (string, error) { panic("boom") })
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want the tool's panic", v)
			}
		}()
		read(context.Background(), "x")
		t.Error("the panic was swallowed")
	}()
	if got := rec.kinds(); len(got) != 2 || got[1] != "result:allow:panic" {
		t.Errorf("recorded %v, want a panic result", got)
	}
}

func TestDecisionRecordedBeforeToolRuns(t *testing.T) {
	g, rec := newGuard(t)
	read := agentguard.Wrap(g, "read_file", func(ctx context.Context, _ string) (string, error) {
		c, ok := agentguard.CallFrom(ctx)
		if !ok {
			return "", errors.New("no call in the tool's context")
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.events) != 1 || rec.events[0].Kind != agentguard.EventDecision || rec.events[0].Call.ID != c.ID {
			return "", fmt.Errorf("at run time the log holds %d events", len(rec.events))
		}
		return "ok", nil
	})
	if _, err := read(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
}

func TestUnrecordableDecisionDenies(t *testing.T) {
	g, rec := newGuard(t)
	rec.fail = errors.New("disk full")
	ran := false
	read := agentguard.Wrap(g, "read_file", func(context.Context, string) (string, error) { ran = true; return "", nil })
	_, err := read(context.Background(), "x")
	if !errors.Is(err, agentguard.ErrAuditUnavailable) || ran {
		t.Fatalf("err = %v, ran = %v; want ErrAuditUnavailable and no run", err, ran)
	}
}

// panicky stages: each must deny, never crash and never run the tool.
type panicHalter struct{}

func (panicHalter) Enter(context.Context, *agentguard.Call) (context.Context, func() bool, error) {
	panic("halter")
}

type panicBudget struct{}

func (panicBudget) Reserve(context.Context, *agentguard.Call) (agentguard.Reservation, error) {
	panic("budget")
}
func (panicBudget) Usage(context.Context, *agentguard.Call) (policy.Usage, error) { panic("usage") }

func TestStagePanicsDeny(t *testing.T) {
	cases := []struct {
		name string
		opt  agentguard.Option
		code agentguard.Code
	}{
		// A panicking stage is a control that failed: unavailable; a
		// Halter's failure counts as a trip (fail closed).
		{"halter", agentguard.WithHalter(panicHalter{}), agentguard.CodeHalted},
		{"limiter", agentguard.WithLimiter(agentguard.LimiterFunc(func(context.Context, *agentguard.Call) error { panic("limiter") })), agentguard.CodeUnavailable},
		{"budget", agentguard.WithBudgeter(panicBudget{}), agentguard.CodeUnavailable},
		{"recorder", agentguard.WithObserver(agentguard.ObserverFunc(func(*agentguard.Event) { panic("observer") })), ""},
	}
	for _, tc := range cases {
		g, _ := newGuard(t, tc.opt)
		ran := false
		read := agentguard.Wrap(g, "read_file", func(context.Context, string) (string, error) { ran = true; return "ok", nil })
		_, err := read(context.Background(), "x")
		if tc.code == "" {
			// A panicking observer is logged and ignored: the call goes on.
			if err != nil || !ran {
				t.Errorf("%s: err = %v, ran = %v", tc.name, err, ran)
			}
			continue
		}
		var d *agentguard.DeniedError
		if !errors.As(err, &d) || d.Code != tc.code || ran {
			t.Errorf("%s: err = %v, ran = %v; want a %s denial", tc.name, err, ran, tc.code)
		}
	}
	// A recorder that panics cannot record the decision: no evidence, no action.
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)),
		agentguard.WithRecorder(agentguard.RecorderFunc(func(context.Context, *agentguard.Event) error { panic("rec") })))
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	read := agentguard.Wrap(g, "read_file", func(context.Context, string) (string, error) { ran = true; return "ok", nil })
	if _, err := read(context.Background(), "x"); !errors.Is(err, agentguard.ErrAuditUnavailable) || ran {
		t.Errorf("panicking recorder: err = %v, ran = %v; want ErrAuditUnavailable", err, ran)
	}
}

func TestApprovalWithoutApproverDenies(t *testing.T) {
	g, _ := newGuard(t)
	ref := agentguard.Wrap(g, "refund", refund)
	_, err := ref(context.Background(), RefundArgs{Order: "B", Amount: 500})
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Code != agentguard.CodeApprovalRequired || d.Rule != "big-refunds" || !errors.Is(err, agentguard.ErrApprovalRequired) {
		t.Fatalf("err = %v, want approval_required by big-refunds", err)
	}
}

func TestWrapJSONAndCheck(t *testing.T) {
	g, rec := newGuard(t)
	ref := agentguard.WrapJSON(g, "refund", func(_ context.Context, raw json.RawMessage) (string, error) { return string(raw), nil })
	if out, err := ref(context.Background(), json.RawMessage(`{"order":"C","amount":5}`)); err != nil || out != `{"order":"C","amount":5}` {
		t.Fatalf("WrapJSON small refund = %q, %v", out, err)
	}
	if _, err := ref(context.Background(), json.RawMessage(`{"order":"C","amount":5000}`)); !errors.Is(err, agentguard.ErrApprovalRequired) {
		t.Fatalf("WrapJSON big refund: err = %v", err)
	}

	tk, err := g.Check(context.Background(), "read_db", map[string]any{"q": "select 1"})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Call().Tool != "read_db" || tk.Call().Args["q"] != "select 1" {
		t.Errorf("ticket call = %+v", tk.Call())
	}
	if err := tk.Done("rows", nil); err != nil {
		t.Fatal(err)
	}
	if err := tk.Done("rows", nil); err == nil {
		t.Error("a second Done succeeded")
	}
	if _, err := g.Check(context.Background(), "write_db", nil); !errors.Is(err, agentguard.ErrPolicyDenied) {
		t.Errorf("Check write_db: %v", err)
	}
	if n := len(rec.kinds()); n != 6 {
		t.Errorf("recorded %d events, want 6: %v", n, rec.kinds())
	}
}

func TestDenyAsValue(t *testing.T) {
	g, _ := newGuard(t)
	w := agentguard.Wrap(g, "write_db", func(context.Context, string) (string, error) { return "written", nil }, agentguard.DenyAsValue())
	out, err := w(context.Background(), "x")
	if err != nil || !strings.Contains(out, "policy_denied") {
		t.Fatalf("DenyAsValue = %q, %v; want the denial as the result", out, err)
	}
}

// agentCtx is a framework's own context type, as ADK and Genkit have.
type agentCtx struct {
	context.Context
	name string
}

func TestWrapFrameworkContext(t *testing.T) {
	g, _ := newGuard(t)
	read := agentguard.Wrap(g, "read_file", func(c agentCtx, p string) (string, error) { return c.name + ":" + p, nil })
	out, err := read(agentCtx{context.Background(), "adk"}, "f")
	if err != nil || out != "adk:f" {
		t.Fatalf("read = %q, %v", out, err)
	}
}

func TestClosedGuardHalts(t *testing.T) {
	g, _ := newGuard(t)
	read := agentguard.Wrap(g, "read_file", func(context.Context, string) (string, error) { return "", nil })
	g.Close()
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := read(context.Background(), "x"); !errors.Is(err, agentguard.ErrHalted) {
		t.Fatalf("after Close: %v", err)
	}
}

// switchHalter is a minimal kill switch: trip cancels every call in flight.
type switchHalter struct {
	mu      sync.Mutex
	tripped bool
	flying  map[*int]context.CancelCauseFunc
}

func (h *switchHalter) Enter(ctx context.Context, c *agentguard.Call) (context.Context, func() bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tripped {
		return nil, nil, errors.New("tripped")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	k := new(int)
	h.flying[k] = cancel
	return ctx, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		_, ok := h.flying[k]
		delete(h.flying, k)
		cancel(nil)
		return ok
	}, nil
}

func (h *switchHalter) trip() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tripped = true
	for k, cancel := range h.flying {
		cancel(errors.New("operator pressed stop"))
		delete(h.flying, k)
	}
}

func TestHaltInFlightReturnsAtOnce(t *testing.T) {
	h := &switchHalter{flying: map[*int]context.CancelCauseFunc{}}
	g, rec := newGuard(t, agentguard.WithHalter(h))
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	stubborn := agentguard.Wrap(g, "read_slow", func(context.Context, string) (string, error) {
		close(started)
		<-release // ignores its context
		return "late", nil
	}, agentguard.Preemptive())
	errc := make(chan error, 1)
	go func() {
		_, err := stubborn(context.Background(), "x")
		errc <- err
	}()
	<-started
	h.trip()
	err := <-errc
	var d *agentguard.DeniedError
	// The halter's cause is its own error: it stays in Err, and the model
	// reads the fixed sentence.
	if !errors.As(err, &d) || d.Code != agentguard.CodeHalted || !strings.Contains(causeText(err), "operator pressed stop") ||
		strings.Contains(d.Error(), "operator pressed stop") {
		t.Fatalf("err = %v, want a halt with the cause in Err only", err)
	}
	if got := rec.kinds(); got[len(got)-1] != "result:allow:halted" {
		t.Errorf("recorded %v", got)
	}
	if _, err := stubborn(context.Background(), "x"); !errors.Is(err, agentguard.ErrHalted) {
		t.Errorf("new call after trip: %v", err)
	}
}

// fakeBudget reserves without limits and remembers settlements.
type fakeBudget struct {
	mu      sync.Mutex
	settled [][]agentguard.Cost
	known   []bool
	err     error
}

func (b *fakeBudget) Reserve(context.Context, *agentguard.Call) (agentguard.Reservation, error) {
	if b.err != nil {
		return nil, b.err
	}
	return fakeRes{b}, nil
}
func (b *fakeBudget) Usage(context.Context, *agentguard.Call) (policy.Usage, error) {
	return policy.Usage{}, nil
}

type fakeRes struct{ b *fakeBudget }

func (r fakeRes) Settle(_ context.Context, actual []agentguard.Cost, known bool) error {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	r.b.settled = append(r.b.settled, actual)
	r.b.known = append(r.b.known, known)
	return nil
}

func TestChargeAndSettle(t *testing.T) {
	b := &fakeBudget{}
	g, _ := newGuard(t, agentguard.WithBudgeter(b))
	llm := agentguard.Wrap(g, "read_llm", func(ctx context.Context, p string) (string, error) {
		if err := agentguard.Charge(ctx, agentguard.Cost{Unit: "tokens", Micros: 42e6}); err != nil {
			return "", err
		}
		if err := agentguard.Charge(ctx, agentguard.Cost{Unit: "tokens", Micros: -1}); err == nil {
			return "", errors.New("a negative charge was accepted")
		}
		return "answer", nil
	}, agentguard.Estimate(agentguard.Cost{Unit: "tokens", Micros: 100e6}))
	if _, err := llm(context.Background(), "q"); err != nil {
		t.Fatal(err)
	}
	fixed := agentguard.Wrap(g, "read_fixed", func(context.Context, string) (string, error) { return "", nil },
		agentguard.Estimate(agentguard.Cost{Unit: "USD", Micros: 10_000}))
	fixed(context.Background(), "")
	denied := agentguard.Wrap(g, "write_x", func(context.Context, string) (string, error) { return "", nil })
	denied(context.Background(), "")

	if err := agentguard.Charge(context.Background(), agentguard.Cost{Unit: "USD", Micros: 1}); err == nil {
		t.Error("Charge outside a call succeeded")
	}
	want := fmt.Sprint([][]agentguard.Cost{{{Unit: "tokens", Micros: 42e6}}, {{Unit: "USD", Micros: 10_000}}})
	if got := fmt.Sprint(b.settled); got != want {
		t.Errorf("settled %v, want %v (a policy denial happens before the budget stage)", got, want)
	}
	b.err = errors.New("store down")
	if _, err := llm(context.Background(), "q"); !errors.Is(err, agentguard.ErrUnavailable) || errors.Is(err, agentguard.ErrBudgetExceeded) {
		t.Errorf("failing budget store: %v", err)
	}
}

func TestConcurrentCallsDuringReload(t *testing.T) {
	g, _ := newGuard(t)
	strict := mustPolicy(t, "version: 1\nrules: []\n")
	loose := mustPolicy(t, testPolicy)
	read := agentguard.Wrap(g, "read_file", func(context.Context, string) (string, error) { return "ok", nil })
	var allowed, denied atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p := strict
			if i%2 == 0 {
				p = loose
			}
			if err := g.SetPolicy(p); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				_, err := read(context.Background(), "x")
				switch {
				case err == nil:
					allowed.Add(1)
				case errors.Is(err, agentguard.ErrPolicyDenied):
					denied.Add(1)
				default:
					t.Errorf("unexpected error %v", err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if allowed.Load()+denied.Load() != 64*200 {
		t.Errorf("allowed %d + denied %d != %d", allowed.Load(), denied.Load(), 64*200)
	}
}

func TestPrincipalFromContext(t *testing.T) {
	g, rec := newGuard(t, agentguard.WithDefaultPrincipal(agentguard.Principal{Agent: "default-bot", Tenant: "acme"}))
	read := agentguard.Wrap(g, "read_file", func(context.Context, string) (string, error) { return "", nil }, agentguard.Labels("team", "support"))
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "support-bot", Requester: "alice"})
	read(ctx, "")
	c := rec.calls[0]
	if c.Principal != (agentguard.Principal{Agent: "support-bot", Requester: "alice", Tenant: "acme"}) || c.Labels["team"] != "support" {
		t.Errorf("call = %+v", c)
	}
	if _, err := time.Parse(time.RFC3339, c.Time.Format(time.RFC3339)); err != nil || len(c.ID) != 36 {
		t.Errorf("call ID %q", c.ID)
	}
}

// listErr is an error whose type is not comparable: the guard must pass it
// through without comparing it (== on it panics).
type listErr struct{ items []string }

func (e listErr) Error() string { return strings.Join(e.items, ",") }

func TestUncomparableToolErrorPassesThrough(t *testing.T) {
	h := &switchHalter{flying: map[*int]context.CancelCauseFunc{}}
	for _, opt := range []agentguard.Option{nil, agentguard.WithHalter(h)} {
		opts := []agentguard.Option{}
		if opt != nil {
			opts = append(opts, opt)
		}
		g, _ := newGuard(t, opts...)
		read := agentguard.Wrap(g, "read_file", func(context.Context, string) (string, error) {
			return "", listErr{[]string{"a", "b"}}
		})
		_, err := read(context.Background(), "x")
		var le listErr
		if !errors.As(err, &le) || err.Error() != "a,b" {
			t.Errorf("err = %v, want the tool's listErr", err)
		}
	}
}

// causeText is what a denial says to the model and, after it, what its
// cause says to the program: where a test looks for detail that must not
// be lost, only moved out of the model's sight.
func causeText(err error) string {
	var d *agentguard.DeniedError
	if errors.As(err, &d) && d.Err != nil {
		return err.Error() + " | " + d.Err.Error()
	}
	return fmt.Sprint(err)
}

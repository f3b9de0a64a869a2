package guardotel_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	guardotel "github.com/hardstop-labs/agentguard/integrations/otel"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

const attackPolicy = `version: 1
default: deny
rules:
  - name: lookups
    match: call.tool == "lookup"
    effect: allow
  - name: big-refunds
    match: call.tool == "refund"
    effect: approve
`

// fakeClock is advanced only by the test and its approver.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type rig struct {
	g      *agentguard.Guard
	sw     *killswitch.Switch
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	clk    *fakeClock
}

// newRig builds a Guard observed by a guardotel.Observer on in-memory
// exporters, with a fake clock and an approver who takes 3s and rejects
// refunds of more than 1000.
func newRig(t *testing.T, opts ...agentguard.Option) *rig {
	t.Helper()
	r := &rig{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader(),
		clk: &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	obs, err := guardotel.New(guardotel.Options{TracerProvider: tp, MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("p.yaml", []byte(attackPolicy))
	if err != nil {
		t.Fatal(err)
	}
	r.sw = killswitch.New(killswitch.Options{})
	approver := approval.Func(func(_ context.Context, req *approval.Request) (approval.Verdict, error) {
		r.clk.Add(3 * time.Second)
		if req.Args["amount"].(float64) > 1000 {
			return req.Reject("carol", "too much"), nil
		}
		return req.Approve("carol", ""), nil
	})
	r.g, err = agentguard.New(append([]agentguard.Option{agentguard.WithPolicy(p), agentguard.WithClock(r.clk.Now),
		agentguard.WithApprover(approver), agentguard.WithKillSwitch(r.sw), agentguard.WithObserver(obs),
		agentguard.WithDefaultPrincipal(agentguard.Principal{Agent: "bot"})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.g.Close() })
	return r
}

// allEnded fails when a span the observer started was never ended: a span
// left open is lost to every exporter and held in memory for good.
func (r *rig) allEnded(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	started, ended := r.spans.Started(), r.spans.Ended()
	if len(started) != len(ended) {
		t.Errorf("%d spans started, %d ended", len(started), len(ended))
	}
	return ended
}

func (r *rig) histogram(t *testing.T, name string) (count uint64, sum float64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, p := range h.DataPoints {
					count, sum = count+p.Count, sum+p.Sum
				}
			}
		}
	}
	return count, sum
}

type refundArgs struct {
	Amount float64 `json:"amount"`
}

// A rejected approval ends the call's span as a denial at the approval
// stage, with the verdict as an event; the wait is the approver's time on
// the guard's clock, for approvals and rejections alike.
func TestApprovalRejected(t *testing.T) {
	r := newRig(t)
	refund := agentguard.Wrap(r.g, "refund", func(context.Context, refundArgs) (string, error) { return "ok", nil })
	if _, err := refund(context.Background(), refundArgs{Amount: 50}); err != nil {
		t.Fatal(err)
	}
	if _, err := refund(context.Background(), refundArgs{Amount: 5000}); !errors.Is(err, agentguard.ErrApprovalDenied) {
		t.Fatalf("refund(5000): %v, want a rejection", err)
	}
	spans := r.allEnded(t)
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	ok, rejected := spans[0], spans[1]
	if a := attrs(ok.Attributes()); a["agentguard.effect"] != "allow" || a["agentguard.approver"] != "carol" || ok.Status().Code != codes.Unset {
		t.Errorf("approved call's span %v, status %v", a, ok.Status())
	}
	if d := ok.EndTime().Sub(ok.StartTime()); d != 3*time.Second {
		t.Errorf("approved call's span lasted %v, want the approver's 3s", d)
	}
	a := attrs(rejected.Attributes())
	if a["agentguard.effect"] != "deny" || a["agentguard.code"] != "approval_rejected" || a["agentguard.stage"] != "approval" ||
		rejected.Status().Code != codes.Error || !strings.Contains(a["agentguard.reason"], "carol") {
		t.Errorf("rejected call's span %v, status %v", a, rejected.Status())
	}
	if ev := rejected.Events(); len(ev) != 1 || attrs(ev[0].Attributes)["agentguard.approved"] != "false" {
		t.Errorf("rejected call's events %v", ev)
	}
	if n, sum := r.histogram(t, "agentguard.approval.wait"); n != 2 || sum != 6 {
		t.Errorf("approval.wait: %d waits summing %vs, want 2 summing 6s", n, sum)
	}
}

// A call the kill switch halts in flight ends its span as halted, though
// the tool never returns; the next call's span is a denial at the kill
// switch.
func TestHaltedInFlight(t *testing.T) {
	r := newRig(t)
	inFlight, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	lookup := agentguard.Wrap(r.g, "lookup", func(_ context.Context, q string) (string, error) {
		if q == "stuck" {
			close(inFlight)
			<-release // ignores its context
		}
		return q, nil
	}, agentguard.Preemptive())
	errc := make(chan error)
	go func() { _, err := lookup(context.Background(), "stuck"); errc <- err }()
	<-inFlight
	r.sw.Trip(killswitch.Scope{Agent: "bot"}, "alice", "stuck in a loop")
	if err := <-errc; !errors.Is(err, agentguard.ErrHalted) {
		t.Fatalf("in flight: %v, want halted", err)
	}
	if _, err := lookup(context.Background(), "again"); !errors.Is(err, agentguard.ErrHalted) {
		t.Fatalf("after the trip: %v", err)
	}
	spans := r.allEnded(t)
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	if a := attrs(spans[0].Attributes()); a["agentguard.outcome"] != "halted" || a["error.type"] != "halted" || spans[0].Status().Code != codes.Error {
		t.Errorf("halted call's span %v, status %v", a, spans[0].Status())
	}
	if a := attrs(spans[1].Attributes()); a["agentguard.code"] != "halted" || a["agentguard.stage"] != "killswitch" {
		t.Errorf("denied call's span %v", a)
	}
}

// The tool's error text may hold secrets: it stays in the (redacted) audit
// log and appears nowhere in the span.
func TestToolErrorTextNotExported(t *testing.T) {
	r := newRig(t)
	lookup := agentguard.Wrap(r.g, "lookup", func(context.Context, string) (string, error) {
		return "", errors.New("connect: password=hunter2 refused")
	})
	if _, err := lookup(context.Background(), "x"); err == nil {
		t.Fatal("the tool's error was lost")
	}
	for _, s := range r.allEnded(t) {
		if strings.Contains(s.Status().Description, "hunter2") {
			t.Errorf("status leaks the tool's error: %q", s.Status().Description)
		}
		for k, v := range attrs(s.Attributes()) {
			if strings.Contains(v, "hunter2") {
				t.Errorf("attribute %s leaks the tool's error: %q", k, v)
			}
		}
		for _, ev := range s.Events() {
			for k, v := range attrs(ev.Attributes) {
				if strings.Contains(v, "hunter2") {
					t.Errorf("event %s attribute %s leaks the tool's error: %q", ev.Name, k, v)
				}
			}
		}
	}
}

// When the audit log fails the call is denied; its span still ends, as a
// denial, and no span is left open.
func TestAuditFailureEndsTheSpan(t *testing.T) {
	r := newRig(t, agentguard.WithRecorder(agentguard.RecorderFunc(func(context.Context, *agentguard.Event) error {
		return errors.New("disk full")
	})))
	lookup := agentguard.Wrap(r.g, "lookup", func(context.Context, string) (string, error) { return "x", nil })
	if _, err := lookup(context.Background(), "x"); !errors.Is(err, agentguard.ErrAuditUnavailable) {
		t.Fatalf("lookup with a failing log: %v", err)
	}
	spans := r.allEnded(t)
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	if a := attrs(spans[0].Attributes()); a["agentguard.effect"] != "deny" || a["agentguard.code"] != "audit_unavailable" || spans[0].Status().Code != codes.Error {
		t.Errorf("span %v, status %v", a, spans[0].Status())
	}
}

// Many calls at once, some denied, some approved: each gets exactly one
// span with its own call ID, and every span ends.
func TestConcurrentCallsEachOneSpan(t *testing.T) {
	r := newRig(t)
	lookup := agentguard.Wrap(r.g, "lookup", func(context.Context, string) (string, error) { return "x", nil })
	refund := agentguard.Wrap(r.g, "refund", func(context.Context, refundArgs) (string, error) { return "ok", nil })
	other := agentguard.Wrap(r.g, "other", func(context.Context, string) (string, error) { return "x", nil })
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(3)
		go func() { defer wg.Done(); lookup(context.Background(), "q") }()
		go func() { defer wg.Done(); refund(context.Background(), refundArgs{Amount: float64(i * 100)}) }()
		go func() { defer wg.Done(); other(context.Background(), "q") }()
	}
	wg.Wait()
	spans := r.allEnded(t)
	ids := map[string]bool{}
	for _, s := range spans {
		id := attrs(s.Attributes())["gen_ai.tool.call.id"]
		if ids[id] {
			t.Errorf("two spans for call %s", id)
		}
		ids[id] = true
	}
	if len(spans) != 3*n {
		t.Errorf("%d spans for %d calls", len(spans), 3*n)
	}
}

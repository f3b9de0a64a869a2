// Package guardotel puts the guard's decisions into OpenTelemetry
// (go.opentelemetry.io/otel): a span per guarded call, under the caller's
// span (the framework's tool span, where there is one), and the metrics
// that tell whether an agent is safe to run. It is an observer of the
// Guard, plugged in with one option:
//
//	obs, err := guardotel.New(guardotel.Options{})  // the global providers
//	g, err := agentguard.New(..., agentguard.WithObserver(obs))
//
// # Spans
//
// A span named "execute_tool <tool>" (kind internal) from the moment the
// call entered the guard to its result, or to its denial, with the GenAI
// semantic-convention attributes gen_ai.operation.name ("execute_tool"),
// gen_ai.tool.name and gen_ai.tool.call.id (the guard's call ID), and the
// guard's: agentguard.effect (allow or deny), agentguard.rule,
// agentguard.code, agentguard.stage, agentguard.reason for a denial,
// agentguard.outcome, agentguard.cost (the actual cost, "1.5 USD") for a
// result, agentguard.approver, agentguard.agent and agentguard.tenant. An
// approval is a span event "agentguard.approval". A denial or a result other
// than ok sets the span's status to Error (error.type is the code or the
// outcome).
//
// # Metrics
//
//   - agentguard.decisions (counter): every decision, by agentguard.effect,
//     agentguard.code and gen_ai.tool.name. The denial rate is the share of
//     effect=deny.
//   - agentguard.approvals (counter), by agentguard.approved: the approval
//     rate. agentguard.approval.wait (histogram, s): how long a call waited
//     for its verdict.
//   - agentguard.tool.calls (counter), by agentguard.outcome and
//     gen_ai.tool.name: the tool error rate. agentguard.tool.duration
//     (histogram, s).
//   - agentguard.spend (counter, in the cost's unit), by agentguard.unit,
//     agentguard.agent and agentguard.tenant: spend per principal.
//   - agentguard.trips (counter), by agentguard.scope: kill-switch trips.
//
// The observer is safe for concurrent use; it never blocks the call.
package guardotel

import (
	"context"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/policy"
)

// Options configures an Observer. The zero value uses the global providers.
type Options struct {
	TracerProvider trace.TracerProvider // nil: otel.GetTracerProvider()
	MeterProvider  metric.MeterProvider // nil: otel.GetMeterProvider()
}

// Observer turns the Guard's events into spans and metrics. Create it with
// New and pass it to agentguard.WithObserver.
type Observer struct {
	tracer trace.Tracer
	spans  sync.Map // call ID → trace.Span, from its first event to its last

	decisions, approvals, calls, trips metric.Int64Counter
	spend                              metric.Float64Counter
	wait, duration                     metric.Float64Histogram
}

var _ agentguard.ContextObserver = (*Observer)(nil)

const scope = "github.com/hardstop-labs/agentguard/integrations/otel"

// New returns an Observer, or an error when an instrument cannot be made.
func New(opts Options) (*Observer, error) {
	tp, mp := opts.TracerProvider, opts.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(scope)
	o := &Observer{tracer: tp.Tracer(scope)}
	var err error
	counter := func(name, desc string) metric.Int64Counter {
		var c metric.Int64Counter
		if err == nil {
			c, err = m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{call}"))
		}
		return c
	}
	o.decisions = counter("agentguard.decisions", "Decisions of the guard, by effect and denial code.")
	o.approvals = counter("agentguard.approvals", "Approval verdicts, by whether the call was approved.")
	o.calls = counter("agentguard.tool.calls", "Guarded calls that ran, by outcome.")
	o.trips = counter("agentguard.trips", "Kill-switch trips, by scope.")
	if err == nil {
		o.spend, err = m.Float64Counter("agentguard.spend", metric.WithDescription("Actual cost of guarded calls, in the cost's unit, by unit and principal."))
	}
	if err == nil {
		o.wait, err = m.Float64Histogram("agentguard.approval.wait", metric.WithDescription("Time a call waited for its approval verdict."), metric.WithUnit("s"))
	}
	if err == nil {
		o.duration, err = m.Float64Histogram("agentguard.tool.duration", metric.WithDescription("Run time of guarded calls."), metric.WithUnit("s"))
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

// Observe is ObserveContext without a caller's context: spans have no
// parent.
func (o *Observer) Observe(e *agentguard.Event) { o.ObserveContext(context.Background(), e) }

// ObserveContext records e: its span and its metrics.
func (o *Observer) ObserveContext(ctx context.Context, e *agentguard.Event) {
	if e.Kind == agentguard.EventHalt {
		scope := ""
		if e.Control != nil {
			scope = e.Control.Scope
		}
		o.trips.Add(ctx, 1, metric.WithAttributes(attribute.String("agentguard.scope", scope)))
		return
	}
	c := e.Call
	if c == nil {
		return
	}
	tool := attribute.String("gen_ai.tool.name", c.Tool)
	switch e.Kind {
	case agentguard.EventApproval:
		approved := e.Decision == policy.Allow
		o.approvals.Add(ctx, 1, metric.WithAttributes(attribute.Bool("agentguard.approved", approved), tool))
		o.wait.Record(ctx, e.Time.Sub(c.Time).Seconds(), metric.WithAttributes(tool))
		o.span(ctx, c).AddEvent("agentguard.approval", trace.WithTimestamp(e.Time), trace.WithAttributes(
			attribute.Bool("agentguard.approved", approved), attribute.String("agentguard.approver", e.Approver)))
	case agentguard.EventDecision:
		effect := "allow"
		if e.Decision != policy.Allow {
			effect = "deny"
		}
		o.decisions.Add(ctx, 1, metric.WithAttributes(attribute.String("agentguard.effect", effect), attribute.String("agentguard.code", string(e.Code)), tool))
		sp := o.span(ctx, c)
		sp.SetAttributes(attribute.String("agentguard.effect", effect), attribute.String("agentguard.rule", e.Rule))
		if e.Approver != "" {
			sp.SetAttributes(attribute.String("agentguard.approver", e.Approver))
		}
		if effect == "deny" {
			sp.SetAttributes(attribute.String("agentguard.code", string(e.Code)), attribute.String("agentguard.stage", string(e.Stage)),
				attribute.String("agentguard.reason", e.Reason), attribute.String("error.type", string(e.Code)))
			sp.SetStatus(codes.Error, string(e.Code))
			o.end(c, e.Time)
		}
	case agentguard.EventResult:
		o.calls.Add(ctx, 1, metric.WithAttributes(attribute.String("agentguard.outcome", string(e.Outcome)), tool))
		o.duration.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(tool))
		costs := make([]string, 0, len(e.Actual))
		for _, a := range e.Actual {
			v := float64(a.Micros) / 1e6
			o.spend.Add(ctx, v, metric.WithAttributes(attribute.String("agentguard.unit", a.Unit),
				attribute.String("agentguard.agent", c.Principal.Agent), attribute.String("agentguard.tenant", c.Principal.Tenant)))
			costs = append(costs, strconv.FormatFloat(v, 'f', -1, 64)+" "+a.Unit)
		}
		sp := o.span(ctx, c)
		sp.SetAttributes(attribute.String("agentguard.outcome", string(e.Outcome)), attribute.StringSlice("agentguard.cost", costs))
		if e.Outcome != agentguard.OutcomeOK {
			sp.SetAttributes(attribute.String("error.type", string(e.Outcome)))
			sp.SetStatus(codes.Error, string(e.Outcome))
		}
		o.end(c, e.Time)
	}
}

// span returns the call's span, started at its first event.
func (o *Observer) span(ctx context.Context, c *agentguard.Call) trace.Span {
	if v, ok := o.spans.Load(c.ID); ok {
		return v.(trace.Span)
	}
	_, sp := o.tracer.Start(ctx, "execute_tool "+c.Tool, trace.WithSpanKind(trace.SpanKindInternal), trace.WithTimestamp(c.Time),
		trace.WithAttributes(
			attribute.String("gen_ai.operation.name", "execute_tool"),
			attribute.String("gen_ai.tool.name", c.Tool),
			attribute.String("gen_ai.tool.call.id", c.ID),
			attribute.String("agentguard.agent", c.Principal.Agent),
			attribute.String("agentguard.tenant", c.Principal.Tenant),
		))
	if v, loaded := o.spans.LoadOrStore(c.ID, sp); loaded {
		return v.(trace.Span) // another event of the call got there first
	}
	return sp
}

func (o *Observer) end(c *agentguard.Call, at time.Time) {
	if v, ok := o.spans.LoadAndDelete(c.ID); ok {
		v.(trace.Span).End(trace.WithTimestamp(at))
	}
}

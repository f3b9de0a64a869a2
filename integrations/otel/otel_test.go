package guardotel_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/integrations/adaptertest"
	guardotel "github.com/hardstop-labs/agentguard/integrations/otel"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

func attrs(kv []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, a := range kv {
		m[string(a.Key)] = a.Value.String()
	}
	return m
}

func TestSpansAndMetrics(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	obs, err := guardotel.New(guardotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("p.yaml", []byte(adaptertest.Policy))
	if err != nil {
		t.Fatal(err)
	}
	sw := killswitch.New(killswitch.Options{})
	g, err := agentguard.New(agentguard.WithPolicy(p), agentguard.WithObserver(obs), agentguard.WithKillSwitch(sw),
		agentguard.WithApprover(approval.Func(func(_ context.Context, r *approval.Request) (approval.Verdict, error) {
			return r.Approve("alice", ""), nil
		})),
		agentguard.WithDefaultPrincipal(agentguard.Principal{Agent: "bot", Tenant: "acme"}))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	read := agentguard.Wrap(g, "read_doc", func(ctx context.Context, _ string) (string, error) {
		return "ok", agentguard.Charge(ctx, agentguard.Cost{Unit: "USD", Micros: 1_500_000})
	})
	fail := agentguard.Wrap(g, "read_fail", func(context.Context, string) (string, error) { return "", errors.New("boom") })
	refund := agentguard.Wrap(g, "refund", func(context.Context, string) (string, error) { return "refunded", nil })
	del := agentguard.Wrap(g, "delete_all", func(context.Context, string) (string, error) { return "", nil })

	// The caller's span (a framework's tool span) is the parent.
	ctx, parent := tp.Tracer("framework").Start(context.Background(), "framework.tool")
	if _, err := read(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	parent.End()
	fail(context.Background(), "x")
	if _, err := refund(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := del(context.Background(), "x"); !errors.Is(err, agentguard.ErrPolicyDenied) {
		t.Fatal(err)
	}
	sw.Trip(killswitch.Scope{Agent: "bot"}, "ops", "test")

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		byName[s.Name()] = s
	}
	rd := byName["execute_tool read_doc"]
	if rd == nil {
		t.Fatalf("no span for read_doc among %v", byName)
	}
	a := attrs(rd.Attributes())
	if a["gen_ai.tool.name"] != "read_doc" || a["gen_ai.operation.name"] != "execute_tool" || a["gen_ai.tool.call.id"] == "" ||
		a["agentguard.effect"] != "allow" || a["agentguard.rule"] != "reads" || a["agentguard.outcome"] != "ok" ||
		a["agentguard.cost"] != `["1.5 USD"]` || a["agentguard.agent"] != "bot" {
		t.Errorf("read_doc span attributes %v", a)
	}
	if rd.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Error("the call's span is not under the caller's")
	}
	if rd.Status().Code != codes.Unset {
		t.Errorf("read_doc status %v", rd.Status())
	}
	if s := byName["execute_tool read_fail"]; s == nil || s.Status().Code != codes.Error || attrs(s.Attributes())["error.type"] != "error" {
		t.Errorf("read_fail span %v", s)
	}
	rf := byName["execute_tool refund"]
	if rf == nil || len(rf.Events()) != 1 || rf.Events()[0].Name != "agentguard.approval" || attrs(rf.Events()[0].Attributes)["agentguard.approver"] != "alice" {
		t.Errorf("refund span events %v", rf.Events())
	}
	dl := byName["execute_tool delete_all"]
	if dl == nil {
		t.Fatal("no span for the denied call")
	}
	if a := attrs(dl.Attributes()); a["agentguard.effect"] != "deny" || a["agentguard.code"] != "policy_denied" || a["agentguard.stage"] != "policy" || dl.Status().Code != codes.Error {
		t.Errorf("denied span %v, status %v", a, dl.Status())
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					got[m.Name] = append(got[m.Name], fmt.Sprintf("%s=%d", kvs(p.Attributes), p.Value))
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					got[m.Name] = append(got[m.Name], fmt.Sprintf("%s=%g", kvs(p.Attributes), p.Value))
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					got[m.Name] = append(got[m.Name], fmt.Sprintf("%s=%d", kvs(p.Attributes), p.Count))
				}
			}
			sort.Strings(got[m.Name])
		}
	}
	want := map[string]string{
		"agentguard.decisions":     "[agentguard.code=,agentguard.effect=allow,gen_ai.tool.name=read_doc=1 agentguard.code=,agentguard.effect=allow,gen_ai.tool.name=read_fail=1 agentguard.code=,agentguard.effect=allow,gen_ai.tool.name=refund=1 agentguard.code=policy_denied,agentguard.effect=deny,gen_ai.tool.name=delete_all=1]",
		"agentguard.approvals":     "[agentguard.approved=true,gen_ai.tool.name=refund=1]",
		"agentguard.approval.wait": "[gen_ai.tool.name=refund=1]",
		"agentguard.tool.calls":    "[agentguard.outcome=error,gen_ai.tool.name=read_fail=1 agentguard.outcome=ok,gen_ai.tool.name=read_doc=1 agentguard.outcome=ok,gen_ai.tool.name=refund=1]",
		"agentguard.spend":         "[agentguard.agent=bot,agentguard.tenant=acme,agentguard.unit=USD=1.5]",
		"agentguard.trips":         "[agentguard.scope=agent=bot=1]",
	}
	for name, w := range want {
		if g := fmt.Sprint(got[name]); g != w {
			t.Errorf("%s = %s\nwant %s", name, g, w)
		}
	}
}

func kvs(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	return strings.Join(parts, ",")
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/open-policy-agent/opa/v1/rego"
	"golang.org/x/time/rate"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

// EmailArgs are the arguments of the benchmarked tool.
type EmailArgs struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// sendEmail is the benchmarked tool: it does nothing, so that what is
// measured is the guard.
func sendEmail(_ context.Context, a EmailArgs) (string, error) {
	if a.To == "" {
		return "", errors.New("no recipient")
	}
	return "sent", nil
}

// The principal and environment of every benchmarked call.
var (
	benchPrincipal = agentguard.Principal{Agent: "support-bot", Requester: "alice", Tenant: "acme", Session: "s1"}
	benchEnv       = "prod"
	emailArgs      = EmailArgs{To: "bob@example.com", Subject: "Your refund", Body: "Hello Bob, your refund of 12.50 USD is on its way."}
	// estimate is each call's estimated and actual cost.
	estimate = agentguard.Cost{Unit: "USD", Micros: 1000}
)

// benchCall is one call as the floor and OPA see it.
type benchCall struct {
	Tool, Agent, Requester, Tenant, Session, Env string
	Args                                         map[string]any
	argOrder                                     []string // the order the floor writes Args in
}

func emailCall() benchCall {
	return benchCall{Tool: "send_email", Agent: benchPrincipal.Agent, Requester: benchPrincipal.Requester,
		Tenant: benchPrincipal.Tenant, Session: benchPrincipal.Session, Env: benchEnv,
		Args:     map[string]any{"to": emailArgs.To, "subject": emailArgs.Subject, "body": emailArgs.Body},
		argOrder: []string{"body", "subject", "to"}}
}

// The rate limit and the budget cap of every pipeline: never reached in a
// benchmark, but checked and kept on every call.
const (
	rateLimit  = 1e9 // calls per second
	rateBurst  = 1 << 30
	capMicros  = int64(1) << 60
	capUnit    = "USD"
	floorLogID = "0193b6c8-7c4e-7000-8000-000000000000"
)

// The rate limit and the budget cap of the guarded pipeline.
var (
	benchLimits = []budget.Limit{{Name: "calls", Per: budget.PerAgent, Rate: rateLimit, Burst: rateBurst}}
	benchCaps   = []budget.Cap{{Name: "daily-spend", Per: budget.PerTenant,
		Limit: budget.Amount{Micros: capMicros, Unit: capUnit}, Window: budget.Day(time.UTC)}}
)

// newGuard builds the guarded pipeline: rules, the rate limit, the budget
// cap, the kill switch and the audit log in dir with sync.
func newGuard(tb testing.TB, rules []benchRule, sync audit.SyncPolicy) *agentguard.Guard {
	tb.Helper()
	pol, err := policy.Compile(policySpec(rules))
	if err != nil {
		tb.Fatal(err)
	}
	g, err := agentguard.New(
		agentguard.WithPolicy(pol),
		agentguard.WithEnv(benchEnv),
		agentguard.WithRateLimits(benchLimits, budget.LimiterOptions{}),
		agentguard.WithBudget(benchCaps, budget.Options{}),
		agentguard.WithKillSwitch(killswitch.New(killswitch.Options{})),
		agentguard.WithAuditFile(filepath.Join(tb.TempDir(), "audit.jsonl"), audit.Options{Sync: sync}),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := g.Close(); err != nil {
			tb.Error(err)
		}
	})
	return g
}

// benchContext is the context of every guarded call: it carries the
// principal.
func benchContext() context.Context {
	return agentguard.WithPrincipal(context.Background(), benchPrincipal)
}

// floorPipe is the floor: the unavoidable work of the guard's stages, by
// hand, in order.
type floorPipe struct {
	rules   *floorRules // the rules as CEL programs (floor-cel, opa's neighbours)
	goRules goRules     // the rules written as Go (floor)
	lim     *rate.Limiter
	led     *floorLedger
	log     *floorLog
	// halted is the least a kill switch needs: one flag, read before the
	// policy and again before the tool runs.
	halted atomic.Bool
}

func newFloorPipe(tb testing.TB, rules []benchRule) *floorPipe {
	tb.Helper()
	fr, err := newFloorRules(rules)
	if err != nil {
		tb.Fatal(err)
	}
	return &floorPipe{rules: fr, goRules: newGoRules()}
}

func (p *floorPipe) openSideEffects(tb testing.TB) {
	tb.Helper()
	p.lim = rate.NewLimiter(rateLimit, rateBurst)
	p.led = &floorLedger{limit: capMicros}
	l, err := openFloorLog(filepath.Join(tb.TempDir(), "floor.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.close() })
	p.log = l
}

var errRefused = errors.New("bench: refused")

// run is one call: decide is the policy step (the floor's CEL rules or
// OPA); the rest is shared.
func (p *floorPipe) run(ctx context.Context, c *benchCall, args EmailArgs, decide func() (string, string, error)) (string, error) {
	start := time.Now()
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	callID := id.String()
	if p.halted.Load() {
		return "", errRefused
	}
	effect, rule, err := decide()
	if err != nil {
		return "", err
	}
	if effect != "allow" {
		return "", errRefused
	}
	if !p.lim.Allow() {
		return "", errRefused
	}
	if err := p.led.reserve(estimate.Micros); err != nil {
		return "", err
	}
	if err := p.log.append(&floorRecord{kind: "decision", call: callID, c: c, decision: effect, rule: rule}, time.Now()); err != nil {
		p.led.commit(estimate.Micros, 0)
		return "", err
	}
	if p.halted.Load() {
		p.led.commit(estimate.Micros, 0)
		return "", errRefused
	}
	out, err := sendEmail(ctx, args)
	p.led.commit(estimate.Micros, estimate.Micros)
	end := time.Now()
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	if lerr := p.log.append(&floorRecord{kind: "result", call: callID, c: c, rule: rule, outcome: outcome, actual: estimate.Micros, duration: end.Sub(start)}, end); lerr != nil {
		return "", lerr
	}
	return out, err
}

// opaQuery is the rules as a prepared Rego query.
type opaQuery struct {
	pq rego.PreparedEvalQuery
}

func newOPA(tb testing.TB, rules []benchRule) *opaQuery {
	tb.Helper()
	pq, err := rego.New(rego.Query("data.agentguard.effect"), rego.Module("bench.rego", regoModule(rules))).
		PrepareForEval(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return &opaQuery{pq: pq}
}

// decide evaluates the query for c.
func (q *opaQuery) decide(ctx context.Context, c *benchCall) (string, error) {
	input := map[string]any{"tool": c.Tool, "agent": c.Agent, "requester": c.Requester,
		"tenant": c.Tenant, "env": c.Env, "args": c.Args}
	rs, err := q.pq.Eval(ctx, rego.EvalInput(input))
	if err != nil {
		return "", err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return "", fmt.Errorf("opa: %d results", len(rs))
	}
	effect, ok := rs[0].Expressions[0].Value.(string)
	if !ok {
		return "", fmt.Errorf("opa: effect is %T", rs[0].Expressions[0].Value)
	}
	return effect, nil
}

// runN runs op b.N times in all, from n goroutines, and reports calls/s.
func runN(b *testing.B, n int, op func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	total := int64(b.N)
	b.ResetTimer()
	for range n {
		wg.Go(func() {
			for next.Add(1) <= total {
				if err := op(); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if e := failed.Load(); e != nil {
		b.Fatal(*e)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

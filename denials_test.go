package agentguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

// The secret an internal error carries: a DSN with its password, the
// one-line repro of issue 11.
const leakedSecret = "hunter2"

var errLeak = errors.New("dial postgres://agent:" + leakedSecret + "@db.internal/prod: connection refused")

// failBudget is a Budgeter whose Reserve and Usage fail with set errors.
type failBudget struct{ reserveErr, usageErr error }

func (b failBudget) Reserve(context.Context, *agentguard.Call) (agentguard.Reservation, error) {
	if b.reserveErr != nil {
		return nil, b.reserveErr
	}
	return noopHold{}, nil
}

func (b failBudget) Usage(context.Context, *agentguard.Call) (policy.Usage, error) {
	return policy.Usage{}, b.usageErr
}

type noopHold struct{}

func (noopHold) Settle(context.Context, []agentguard.Cost, bool) error { return nil }

const usagePolicy = testPolicy + `
  - name: big-spenders
    match: call.tool.startsWith("read_") && usage.spend["USD"] > 20.0
    effect: deny
`

// TestDenialsHideInternalErrors: a control that fails with its own error
// text (a DSN with a password) is refused with the stage's fixed sentence
// and the code for an unavailable control; the raw error stays in Err and
// in the recorded event, never in what the model reads.
func TestDenialsHideInternalErrors(t *testing.T) {
	cases := []struct {
		name  string
		pol   string
		opts  []agentguard.Option
		tool  string
		topts []agentguard.ToolOption
		code  agentguard.Code
		stage agentguard.Stage
		fail  bool // the recorder fails
	}{
		{name: "limiter", opts: []agentguard.Option{agentguard.WithLimiter(agentguard.LimiterFunc(func(context.Context, *agentguard.Call) error { return errLeak }))},
			code: "unavailable", stage: agentguard.StageRate},
		{name: "budget store", opts: []agentguard.Option{agentguard.WithBudgeter(failBudget{reserveErr: errLeak})},
			code: "unavailable", stage: agentguard.StageBudget},
		{name: "usage", pol: usagePolicy, opts: []agentguard.Option{agentguard.WithBudgeter(failBudget{usageErr: errLeak})},
			code: "unavailable", stage: agentguard.StagePolicy},
		{name: "estimate", topts: []agentguard.ToolOption{agentguard.EstimateFunc(func(*agentguard.Call) ([]agentguard.Cost, error) { return nil, errLeak })},
			code: "unavailable", stage: agentguard.StageBudget},
		{name: "approvals stage", tool: "refund", opts: []agentguard.Option{agentguard.WithApprovals(approvalsFunc(func(context.Context, *agentguard.Call, agentguard.ApprovalRequest) (agentguard.Approval, error) {
			return agentguard.Approval{}, errLeak
		}))}, code: "unavailable", stage: agentguard.StageApproval},
		{name: "approver", tool: "refund", opts: []agentguard.Option{agentguard.WithApprover(approval.Func(func(context.Context, *approval.Request) (approval.Verdict, error) {
			return approval.Verdict{}, errLeak
		}))}, code: "unavailable", stage: agentguard.StageApproval},
		{name: "recorder", fail: true, code: agentguard.CodeAuditUnavailable, stage: agentguard.StageAudit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pol := tc.pol
			if pol == "" {
				pol = testPolicy
			}
			rec := &memRecorder{}
			g, err := agentguard.New(append([]agentguard.Option{agentguard.WithPolicy(mustPolicy(t, pol)), agentguard.WithRecorder(rec)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if tc.fail {
				rec.fail = errLeak
			}
			tool := tc.tool
			if tool == "" {
				tool = "read_db"
			}
			ran := false
			fn := agentguard.Wrap(g, tool, func(context.Context, RefundArgs) (string, error) { ran = true; return "", nil }, tc.topts...)
			_, err = fn(context.Background(), RefundArgs{Order: "A", Amount: 500})
			var d *agentguard.DeniedError
			if !errors.As(err, &d) || ran {
				t.Fatalf("err = %v (ran %v), want a denial", err, ran)
			}
			if d.Code != tc.code || d.Stage != tc.stage {
				t.Errorf("code, stage = %s, %s; want %s, %s", d.Code, d.Stage, tc.code, tc.stage)
			}
			j, jerr := json.Marshal(d)
			if jerr != nil {
				t.Fatal(jerr)
			}
			for what, text := range map[string]string{"Reason": d.Reason, "Error()": d.Error(), "MarshalJSON": string(j), "Needs": d.Needs} {
				if strings.Contains(text, leakedSecret) || strings.Contains(text, "postgres://") {
					t.Errorf("%s shows the internal error: %s", what, text)
				}
			}
			if d.Reason == "" {
				t.Error("empty reason: the model must read the stage's sentence")
			}
			if !errors.Is(err, errLeak) {
				t.Errorf("the raw error is lost: errors.Is(err, errLeak) = false; Err = %v", d.Err)
			}
			// Codes that do not mislead: no "raise the cap", no "a later retry
			// may succeed" for a control that is down.
			if strings.Contains(d.Error(), "raise the cap") || strings.Contains(d.Error(), "retry may succeed") {
				t.Errorf("the model is told something false: %s", d.Error())
			}
			if tc.fail {
				return
			}
			// The audit record keeps the raw error for the operator.
			rec.mu.Lock()
			defer rec.mu.Unlock()
			last := rec.events[len(rec.events)-1]
			if last.Code != tc.code || !errors.Is(last.Err, errLeak) || strings.Contains(last.Reason, leakedSecret) {
				t.Errorf("recorded denial: code %s, reason %q, err %v; want code %s with the raw error in Err only", last.Code, last.Reason, last.Err, tc.code)
			}
		})
	}
}

// TestUnavailableSentinels: every unavailable control matches
// ErrUnavailable and not the sentinel of a refusal it is not.
func TestUnavailableSentinels(t *testing.T) {
	g, _ := newGuard(t, agentguard.WithBudgeter(failBudget{reserveErr: errLeak}))
	_, err := agentguard.Wrap(g, "read_db", func(context.Context, string) (string, error) { return "", nil })(context.Background(), "")
	if !errors.Is(err, agentguard.ErrUnavailable) || errors.Is(err, agentguard.ErrBudgetExceeded) || !errors.Is(err, agentguard.ErrDenied) {
		t.Errorf("budget store outage = %v, want ErrUnavailable (and ErrDenied), not ErrBudgetExceeded", err)
	}
	g2, _ := newGuard(t, agentguard.WithApprover(approval.Func(func(context.Context, *approval.Request) (approval.Verdict, error) {
		return approval.Verdict{}, errLeak
	})))
	_, err = agentguard.Wrap(g2, "refund", refund)(context.Background(), RefundArgs{Order: "A", Amount: 500})
	if !errors.Is(err, agentguard.ErrUnavailable) || !errors.Is(err, approval.ErrApprover) || errors.Is(err, agentguard.ErrApprovalDenied) {
		t.Errorf("failing approver = %v, want ErrUnavailable and approval.ErrApprover, not ErrApprovalDenied", err)
	}
}

// TestCallerCancelBeforeRunIsNotAHalt: under a kill switch, the caller's own cancel
// or deadline while a stage waits is recorded as cancelled, not as a
// kill-switch halt that "a human must resume"; a real trip while waiting
// is still a halt.
func TestCallerCancelBeforeRunIsNotAHalt(t *testing.T) {
	for _, how := range []string{"cancel", "deadline", "trip"} {
		t.Run(how, func(t *testing.T) {
			sw := killswitch.New(killswitch.Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if how == "deadline" {
				var c2 context.CancelFunc
				ctx, c2 = context.WithTimeout(ctx, 1) // passes while the limiter waits
				defer c2()
			}
			waiting := agentguard.LimiterFunc(func(lctx context.Context, c *agentguard.Call) error {
				switch how {
				case "cancel":
					cancel()
				case "trip":
					if err := sw.Trip(killswitch.Scope{Tool: c.Tool}, "ops", "stop the reads"); err != nil {
						return err
					}
				}
				<-lctx.Done()
				return lctx.Err()
			})
			g, rec := newGuard(t, agentguard.WithKillSwitch(sw), agentguard.WithLimiter(waiting))
			ran := false
			_, err := agentguard.Wrap(g, "read_db", func(context.Context, string) (string, error) { ran = true; return "", nil })(ctx, "")
			var d *agentguard.DeniedError
			if !errors.As(err, &d) || ran {
				t.Fatalf("err = %v (ran %v), want a denial", err, ran)
			}
			want := agentguard.Code("cancelled")
			if how == "trip" {
				want = agentguard.CodeHalted
			}
			if d.Code != want {
				t.Errorf("code = %s (%s), want %s", d.Code, d.Error(), want)
			}
			if how != "trip" && strings.Contains(d.Error(), "resume") {
				t.Errorf("the model is told the kill switch stopped it: %s", d.Error())
			}
			kinds := rec.kinds()
			if got := kinds[len(kinds)-1]; got != "decision:deny:"+string(want) {
				t.Errorf("recorded %s, want decision:deny:%s", got, want)
			}
		})
	}
}

// TestTypedNilDeniedErrorIsADenial: a stage that returns a nil
// *DeniedError as its error is a recorded denial, not a panic.
func TestTypedNilDeniedErrorIsADenial(t *testing.T) {
	nilDenial := func() error {
		var d *agentguard.DeniedError
		return d
	}
	cases := []struct {
		name string
		opt  agentguard.Option
		code agentguard.Code
	}{
		{"limiter", agentguard.WithLimiter(agentguard.LimiterFunc(func(context.Context, *agentguard.Call) error { return nilDenial() })), "unavailable"},
		{"budget", agentguard.WithBudgeter(failBudget{reserveErr: nilDenial()}), "unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, rec := newGuard(t, tc.opt)
			var ran atomic.Bool
			var err error
			func() {
				defer func() {
					if v := recover(); v != nil {
						t.Fatalf("the call panicked: %v", v)
					}
				}()
				_, err = agentguard.Wrap(g, "read_db", func(context.Context, string) (string, error) { ran.Store(true); return "", nil })(context.Background(), "")
			}()
			var d *agentguard.DeniedError
			if !errors.As(err, &d) || d == nil || d.Code != tc.code || ran.Load() {
				t.Fatalf("err = %v (ran %v), want a %s denial", err, ran.Load(), tc.code)
			}
			if d.Error() == "" || d.Reason == "" {
				t.Errorf("denial without text: %+v", d)
			}
			if got := rec.kinds(); len(got) == 0 || got[len(got)-1] != "decision:deny:"+string(tc.code) {
				t.Errorf("recorded %v", got)
			}
		})
	}
	// A nil *DeniedError's own methods do not panic either.
	var d *agentguard.DeniedError
	if d.Error() == "" || !errors.Is(d, agentguard.ErrDenied) {
		t.Errorf("nil *DeniedError: Error() = %q", d.Error())
	}
}

// TestApprovalWaitEndedByCallerOrTrip: a wait for a human that the
// caller's own cancel ends is recorded as cancelled, in the approval
// record and the decision alike; one that a kill-switch trip ends, as
// halted.
func TestApprovalWaitEndedByCallerOrTrip(t *testing.T) {
	for _, how := range []string{"cancel", "trip"} {
		t.Run(how, func(t *testing.T) {
			sw := killswitch.New(killswitch.Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// tripped is closed once Trip has returned: the switch records
			// its trip before Trip returns, but the call may return first,
			// as soon as the trip cancels its wait.
			tripped := make(chan struct{})
			approver := approval.Func(func(actx context.Context, r *approval.Request) (approval.Verdict, error) {
				defer close(tripped)
				if how == "cancel" {
					cancel()
				} else if err := sw.Trip(killswitch.Scope{Tool: r.Tool}, "ops", "stop refunds"); err != nil {
					return approval.Verdict{}, err
				}
				<-actx.Done()
				return approval.Verdict{}, context.Cause(actx)
			})
			g, rec := newGuard(t, agentguard.WithKillSwitch(sw), agentguard.WithApprover(approver))
			_, err := agentguard.Wrap(g, "refund", refund)(ctx, RefundArgs{Order: "A", Amount: 500})
			want := agentguard.CodeCancelled
			if how == "trip" {
				want = agentguard.CodeHalted
			}
			var d *agentguard.DeniedError
			if !errors.As(err, &d) || d.Code != want {
				t.Fatalf("err = %v, want %s", err, want)
			}
			// The trip's own record races the call's: the trip cancels
			// the wait, then records itself, while the call records the
			// approval and the decision. The call's two come in order.
			<-tripped
			var got, call []string
			halts := 0
			for _, k := range rec.kinds() {
				got = append(got, k)
				if strings.HasPrefix(k, "halt:") {
					halts++
					continue
				}
				call = append(call, k)
			}
			if n := len(call); n < 2 || call[n-2] != "approval:deny:"+string(want) || call[n-1] != "decision:deny:"+string(want) {
				t.Errorf("recorded %v, want the approval and the decision as %s", got, want)
			}
			if wantHalts := map[string]int{"cancel": 0, "trip": 1}[how]; halts != wantHalts {
				t.Errorf("recorded %v: %d halt records, want %d", got, halts, wantHalts)
			}
		})
	}
}

// TestDeniedErrorUnwrap checks that a denial matches agentguard.ErrDenied, its
// code's sentinel and its cause, and that matching a denial with no cause
// allocates nothing (a denied call's cost includes the caller's errors.Is).
func TestDeniedErrorUnwrap(t *testing.T) {
	cause := errors.New("the store is down")
	for _, tc := range []struct {
		d     *agentguard.DeniedError
		wants []error
	}{
		{&agentguard.DeniedError{Code: agentguard.CodePolicyDenied}, []error{agentguard.ErrDenied, agentguard.ErrPolicyDenied}},
		{&agentguard.DeniedError{Code: agentguard.CodeInternal}, []error{agentguard.ErrDenied, agentguard.ErrInternal}},
		{&agentguard.DeniedError{Code: agentguard.CodeUnavailable, Err: cause}, []error{agentguard.ErrDenied, agentguard.ErrUnavailable, cause}},
		{&agentguard.DeniedError{Code: "no-such-code"}, []error{agentguard.ErrDenied, agentguard.ErrInternal}},
		{nil, []error{agentguard.ErrDenied}},
	} {
		for _, w := range tc.wants {
			if !errors.Is(tc.d, w) {
				t.Errorf("errors.Is(%#v, %v) = false, want true", tc.d, w)
			}
		}
		if tc.d != nil && tc.d.Code != agentguard.CodeHalted && errors.Is(tc.d, agentguard.ErrHalted) {
			t.Errorf("errors.Is(%#v, agentguard.ErrHalted) = true", tc.d)
		}
	}
	d := &agentguard.DeniedError{Code: agentguard.CodePolicyDenied}
	if n := testing.AllocsPerRun(100, func() {
		if !errors.Is(d, agentguard.ErrPolicyDenied) {
			t.Fatal("not agentguard.ErrPolicyDenied")
		}
	}); n != 0 {
		t.Errorf("errors.Is on a denial without a cause: %v allocations, want 0", n)
	}
	// Two denials of one code share an answer; appending to one must not
	// reach the other.
	a, b := (&agentguard.DeniedError{Code: agentguard.CodeRateLimited}).Unwrap(), (&agentguard.DeniedError{Code: agentguard.CodeRateLimited}).Unwrap()
	_ = append(a, cause)
	if len(b) != 2 || b[1] != agentguard.ErrRateLimited {
		t.Errorf("Unwrap = %v after an append to another denial's, want [agentguard.ErrDenied agentguard.ErrRateLimited]", b)
	}
}

// TestDeniedCallAllocs: a call the policy denies costs at most four
// allocations (the call's state and its arguments' map, which the denial
// shows), with the audit log, the kill switch and errors.Is on the
// denial.
func TestDeniedCallAllocs(t *testing.T) {
	if underRace {
		t.Skip("the race detector allocates on its own")
	}
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)), agentguard.WithEnv("prod"),
		agentguard.WithKillSwitch(killswitch.New(killswitch.Options{})),
		agentguard.WithAuditFile(t.TempDir()+"/audit.jsonl", audit.Options{Sync: audit.SyncNever}))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	type target struct {
		Table string `json:"table"`
		Where string `json:"where"`
	}
	del := agentguard.Wrap(g, "db.delete", func(context.Context, target) (string, error) {
		t.Error("a denied tool ran")
		return "", nil
	})
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot"})
	in := target{Table: "users", Where: "id = 7"}
	n := testing.AllocsPerRun(200, func() {
		if _, err := del(ctx, in); !errors.Is(err, agentguard.ErrPolicyDenied) {
			t.Fatalf("err = %v, want ErrPolicyDenied", err)
		}
	})
	if n > 4 {
		t.Errorf("a denied call: %v allocations, want at most 4", n)
	}
}

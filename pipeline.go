package agentguard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

// flight is one guarded call on its way through the pipeline. It holds
// everything the call needs, so that the allowed path allocates little.
//
// A flight of a guard whose stages are all built in is pooled: once its
// call has ended, it is cleared and carries another call (see release).
// What a call hands out that may outlive it (the tool's context, the call
// ID's bytes, the denial) is in its callState, which is never reused; the
// flight's generation, checked under mu, tells a late Charge or CallFrom
// from a stale context that its call has ended.
type flight struct {
	flightVars

	mu     sync.Mutex
	gen    uint64 // counts the calls the flight has carried; written under mu
	pooled bool   // the flight goes back to flights when its call ends
	own    callState
	rnd    entropy // random bytes for the call IDs of a pooled flight's calls
}

// flightVars is what a flight holds for one call, cleared for the next.
// Its two large parts, the budget's hold and the arguments' view, are
// cleared only when the call used them (see release): clearing memory
// that holds pointers costs a write barrier per pointer while the
// collector runs.
type flightVars struct {
	flightState
	bh   budgetHold // the built-in budget's reservation: res, with WithBudget; used when held
	view argsView   // see flightState.lazy; its values beyond the plan's fields stay zero
}

// flightState is a flight's per-call state but bh and view.
type flightState struct {
	g    *Guard
	cfg  *toolConfig
	cs   *callState // &own, or a callState of the call's own when pooled
	call Call
	in   policy.Input
	ev   Event

	ctx  context.Context // the context the tool runs with
	exit func() bool     // a custom Halter's exit, until called; see leave
	box  *denialBox      // the call's denial, once it is denied
	res  Reservation     // nil without a Budgeter
	dec  policy.Decision
	appr Approval
	ran  time.Time     // when the call was decided (its decision's Time)
	lag  time.Duration // from ran to the tool's start: the decision's record, fsynced under the durable default

	// halting is set when a Halter admitted the call (the built-in kill
	// switch or another): a trip may halt it.
	halting bool
	kso     bool // cs.ks is admitted and not yet exited
	held    bool // bh was given to the built-in budget
	// keep is set when something outside the pipeline may hold on to the
	// flight's call after it ends (an approver, a Ticket): it is not pooled.
	keep bool

	// view holds the call's arguments unboxed when the tool's input is a
	// planned struct. With lazy (a pooled flight of a guard without
	// observers of its own), call.Args is not built: the policy and the
	// audit log read the view, and args builds the map, once, for
	// anything else that shows the arguments.
	lazy bool

	// Under mu.
	charges []Cost
	settled bool
	done    bool
}

// callState is what a call hands out that may outlive it, allocated for
// the call and never reused. It is small (144 bytes), so that an allowed
// call gives the collector little to do; a denial has a box of its own.
type callState struct {
	ks   killswitch.Flight // the built-in kill switch's call: the context while kso
	fctx flightCtx         // the tool's context once the call is admitted
	id   [36]byte          // the bytes of call.ID (see newCallID)
}

// denialBox is what a denied call hands out: its denial, and the cells of
// the arguments' map the denial shows (argsPlan.buildIn), in one
// allocation.
type denialBox struct {
	d     DeniedError
	cells [denialCells]argCell
}

// denialCells is the number of boxed arguments a denialBox holds: a
// denial of a tool with more allocates them apart.
const denialCells = 6

// flights holds the cleared flights of guards whose stages are all built
// in.
var flights = sync.Pool{New: func() any { return &flight{pooled: true} }}

// newFlight returns a flight for a call: a pooled one when pooled is set.
func newFlight(pooled bool) *flight {
	if !pooled {
		f := &flight{}
		f.cs = &f.own
		return f
	}
	f := flights.Get().(*flight)
	f.cs = new(callState)
	return f
}

// release ends the flight's use by its call, which must have ended (its
// reservation settled, its kill-switch exit taken, its bindings undone).
// A pooled flight not kept is cleared and put back; from here a stale
// context of the call sees a new generation.
func (f *flight) release() {
	if !f.pooled || f.keep {
		return
	}
	f.mu.Lock()
	f.gen++
	if f.held {
		f.bh = budgetHold{}
	}
	if p := f.view.plan; p != nil || f.view.m != nil {
		if p != nil {
			clear(f.view.vals[:len(p.fields)]) // what begin copied
		}
		f.view.plan, f.view.n, f.view.m = nil, 0, nil
	}
	f.flightState = flightState{}
	f.mu.Unlock()
	flights.Put(f)
}

type flightKey struct{}

// flightCtx is the context a tool runs with: its parent's, plus the
// flight and the generation of the call, for Charge and CallFrom. It lives
// in the call's callState, so it costs no allocation of its own.
type flightCtx struct {
	context.Context
	f   *flight
	gen uint64
}

// Value returns the flightCtx itself for flightKey, and asks the parent
// otherwise.
func (c *flightCtx) Value(key any) any {
	if _, ok := key.(flightKey); ok {
		return c
	}
	return c.Context.Value(key)
}

// detached returns ctx without its cancellation, allocating only when ctx
// can be cancelled at all.
func detached(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// begin runs steps 1 to 7 of the pipeline. On success the call may run
// with f.ctx; on failure it returns the denial, already recorded.
//
// With pooled, the flight comes from the pool when the guard's stages are
// all built in and the tool's estimate is fixed; the caller then releases
// it once the call has ended. Check passes false: a Ticket keeps its
// flight.
//
// view, when not nil, holds the arguments of a planned struct (args is
// then ignored); it is copied into the flight.
func (g *Guard) begin(ctx context.Context, tool string, cfg *toolConfig, args any, view *argsView, pooled bool) (*flight, error) {
	if g == nil {
		return nil, &DeniedError{Code: CodeInvalidCall, Stage: StageIdentify, Tool: tool,
			Reason: "the tool is wrapped with a nil Guard", Needs: "a corrected program"}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	f := newFlight(pooled && g.cfg.poolable && cfg.poolable)
	f.g, f.cfg = g, cfg
	f.keep = !pooled
	c := &f.call
	c.Time = g.now()
	c.Tool = tool
	c.Env = g.cfg.env
	c.Labels = cfg.labels
	p, _ := PrincipalFrom(ctx)
	c.Principal = p.fill(g.cfg.defaultPrincipal)
	var src *entropy
	if f.pooled {
		src = &f.rnd // read ahead for the next calls the flight carries
	}
	id, err := newCallID(&g.lastID, c.Time, &f.cs.id, src)
	if err != nil {
		return nil, f.deny(ctx, StageIdentify, CodeInternal, fmt.Errorf("agentguard: call ID: %w", err))
	}
	c.ID = id
	f.ctx = ctx

	if g.closed.Load() {
		return nil, f.deny(ctx, StageHalt, CodeHalted, f.denied(DeniedError{Reason: "the guard is closed", Needs: "a restarted agent"}))
	}
	if cfg.err != nil {
		if d := (*DeniedError)(nil); errors.As(cfg.err, &d) && d != nil && d.Err == nil {
			// An invalid call described for the model (egress's request
			// checks); the whole error stays the cause.
			cp := *d
			cp.Err = cfg.err
			return nil, f.deny(ctx, StageIdentify, CodeInvalidCall, &cp)
		}
		return nil, f.deny(ctx, StageIdentify, CodeInvalidCall, f.denied(DeniedError{
			Reason: "the tool is misconfigured in the program that guards it", Needs: "a corrected program", Err: cfg.err}))
	}
	if view != nil {
		// Only the plan's fields: each value holds a pointer, written
		// with a barrier while the collector runs.
		k := len(view.plan.fields)
		f.view.plan, f.view.n = view.plan, view.n
		copy(f.view.vals[:k], view.vals[:k])
		if f.pooled && !g.cfg.observed {
			f.lazy = true
		} else {
			c.Args = f.view.Args()
		}
	} else if c.Args, err = toArgs(args, cfg.args); err != nil {
		return nil, f.deny(ctx, StageIdentify, CodeInvalidCall, err)
	}
	if cfg.hold != nil {
		return nil, f.deny(ctx, StagePolicy, CodePolicyDenied, cfg.hold)
	}

	// 2. Kill switch.
	if h := g.cfg.halter; h != nil {
		if sh, ok := h.(*switchHalter); ok {
			// The built-in switch: its call lives in the flight, no
			// context is allocated unless the tool watches it.
			if err := sh.admit(ctx, c, &f.cs.ks); err != nil {
				return nil, f.deny(ctx, StageHalt, CodeHalted, f.stoppedOr(ctx, err))
			}
			f.ctx, f.kso = &f.cs.ks, true
		} else {
			hctx, exit, err := safeEnter(h, ctx, c)
			if err != nil {
				return nil, f.deny(ctx, StageHalt, CodeHalted, f.stoppedOr(ctx, err))
			}
			f.ctx, f.exit = hctx, exit
		}
		f.halting = true
	}

	if cfg.estimate != nil {
		est, err := safeEstimate(cfg.estimate, c)
		if err != nil {
			return nil, f.deny(ctx, StageBudget, CodeUnavailable, f.denied(DeniedError{Rule: "cost-estimate",
				Reason: "the call's cost could not be estimated, so it cannot be reserved", Err: fmt.Errorf("agentguard: estimate: %w", err)}))
		}
		c.Estimate = est
	}

	// 3. Policy.
	pol := g.pol.Load()
	if pol == nil {
		return nil, f.deny(ctx, StagePolicy, CodePolicyDenied, f.denied(DeniedError{Rule: "no-policy", Reason: "the guard has no policy, so every call is denied"}))
	}
	f.fillInput()
	if g.cfg.budgeter != nil && pol.UsesUsage() {
		u, err := safeUsage(g.cfg.budgeter, f.ctx, c)
		if err != nil {
			return nil, f.deny(ctx, StagePolicy, CodeUnavailable, f.stoppedOr(ctx, fmt.Errorf("agentguard: usage for the policy: %w", err)))
		}
		f.in.Usage = u
	}
	f.dec = safeDecide(pol, f.ctx, &f.in)
	if f.dec.Effect == policy.Deny {
		if err := f.stopped(ctx); err != nil {
			return nil, f.deny(ctx, StagePolicy, CodeHalted, err)
		}
		return nil, f.deny(ctx, StagePolicy, CodePolicyDenied, f.denied(DeniedError{Rule: f.dec.Rule, Reason: f.dec.Reason, Err: f.dec.Err}))
	}

	// 4. Rate limit.
	if l := g.cfg.limiter; l != nil {
		if err := safeLimit(l, f.ctx, c); err != nil {
			return nil, f.deny(ctx, StageRate, CodeRateLimited, f.stoppedOr(ctx, err))
		}
	}

	// 5. Budget.
	if b := g.cfg.budgeter; b != nil {
		if f.dec.Effect == policy.Approve {
			c.wait = g.approvalWait(f.dec.ApprovalTimeout) // the hold starts when the call may
		}
		var res Reservation
		var err error
		if bs, ok := b.(*budgetStage); ok {
			f.held = true
			if f.lazy {
				f.bh.args = &f.view // for the policy's estimate
			}
			res, err = safeBudgetReserve(bs, f.ctx, c, &f.bh) // no allocation
		} else {
			res, err = safeReserve(b, f.ctx, c)
		}
		if err != nil {
			return nil, f.deny(ctx, StageBudget, CodeBudgetExceeded, f.stoppedOr(ctx, err))
		}
		f.res = res
	}

	// 6. Approval.
	if f.dec.Effect == policy.Approve {
		a := g.cfg.approvals
		if a == nil {
			return nil, f.deny(ctx, StageApproval, CodeApprovalRequired, f.denied(DeniedError{Rule: f.dec.Rule, Reason: nonEmpty(f.dec.Reason, "this call needs a human's approval") + "; no approver is configured"}))
		}
		req := ApprovalRequest{Rule: f.dec.Rule, Reason: f.dec.Reason, Timeout: f.dec.ApprovalTimeout, PolicyVersion: f.dec.Version}
		if br, ok := f.res.(BudgetReporter); ok {
			req.BudgetLeft = br.Left()
		}
		f.keep = true // an approver may hold on to the call
		f.fillArgs()
		appr, err := safeAwait(a, f.ctx, c, req)
		if err != nil {
			return nil, f.deny(ctx, StageApproval, CodeApprovalRejected, f.stoppedOr(ctx, err))
		}
		f.appr = appr
	}
	// A trip (or the caller's cancel) that came while the call waited
	// stops it here.
	if err := f.stopped(ctx); err != nil {
		return nil, f.deny(ctx, StageApproval, CodeHalted, err)
	}

	// 7. Record the decision before anything runs. A caller that stops
	// waiting for it (a sync that hangs) is denied as cancelled.
	f.decisionEvent(policy.Allow)
	if err := g.recordLive(ctx, &f.ev); err != nil {
		return nil, f.deny(ctx, StageAudit, CodeAuditUnavailable, f.stoppedOr(ctx, err))
	}
	f.cs.fctx = flightCtx{Context: f.ctx, f: f, gen: f.gen}
	f.ctx = &f.cs.fctx
	f.ran = f.ev.Time
	f.lag = g.since(f.ran) // a monotonic reading: the tool's Duration is its own, not the decision's sync
	return f, nil
}

// fillInput builds the policy's view of the call.
func (f *flight) fillInput() {
	c := &f.call
	f.in = policy.Input{
		Now: c.Time,
		Call: policy.Call{
			ID: c.ID, Tool: c.Tool, Args: c.Args,
			Agent: c.Principal.Agent, Requester: c.Principal.Requester,
			Tenant: c.Principal.Tenant, Session: c.Principal.Session,
			Env: c.Env, Labels: c.Labels, Time: c.Time,
		},
	}
	if f.lazy {
		f.in.Call.Reader = &f.view
	}
}

// args returns the call's arguments as Call.Args holds them: every reader
// of the arguments other than the policy and the audit log (a denial, an
// observer, CallFrom) takes them from here. A lazy flight builds the map
// from its view the first time, under mu (CallFrom may ask from another
// goroutine), and keeps it for the rest of the call; the map is the
// call's own, never reused, so it may outlive the call.
func (f *flight) args() map[string]any { return f.argsIn(nil) }

// argsIn is args with the map's cells taken from spare when it has enough
// of them (see argsPlan.buildIn).
func (f *flight) argsIn(spare []argCell) map[string]any {
	if !f.lazy {
		return f.call.Args
	}
	f.mu.Lock()
	m := f.view.argsIn(spare)
	f.mu.Unlock()
	return m
}

// fillArgs sets call.Args, for a stage that is given the *Call (an
// approver) or a denial: from here the flight is not lazy. It runs only
// before the call is admitted, when nothing else can see the flight.
func (f *flight) fillArgs() { f.fillArgsIn(nil) }

// fillArgsIn is fillArgs with the map's cells taken from spare when it
// has enough of them (see argsPlan.buildIn).
func (f *flight) fillArgsIn(spare []argCell) {
	if f.lazy {
		f.call.Args = f.argsIn(spare)
		f.lazy = false
	}
}

// wrapped returns the configuration of a pooled flight's tool, made once
// by Wrap for all its calls (Check makes one per call), or nil.
func (f *flight) wrapped() *toolConfig {
	if f.pooled {
		return f.cfg
	}
	return nil
}

// lazyArgs returns the flight for an event whose call has no Args yet
// (the audit log then reads the view), or nil.
func (f *flight) lazyArgs() *flight {
	if f.lazy {
		return f
	}
	return nil
}

// flightArgs is a lazy flight's arguments as the audit log reads them
// (audit.ArgReader): each one from the view, the map from args.
type flightArgs flight

// Len implements audit.ArgReader.
func (a *flightArgs) Len() int { return a.view.n }

// Arg implements audit.ArgReader.
func (a *flightArgs) Arg(name string) (any, bool) { return a.view.boxed(name) }

// Args implements audit.ArgReader.
func (a *flightArgs) Args() map[string]any { return (*flight)(a).args() }

// stopped returns the denial of a call whose context ended before it
// could run: halted when a kill-switch trip ended it, cancelled when the
// caller's own context (ctx) was cancelled or passed its deadline; nil
// while the call's context is live. A caller's cancel under a kill switch
// is the caller's, not a halt: only a trip's cause (a *killswitch.Halt),
// or the Halter's context ending while ctx is live, is a halt.
func (f *flight) stopped(ctx context.Context) error {
	if f.ctx.Err() == nil {
		return nil
	}
	cause := context.Cause(f.ctx)
	var halt *killswitch.Halt
	if errors.As(cause, &halt) || ctx.Err() == nil && f.halting {
		d := haltError(f.ctx).(*DeniedError)
		d.Stage = StageHalt
		return d
	}
	if ctx.Err() == nil {
		return nil
	}
	return &DeniedError{Code: CodeCancelled, Err: cause}
}

// stoppedOr returns the halt or cancellation that ended the call (a stage
// that failed because of it did not refuse the call itself), err
// otherwise.
func (f *flight) stoppedOr(ctx context.Context, err error) error {
	if s := f.stopped(ctx); s != nil {
		return s
	}
	return err
}

// haltError makes the denial of a call halted while in flight.
func haltError(ctx context.Context) error {
	cause := context.Cause(ctx)
	var halt *killswitch.Halt
	if errors.As(cause, &halt) {
		return &DeniedError{Code: CodeHalted, Rule: halt.Scope.String(),
			Reason: nonEmpty(halt.Why, "the kill switch was tripped"), Err: cause}
	}
	return &DeniedError{Code: CodeHalted, Reason: "the kill switch was tripped", Err: cause}
}

func (f *flight) decisionEvent(effect policy.Effect) {
	// A decision is the call's time, a few microseconds on, unless the
	// call waited for a human: then it is when the wait ended.
	at := f.call.Time
	if f.dec.Effect == policy.Approve {
		at = f.g.now()
	}
	f.ev = Event{
		Kind: EventDecision, Time: at, Call: &f.call, lazy: f.lazyArgs(), tool: f.wrapped(),
		Decision: effect, Rule: f.dec.Rule, Reason: f.dec.Reason, Shadow: f.dec.Shadow,
		PolicyVersion: f.dec.Version, Estimate: f.call.Estimate,
		Approver: f.appr.Approver, Grant: f.appr.Grant, Note: f.appr.Note,
	}
}

// needs says what would let a call with this code through.
func needs(c Code) string {
	switch c {
	case CodePolicyDenied:
		return "a human: the policy does not allow this call"
	case CodeRateLimited:
		return "time: the rate limit refills"
	case CodeBudgetExceeded:
		return "budget: a human can raise the cap, or the window must reset"
	case CodeApprovalRequired:
		return "a human's approval, and no approver is configured"
	case CodeApprovalRejected:
		return "a human's approval, which was refused"
	case CodeApprovalTimeout:
		return "a human's approval, which did not come in time"
	case CodeHalted:
		return "a human to resume the kill switch"
	case CodeAuditUnavailable:
		return "an operator to repair the audit log"
	case CodeInvalidCall:
		return "a corrected call"
	case CodeUnavailable:
		return "an operator to restore a safety control that is unavailable"
	case CodeCancelled:
		return "nothing from the guard: the caller cancelled the call or its deadline passed"
	case CodeApprovalInvalid:
		return "a human's approval of this exact call; the verdict that came back does not count"
	}
	return "a human to look at the guard's logs"
}

// errNilDenial stands in for a stage's error that was a nil *DeniedError
// (or nil itself): the stage failed without saying why.
var errNilDenial = errors.New("agentguard: a stage failed with a nil *DeniedError")

// isNilDenial reports whether err is a typed-nil *DeniedError.
func isNilDenial(err error) bool {
	d, ok := err.(*DeniedError)
	return ok && d == nil
}

// plainCode is the code of a stage that failed with a plain error (not a
// *DeniedError): the stage could not decide, so the control is
// unavailable, except where the stage has its own code for that. A
// Halter's error means a trip covers the call (its contract, and a
// trigger that cannot be read counts as tripped), so it stays a halt.
func plainCode(stage Stage, code Code) Code {
	switch {
	case stage == StageIdentify, stage == StageHalt, code == CodeAuditUnavailable, code == CodeInternal:
		return code
	}
	return CodeUnavailable
}

// stageReason is the fixed sentence the model reads when a stage gave no
// reason of its own: never an internal error's text.
func stageReason(stage Stage, code Code) string {
	switch code {
	case CodeCancelled:
		return "the caller cancelled the call, or its deadline passed, before it could run"
	case CodeAuditUnavailable:
		return "the audit log could not record the call, and no call runs unrecorded"
	case CodeInvalidCall:
		return "the call's arguments could not be read"
	case CodeHalted:
		return "the kill switch was tripped"
	case CodeApprovalInvalid:
		return "the approval verdict does not count"
	case CodeUnavailable:
		switch stage {
		case StagePolicy:
			return "the usage the policy reads could not be read, so the policy could not decide"
		case StageRate:
			return "the rate limit could not be checked"
		case StageBudget:
			return "the budget could not be checked"
		case StageApproval:
			return "the approver failed, so no human could decide"
		}
		return "a safety control is unavailable"
	}
	return "the guard failed to check the call"
}

// denied returns d as the call's own denial for deny: kept in the flight,
// it costs no allocation.
func (f *flight) denied(d DeniedError) *DeniedError {
	f.box = &denialBox{d: d}
	return &f.box.d
}

// asDenied sets *d to the *DeniedError in err's tree, if any is there
// and not nil. It is a function of its own so that the pointer errors.As
// needs escapes only on this path.
//
//go:noinline
func asDenied(err error, d **DeniedError) bool {
	var x *DeniedError
	if errors.As(err, &x) && x != nil {
		*d = x
		return true
	}
	return false
}

// deny ends a call that will not run: it releases what the call held,
// records the denial and returns it. The denial it returns lives in the
// call's denialBox (f.box), a copy when err is not the flight's own.
func (f *flight) deny(ctx context.Context, stage Stage, code Code, err error) error {
	g := f.g
	d, _ := err.(*DeniedError)
	box := f.box
	switch {
	case box != nil && d == &box.d:
		// The pipeline's own denial, made for this call (see denied).
	case d != nil || asDenied(err, &d):
		if box == nil {
			box = new(denialBox)
		}
		box.d = *d
		d = &box.d
	default:
		if err == nil || isNilDenial(err) {
			err = errNilDenial
		}
		// A plain error is a control that failed, not a refusal of the
		// call: its text stays in Err and the audit record.
		if box == nil {
			box = new(denialBox)
		}
		box.d = DeniedError{Code: plainCode(stage, code), Err: err}
		d = &box.d
	}
	f.box = box
	if d.Code == "" {
		d.Code = code
	}
	if d.Stage == "" {
		d.Stage = stage
	}
	if d.Reason == "" {
		d.Reason = stageReason(d.Stage, d.Code)
	}
	if d.Needs == "" {
		d.Needs = needs(d.Code)
	}
	d.CallID, d.Tool = f.call.ID, f.call.Tool
	f.fillArgsIn(box.cells[:])
	d.Args = g.redact(f.call.Args)
	if f.dec.Rule != "" && d.Rule == "" && stage == StageApproval {
		d.Rule = f.dec.Rule
	}
	if f.res != nil {
		f.settle(ctx, nil, true)
	}
	f.leave()
	f.decisionEvent(policy.Deny)
	f.ev.Code, f.ev.Stage, f.ev.Rule, f.ev.Reason, f.ev.RetryAfter, f.ev.Err = d.Code, d.Stage, d.Rule, d.Reason, d.RetryAfter, d.Err
	if f.call.ID != "" {
		if rerr := g.recordLive(ctx, &f.ev); rerr != nil {
			g.cfg.logger.Error("agentguard: denial not recorded, or not synced", zap.String("call", f.call.ID), zap.Error(rerr))
			if d.Code != CodeAuditUnavailable {
				d.Err = errors.Join(d.Err, rerr)
			}
		}
	}
	f.release()
	return d
}

// leave ends the call's flight under the kill switch, once: it reports
// whether the call left before any trip covering it (false without a
// Halter, or when it already left).
func (f *flight) leave() bool {
	switch {
	case f.kso:
		f.kso = false
		return f.cs.ks.Exit()
	case f.exit != nil:
		exit := f.exit
		f.exit = nil
		return exit()
	}
	return false
}

// settle ends the call's reservation once.
func (f *flight) settle(ctx context.Context, actual []Cost, known bool) {
	f.mu.Lock()
	if f.settled || f.res == nil {
		f.mu.Unlock()
		return
	}
	f.settled = true
	f.mu.Unlock()
	f.settleNow(ctx, actual, known)
}

// settleNow settles the call's reservation, which the caller has marked
// settled under mu.
func (f *flight) settleNow(ctx context.Context, actual []Cost, known bool) {
	if err := safeSettle(f.res, detached(ctx), actual, known); err != nil {
		// The store may still hold the reservation, which lives in the
		// flight: the flight is not reused.
		f.keep = true
		f.g.cfg.logger.Error("agentguard: settling the budget", zap.String("call", f.call.ID), zap.Error(err))
	}
}

// finish runs steps 9 to 11 for a call that ran: settle, record, observe.
// It returns the error the caller gets: the tool's own, or ErrHalted when
// the kill switch stopped the call first.
func (f *flight) finish(ctx context.Context, out any, toolErr error, outcome Outcome) error {
	g := f.g
	f.mu.Lock()
	if f.done {
		f.mu.Unlock()
		return errors.New("agentguard: the call was already finished")
	}
	f.done = true
	// No charge comes once done is set (see Charge); the reservation is
	// this call's to settle (below), as settle would mark it.
	charges := f.charges
	settle := f.res != nil && !f.settled
	f.settled = f.settled || f.res != nil
	f.mu.Unlock()
	halted := false
	if f.halting && !f.leave() {
		halted = true
	}
	if outcome == OutcomeHalted && !halted {
		// The caller's context ended, not a trip: the call was abandoned
		// and its result is lost.
		outcome, toolErr = OutcomeUnknown, context.Cause(f.ctx)
	}
	var result error = toolErr
	if halted {
		outcome = OutcomeHalted
		d := haltError(f.ctx).(*DeniedError)
		d.Stage, d.CallID, d.Tool, d.Needs = StageRun, f.call.ID, f.call.Tool, needs(CodeHalted)
		d.Args = g.redact(f.args()) // the map is the call's own: the denial may keep it
		result = d
	}
	// 9. Settle.
	actual, known, p := f.actual(out, outcome, charges)
	if p != nil {
		outcome, toolErr = OutcomePanic, fmt.Errorf("agentguard: ResultCost panicked: %v", p.v)
	}
	end := g.now()
	if settle {
		if f.held {
			f.bh.now = end // the built-in budget settles at this time, without reading the clock again
		}
		f.settleNow(ctx, actual, known)
	}
	// 10. Record the result.
	f.ev = Event{
		Kind: EventResult, Time: end, Call: &f.call, lazy: f.lazyArgs(), tool: f.wrapped(), Decision: policy.Allow,
		Rule: f.dec.Rule, PolicyVersion: f.dec.Version, Outcome: outcome,
		Duration: end.Sub(f.ran) - f.lag, Estimate: f.call.Estimate, Actual: actual,
		Approver: f.appr.Approver, Grant: f.appr.Grant,
	}
	if halted {
		f.ev.Err = context.Cause(f.ctx)
	} else {
		f.ev.Err = toolErr
	}
	if err := g.record(ctx, &f.ev); err != nil {
		g.cfg.logger.Error("agentguard: result not recorded", zap.String("call", f.call.ID), zap.Error(err))
	}
	if p != nil {
		panic(p.v) // recorded and settled: re-raised like a tool's panic
	}
	return result
}

// actual is the call's cost: what the tool charged (charges) plus its result's cost;
// when the tool reported nothing, its estimate. A halted or panicked call's
// outcome is unknown and charged its estimate by the budget. A ResultCost
// that panics is returned as p; the call is then charged what the tool
// reported plus its estimate, never less than the worst case.
func (f *flight) actual(out any, outcome Outcome, charges []Cost) (actual []Cost, known bool, p *toolPanic) {
	if outcome != OutcomeOK && outcome != OutcomeError {
		return nil, false, nil
	}
	actual = charges
	if f.cfg.resultCost != nil && outcome == OutcomeOK {
		rc, p := safeResultCost(f.cfg.resultCost, out)
		if p != nil {
			return append(actual[:len(actual):len(actual)], f.call.Estimate...), true, p
		}
		actual = append(actual, rc...)
	}
	if actual == nil && f.cfg.resultCost == nil {
		actual = f.call.Estimate
	}
	return actual, true, nil
}

func safeResultCost(fn func(any) []Cost, out any) (c []Cost, p *toolPanic) {
	defer func() {
		if v := recover(); v != nil {
			p = &toolPanic{v}
		}
	}()
	return fn(out), nil
}

// Charge reports a cost incurred by the guarded call whose context ctx is
// (the context the tool was given, whatever its type: see Wrap): tokens
// used by a model, dollars spent on an API. The budget commits it when the call returns. It returns an
// error for a negative amount, an empty unit, or a context that is not a
// guarded call's.
func Charge(ctx context.Context, c Cost) error {
	if c.Micros < 0 {
		return fmt.Errorf("agentguard: Charge: negative amount %d micro-%s", c.Micros, c.Unit)
	}
	if c.Unit == "" {
		return errors.New("agentguard: Charge: empty unit")
	}
	fc, ok := flightOf(ctx)
	if !ok {
		return errors.New("agentguard: Charge: the context is not a guarded call's")
	}
	f := fc.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen != fc.gen || f.done {
		return errors.New("agentguard: Charge: the call has finished")
	}
	f.charges = append(f.charges, c)
	return nil
}

// CallFrom returns the guarded call whose context ctx is, if any. Code
// inside a tool uses it to learn its call's ID and principal; the egress
// transport uses it to attribute requests to the tool that made them.
// Once the call has ended, the Call returned before keeps what it said
// but CallFrom may report false.
func CallFrom(ctx context.Context) (*Call, bool) {
	fc, ok := flightOf(ctx)
	if !ok {
		return nil, false
	}
	f := fc.f
	if !f.pooled {
		return &f.call, true
	}
	// A pooled flight carries another call once this one has ended: the
	// caller gets a copy, taken while the call is still the flight's, with
	// the arguments' map (the call's own, built here when the flight is
	// lazy: see args).
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen != fc.gen {
		return nil, false
	}
	c := f.call
	if f.lazy {
		c.Args = f.view.Args()
	}
	return &c, true
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// The safe… functions call a stage and turn its panic into an error, so a
// broken stage denies the call rather than crashing or letting it run.

func recovered(stage string, v any) error {
	return fmt.Errorf("agentguard: %s panicked: %v", stage, v)
}

func safeEstimate(fn func(*Call) ([]Cost, error), c *Call) (est []Cost, err error) {
	defer func() {
		if v := recover(); v != nil {
			est, err = nil, recovered("estimate", v)
		}
	}()
	est, err = fn(c)
	for _, e := range est {
		if e.Micros < 0 || e.Unit == "" {
			return nil, fmt.Errorf("invalid estimate %d micro-%q", e.Micros, e.Unit)
		}
	}
	return est, err
}

func safeEnter(h Halter, ctx context.Context, c *Call) (hctx context.Context, exit func() bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			hctx, exit, err = nil, nil, recovered("kill switch", v)
		}
	}()
	hctx, exit, err = h.Enter(ctx, c)
	if err == nil && (hctx == nil || exit == nil) {
		if exit != nil {
			exit()
		}
		return nil, nil, errors.New("agentguard: kill switch returned no context")
	}
	return hctx, exit, err
}

func safeUsage(b Budgeter, ctx context.Context, c *Call) (u policy.Usage, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered("budget usage", v)
		}
	}()
	return b.Usage(ctx, c)
}

func safeDecide(p *policy.Policy, ctx context.Context, in *policy.Input) (d policy.Decision) {
	defer func() {
		if v := recover(); v != nil {
			d = policy.Decision{Effect: policy.Deny, Rule: "policy", Reason: "the policy failed", Err: recovered("policy", v), Version: p.Version()}
		}
	}()
	d = p.Decide(ctx, in)
	if d.Effect > policy.Allow {
		return policy.Decision{Effect: policy.Deny, Rule: d.Rule, Reason: "the policy returned an invalid effect", Version: d.Version}
	}
	return d
}

func safeLimit(l Limiter, ctx context.Context, c *Call) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered("rate limiter", v)
		}
	}()
	return l.Limit(ctx, c)
}

func safeReserve(b Budgeter, ctx context.Context, c *Call) (r Reservation, err error) {
	defer func() {
		if v := recover(); v != nil {
			r, err = nil, recovered("budget", v)
		}
	}()
	r, err = b.Reserve(ctx, c)
	if err == nil && r == nil {
		return nil, errors.New("agentguard: budget returned no reservation")
	}
	if err != nil && r != nil {
		_ = r.Settle(context.WithoutCancel(ctx), nil, true)
		r = nil
	}
	return r, err
}

func safeBudgetReserve(b *budgetStage, ctx context.Context, c *Call, h *budgetHold) (r Reservation, err error) {
	defer func() {
		if v := recover(); v != nil {
			r, err = nil, recovered("budget", v)
		}
	}()
	return b.reserve(ctx, c, h)
}

func safeAwait(a Approvals, ctx context.Context, c *Call, req ApprovalRequest) (ap Approval, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered("approval", v)
		}
	}()
	return a.Await(ctx, c, req)
}

func safeSettle(r Reservation, ctx context.Context, actual []Cost, known bool) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered("budget settle", v)
		}
	}()
	return r.Settle(ctx, actual, known)
}

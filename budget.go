package agentguard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/policy"
)

// WithBudget makes a budget.Ledger the Guard's budget stage: every call
// reserves its estimated cost against each cap that applies, atomically,
// before it runs, and settles its actual cost after. The caps are caps,
// from Go, plus the budgets section of the policy in force, rebuilt when
// the policy is swapped (SetPolicy, ReloadPolicy); a policy whose budgets
// are invalid, or share a name with a cap from Go, is refused and the old
// one stays. Spend is kept in opts.Store (an in-memory store when nil)
// across policy swaps: a cap keeps its spend while its name, scope and
// window stay the same. opts.Clock defaults to the Guard's clock.
// opts.Hold (budget.DefaultHold, 15 minutes, when zero) is how long a
// call's reservation stays open once the call may start: a call that
// waits for a human's approval is held for the approval's timeout plus
// Hold. A reservation still open after that is charged its estimate, and
// the call's actual cost, when larger, is charged in full when it
// settles: a call that outlives its hold cannot overrun a cap unnoticed,
// its overage shuts the cap.
//
// A call's estimate is the tool's Estimate or EstimateFunc option or,
// without one, the policy's costs section (policy.Policy.Estimate). Its
// actual cost is what the tool reported with Charge plus its ResultCost;
// a call whose outcome is unknown (halted, panicked, abandoned) is charged
// its estimate. A refusal is a *DeniedError of CodeBudgetExceeded whose
// Rule is the cap, whose Reason gives the amounts spent, reserved, asked
// and allowed, and whose RetryAfter is the time until the cap's window
// resets, when that can help. A store that fails or does not answer within
// the call's context refuses the call too.
//
// The budget stage also fills the policy's usage variable: usage.spend
// (by unit, from the narrowest cap that applies to the call), usage.calls
// and usage.caps (what is left of each cap); see budget.PolicyUsage. A
// unit no cap counts is absent from usage.spend, so write
// `"USD" in usage.spend && usage.spend["USD"] > 20.0` when no cap in USD
// may apply.
//
// A Guard built without WithBudget or WithBudgeter gets WithBudget(nil,
// budget.Options{}), so that the budgets of its policy are enforced.
func WithBudget(caps []budget.Cap, opts budget.Options) Option {
	return func(c *config) error {
		b, err := newBudgetStage(c, caps, opts)
		if err != nil {
			return fmt.Errorf("agentguard: WithBudget: %w", err)
		}
		if err := setStage("WithBudget", &c.budgeter, Budgeter(b)); err != nil {
			return err
		}
		c.policyHooks = append(c.policyHooks, b.setPolicy)
		c.onNew = append(c.onNew, func(g *Guard) error { b.g = g; return nil })
		return nil
	}
}

// WithRateLimits makes a budget.Limiter the Guard's rate-limit stage. The
// limits are limits, from Go, plus the limits section of the policy in
// force, rebuilt when the policy is swapped (the buckets are kept when the
// limits do not change). A refusal is a *DeniedError of CodeRateLimited
// whose Rule is the limit, with RetryAfter; a limit with Wait makes the
// call wait for a token within its context's deadline instead.
// opts.Clock defaults to the Guard's clock.
//
// A Guard built without WithRateLimits or WithLimiter gets
// WithRateLimits(nil, budget.LimiterOptions{}), so that the limits of its
// policy are enforced.
func WithRateLimits(limits []budget.Limit, opts budget.LimiterOptions) Option {
	return func(c *config) error {
		l, err := newLimitStage(c, limits, opts)
		if err != nil {
			return fmt.Errorf("agentguard: WithRateLimits: %w", err)
		}
		if err := setStage("WithRateLimits", &c.limiter, Limiter(l)); err != nil {
			return err
		}
		c.policyHooks = append(c.policyHooks, l.setPolicy)
		c.onNew = append(c.onNew, func(g *Guard) error { l.g = g; return nil })
		return nil
	}
}

// budgetDefaults installs the budget and rate-limit stages when no option
// did, so that a policy's budgets and limits never go unenforced.
func budgetDefaults(c *config) error {
	if c.budgeter == nil {
		if err := WithBudget(nil, budget.Options{})(c); err != nil {
			return err
		}
	}
	if c.limiter == nil {
		if err := WithRateLimits(nil, budget.LimiterOptions{})(c); err != nil {
			return err
		}
	}
	return nil
}

// guardClock returns the Guard's clock as it is when called: options may
// set it after the budget options ran.
func guardClock(c *config) func() time.Time {
	return func() time.Time {
		if c.clock == nil {
			return time.Now()
		}
		return c.clock()
	}
}

func budgetSubject(c *Call) budget.Subject {
	p := &c.Principal
	return budget.Subject{Agent: p.Agent, Requester: p.Requester, Tenant: p.Tenant, Session: p.Session, Tool: c.Tool}
}

// ledgerState is the ledger built for one policy. prev is the state
// before it, in case a later policy hook refused the policy.
type ledgerState struct {
	pol  *policy.Policy
	led  *budget.Ledger
	prev *ledgerState
}

// budgetStage is the Budgeter of WithBudget.
type budgetStage struct {
	g     *Guard       // set at the end of New
	caps  []budget.Cap // from Go
	opts  budget.Options
	state atomic.Pointer[ledgerState]
	// callTime: the ledger's clock is the Guard's, so a reservation is
	// made at the call's time (Call.Time) without reading it again.
	callTime bool
}

var (
	_ Budgeter       = (*budgetStage)(nil)
	_ Reservation    = (*budgetHold)(nil)
	_ BudgetReporter = (*budgetHold)(nil)
)

func newBudgetStage(c *config, caps []budget.Cap, opts budget.Options) (*budgetStage, error) {
	if opts.Store == nil {
		opts.Store = budget.NewMem()
	}
	callTime := opts.Clock == nil
	if callTime {
		opts.Clock = guardClock(c)
	}
	b := &budgetStage{caps: append([]budget.Cap(nil), caps...), opts: opts, callTime: callTime}
	led, err := budget.NewLedger(b.caps, opts)
	if err != nil {
		return nil, err
	}
	b.state.Store(&ledgerState{led: led})
	return b, nil
}

// setPolicy builds the ledger for p's budgets.
func (b *budgetStage) setPolicy(p *policy.Policy) error {
	pc, err := budget.CapsFromPolicy(p.Spec().Budgets)
	if err != nil {
		return fmt.Errorf("agentguard: policy budgets: %w", err)
	}
	led, err := budget.NewLedger(append(append([]budget.Cap(nil), b.caps...), pc...), b.opts)
	if err != nil {
		return fmt.Errorf("agentguard: policy budgets: %w", err)
	}
	cur := b.state.Load()
	b.state.Store(&ledgerState{pol: p, led: led, prev: &ledgerState{pol: cur.pol, led: cur.led}})
	return nil
}

// ledger returns the ledger of the policy in force.
func (b *budgetStage) ledger(pol *policy.Policy) *budget.Ledger {
	st := b.state.Load()
	if st.pol != pol && st.prev != nil && st.prev.pol == pol {
		return st.prev.led
	}
	return st.led
}

// noHold is the reservation of a call no cap applies to.
type noHold struct{}

func (noHold) Settle(context.Context, []Cost, bool) error { return nil }

// Reserve implements Budgeter.
func (b *budgetStage) Reserve(ctx context.Context, c *Call) (Reservation, error) {
	return b.reserve(ctx, c, nil)
}

// reserve is Reserve, keeping the reservation in h when h is not nil
// (the pipeline's per-call state): then it allocates nothing.
func (b *budgetStage) reserve(ctx context.Context, c *Call, h *budgetHold) (Reservation, error) {
	pol := b.polInForce()
	led := b.ledger(pol)
	if len(c.Estimate) == 0 && pol != nil {
		var args policy.ArgReader
		if h != nil {
			args = h.args
		}
		est, err := b.policyEstimate(ctx, pol, c, args)
		if err != nil {
			return nil, &DeniedError{Code: CodeUnavailable, Rule: "cost-estimate", Reason: "the call's cost could not be estimated, so it cannot be reserved", Err: err}
		}
		// The policy's estimate becomes the call's (Call.Estimate: "from
		// the tool's options or the policy"), so that the decision records
		// it and a call that reports no cost is charged it.
		c.Estimate = est
	}
	if !led.Covers(c.Tool) {
		return noHold{}, nil
	}
	if h == nil {
		h = &budgetHold{}
	}
	h.est = appendAmounts(h.estBuf[:0], c.Estimate)
	t := c.Time
	if !b.callTime || t.IsZero() {
		t = b.opts.Clock()
	}
	if err := led.ReserveInto(ctx, t, &h.own, budget.Request{ID: c.ID, Subject: budgetSubject(c), Estimate: h.est, Wait: c.wait}); err != nil {
		return nil, budgetDenial(err)
	}
	h.r, h.callTime = &h.own, b.callTime
	return h, nil
}

// polInForce returns the Guard's policy.
func (b *budgetStage) polInForce() *policy.Policy { return guardPolicy(b.g) }

func guardPolicy(g *Guard) *policy.Policy {
	if g == nil {
		return nil
	}
	return g.pol.Load()
}

// policyEstimate returns the policy's estimate of c, if it has one.
func (b *budgetStage) policyEstimate(ctx context.Context, pol *policy.Policy, c *Call, args policy.ArgReader) ([]Cost, error) {
	in := policyInput(c)
	if c.Args == nil {
		in.Call.Reader = args
	}
	if pol.UsesUsage() {
		u, err := b.Usage(ctx, c)
		if err != nil {
			return nil, err
		}
		in.Usage = u
	}
	unit, v, ok, err := pol.Estimate(ctx, &in)
	if err != nil || !ok {
		return nil, err
	}
	m := math.Ceil(v * 1e6)
	if !(m >= 0) || m >= math.MaxInt64 {
		return nil, fmt.Errorf("agentguard: the policy's estimate %v %s is out of range", v, unit)
	}
	return []Cost{{Unit: unit, Micros: int64(m)}}, nil
}

// policyInput is the policy's view of c, for cost estimates.
func policyInput(c *Call) policy.Input {
	return policy.Input{
		Now: c.Time,
		Call: policy.Call{
			ID: c.ID, Tool: c.Tool, Args: c.Args,
			Agent: c.Principal.Agent, Requester: c.Principal.Requester,
			Tenant: c.Principal.Tenant, Session: c.Principal.Session,
			Env: c.Env, Labels: c.Labels, Time: c.Time,
		},
	}
}

// Usage implements Budgeter.
func (b *budgetStage) Usage(ctx context.Context, c *Call) (policy.Usage, error) {
	us, err := b.ledger(b.polInForce()).Usage(ctx, budgetSubject(c))
	if err != nil {
		return policy.Usage{}, err
	}
	return budget.PolicyUsage(us), nil
}

// budgetDenial turns a ledger's refusal into the denial the model reads.
func budgetDenial(err error) error {
	var ex *budget.ExceededError
	if errors.As(err, &ex) {
		reason := ex.Reason()
		if ex.Per != budget.PerGlobal {
			reason = fmt.Sprintf("%s %q has %s", ex.Per, ex.Scope, reason)
		}
		return &DeniedError{Code: CodeBudgetExceeded, Rule: ex.Cap, Reason: reason, RetryAfter: ex.RetryAfter, Err: err}
	}
	return &DeniedError{Code: CodeUnavailable, Rule: "budget", Reason: "the budget could not be checked, so the call cannot be paid for", Err: err}
}

// appendAmounts appends costs to dst as amounts, adding up costs of the
// same unit.
func appendAmounts(dst []budget.Amount, cs []Cost) []budget.Amount {
	out := dst
next:
	for _, c := range cs {
		for i := len(dst); i < len(out); i++ {
			if out[i].Unit == c.Unit {
				if c.Micros > 0 && out[i].Micros > math.MaxInt64-c.Micros {
					out[i].Micros = math.MaxInt64
				} else {
					out[i].Micros += c.Micros
				}
				continue next
			}
		}
		out = append(out, budget.Amount{Micros: c.Micros, Unit: c.Unit})
	}
	return out
}

// sameAmounts reports whether cs are as, cost by cost.
func sameAmounts(cs []Cost, as []budget.Amount) bool {
	if len(cs) != len(as) {
		return false
	}
	for i, c := range cs {
		if c.Unit != as[i].Unit || c.Micros != as[i].Micros {
			return false
		}
	}
	return true
}

// budgetHold is the Reservation of a call some cap applies to.
type budgetHold struct {
	r   *budget.Reservation // &own
	own budget.Reservation
	// now, when set and callTime, is the time to settle at: the
	// pipeline's, read from the Guard's clock as the call ended.
	now      time.Time
	callTime bool
	est      []budget.Amount
	// args, when set, gives the policy's estimate the call's arguments
	// (the pipeline's lazy flight, whose Call.Args is nil).
	args   policy.ArgReader
	estBuf [2]budget.Amount
	actBuf [2]budget.Amount
}

// Settle implements Reservation. A cost that cannot be committed (a bad
// unit) charges the estimate instead: never less than the worst case.
func (h *budgetHold) Settle(ctx context.Context, actual []Cost, known bool) error {
	at := h.callTime && !h.now.IsZero() // else the ledger's clock
	commit := func(a []budget.Amount) error {
		if at {
			return h.r.CommitAt(ctx, h.now, a)
		}
		return h.r.Commit(ctx, a)
	}
	switch {
	case !known:
		return commit(h.est)
	case len(actual) == 0:
		if at {
			return h.r.ReleaseAt(ctx, h.now)
		}
		return h.r.Release(ctx)
	}
	if sameAmounts(actual, h.est) {
		// Charged its estimate (a call that reported no cost): the ledger
		// knows the slice it reserved, checked then.
		return commit(h.est)
	}
	err := commit(appendAmounts(h.actBuf[:0], actual))
	if errors.Is(err, budget.ErrAmount) {
		return errors.Join(err, commit(h.est))
	}
	return err
}

// Left implements BudgetReporter.
func (h *budgetHold) Left() []Cost {
	left := h.r.Left()
	out := make([]Cost, len(left))
	for i, a := range left {
		out[i] = Cost{Unit: a.Unit, Micros: a.Micros}
	}
	return out
}

// limiterState is the limiter built for one policy.
type limiterState struct {
	pol    *policy.Policy
	limits []budget.Limit // all of them, Go's first
	lim    *budget.Limiter
	prev   *limiterState
}

// limitStage is the Limiter of WithRateLimits.
type limitStage struct {
	g      *Guard         // set at the end of New
	limits []budget.Limit // from Go
	opts   budget.LimiterOptions
	mu     sync.Mutex // serialises setPolicy
	state  atomic.Pointer[limiterState]
	// callTime: the limiter's clock is the Guard's, so a call is admitted
	// at its own time (Call.Time) without reading it again.
	callTime bool
}

var _ Limiter = (*limitStage)(nil)

func newLimitStage(c *config, limits []budget.Limit, opts budget.LimiterOptions) (*limitStage, error) {
	callTime := opts.Clock == nil
	if callTime {
		opts.Clock = guardClock(c)
	}
	l := &limitStage{limits: append([]budget.Limit(nil), limits...), opts: opts, callTime: callTime}
	lim, err := budget.NewLimiter(l.limits, opts)
	if err != nil {
		return nil, err
	}
	l.state.Store(&limiterState{limits: l.limits, lim: lim})
	return l, nil
}

// setPolicy builds the limiter for p's limits, keeping the buckets when
// the limits are the same.
func (l *limitStage) setPolicy(p *policy.Policy) error {
	pl, err := budget.LimitsFromPolicy(p.Spec().Limits)
	if err != nil {
		return fmt.Errorf("agentguard: policy limits: %w", err)
	}
	all := append(append([]budget.Limit(nil), l.limits...), pl...)
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.state.Load()
	lim := cur.lim
	if !reflect.DeepEqual(all, cur.limits) {
		if lim, err = budget.NewLimiter(all, l.opts); err != nil {
			return fmt.Errorf("agentguard: policy limits: %w", err)
		}
	}
	l.state.Store(&limiterState{pol: p, limits: all, lim: lim, prev: &limiterState{pol: cur.pol, limits: cur.limits, lim: cur.lim}})
	return nil
}

// Limit implements Limiter.
func (l *limitStage) Limit(ctx context.Context, c *Call) error {
	st := l.state.Load()
	if pol := guardPolicy(l.g); st.pol != pol && st.prev != nil && st.prev.pol == pol {
		st = st.prev
	}
	t := c.Time
	if !l.callTime || t.IsZero() {
		t = l.opts.Clock()
	}
	err := st.lim.Admit(ctx, t, budgetSubject(c))
	if err == nil {
		return nil
	}
	var le *budget.LimitedError
	if errors.As(err, &le) {
		reason := le.Reason()
		if le.Per != budget.PerGlobal {
			reason = fmt.Sprintf("%s %q may make %s", le.Per, le.Scope, reason)
		}
		return &DeniedError{Code: CodeRateLimited, Rule: le.Limit, Reason: reason, RetryAfter: le.RetryAfter, Err: err}
	}
	return &DeniedError{Code: CodeUnavailable, Rule: "rate-limit", Reason: "the rate limit could not be checked", Err: err}
}

package agentguard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

// WithApprover installs the approval stage with a: a call the policy sends
// for approval runs only after a's verdict, bound to exactly that call,
// arrives before the deadline (the rule's timeout, else
// WithApprovalTimeout, else approval.DefaultTimeout). The stage keeps
// grants in memory and uses the Guard's clock; for other settings build
// an approval.Gate and use WithApprovalGate instead.
func WithApprover(a approval.Approver) Option {
	return func(c *config) error {
		if a == nil {
			return errors.New("agentguard: WithApprover: nil")
		}
		s := &approvalStage{}
		if err := setStage("WithApprover", &c.approvals, Approvals(s)); err != nil {
			return err
		}
		c.onNew = append(c.onNew, func(g *Guard) error {
			gate, err := approval.NewGate(a, approval.Options{Clock: g.cfg.clock})
			if err != nil {
				return fmt.Errorf("agentguard: WithApprover: %w", err)
			}
			s.gate, s.g = gate, g
			return nil
		})
		return nil
	}
}

// WithApprovalGate installs the approval stage with a Gate built by the
// caller (its own timeout, grant store, clock and approver).
func WithApprovalGate(gate *approval.Gate) Option {
	return func(c *config) error {
		if gate == nil {
			return errors.New("agentguard: WithApprovalGate: nil")
		}
		s := &approvalStage{gate: gate}
		if err := setStage("WithApprovalGate", &c.approvals, Approvals(s)); err != nil {
			return err
		}
		c.onNew = append(c.onNew, func(g *Guard) error { s.g = g; return nil })
		return nil
	}
}

// WithApprovalTimeout sets how long a call waits for a verdict when its
// rule sets no timeout. It needs WithApprover or WithApprovalGate.
func WithApprovalTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("agentguard: WithApprovalTimeout: %s is not positive", d)
		}
		c.onNew = append(c.onNew, func(g *Guard) error {
			s, ok := g.cfg.approvals.(*approvalStage)
			if !ok {
				return errors.New("agentguard: WithApprovalTimeout needs WithApprover or WithApprovalGate")
			}
			s.timeout = d
			return nil
		})
		return nil
	}
}

// approvalWait is the longest a call whose rule has timeout may wait for a
// verdict: what the budget's hold must cover before the call starts. An
// Approvals of the caller's own is taken to honour the rule's timeout, or
// approval.DefaultTimeout; one that waits longer has its call charged its
// estimate meanwhile, and its actual cost, when larger, after.
func (g *Guard) approvalWait(timeout time.Duration) time.Duration {
	if timeout > 0 {
		return timeout
	}
	if s, ok := g.cfg.approvals.(*approvalStage); ok {
		if s.timeout > 0 {
			return s.timeout
		}
		if s.gate != nil {
			return s.gate.Timeout()
		}
	}
	return approval.DefaultTimeout
}

// approvalStage is the Approvals stage built from an approval.Gate.
type approvalStage struct {
	gate    *approval.Gate
	g       *Guard
	timeout time.Duration // zero: the gate's
}

// Await builds the decision card for c, asks the Gate, records the answer
// and maps a refusal to a denial.
func (s *approvalStage) Await(ctx context.Context, c *Call, req ApprovalRequest) (Approval, error) {
	if s.gate == nil || s.g == nil {
		return Approval{}, errors.New("agentguard: approval stage used before New finished")
	}
	g := s.g
	p := approval.Principal(c.Principal)
	hash, err := approval.HashCall(c.Tool, c.Args, p) // the real arguments: the card may show redacted ones
	if err != nil {
		return Approval{}, &DeniedError{Code: CodeInternal, Reason: "the call could not be prepared for approval", Err: fmt.Errorf("agentguard: hashing the call for approval: %w", err)}
	}
	// The card shows the arguments redacted, in a deep copy of its own: an
	// approver that edits it changes neither what runs, nor what is
	// recorded, nor the hash taken above.
	args, err := copyArgs(g.redactCard(c.Args))
	if err != nil {
		return Approval{}, &DeniedError{Code: CodeInternal, Reason: "the call could not be prepared for approval", Err: fmt.Errorf("agentguard: copying arguments for approval: %w", err)}
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = s.timeout
	}
	if timeout <= 0 {
		timeout = s.gate.Timeout()
	}
	now := s.gate.Now() // the gate's clock decides the deadline (WithApprover gives it the Guard's)
	r := &approval.Request{
		ID: c.ID, Tool: c.Tool, Args: args, Principal: p, Labels: g.redactCardLabels(c.Labels), // a copy of the tool's own map
		Rule: req.Rule, Reason: req.Reason,
		Estimate: amounts(c.Estimate), BudgetLeft: amounts(req.BudgetLeft),
		Created: now, Deadline: now.Add(timeout), Hash: hash,
	}
	out, askErr := s.gate.Ask(ctx, r)
	ev := &Event{Kind: EventApproval, Call: c, Rule: req.Rule, Reason: req.Reason, PolicyVersion: req.PolicyVersion, Estimate: c.Estimate}
	if askErr != nil {
		d := refusal(askErr, req, timeout)
		ev.Decision, ev.Code, ev.Err = policy.Deny, d.Code, askErr
		ev.Approver, ev.Note = d.approver, d.note
		if rerr := g.record(ctx, ev); rerr != nil {
			g.cfg.logger.Error("agentguard: approval refusal not recorded", zap.String("call", c.ID), zap.Error(rerr))
		}
		if ctx.Err() != nil {
			return Approval{}, context.Cause(ctx) // a kill-switch trip or the caller's cancel, as itself
		}
		return Approval{}, d.DeniedError
	}

	a := Approval{Approver: out.Verdict.By, Note: out.Verdict.Note}
	if out.Permit != nil {
		a.Grant = out.Permit.ID
	}
	if out.Covered {
		a.Approver = out.Permit.By
		a.Note = fmt.Sprintf("covered by grant %s (%s, until %s)", out.Permit.ID, out.Permit.Scope, out.Permit.Expires.UTC().Format(time.RFC3339))
	} else if out.Permit != nil {
		gev := &Event{Kind: EventGrant, Call: c, Rule: req.Rule, PolicyVersion: req.PolicyVersion,
			Decision: policy.Allow, Approver: a.Approver, Grant: a.Grant,
			Note: fmt.Sprintf("granted %s until %s", out.Permit.Scope, out.Permit.Expires.UTC().Format(time.RFC3339))}
		if err := g.record(ctx, gev); err != nil {
			// No evidence of the grant: take it back, and refuse the call.
			_ = s.gate.Revoke(context.WithoutCancel(ctx), out.Permit.ID)
			return Approval{}, &DeniedError{Code: CodeAuditUnavailable, Stage: StageAudit, Reason: "the approval's grant could not be recorded", Err: err}
		}
	}
	ev.Decision, ev.Approver, ev.Grant, ev.Note = policy.Allow, a.Approver, a.Grant, a.Note
	if err := g.record(ctx, ev); err != nil {
		return Approval{}, &DeniedError{Code: CodeAuditUnavailable, Stage: StageAudit, Reason: "the approval could not be recorded", Err: err}
	}
	return a, nil
}

type approvalDenial struct {
	*DeniedError
	approver, note string
}

// refusal maps a Gate's refusal to the denial the model reads.
func refusal(err error, req ApprovalRequest, timeout time.Duration) approvalDenial {
	d := &DeniedError{Code: CodeApprovalRejected, Stage: StageApproval, Rule: req.Rule, Err: err}
	var re *approval.RefusedError
	errors.As(err, &re)
	if re == nil {
		re = &approval.RefusedError{Reason: approval.ErrApprover}
	}
	switch {
	case errors.Is(err, approval.ErrRejected):
		d.Reason = "rejected by " + nonEmpty(re.By, "the approver")
		if re.Note != "" {
			d.Reason += ": " + re.Note
		}
	case errors.Is(err, approval.ErrTimeout):
		d.Code = CodeApprovalTimeout
		d.Reason = fmt.Sprintf("no approval arrived within %s", timeout)
	case errors.Is(err, approval.ErrMismatch):
		d.Code = CodeApprovalInvalid
		d.Reason = "the verdict that came back answers another request, so it does not count"
	case errors.Is(err, approval.ErrForged):
		d.Code = CodeApprovalInvalid
		d.Reason = "the verdict that came back carries another call's hash (it was not made from this call's card), so it does not count"
	case errors.Is(err, approval.ErrReused):
		d.Code = CodeApprovalInvalid
		d.Reason = "the verdict was already used once, or this call was already put to the approver: a replay does not count"
	case errors.Is(err, approval.ErrCancelled):
		// The wait ended with the call's context: a trip is a halt, the
		// caller's own cancel or deadline is not.
		d.Code = CodeCancelled
		if halt := (*killswitch.Halt)(nil); errors.As(err, &halt) {
			d.Code = CodeHalted
		}
		d.Reason = stageReason(StageApproval, d.Code)
	case errors.Is(err, approval.ErrInvalid):
		d.Code = CodeInternal
		d.Reason = "the approval request could not be made"
	default:
		d.Code = CodeUnavailable
		d.Reason = stageReason(StageApproval, CodeUnavailable)
	}
	return approvalDenial{DeniedError: d, approver: re.By, note: re.Note}
}

func amounts(cs []Cost) []approval.Amount {
	if len(cs) == 0 {
		return nil
	}
	out := make([]approval.Amount, len(cs))
	for i, c := range cs {
		out[i] = approval.Amount{Unit: c.Unit, Micros: c.Micros}
	}
	return out
}

// copyArgs deep-copies call arguments, keeping their types (an int64
// stays an int64), so that an approver cannot change the call through its
// card. A value of another type (a Go value in a tool's own map) is copied
// through its JSON encoding, read as call.args reads Go values.
func copyArgs(args map[string]any) (map[string]any, error) {
	if args == nil {
		return nil, nil
	}
	v, err := copyValue(args, 0)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

func copyValue(v any, depth int) (any, error) {
	if depth > maxArgsDepth {
		return nil, fmt.Errorf("agentguard: arguments nested more than %d levels deep", maxArgsDepth)
	}
	switch v := v.(type) {
	case nil, bool, string, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, json.Number:
		return v, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			c, err := copyValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			c, err := copyValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeValue(b, fromGo)
}

// Grants lists and revokes the grants of a Guard's approval stage. It is
// safe for concurrent use.
type Grants struct {
	g    *Guard
	gate *approval.Gate
}

// Grants returns the Guard's grants. When the Guard has no approval stage
// built by WithApprover or WithApprovalGate, its methods return errors.
func (g *Guard) Grants() *Grants {
	s, _ := g.cfg.approvals.(*approvalStage)
	if s == nil || s.gate == nil {
		return &Grants{g: g}
	}
	return &Grants{g: g, gate: s.gate}
}

var errNoGate = errors.New("agentguard: the guard has no approval stage (WithApprover or WithApprovalGate)")

// List returns the live grants, oldest first.
func (gs *Grants) List(ctx context.Context) ([]approval.Permit, error) {
	if gs.gate == nil {
		return nil, errNoGate
	}
	return gs.gate.Grants(ctx)
}

// Revoke removes the grant id, on behalf of who; the next call it covered
// waits for a verdict again. The revocation is recorded as an EventGrant;
// when it cannot be recorded the grant is still revoked and the error
// says so.
func (gs *Grants) Revoke(ctx context.Context, id, who string) error {
	if gs.gate == nil {
		return errNoGate
	}
	if err := gs.gate.Revoke(ctx, id); err != nil {
		return err
	}
	ev := &Event{Kind: EventGrant, Decision: policy.Deny, Grant: id, Approver: who, Note: "revoked"}
	if err := gs.g.record(ctx, ev); err != nil {
		return fmt.Errorf("agentguard: grant %s revoked but not recorded: %w", id, err)
	}
	return nil
}

package agentguard

import (
	"context"
	"time"

	"github.com/hardstop-labs/agentguard/policy"
)

// The stages of the pipeline, in the order they run for each call:
//
//	identify → Halter → policy → Limiter → Budgeter → Approvals → Recorder → run → settle → Recorder → Observer
//
// Each stage is a small interface so that a package (killswitch, budget,
// approval, audit) or a user's own code can fill it. A stage refuses a call
// by returning an error: a *DeniedError is used as it is (the pipeline fills
// in CallID, Tool, Args and Stage, and the stage's code when it has none),
// and any other error (a nil *DeniedError included) means the control
// could not decide: a denial of CodeUnavailable (CodeHalted for a Halter,
// CodeAuditUnavailable for a Recorder) whose Reason is a fixed sentence for
// the stage and whose Err is the error, never shown to the model. When the
// caller's own context ended meanwhile the denial is CodeCancelled, and
// when a kill-switch trip ended it, CodeHalted. A stage that panics denies
// the call too. No error from a stage ever lets a call run.

// Halter is the kill-switch stage.
type Halter interface {
	// Enter admits c into flight, or refuses it because a trip covers it.
	//
	// On success it returns a context derived from ctx that is cancelled,
	// with the trip as its cause (context.Cause), when a later trip covers
	// c, and an exit function that the pipeline calls exactly once when
	// the tool has returned or the call was abandoned. exit reports whether
	// the call left before any trip covering it; when it returns false the
	// call counts as halted and its result is discarded.
	Enter(ctx context.Context, c *Call) (context.Context, func() bool, error)
}

// Limiter is the rate-limit stage.
type Limiter interface {
	// Limit admits c or refuses it, with a *DeniedError of CodeRateLimited
	// carrying RetryAfter when waiting could help. It may block, but never
	// beyond ctx's deadline.
	Limit(ctx context.Context, c *Call) error
}

// LimiterFunc adapts a function to a Limiter.
type LimiterFunc func(ctx context.Context, c *Call) error

// Limit calls f(ctx, c).
func (f LimiterFunc) Limit(ctx context.Context, c *Call) error { return f(ctx, c) }

// Budgeter is the budget stage.
type Budgeter interface {
	// Reserve reserves c.Estimate against every cap that applies to c,
	// atomically: either all or none. A refusal is a *DeniedError of
	// CodeBudgetExceeded. The pipeline settles a returned Reservation
	// exactly once.
	Reserve(ctx context.Context, c *Call) (Reservation, error)
	// Usage reports what c's principal has spent and called in the current
	// windows, for the policy's usage variable. The pipeline calls it
	// before the policy only when the policy refers to usage.
	Usage(ctx context.Context, c *Call) (policy.Usage, error)
}

// Reservation is budget held for one call.
type Reservation interface {
	// Settle ends the reservation. When known is true, actual is the
	// call's cost (what the tool charged, or its result's cost) and the
	// rest is released; when known is false the outcome is unknown (the
	// call was halted, panicked or its result was lost) and the estimate is
	// charged in full. A call that was never run settles with known true
	// and no actual cost, releasing everything.
	Settle(ctx context.Context, actual []Cost, known bool) error
}

// ApprovalRequest is what the pipeline tells the approval stage about why
// a call needs a human.
type ApprovalRequest struct {
	Rule          string
	Reason        string
	Timeout       time.Duration // from the rule; zero means the stage's default
	PolicyVersion string
	// BudgetLeft is what is left of the caps that apply, after this call's
	// reservation, when the Reservation reports it (see BudgetReporter).
	BudgetLeft []Cost
}

// BudgetReporter is implemented by a Reservation that can tell what is
// left of its caps; approval cards show it.
type BudgetReporter interface {
	Left() []Cost
}

// Approval is a positive verdict: who approved, and which grant, if any,
// stood in for a human.
type Approval struct {
	Approver string
	Note     string
	Grant    string // the ID of the grant that covered the call, or that the verdict created
}

// Approvals is the approval stage.
type Approvals interface {
	// Await asks for approval of c and blocks until a verdict bound to c,
	// the request's timeout, or the end of ctx. It returns nil error only
	// when c is approved; a rejection or timeout is a *DeniedError of
	// CodeApprovalRejected or CodeApprovalTimeout, a verdict that does not
	// count one of CodeApprovalInvalid.
	Await(ctx context.Context, c *Call, req ApprovalRequest) (Approval, error)
}

// Recorder is the audit stage.
type Recorder interface {
	// Record writes e, durably as configured, before it returns. It must
	// return an error when it cannot: the pipeline then refuses the call
	// (no evidence, no action). ctx is never cancelled by the call's own
	// cancellation.
	Record(ctx context.Context, e *Event) error
}

// RecorderFunc adapts a function to a Recorder.
type RecorderFunc func(ctx context.Context, e *Event) error

// Record calls f(ctx, e).
func (f RecorderFunc) Record(ctx context.Context, e *Event) error { return f(ctx, e) }

// Observer sees every event after it was recorded: decisions, denials and
// results. Breakers are observers. Observe must not block; it must not
// retain e after it returns.
type Observer interface {
	Observe(e *Event)
}

// ContextObserver is an Observer that also takes the context of the event:
// for an event about a call, the caller's context (its values, such as the
// current trace span; never cancelled by the call's own cancellation). The
// Guard calls ObserveContext instead of Observe. Tracing integrations use
// it to place their spans under the caller's.
type ContextObserver interface {
	Observer
	ObserveContext(ctx context.Context, e *Event)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(e *Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e *Event) { f(e) }

// Redactor is implemented by a Recorder that redacts secrets from
// arguments. When the Recorder is one, the pipeline shows only redacted
// arguments outside the tool: in denials the model reads and in approval
// cards.
type Redactor interface {
	RedactArgs(args map[string]any) map[string]any
}

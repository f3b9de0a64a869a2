package agentguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinels for every outcome a caller branches on. Every denial matches
// ErrDenied and exactly one of the others, through errors.Is on the
// *DeniedError the guard returns.
var (
	ErrDenied           = errors.New("agentguard: call denied")
	ErrPolicyDenied     = errors.New("agentguard: denied by policy")
	ErrHalted           = errors.New("agentguard: halted by the kill switch")
	ErrRateLimited      = errors.New("agentguard: rate limited")
	ErrBudgetExceeded   = errors.New("agentguard: budget exceeded")
	ErrApprovalRequired = errors.New("agentguard: approval required")
	ErrApprovalDenied   = errors.New("agentguard: approval denied")
	ErrApprovalTimeout  = errors.New("agentguard: approval timed out")
	ErrAuditUnavailable = errors.New("agentguard: audit log unavailable")
	ErrInvalidCall      = errors.New("agentguard: invalid call")
	ErrInternal         = errors.New("agentguard: internal error")
	// ErrUnavailable: a control the call needs (the kill switch's
	// backend, the budget or rate-limit store, the usage the policy reads,
	// the approver) failed, so the call cannot be checked and is refused.
	// Nothing was decided about the call itself.
	ErrUnavailable = errors.New("agentguard: a control is unavailable")
	// ErrCancelled: the caller's own context was cancelled or passed its
	// deadline before the call could run. It is not a kill-switch halt.
	ErrCancelled = errors.New("agentguard: call cancelled by its caller")
	// ErrApprovalInvalid: the verdict that came back does not count: it
	// names another request (approval.ErrMismatch), another call's hash
	// (approval.ErrForged), or was used before (approval.ErrReused). The
	// denial also unwraps to that approval sentinel.
	ErrApprovalInvalid = errors.New("agentguard: approval verdict does not count")
)

// Code is the stable, machine-readable kind of a denial.
type Code string

// The denial codes.
const (
	CodePolicyDenied     Code = "policy_denied"
	CodeRateLimited      Code = "rate_limited"
	CodeBudgetExceeded   Code = "budget_exceeded"
	CodeApprovalRequired Code = "approval_required"
	CodeApprovalRejected Code = "approval_rejected"
	CodeApprovalTimeout  Code = "approval_timeout"
	CodeHalted           Code = "halted"
	CodeAuditUnavailable Code = "audit_unavailable"
	CodeInvalidCall      Code = "invalid_call"
	CodeInternal         Code = "internal_error"
	CodeUnavailable      Code = "unavailable"
	CodeCancelled        Code = "cancelled"
	CodeApprovalInvalid  Code = "approval_invalid"
)

func (c Code) sentinel() error {
	switch c {
	case CodePolicyDenied:
		return ErrPolicyDenied
	case CodeRateLimited:
		return ErrRateLimited
	case CodeBudgetExceeded:
		return ErrBudgetExceeded
	case CodeApprovalRequired:
		return ErrApprovalRequired
	case CodeApprovalRejected:
		return ErrApprovalDenied
	case CodeApprovalTimeout:
		return ErrApprovalTimeout
	case CodeHalted:
		return ErrHalted
	case CodeAuditUnavailable:
		return ErrAuditUnavailable
	case CodeInvalidCall:
		return ErrInvalidCall
	case CodeUnavailable:
		return ErrUnavailable
	case CodeCancelled:
		return ErrCancelled
	case CodeApprovalInvalid:
		return ErrApprovalInvalid
	}
	return ErrInternal
}

// Stage names the step of the pipeline that stopped a call.
type Stage string

// The stages, in pipeline order.
const (
	StageIdentify Stage = "identify"
	StageHalt     Stage = "killswitch"
	StagePolicy   Stage = "policy"
	StageRate     Stage = "rate"
	StageBudget   Stage = "budget"
	StageApproval Stage = "approval"
	StageAudit    Stage = "audit"
	StageRun      Stage = "run"
)

// DeniedError is the error of every call the guard refused. Its Error text
// is written for the model that made the call: what was tried, what stopped
// it, what would let it through, and that a human can be asked. MarshalJSON
// gives programs the same fields.
//
// It unwraps to ErrDenied, to the sentinel of its Code, and to Err.
type DeniedError struct {
	Code   Code
	Stage  Stage
	CallID string
	Tool   string
	// Args are the call's arguments, redacted when an audit log with
	// redaction is configured; nil otherwise.
	Args map[string]any
	// Rule names the rule, limit, cap or switch that stopped the call.
	Rule string
	// Reason says why, in words written for the model. The pipeline never
	// puts an internal error's text here: a stage that fails with a plain
	// error gets a fixed sentence for its stage (see the README's denial
	// codes), and the error itself goes to Err and the audit record.
	Reason string
	// Needs says what would let the call through: "approval", "budget",
	// "a human", "time".
	Needs string
	// RetryAfter is how long to wait before a retry can succeed; zero when
	// retrying cannot help.
	RetryAfter time.Duration
	// Err is the underlying cause, if any. It is never shown to the model:
	// neither Error nor MarshalJSON include it.
	Err error
}

// maxArgsText bounds the arguments shown in a denial's text.
const maxArgsText = 512

// Error returns the text the model reads. It shows the call's arguments
// only when they were redacted (Args is set only then).
func (e *DeniedError) Error() string {
	if e == nil {
		return ErrDenied.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "agentguard: call to tool %q", e.Tool)
	if len(e.Args) > 0 {
		if j, err := json.Marshal(e.Args); err == nil {
			if len(j) > maxArgsText {
				j = append(j[:maxArgsText:maxArgsText], "..."...)
			}
			fmt.Fprintf(&b, " with arguments %s", j)
		}
	}
	fmt.Fprintf(&b, " was not run (%s)", e.Code)
	if e.Rule != "" {
		fmt.Fprintf(&b, ": stopped by %q", e.Rule)
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	b.WriteString(".")
	if e.Needs != "" {
		fmt.Fprintf(&b, " It needs %s.", e.Needs)
	}
	if e.retryable() {
		if e.RetryAfter > 0 {
			fmt.Fprintf(&b, " A retry may succeed after %s.", e.RetryAfter.Round(time.Millisecond))
		} else {
			b.WriteString(" A later retry may succeed.")
		}
	} else if e.Code == CodeUnavailable {
		b.WriteString(" Retrying will not help until an operator restores it.")
	} else {
		b.WriteString(" Retrying will not help.")
	}
	b.WriteString(" Do not try to work around this; tell the user and ask a human to decide.")
	return b.String()
}

func (e *DeniedError) retryable() bool {
	return e.Code == CodeRateLimited || e.Code == CodeBudgetExceeded && e.RetryAfter > 0
}

// plainUnwraps holds Unwrap's answer for a denial of each known code
// with no cause, so that errors.Is on such a denial allocates nothing.
var plainUnwraps = func() map[Code][]error {
	m := make(map[Code][]error)
	for _, c := range []Code{CodePolicyDenied, CodeRateLimited, CodeBudgetExceeded, CodeApprovalRequired,
		CodeApprovalRejected, CodeApprovalTimeout, CodeHalted, CodeAuditUnavailable, CodeInvalidCall,
		CodeInternal, CodeUnavailable, CodeCancelled, CodeApprovalInvalid} {
		m[c] = []error{ErrDenied, c.sentinel()}
	}
	return m
}()

var nilDeniedUnwrap = []error{ErrDenied}

// Unwrap returns ErrDenied, the sentinel of the code, and the cause. The
// slice may be shared with other denials: read it, do not modify it (as
// errors.Is and errors.As do).
func (e *DeniedError) Unwrap() []error {
	if e == nil {
		return nilDeniedUnwrap
	}
	if e.Err == nil {
		if errs, ok := plainUnwraps[e.Code]; ok {
			return errs[:len(errs):len(errs)]
		}
	}
	errs := []error{ErrDenied, e.Code.sentinel()}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// MarshalJSON encodes the denial's fields for programs.
func (e *DeniedError) MarshalJSON() ([]byte, error) {
	type out struct {
		Error        string         `json:"error"`
		Code         Code           `json:"code"`
		Stage        Stage          `json:"stage"`
		CallID       string         `json:"call_id,omitempty"`
		Tool         string         `json:"tool"`
		Args         map[string]any `json:"args,omitempty"`
		Rule         string         `json:"rule,omitempty"`
		Reason       string         `json:"reason,omitempty"`
		Needs        string         `json:"needs,omitempty"`
		Retryable    bool           `json:"retryable"`
		RetryAfterMS int64          `json:"retry_after_ms,omitempty"`
	}
	return json.Marshal(out{
		Error: e.Error(), Code: e.Code, Stage: e.Stage, CallID: e.CallID, Tool: e.Tool, Args: e.Args,
		Rule: e.Rule, Reason: e.Reason, Needs: e.Needs, Retryable: e.retryable(),
		RetryAfterMS: e.RetryAfter.Milliseconds(),
	})
}

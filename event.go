package agentguard

import (
	"time"

	"github.com/hardstop-labs/agentguard/policy"
)

// EventKind says what an Event records.
type EventKind string

// The event kinds.
const (
	EventDecision EventKind = "decision" // the guard decided a call: allow (it runs next) or deny
	EventResult   EventKind = "result"   // a call that ran has finished
	EventApproval EventKind = "approval" // a human or grant answered an approval request
	EventGrant    EventKind = "grant"    // a remembered grant was created or revoked
	EventHalt     EventKind = "halt"     // the kill switch was tripped
	EventResume   EventKind = "resume"   // the kill switch was resumed
	EventHook     EventKind = "hook"     // a revocation hook ran (Err says if it failed)
	// EventTool records a tool's definition as an integration saw it: a
	// tool that appeared, a definition that changed, one a person
	// accepted (see Guard.Record). Call.Tool names the tool, Rule says
	// which ("tool-new", "tool-changed", "tool-accepted"), Reason
	// describes it and Note holds the definition's hash.
	EventTool EventKind = "tool"
)

// Outcome is how a call that ran ended.
type Outcome string

// The outcomes.
const (
	OutcomeOK      Outcome = "ok"      // the tool returned a nil error
	OutcomeError   Outcome = "error"   // the tool returned an error
	OutcomePanic   Outcome = "panic"   // the tool panicked; the panic was re-raised
	OutcomeHalted  Outcome = "halted"  // the kill switch stopped the call while it ran
	OutcomeUnknown Outcome = "unknown" // the result was lost
)

// Control describes a kill-switch action: which scope, who did it, why.
type Control struct {
	Scope string `json:"scope"`
	Who   string `json:"who"`
	Why   string `json:"why"`
}

// Event is one thing the guard records: what the audit log writes and what
// observers see. Fields that do not apply to a kind are zero.
type Event struct {
	Kind EventKind
	Time time.Time
	Call *Call // nil for events not about one call (halt, resume)

	// Decisions.
	Decision      policy.Effect // the effect that applies: Allow for a call that runs, Deny for a denial
	Code          Code          // for a denial
	Stage         Stage         // for a denial: where it was stopped
	Rule          string
	Reason        string
	Shadow        []policy.ShadowHit
	PolicyVersion string
	RetryAfter    time.Duration

	// Approvals.
	Approver string
	Grant    string
	Note     string

	// Results.
	Outcome  Outcome
	Err      error         // the tool's error, or the denial's cause; recorders redact it
	Duration time.Duration // a result's: how long the tool ran

	// Costs.
	Estimate []Cost
	Actual   []Cost

	// Kill-switch actions.
	Control *Control

	// lazy, when Call.Args is nil, is the flight whose view holds the
	// call's arguments: what the built-in audit recorder reads them from.
	lazy *flight
	// tool is the configuration of the call's tool, whose audit plan the
	// built-in recorder keeps there; nil for other events.
	tool *toolConfig
}

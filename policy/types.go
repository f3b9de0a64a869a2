package policy

import (
	"time"
)

// Effect is what a rule, or a policy's default, decides for a call.
// The zero value is Deny, so an uninitialised decision fails closed.
type Effect uint8

// The effects, in increasing order of permissiveness. When several
// enforced rules match, the least permissive wins: Deny overrides
// Approve, and Approve overrides Allow.
const (
	Deny    Effect = iota // refuse the call
	Approve               // run the call only after a human approves it
	Allow                 // run the call
)

// String returns "deny", "approve" or "allow".
func (e Effect) String() string {
	switch e {
	case Deny:
		return "deny"
	case Approve:
		return "approve"
	case Allow:
		return "allow"
	}
	return "invalid"
}

// Mode says whether a rule is enforced or only observed.
type Mode uint8

const (
	// Enforce rules decide the call. It is the zero value.
	Enforce Mode = iota
	// Shadow rules are evaluated and reported in Decision.Shadow, but never
	// change the decision.
	Shadow
)

// String returns "enforce" or "shadow".
func (m Mode) String() string {
	if m == Shadow {
		return "shadow"
	}
	return "enforce"
}

// Call is what a rule sees of one tool call, as the CEL variable call:
// call.id, call.tool, call.args, call.agent, call.requester, call.tenant,
// call.session, call.env, call.labels and call.time.
type Call struct {
	ID   string
	Tool string
	Args map[string]any // JSON-like values: nil, bool, int64, uint64, float64, string, []any, map[string]any
	// Reader, when Args is nil, gives the arguments instead of a map:
	// rules read them in place, and the map is built only when needed.
	// See ArgReader.
	Reader    ArgReader
	Agent     string
	Requester string
	Tenant    string
	Session   string
	Env       string
	Labels    map[string]string
	Time      time.Time
}

// Usage is what the call's principal has spent and called in the current
// budget windows, as the CEL variable usage: usage.spend["USD"],
// usage.calls and usage.caps["daily-spend"] (what is left of a cap).
type Usage struct {
	Spend map[string]float64 // by unit, in whole units (1.5 means 1.5 USD)
	Calls int64
	Caps  map[string]float64 // by budget name: what is left, in whole units
}

// Input is everything a decision is made from.
type Input struct {
	Call  Call
	Now   time.Time
	Usage Usage
}

// ShadowHit is a shadow rule that matched: what it would have decided.
type ShadowHit struct {
	Rule   string
	Effect Effect
	Reason string
}

// Decision is the outcome of evaluating a policy for one call.
type Decision struct {
	Effect Effect
	// Rule names the enforced rule that decided; empty when the policy's
	// default decided (then Default is true).
	Rule    string
	Reason  string
	Default bool
	// Version is the policy's version: the hex SHA-256 of its canonical form.
	Version string
	// Shadow lists the shadow rules that matched.
	Shadow []ShadowHit
	// ApprovalTimeout is the deciding approve rule's timeout; zero means the
	// Guard's default.
	ApprovalTimeout time.Duration
	// Err is set when the decision is a deny because a rule failed to
	// evaluate (an error, a non-bool result, a cost over the limit, a
	// cancelled context). Rule then names the failing rule.
	Err error
}

// Spec is a policy as data: what a policy file holds, and what Compile
// takes from Go code. The zero value is a policy that denies every call.
type Spec struct {
	Version  int       `json:"version" yaml:"version"`
	Default  string    `json:"default,omitempty" yaml:"default,omitempty"` // "deny" (when empty), "allow" or "approve"
	Rules    []Rule    `json:"rules,omitempty" yaml:"rules,omitempty"`
	Limits   []Limit   `json:"limits,omitempty" yaml:"limits,omitempty"`
	Budgets  []Budget  `json:"budgets,omitempty" yaml:"budgets,omitempty"`
	Costs    []Cost    `json:"costs,omitempty" yaml:"costs,omitempty"`
	Breakers []Breaker `json:"breakers,omitempty" yaml:"breakers,omitempty"`
}

// Rule is one CEL rule.
type Rule struct {
	Name   string `json:"name" yaml:"name"`
	Match  string `json:"match" yaml:"match"`   // a CEL expression of type bool
	Effect string `json:"effect" yaml:"effect"` // "allow", "deny" or "approve"
	Reason string `json:"reason,omitempty" yaml:"reason,omitempty"`
	Mode   string `json:"mode,omitempty" yaml:"mode,omitempty"` // "enforce" (when empty) or "shadow"
	// Timeout bounds the wait for a human on an approve rule, as a Go
	// duration ("5m"); empty means the Guard's default.
	Timeout string `json:"timeout,omitempty" yaml:"timeout,omitempty"`
}

// Limit is a token-bucket rate limit, enforced by the budget stage.
type Limit struct {
	Name  string   `json:"name,omitempty" yaml:"name,omitempty"`
	Tools []string `json:"tools,omitempty" yaml:"tools,omitempty"` // tool names or globs; empty means every tool
	Per   string   `json:"per,omitempty" yaml:"per,omitempty"`     // agent (when empty), tenant, requester, session or global
	Rate  string   `json:"rate" yaml:"rate"`                       // "10/minute", "5/s", "100/hour"
	Burst int      `json:"burst,omitempty" yaml:"burst,omitempty"`
	Wait  bool     `json:"wait,omitempty" yaml:"wait,omitempty"` // wait within the context's deadline instead of refusing
}

// Budget is a hard cap on spend, enforced by the budget stage.
type Budget struct {
	Name   string   `json:"name" yaml:"name"`
	Per    string   `json:"per,omitempty" yaml:"per,omitempty"` // tenant, agent or global (when empty)
	Tools  []string `json:"tools,omitempty" yaml:"tools,omitempty"`
	Limit  string   `json:"limit" yaml:"limit"`                       // an amount with a unit: "25.00 USD", "1.5M tokens"
	Window string   `json:"window,omitempty" yaml:"window,omitempty"` // day, day:Europe/Paris, hour, a duration, or total (when empty)
}

// Cost estimates a call's cost before it runs from a CEL expression of type
// double over call, in whole units of Unit.
type Cost struct {
	Tools    []string `json:"tools" yaml:"tools"`
	Estimate string   `json:"estimate" yaml:"estimate"`
	Unit     string   `json:"unit" yaml:"unit"`
}

// Breaker trips the kill switch for an agent when a threshold is crossed.
// Zero thresholds are off.
type Breaker struct {
	Name                string   `json:"name" yaml:"name"`
	Tools               []string `json:"tools,omitempty" yaml:"tools,omitempty"`
	ConsecutiveFailures int      `json:"consecutive_failures,omitempty" yaml:"consecutive_failures,omitempty"`
	ErrorRate           float64  `json:"error_rate,omitempty" yaml:"error_rate,omitempty"` // 0..1 over Window
	MinCalls            int      `json:"min_calls,omitempty" yaml:"min_calls,omitempty"`   // calls in Window before ErrorRate applies
	Window              string   `json:"window,omitempty" yaml:"window,omitempty"`         // a duration; default 1m
	DeniesPerMinute     int      `json:"denies_per_minute,omitempty" yaml:"denies_per_minute,omitempty"`
	CallsPerMinute      int      `json:"calls_per_minute,omitempty" yaml:"calls_per_minute,omitempty"`
	SpendPerMinute      string   `json:"spend_per_minute,omitempty" yaml:"spend_per_minute,omitempty"` // an amount with a unit
}

package agentguard

import (
	"context"
	"time"
)

// Principal is who a call is made for: the agent making it, the human it
// acts for, the tenant it belongs to and the session it is part of.
type Principal struct {
	Agent     string `json:"agent,omitempty"`
	Requester string `json:"requester,omitempty"`
	Tenant    string `json:"tenant,omitempty"`
	Session   string `json:"session,omitempty"`
}

type principalKey struct{}

// WithPrincipal returns a context that carries p. Calls guarded with that
// context are made for p; fields left empty are filled from the Guard's
// default principal (see WithDefaultPrincipal).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal carried by ctx, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// fill returns p with its empty fields taken from d.
func (p Principal) fill(d Principal) Principal {
	if p.Agent == "" {
		p.Agent = d.Agent
	}
	if p.Requester == "" {
		p.Requester = d.Requester
	}
	if p.Tenant == "" {
		p.Tenant = d.Tenant
	}
	if p.Session == "" {
		p.Session = d.Session
	}
	return p
}

// Cost is an amount of some unit, in exact integer millionths of the unit
// (micro-units): Cost{Unit: "USD", Micros: 1_500_000} is 1.50 USD.
type Cost struct {
	Unit   string `json:"unit"`
	Micros int64  `json:"micros"`
}

// Call is what the guard knows about one guarded call. The pipeline fills
// it before any stage runs; stages must treat it as read-only, with one
// exception: the budget stage fills Estimate from the policy's costs when
// the tool set no estimate of its own.
type Call struct {
	ID        string            // a UUIDv7, unique per call
	Time      time.Time         // when the call entered the guard
	Principal Principal         // after defaults were applied
	Tool      string            // the tool's name as given to Wrap
	Args      map[string]any    // the arguments as JSON-like values (integers as int64, or uint64 above its range; other numbers float64), unredacted
	Labels    map[string]string // the tool's labels
	Env       string            // the Guard's environment (WithEnv)
	// Estimate is the call's estimated cost, from the tool's options or the
	// policy; empty when unknown.
	Estimate []Cost

	wait time.Duration // how long the call may wait for approval after the budget stage
}

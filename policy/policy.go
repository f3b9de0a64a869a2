package policy

import "context"

// Policy is a compiled, immutable policy. It is safe for concurrent use.
//
// PLACEHOLDER until the policy package lands: it denies every call.
type Policy struct {
	spec    Spec
	version string
}

// Decide evaluates the policy for one call.
func (p *Policy) Decide(ctx context.Context, in *Input) Decision {
	return Decision{Effect: Deny, Default: true, Reason: "no policy", Version: p.Version()}
}

// Version returns the policy's version.
func (p *Policy) Version() string { return p.version }

// Spec returns a copy of the policy as data.
func (p *Policy) Spec() Spec { return p.spec }

// Compile compiles a Spec.
func Compile(s Spec) (*Policy, error) { return &Policy{spec: s}, nil }

// Parse parses a YAML or JSON policy; name is used in errors.
func Parse(name string, data []byte) (*Policy, error) { return &Policy{}, nil }

// Load reads and parses a policy file.
func Load(path string) (*Policy, error) { return &Policy{}, nil }

// UsesUsage reports whether any rule refers to usage.
func (p *Policy) UsesUsage() bool { return false }

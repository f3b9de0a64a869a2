package killswitch

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrHalted is matched, through errors.Is, by every refusal and every
// context cancellation cause that a trip produces.
var ErrHalted = errors.New("killswitch: halted")

// ErrNotTripped is returned by Resume for a scope that is not tripped.
var ErrNotTripped = errors.New("killswitch: scope not tripped")

// Scope says which calls a trip stops. An empty field matches any value,
// so the zero Scope is everything; Scope{Agent: "a"} is every call of
// agent a; Scope{Agent: "a", Tool: "t"} is only a's calls to tool t.
type Scope struct {
	Tenant string `json:"tenant,omitempty"`
	Agent  string `json:"agent,omitempty"`
	Tool   string `json:"tool,omitempty"`
}

// Everything is the scope that covers every call.
var Everything = Scope{}

// Key is the identity of one call, as the switch sees it.
type Key struct {
	Tenant string
	Agent  string
	Tool   string
}

// Covers reports whether a trip of s stops a call with key k: every
// non-empty field of s equals the same field of k.
func (s Scope) Covers(k Key) bool {
	return (s.Tenant == "" || s.Tenant == k.Tenant) &&
		(s.Agent == "" || s.Agent == k.Agent) &&
		(s.Tool == "" || s.Tool == k.Tool)
}

// IsEverything reports whether s is the zero Scope.
func (s Scope) IsEverything() bool { return s == Scope{} }

// String returns "everything", or the non-empty fields as
// "tenant=X,agent=Y,tool=Z" in that order.
func (s Scope) String() string {
	if s.IsEverything() {
		return "everything"
	}
	var b strings.Builder
	add := func(k, v string) {
		if v == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	add("tenant", s.Tenant)
	add("agent", s.Agent)
	add("tool", s.Tool)
	return b.String()
}

// validate rejects values that could not be written to a kill file or
// shown on one line.
func (s Scope) validate() error {
	for _, f := range [...]struct{ name, v string }{{"tenant", s.Tenant}, {"agent", s.Agent}, {"tool", s.Tool}} {
		if len(f.v) > maxField {
			return fmt.Errorf("killswitch: scope %s is %d bytes long, more than %d", f.name, len(f.v), maxField)
		}
		if strings.ContainsAny(f.v, "\r\n\x00") {
			return fmt.Errorf("killswitch: scope %s %q contains a line break or NUL", f.name, f.v)
		}
		if f.v != strings.TrimSpace(f.v) {
			return fmt.Errorf("killswitch: scope %s %q has leading or trailing space", f.name, f.v)
		}
	}
	return nil
}

const maxField = 256

// Halt is a trip in force: its scope, who tripped it, why, and when. It is
// the error that Enter returns for a call in a tripped scope and the cause
// (context.Cause) of the contexts a trip cancels. It unwraps to ErrHalted.
//
// A *Halt handed out by the switch is never modified; do not modify it.
type Halt struct {
	Scope Scope     `json:"scope"`
	Who   string    `json:"who"`
	Why   string    `json:"why"`
	At    time.Time `json:"at"`
}

// Error returns "killswitch: halted (SCOPE) by WHO: WHY".
func (h *Halt) Error() string {
	var b strings.Builder
	b.WriteString("killswitch: halted (")
	b.WriteString(h.Scope.String())
	b.WriteString(")")
	if h.Who != "" {
		b.WriteString(" by ")
		b.WriteString(h.Who)
	}
	if h.Why != "" {
		b.WriteString(": ")
		b.WriteString(h.Why)
	}
	return b.String()
}

// Unwrap returns ErrHalted.
func (h *Halt) Unwrap() error { return ErrHalted }

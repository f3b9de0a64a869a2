package approval

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Approver decides approval requests. It is usually a human behind a
// console, a chat message, a web page or a webhook.
type Approver interface {
	// Approve shows r to whoever decides and returns their verdict.
	//
	// It must return when ctx is done, with ctx's error; the Gate stops
	// waiting then anyway and refuses the call. The returned Verdict must
	// name r.ID and r.Hash (Request.Approve and Request.Reject fill them);
	// a verdict naming another request or hash is refused. A non-nil error
	// refuses the call. Approve must not modify r. Implementations must be
	// safe for concurrent use: many calls may wait at once.
	Approve(ctx context.Context, r *Request) (Verdict, error)
}

// Func adapts a function to an Approver.
type Func func(ctx context.Context, r *Request) (Verdict, error)

// Approve calls f(ctx, r).
func (f Func) Approve(ctx context.Context, r *Request) (Verdict, error) { return f(ctx, r) }

// AllowAll approves every request, as "allow-all". It is meant for tests.
var AllowAll Approver = Func(func(_ context.Context, r *Request) (Verdict, error) {
	return r.Approve("allow-all", ""), nil
})

// DenyAll rejects every request, as "deny-all". It is meant for tests and
// as a closed default.
var DenyAll Approver = Func(func(_ context.Context, r *Request) (Verdict, error) {
	return r.Reject("deny-all", ""), nil
})

// Principal is who a call is made for.
type Principal struct {
	Agent     string `json:"agent"`
	Requester string `json:"requester"`
	Tenant    string `json:"tenant"`
	Session   string `json:"session"`
}

// Amount is an exact amount of a unit in integer millionths (micro-units):
// Amount{Unit: "USD", Micros: 1_500_000} is 1.50 USD.
type Amount struct {
	Unit   string `json:"unit"`
	Micros int64  `json:"micros"`
}

// String formats a as a decimal with at least two fraction digits and its
// unit, such as "1.50 USD" or "0.000125 USD".
func (a Amount) String() string {
	neg := a.Micros < 0
	m := uint64(a.Micros)
	if neg {
		m = -m
	}
	frac := fmt.Sprintf("%06d", m%1_000_000)
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	s := strconv.FormatUint(m/1_000_000, 10) + "." + frac
	if neg {
		s = "-" + s
	}
	if a.Unit != "" {
		s += " " + a.Unit
	}
	return s
}

// Request is a decision card: everything a person needs to decide one
// call, and the hash that binds the answer to exactly that call.
//
// A Request is not modified by the Gate after it is handed to an
// Approver; approvers must treat it as read-only.
type Request struct {
	// ID identifies the request; the guard uses the call's ID. Unique.
	ID string `json:"id"`
	// Tool is the name of the tool the call would run.
	Tool string `json:"tool"`
	// Args are the call's arguments as JSON-like values, redacted when the
	// guard redacts (secrets replaced before anyone sees them).
	Args      map[string]any `json:"args"`
	Principal Principal      `json:"principal"`
	// Labels are the tool's labels, redacted as Args are.
	Labels map[string]string `json:"labels,omitempty"`
	// Rule and Reason say which rule asked for approval and why.
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Estimate is the call's estimated cost; BudgetLeft what is left of
	// the caps that apply after it. Both are empty when unknown.
	Estimate   []Amount `json:"estimate,omitempty"`
	BudgetLeft []Amount `json:"budget_left,omitempty"`
	// Created is when the request was asked; Deadline when it expires.
	// The Gate sets both when they are zero.
	Created  time.Time `json:"created"`
	Deadline time.Time `json:"deadline"`
	// Hash is the lowercase hex SHA-256 of the canonical encoding of the
	// call (see the package documentation and HashCall). The Gate computes
	// it from Tool, Args and Principal when it is empty; the guard computes
	// it from the unredacted arguments.
	Hash string `json:"hash"`
}

// UnmarshalJSON decodes a card as encoding/json does, except that the
// numbers in Args keep their exact values: an integer is an int64 (a
// uint64 above the int64 range), as the guard holds it, and any other
// number a float64. A card read back from JSON (a shared store, a webhook
// receiver written in Go) shows the account 9007199254740993 the call
// has, not the nearest float64.
func (r *Request) UnmarshalJSON(b []byte) error {
	type plain Request
	v := struct {
		*plain
		Args json.RawMessage `json:"args"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	r.Args = nil
	if len(v.Args) == 0 || string(v.Args) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(v.Args))
	dec.UseNumber()
	var args map[string]any
	if err := dec.Decode(&args); err != nil {
		return err
	}
	if err := exactNumbers(args); err != nil {
		return fmt.Errorf("approval: card arguments: %w", err)
	}
	r.Args = args
	return nil
}

// exactNumbers replaces, in place, every json.Number inside v (a map or
// slice) with an int64, a uint64 or a float64.
func exactNumbers(v any) error {
	conv := func(e any) (any, error) {
		n, ok := e.(json.Number)
		if !ok {
			return e, exactNumbers(e)
		}
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
			return u, nil
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", n, err)
		}
		return f, nil
	}
	var err error
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if v[k], err = conv(e); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if v[i], err = conv(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// Approve returns a verdict approving r, bound to its ID and hash.
func (r *Request) Approve(by, note string) Verdict {
	return Verdict{Approved: true, By: by, Note: note, ID: r.ID, Hash: r.Hash}
}

// ApproveFor returns a verdict approving r that also grants g.
func (r *Request) ApproveFor(by, note string, g Grant) Verdict {
	v := r.Approve(by, note)
	v.Grant = &g
	return v
}

// Reject returns a verdict rejecting r, bound to its ID and hash.
func (r *Request) Reject(by, note string) Verdict {
	return Verdict{Approved: false, By: by, Note: note, ID: r.ID, Hash: r.Hash}
}

// Verdict is an answer to one Request.
type Verdict struct {
	Approved bool   `json:"approved"`
	By       string `json:"by"`             // who decided
	Note     string `json:"note,omitempty"` // why, in their words
	// ID and Hash name the request the verdict answers; the Gate accepts
	// it only for that request.
	ID   string `json:"id"`
	Hash string `json:"hash"`
	// Grant, on an approval, asks the Gate to remember it: later calls in
	// the grant's scope skip the wait until it expires. It is ignored on a
	// rejection.
	Grant *Grant `json:"grant,omitempty"`
}

// Scope says which later calls a grant covers.
type Scope uint8

// The scopes, from narrowest to widest. The zero value is ScopeCall.
const (
	// ScopeCall covers this call only: nothing is remembered.
	ScopeCall Scope = iota
	// ScopeSameArgs covers calls with the same hash: the same tool with
	// the same arguments for the same principal.
	ScopeSameArgs
	// ScopeTool covers every call to the same tool by the same agent in
	// the same tenant.
	ScopeTool
	// ScopeAgent covers every call by the same agent in the same tenant.
	ScopeAgent
)

var scopeNames = [...]string{"call", "args", "tool", "agent"}

// String returns "call", "args", "tool" or "agent".
func (s Scope) String() string {
	if int(s) < len(scopeNames) {
		return scopeNames[s]
	}
	return "scope(" + strconv.Itoa(int(s)) + ")"
}

// ParseScope parses the names String returns.
func ParseScope(s string) (Scope, error) {
	for i, n := range scopeNames {
		if s == n {
			return Scope(i), nil
		}
	}
	return 0, fmt.Errorf("approval: unknown grant scope %q (want call, args, tool or agent)", s)
}

// MarshalText encodes s as its name.
func (s Scope) MarshalText() ([]byte, error) {
	if int(s) >= len(scopeNames) {
		return nil, fmt.Errorf("approval: invalid grant scope %d", s)
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a name String returns.
func (s *Scope) UnmarshalText(b []byte) error {
	v, err := ParseScope(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Grant asks for a remembered approval: calls in Scope skip the wait for
// Duration. A Grant with ScopeCall or a Duration of zero or less remembers
// nothing. Durations over the Gate's MaxGrant are shortened to it.
type Grant struct {
	Scope    Scope         `json:"scope"`
	Duration time.Duration `json:"duration"`
}

// MarshalJSON encodes g with its duration as a Go duration string ("10m0s").
func (g Grant) MarshalJSON() ([]byte, error) {
	sc, err := g.Scope.MarshalText()
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		Scope    string `json:"scope"`
		Duration string `json:"duration"`
	}{string(sc), g.Duration.String()})
}

// UnmarshalJSON decodes the form MarshalJSON writes.
func (g *Grant) UnmarshalJSON(b []byte) error {
	var w struct {
		Scope    Scope  `json:"scope"`
		Duration string `json:"duration"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("approval: grant: %w", err)
	}
	d, err := time.ParseDuration(w.Duration)
	if err != nil {
		return fmt.Errorf("approval: grant duration: %w", err)
	}
	if d < 0 {
		return fmt.Errorf("approval: grant duration %s is negative", d)
	}
	*g = Grant{Scope: w.Scope, Duration: d}
	return nil
}

// HashCall returns the lowercase hex SHA-256 of the canonical encoding of
// a call to tool with args for p, as described in the package
// documentation. It fails when args cannot be encoded as JSON.
func HashCall(tool string, args map[string]any, p Principal) (string, error) {
	b, err := Canonical(tool, args, p)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Canonical returns the canonical encoding of a call that HashCall
// hashes: the JSON object {"args":…,"principal":{…},"tool":…} with every
// object's keys sorted, no insignificant space and no HTML escaping.
func Canonical(tool string, args map[string]any, p Principal) ([]byte, error) {
	if args == nil {
		args = map[string]any{}
	}
	// Round-trip the arguments so that every object, including structs
	// inside them, becomes a map whose keys the encoder sorts, and numbers
	// keep the text of their first encoding.
	raw, err := marshal(args)
	if err != nil {
		return nil, fmt.Errorf("approval: encoding arguments: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var norm any
	if err := dec.Decode(&norm); err != nil {
		return nil, fmt.Errorf("approval: encoding arguments: %w", err)
	}
	v := map[string]any{
		"tool": tool,
		"args": norm,
		"principal": map[string]any{
			"agent": p.Agent, "requester": p.Requester, "tenant": p.Tenant, "session": p.Session,
		},
	}
	return marshal(v)
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// validHash reports whether s is 64 lowercase hex digits.
func validHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

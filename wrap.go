package agentguard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
)

// ToolOption configures one wrapped tool.
type ToolOption func(*toolConfig)

type toolConfig struct {
	labels      map[string]string
	denyAsValue bool
	preemptive  bool
	estimate    func(*Call) ([]Cost, error)
	resultCost  func(out any) []Cost
	args        *argsPlan // the tool's input as call.args without JSON; nil when it needs JSON
	runCtx      ctxPlan   // how the tool gets the guarded context (toolctx.go)
	denyAs      func(*DeniedError) any
	denyAsType  reflect.Type // the result type denyAs returns
	err         error        // a bad option or argument: every call is an invalid-call denial
	hold        *DeniedError
	// estimateFixed is set when estimate is Estimate's: it returns fixed
	// costs and keeps no call.
	estimateFixed bool
	// poolable is set when no option of the tool is given a call it could
	// keep after the call ends (see flight).
	poolable bool
	// plan is the audit plan of the tool's records, kept here by the
	// built-in recorder so that a call finds it without a lookup.
	plan atomic.Pointer[toolPlan]
}

// Labels attaches labels to a tool, as key/value pairs; the policy sees
// them as call.labels and the audit log records them, redacted as the
// call's arguments are (a label under a secret key, such as "api_key",
// is recorded as its mark).
func Labels(kv ...string) ToolOption {
	return func(c *toolConfig) {
		if len(kv)%2 != 0 {
			c.err = errors.Join(c.err, fmt.Errorf("agentguard: Labels: odd number of arguments (%d)", len(kv)))
			return
		}
		if c.labels == nil {
			c.labels = make(map[string]string, len(kv)/2)
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i] == "" {
				c.err = errors.Join(c.err, errors.New("agentguard: Labels: empty key"))
				continue
			}
			c.labels[kv[i]] = kv[i+1]
		}
	}
}

// DenyAsValue makes a wrapped tool whose result is a string return a
// denial as its result, with a nil error: for frameworks that show the
// model a tool's result but hide its errors. The text is DeniedError's
// Error. On a tool whose result is not a string kind, every call is denied
// as invalid.
func DenyAsValue() ToolOption {
	return func(c *toolConfig) { c.denyAsValue = true }
}

// DenyAs makes a wrapped tool return a denial as its result, built by f,
// with a nil error: for frameworks that show the model a tool's result but
// abort the run on its errors (Eino, Genkit, langchaingo). Out must be the
// tool's result type; on a tool whose result type differs every call is
// denied as invalid. f gets the denial (its Error is the text written for
// the model; it marshals to JSON); the tool's own errors pass through
// untouched.
//
//	agentguard.DenyAs(func(d *agentguard.DeniedError) Receipt { return Receipt{Error: d.Error()} })
func DenyAs[Out any](f func(*DeniedError) Out) ToolOption {
	return func(c *toolConfig) {
		if f == nil {
			c.err = errors.Join(c.err, errors.New("agentguard: DenyAs: nil function"))
			return
		}
		c.denyAs = func(d *DeniedError) any { return f(d) }
		c.denyAsType = reflect.TypeFor[Out]()
	}
}

// Cooperative declares that the tool returns promptly when its context is
// cancelled: it runs on the caller's goroutine, and a trip of the kill
// switch reaches its caller as ErrHalted when the tool returns. This is the
// default; the option undoes an earlier Preemptive.
func Cooperative() ToolOption {
	return func(c *toolConfig) { c.preemptive = false }
}

// Preemptive runs the tool, under a kill switch, on a goroutine of its own,
// so that a trip returns ErrHalted to the caller at once even when the
// tool ignores its context (its late result is discarded). Use it for
// tools that may block without watching their context: a library call
// with no context, a stuck network read. It costs a goroutine and a
// handoff per call (about 5 to 10 µs on a 2-core machine).
//
// This used to be the default for every tool; now tools run on the
// caller's goroutine unless they are declared Preemptive.
func Preemptive() ToolOption {
	return func(c *toolConfig) { c.preemptive = true }
}

// Hold refuses every call made with this option before the kill switch
// and the policy are asked: a denial of CodePolicyDenied with the rule and
// reason given, recorded like any other. Adapters use it for a call they
// know must not run whatever the policy says, such as a call to an MCP
// tool whose definition changed since a person accepted it.
func Hold(rule, reason string) ToolOption {
	return func(c *toolConfig) { c.hold = &DeniedError{Rule: rule, Reason: reason} }
}

// Estimate sets the tool's estimated cost per call, reserved against the
// budget before the call runs.
func Estimate(costs ...Cost) ToolOption {
	set := EstimateFunc(func(*Call) ([]Cost, error) { return costs, nil })
	return func(c *toolConfig) {
		set(c)
		c.estimateFixed = true
	}
}

// EstimateFunc sets a function that estimates a call's cost from the call
// (its arguments, its principal). An error denies the call.
func EstimateFunc(f func(c *Call) ([]Cost, error)) ToolOption {
	return func(c *toolConfig) {
		if f == nil {
			c.err = errors.Join(c.err, errors.New("agentguard: EstimateFunc: nil function"))
			return
		}
		c.estimate, c.estimateFixed = f, false
	}
}

// ResultCost sets a function that computes a call's actual cost from the
// tool's result: an LLM call's token usage, say. It is added to what the
// tool reported with Charge. Without ResultCost and without Charge, a call
// that returns is charged its estimate. A ResultCost that panics has its
// panic recorded as the call's result (OutcomePanic) and the call charged
// what it reported with Charge plus its estimate; then the panic is
// re-raised, as a tool's is.
func ResultCost[Out any](f func(Out) []Cost) ToolOption {
	return func(c *toolConfig) {
		if f == nil {
			c.err = errors.Join(c.err, errors.New("agentguard: ResultCost: nil function"))
			return
		}
		c.resultCost = func(v any) []Cost {
			o, ok := v.(Out)
			if !ok {
				return nil
			}
			return f(o)
		}
	}
}

func newToolConfig(tool string, fnNil bool, opts []ToolOption) *toolConfig {
	cfg := &toolConfig{}
	for _, o := range opts {
		if o == nil {
			cfg.err = errors.Join(cfg.err, errors.New("agentguard: nil ToolOption"))
			continue
		}
		o(cfg)
	}
	if err := validTool(tool); err != nil {
		cfg.err = errors.Join(cfg.err, err)
	}
	if fnNil {
		cfg.err = errors.Join(cfg.err, fmt.Errorf("agentguard: tool %q: nil function", tool))
	}
	cfg.poolable = cfg.estimate == nil || cfg.estimateFixed
	return cfg
}

// validTool checks a tool's name: 1 to 128 bytes of letters, digits and
// _ . - : /.
func validTool(name string) error {
	if name == "" {
		return errors.New("agentguard: empty tool name")
	}
	if len(name) > 128 {
		return fmt.Errorf("agentguard: tool name of %d bytes (at most 128)", len(name))
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '.' || b == '-' || b == ':' || b == '/') {
			return fmt.Errorf("agentguard: tool name %q: byte %d (%q) is not a letter, digit or one of _.-:/", name, i, b)
		}
	}
	return nil
}

// Wrap guards fn as the tool named tool. It returns a function of the same
// type: every call through it is identified, checked against the kill
// switch and the policy, rate limited, reserved against the budget,
// approved where the policy asks, recorded, and only then run. A refused
// call returns a *DeniedError (see DenyAsValue) and fn does not run.
//
// The tool's own errors pass through untouched. A tool that panics has
// its panic recorded, then re-raised. With a kill switch, a trip during
// the call cancels the tool's context and the caller gets ErrHalted when
// the tool returns (its result is discarded); with Preemptive, at once,
// even when the tool ignores its context.
//
// C is the context type of fn: context.Context, or a framework's own type
// that embeds it. The tool gets a context that the kill switch cancels and
// that Charge and CallFrom understand: with context.Context, that context;
// with a struct or a pointer to a struct embedding context.Context
// (Genkit's *ai.ToolContext), a shallow copy whose embedded context is the guarded
// one; with any other type (ADK's tool.Context, an interface), the
// caller's value, bound to the call while it runs, so that Charge and
// CallFrom accept it and Context returns the guarded context.
//
// Bad arguments (a nil Guard, a nil fn, an invalid tool name, a bad
// option) do not panic: every call is denied with ErrInvalidCall, saying
// what is wrong.
func Wrap[C context.Context, In, Out any](g *Guard, tool string, fn func(C, In) (Out, error), opts ...ToolOption) func(C, In) (Out, error) {
	cfg := newToolConfig(tool, fn == nil, opts)
	checkDenyAsValue[Out](cfg, tool)
	checkDenyAs[Out](cfg, tool)
	cfg.args = planArgs(reflect.TypeFor[In]())
	cfg.runCtx = planCtx[C]()
	return func(ctx C, in In) (Out, error) {
		if cfg.args != nil {
			// The plan reads in where it is, into a view that the
			// flight keeps (no map: see flight.lazy), or into a map when
			// the struct has more fields than a view holds; only a value
			// it cannot take (see argsPlan.load) is boxed for the JSON
			// path.
			var v argsView
			if viewOf(cfg.args, &in, &v) {
				return guarded(g, cfg, tool, ctx, nil, &v, in, fn)
			}
			if len(cfg.args.fields) > maxViewArgs {
				if m, ok := argsOf(cfg.args, &in); ok {
					return guarded(g, cfg, tool, ctx, planned(m), nil, in, fn)
				}
			}
		}
		return guarded(g, cfg, tool, ctx, in, nil, in, fn)
	}
}

// WrapJSON guards a tool that takes its arguments as raw JSON, the way LLM
// APIs deliver tool calls (OpenAI's Arguments string, Anthropic's
// json.RawMessage). The policy sees the decoded object as call.args, and
// the tool gets the same bytes. Otherwise it behaves as Wrap.
//
// Arguments that could be read two ways are denied as invalid
// (CodeInvalidCall), naming the key and where it is: malformed JSON; an
// object, at any depth, with a duplicate key or with two keys equal under
// Unicode simple case folding ("to" and "TO", "task" and "tas\u212A" with a
// Kelvin sign, "s" and "\u017F"), since encoding/json matches struct
// fields case-insensitively and takes the last, while other decoders take
// the first; invalid UTF-8 in a key or string, raw or as a lone surrogate
// escape, which decoders replace with U+FFFD; an integer that does not fit
// in 64 bits; and a number with more digits than a double holds. Integers
// are exact: int64, or uint64 above its range (CEL int and uint). See
// WrapJSONAs for a tool that takes its own type.
func WrapJSON[C context.Context, A ~string | ~[]byte, Out any](g *Guard, tool string, fn func(C, A) (Out, error), opts ...ToolOption) func(C, A) (Out, error) {
	cfg := newToolConfig(tool, fn == nil, opts)
	checkDenyAsValue[Out](cfg, tool)
	checkDenyAs[Out](cfg, tool)
	cfg.runCtx = planCtx[C]()
	return func(ctx C, raw A) (Out, error) {
		return guarded(g, cfg, tool, ctx, rawJSON(raw), nil, raw, fn)
	}
}

// checkDenyAs makes a DenyAs whose result type is not the tool's an
// invalid-call error on every call.
func checkDenyAs[Out any](cfg *toolConfig, tool string) {
	if cfg.denyAs != nil && cfg.denyAsType != reflect.TypeFor[Out]() {
		cfg.err = errors.Join(cfg.err, fmt.Errorf("agentguard: DenyAs on tool %q returns %v, not the tool's result type %v", tool, cfg.denyAsType, reflect.TypeFor[Out]()))
	}
}

// WrapJSONAs guards fn, a tool that takes its own type In, for callers
// that hold raw JSON arguments A (a string or bytes): the returned function
// decodes the JSON once, and the policy, the approval hash, the card and
// the audit log see the value fn receives, field by field.
//
// The JSON is first checked as WrapJSON checks it (no duplicate or
// case-folded keys, valid UTF-8, exact numbers), then decoded into In by
// encoding/json with unknown fields refused (a field the tool would
// silently drop is a mistake the model should hear about) and with
// numbers in interface values kept as json.Number, so that they stay
// exact. call.args is then built from the decoded In, as Wrap builds it,
// so what the policy judges is what runs: a key the struct matched
// case-insensitively is seen under the field's own name. A number the
// type cannot hold exactly (9007199254740993 into a float64 field) is
// refused rather than rounded. Arguments that fail any step are denied as
// invalid (CodeInvalidCall) and fn does not run. Empty arguments and null
// are In's zero value.
//
// A is the first type parameter so that it alone can be given:
//
//	send := agentguard.WrapJSONAs[string](g, "send_email", sendEmail)
//	out, err := send(ctx, toolCall.Arguments)
func WrapJSONAs[A ~string | ~[]byte, C context.Context, In, Out any](g *Guard, tool string, fn func(C, In) (Out, error), opts ...ToolOption) func(C, A) (Out, error) {
	cfg := newToolConfig(tool, fn == nil, opts)
	checkDenyAsValue[Out](cfg, tool)
	checkDenyAs[Out](cfg, tool)
	cfg.args = planArgs(reflect.TypeFor[In]())
	cfg.runCtx = planCtx[C]()
	return func(ctx C, raw A) (Out, error) {
		in, args, err := decodeInto[In]([]byte(raw), cfg.args)
		if err != nil {
			return guarded(g, cfg, tool, ctx, argsFailure{err}, nil, in, fn)
		}
		return guarded(g, cfg, tool, ctx, args, nil, in, fn)
	}
}

// argsFailure carries arguments that could not be decoded to the
// pipeline, which denies the call as invalid.
type argsFailure struct{ err error }

// checkDenyAsValue refuses DenyAsValue on a tool whose result is no string.
func checkDenyAsValue[Out any](cfg *toolConfig, tool string) {
	if cfg.denyAsValue && reflect.TypeFor[Out]().Kind() != reflect.String {
		cfg.err = errors.Join(cfg.err, fmt.Errorf("agentguard: DenyAsValue on tool %q whose result type %v is not a string", tool, reflect.TypeFor[Out]()))
	}
}

// planned marks the map the args plan built from a Wrap input: it is
// call.args as it is, with nothing left to check.
type planned map[string]any

// rawJSON marks arguments that are already JSON.
type rawJSON []byte

func guarded[C context.Context, In, Out any](g *Guard, cfg *toolConfig, tool string, ctx C, args any, view *argsView, in In, fn func(C, In) (Out, error)) (Out, error) {
	f, err := g.begin(ctx, tool, cfg, args, view, true)
	if err != nil {
		return denied[Out](cfg, err)
	}
	defer f.release() // after unbind
	runCtx, unbind := runContext(cfg.runCtx, ctx, f)
	defer unbind()
	if !f.halting || !cfg.preemptive {
		out, p, err := runInline(fn, runCtx, in)
		if p != nil {
			f.finish(ctx, nil, fmt.Errorf("panic: %v", p.v), OutcomePanic)
			panic(p.v)
		}
		outcome := OutcomeOK
		if err != nil {
			outcome = OutcomeError
		}
		if ferr := f.finish(ctx, resultOf(cfg, out), err, outcome); replaced(ferr, err) {
			return denied[Out](cfg, ferr)
		}
		return out, err
	}
	// A Preemptive tool, under a kill switch, runs on its own goroutine, so
	// that a trip returns to the caller at once even if the tool ignores
	// its context. Its late result is discarded.
	done := make(chan toolResult[Out], 1)
	go func() {
		out, p, err := runInline(fn, runCtx, in)
		done <- toolResult[Out]{out, err, p}
	}()
	select {
	case r := <-done:
		if r.p != nil {
			f.finish(ctx, nil, fmt.Errorf("panic: %v", r.p.v), OutcomePanic)
			panic(r.p.v)
		}
		outcome := OutcomeOK
		if r.err != nil {
			outcome = OutcomeError
		}
		if ferr := f.finish(ctx, resultOf(cfg, r.out), r.err, outcome); replaced(ferr, r.err) {
			return denied[Out](cfg, ferr)
		}
		return r.out, r.err
	case <-f.ctx.Done():
		err := f.finish(ctx, nil, nil, OutcomeHalted)
		return denied[Out](cfg, err)
	}
}

// resultOf returns the tool's result as finish needs it: only ResultCost
// reads it, so without one it is not boxed (which would allocate).
func resultOf[Out any](cfg *toolConfig, out Out) any {
	if cfg.resultCost == nil {
		return nil
	}
	return out
}

// replaced reports whether finish replaced the tool's error with the kill
// switch's denial. It never compares the tool's error as an interface:
// its type may not be comparable, and == would panic.
func replaced(ferr, toolErr error) bool {
	d, ok := ferr.(*DeniedError)
	if !ok {
		return false
	}
	own, ok := toolErr.(*DeniedError)
	return !ok || own != d
}

type toolPanic struct{ v any }

type toolResult[Out any] struct {
	out Out
	err error
	p   *toolPanic
}

func runInline[C any, In, Out any](fn func(C, In) (Out, error), ctx C, in In) (out Out, p *toolPanic, err error) {
	defer func() {
		if v := recover(); v != nil {
			p = &toolPanic{v}
		}
	}()
	out, err = fn(ctx, in)
	return out, nil, err
}

// denied returns a denial the way the tool is configured to.
func denied[Out any](cfg *toolConfig, err error) (Out, error) {
	var zero Out
	if cfg.denyAs != nil && cfg.err == nil {
		var d *DeniedError
		if errors.As(err, &d) {
			if out, ok := cfg.denyAs(d).(Out); ok {
				return out, nil
			}
		}
	}
	if cfg.denyAsValue && cfg.err == nil {
		var d *DeniedError
		if errors.As(err, &d) {
			v := reflect.New(reflect.TypeFor[Out]()).Elem()
			v.SetString(d.Error())
			return v.Interface().(Out), nil
		}
	}
	return zero, err
}

// toArgs converts a tool's input to the map the policy sees as call.args:
// a JSON object's fields. Inputs that are not objects are seen as
// {"value": input}; a nil input as {}. Raw JSON (WrapJSON, Check or Wrap
// with a json.RawMessage) is decoded strictly; a Go value goes through
// the plan or its JSON encoding. Numbers written as integers are int64 (or
// uint64 above its range), exactly; see decodeArgs.
func toArgs(in any, plan *argsPlan) (map[string]any, error) {
	switch v := in.(type) {
	case nil:
		return map[string]any{}, nil
	case planned:
		return v, nil
	case map[string]any:
		// A framework's decoded JSON: its keys are checked as raw JSON's,
		// and json.Numbers are read as numbers, in a copy.
		numbers, err := checkFolded(v)
		if err != nil || !numbers {
			return refused(v, err)
		}
		m, err := exactCopy(v)
		if err != nil {
			return refused(nil, err)
		}
		return m.(map[string]any), nil
	case rawJSON:
		return refused(decodeArgs(v, strictRaw))
	case json.RawMessage:
		return refused(decodeArgs(v, strictRaw))
	case argsFailure:
		return refused(nil, v.err)
	}
	if plan != nil {
		if m, ok := plan.args(in); ok {
			return m, nil
		}
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("agentguard: arguments of type %T cannot be encoded as JSON: %w", in, err)
	}
	return refused(decodeArgs(b, fromGo))
}

// refused turns the error of arguments that were refused into the
// invalid-call denial the model reads: what is wrong and where (never a
// value), so that it can correct the call.
func refused(m map[string]any, err error) (map[string]any, error) {
	if err == nil {
		return m, nil // before ae, which escapes: no allocation on this path
	}
	var ae *argsError
	if !errors.As(err, &ae) {
		return m, err
	}
	return nil, &DeniedError{Code: CodeInvalidCall, Reason: "the arguments were refused: " + ae.msg, Err: err}
}

// Check is the first half of the two-step form, for adapters and code that
// cannot be wrapped: it runs the pipeline up to the point where the tool
// would run. On success the caller runs the tool with the Ticket's Context
// and then calls Ticket.Done exactly once; on failure the error is the
// recorded denial and the tool must not run. args is the tool's input as
// Wrap would see it (a struct; a map, refused when two of its keys, at any
// depth, are equal under case folding; or json.RawMessage for raw JSON,
// which is checked as WrapJSON checks it).
func (g *Guard) Check(ctx context.Context, tool string, args any, opts ...ToolOption) (*Ticket, error) {
	cfg := newToolConfig(tool, false, opts)
	if raw, ok := args.(json.RawMessage); ok {
		args = rawJSON(raw)
	}
	f, err := g.begin(ctx, tool, cfg, args, nil, false)
	if err != nil {
		return nil, err
	}
	return &Ticket{f: f}, nil
}

// Ticket is an admitted call of the two-step form. It is safe for
// concurrent use.
type Ticket struct {
	f      *flight
	mu     sync.Mutex
	unbind func()
}

// Bind binds c, the framework's own context value that the tool runs with
// (ADK's tool.Context), to the call until Done: Charge and CallFrom given c
// then act on this call, and Context(c) returns the ticket's Context. It is
// for adapters that cannot hand the tool the ticket's Context; only pointer
// values can be bound (others are ignored). A second Bind replaces the
// first.
func (t *Ticket) Bind(c context.Context) {
	unbind := bind(c, t.f)
	t.mu.Lock()
	prev := t.unbind
	t.unbind = unbind
	t.mu.Unlock()
	if prev != nil {
		prev()
	}
}

// Context returns the context to run the tool with: the kill switch
// cancels it, and Charge and CallFrom understand it.
func (t *Ticket) Context() context.Context { return t.f.ctx }

// Call returns the admitted call.
func (t *Ticket) Call() *Call {
	// A Ticket's flight is never pooled, so never lazy: its Args is set.
	return &t.f.call
}

// Done ends the call with the tool's result and error: it settles the
// budget and records the result. It returns err unchanged, or a
// *DeniedError with ErrHalted when the kill switch stopped the call while
// it ran (the result must then be discarded). A second Done returns an
// error and records nothing.
func (t *Ticket) Done(result any, err error) error {
	t.mu.Lock()
	unbind := t.unbind
	t.unbind = nil
	t.mu.Unlock()
	if unbind != nil {
		defer unbind()
	}
	outcome := OutcomeOK
	if err != nil {
		outcome = OutcomeError
	}
	return t.f.finish(t.f.ctx, result, err, outcome)
}

// Halted returns a channel closed when the kill switch halts the call, or
// nil without a kill switch. Adapters that cannot replace their context
// select on it to return ErrHalted at once.
func (t *Ticket) Halted() <-chan struct{} {
	if !t.f.halting {
		return nil
	}
	return t.f.ctx.Done()
}

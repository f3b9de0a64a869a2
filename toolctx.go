package agentguard

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
)

// A tool whose context type C is not context.Context (ADK's tool.Context,
// Genkit's *ai.ToolContext) cannot simply be given the guarded context. The
// guard reaches it in one of two ways, chosen once per wrapped tool:
//
//   - C is a struct, or a pointer to a struct, that embeds context.Context
//     (Genkit's *ai.ToolContext): the tool gets a shallow copy whose embedded context
//     is the guarded one, so cancellation, Charge and CallFrom work as with
//     a plain context.
//   - otherwise (an interface such as ADK's tool.Context): the framework
//     value is bound to the call while the tool runs, so Charge, CallFrom
//     and Context given that value act on the call. Context(c) returns the
//     guarded context, which the kill switch cancels.

// ctxPlan is how a tool of context type C gets the guarded context.
type ctxPlan struct {
	embed int  // index of the embedded context.Context in C's struct; -1 when C is no such struct
	ptr   bool // C is a pointer to that struct
}

var contextType = reflect.TypeFor[context.Context]()

func planCtx[C context.Context]() ctxPlan {
	t := reflect.TypeFor[C]()
	ptr := t.Kind() == reflect.Pointer
	if ptr {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return ctxPlan{embed: -1}
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.IsExported() && f.Type == contextType {
			return ctxPlan{embed: i, ptr: ptr}
		}
	}
	return ctxPlan{embed: -1}
}

// runContext returns the context value the tool runs with, and a function
// to call when it has returned.
func runContext[C context.Context](plan ctxPlan, ctx C, f *flight) (C, func()) {
	if rc, ok := any(f.ctx).(C); ok {
		return rc, nothing
	}
	if plan.embed >= 0 {
		c := ctx // &ctx itself would move ctx to the heap on every path
		v := reflect.ValueOf(&c).Elem()
		if plan.ptr && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct {
			cp := reflect.New(v.Type())
			cp.Elem().Set(v)
			cp.Elem().Field(plan.embed).Set(reflect.ValueOf(f.ctx))
			if !plan.ptr {
				cp = cp.Elem()
			}
			return cp.Interface().(C), nothing
		}
	}
	return ctx, bind(ctx, f)
}

// nothing is the unbind function of a context that needed no binding. A
// func literal in runContext would allocate: it closes over the generic
// function's dictionary.
func nothing() {}

// bindings maps framework context values to the tool contexts of the calls
// they run, for tools whose context cannot be replaced. nbound counts them, so that lookups cost
// nothing while there are none.
var (
	bindings sync.Map // context.Context (a pointer) → *flightCtx
	nbound   atomic.Int64
)

// bindable reports whether ctx can key the bindings: only pointers, whose
// identity is the framework value's (and which are always comparable).
func bindable(ctx context.Context) bool {
	return ctx != nil && reflect.TypeOf(ctx).Kind() == reflect.Pointer
}

// bind binds ctx to f's call until the returned function is called. A
// binding it shadows (the same value guarded twice, nested) comes back
// after.
func bind(ctx context.Context, f *flight) func() {
	if !bindable(ctx) {
		return func() {}
	}
	fc := &f.cs.fctx
	nbound.Add(1)
	prev, had := bindings.Swap(ctx, fc)
	return func() {
		if had {
			bindings.CompareAndSwap(ctx, fc, prev)
		} else {
			bindings.CompareAndDelete(ctx, fc)
		}
		nbound.Add(-1)
	}
}

// flightOf returns the tool context of the guarded call ctx belongs to:
// the guarded context itself, a framework value bound to a call, or a
// context derived from a guarded one. Its generation tells whether the
// call is still its flight's.
func flightOf(ctx context.Context) (*flightCtx, bool) {
	if ctx == nil {
		return nil, false
	}
	if fc, ok := ctx.(*flightCtx); ok {
		return fc, true
	}
	if fc, ok := bound(ctx); ok {
		return fc, true
	}
	fc, ok := ctx.Value(flightKey{}).(*flightCtx)
	return fc, ok
}

func bound(ctx context.Context) (*flightCtx, bool) {
	if nbound.Load() == 0 || !bindable(ctx) {
		return nil, false
	}
	v, ok := bindings.Load(ctx)
	if !ok {
		return nil, false
	}
	return v.(*flightCtx), true
}

// Context returns the guarded context of the call that ctx runs, for a
// tool whose context is a framework's own type that the guard could not
// replace (ADK's tool.Context): the kill switch cancels it, with the trip
// as its cause. For any other ctx it returns ctx, which is then already
// the guarded context or not a guarded call's. A tool that does slow work
// passes Context(ctx) to it:
//
//	func search(tc tool.Context, in Query) (Hits, error) {
//		ctx := agentguard.Context(tc)
//		req, _ := http.NewRequestWithContext(ctx, "GET", in.URL, nil)
//		...
//	}
//
// Charge and CallFrom need no such step: they accept the framework value.
func Context(ctx context.Context) context.Context {
	if fc, ok := bound(ctx); ok {
		return fc
	}
	return ctx
}

package mcpproxy

import (
	"context"
	"errors"
	"fmt"

	"github.com/hardstop-labs/agentguard"
)

// Run runs the handler of a call the guard admitted (t) with the ticket's
// context and finishes the ticket on every path, for the SDK
// integrations: a result (recorded with the error toolErr finds in it: an
// IsError result, a protocol error), a panic (recorded, then re-raised),
// and a trip of the kill switch while it runs, which returns denied's
// result at once even if the handler ignores its context (its late result
// is discarded). A trip that comes as the handler returns replaces its
// result with denied's too.
func Run[R any](t *agentguard.Ticket, fn func(context.Context) (R, error), toolErr func(R, error) error, denied func(error) R) (R, error) {
	halted := t.Halted()
	if halted == nil {
		return finish(t, invoke(t.Context(), fn), toolErr, denied)
	}
	done := make(chan outcome[R], 1)
	go func() { done <- invoke(t.Context(), fn) }()
	select {
	case o := <-done:
		return finish(t, o, toolErr, denied)
	case <-halted:
		return denied(t.Done(nil, nil)), nil
	}
}

type outcome[R any] struct {
	res      R
	err      error
	panicked bool
	p        any
}

func invoke[R any](ctx context.Context, fn func(context.Context) (R, error)) (o outcome[R]) {
	defer func() {
		if v := recover(); v != nil {
			o = outcome[R]{panicked: true, p: v}
		}
	}()
	o.res, o.err = fn(ctx)
	return o
}

func finish[R any](t *agentguard.Ticket, o outcome[R], toolErr func(R, error) error, denied func(error) R) (R, error) {
	if o.panicked {
		_ = t.Done(nil, fmt.Errorf("panic: %v", o.p))
		panic(o.p)
	}
	var d *agentguard.DeniedError
	if err := t.Done(nil, toolErr(o.res, o.err)); errors.As(err, &d) {
		return denied(err), nil
	}
	return o.res, o.err
}

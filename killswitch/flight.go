package killswitch

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Flight is one call in flight through a Switch, kept in the caller's own
// per-call state: Switch.Admit fills it instead of allocating a context,
// and it is then the call's context. agentguard embeds one in each call.
//
// As a context it is its parent's (the ctx given to Admit) until a trip
// covering the call, or Exit, cancels it: Err then reports
// context.Canceled and, after a trip, context.Cause the *Halt. Its Done
// channel and the cancellable context behind it are made only when
// something asks for Done, or when a trip halts the call; a call whose
// tool never watches its context costs no allocation.
//
// A Flight must not be copied once admitted. Its methods are safe for
// concurrent use. It may be admitted again once it has exited and nothing
// uses it any more.
type Flight struct {
	parent context.Context
	sh     *shard
	idx    int32
	gen    uint32
	exited atomic.Bool // Exit ran (and reported true): the context is released

	mu    sync.Mutex // guards halt and making inner
	halt  *Halt      // the trip that halted the call
	inner atomic.Pointer[cancellable]
}

// cancellable is the context a Flight makes when it needs one.
type cancellable struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

var _ context.Context = (*Flight)(nil)

// Admit admits a call with key k into flight, like Enter, without
// allocating: fl, zero or exited, becomes the call's context (its parent
// is ctx) and fl.Exit its exit function. On refusal it returns the *Halt
// that covers k and leaves fl unused.
//
// Only the allocations a trip or a caller of fl.Done needs are ever made;
// the rest is one atomic load and a slot taken under one of 64 mutexes.
func (s *Switch) Admit(ctx context.Context, k Key, fl *Flight) error {
	if h := s.state.Load().covering(k); h != nil {
		return h
	}
	fl.parent = ctx
	fl.halt = nil
	fl.inner.Store(nil)
	fl.exited.Store(false)
	sh := &s.shards[rand.Uint32()&(numShards-1)]
	sh.mu.Lock()
	idx, gen := sh.take(k, fl)
	// A trip publishes its state before it sweeps the shards, and this
	// load happens with the call's slot live under the shard's lock:
	// either this load sees the trip or the trip's sweep sees the call.
	if h := s.state.Load().covering(k); h != nil {
		sh.release(idx)
		sh.mu.Unlock()
		fl.parent = nil
		return h
	}
	fl.sh, fl.idx, fl.gen = sh, idx, gen
	sh.mu.Unlock()
	return nil
}

// Exit ends the call. It is the commit point: it reports whether the call
// left before any trip covering it; when it reports false the call was
// halted and its result must be discarded. It releases the context, like
// a context.CancelFunc. A second Exit reports false.
func (fl *Flight) Exit() bool {
	sh := fl.sh
	if sh == nil {
		return false
	}
	sh.mu.Lock()
	sl := &sh.slots[fl.idx]
	if sl.gen != fl.gen || !sl.held || sl.fl != fl {
		sh.mu.Unlock()
		return false
	}
	halted := sl.halted
	sh.release(fl.idx)
	sh.mu.Unlock()
	if halted {
		return false
	}
	// Dekker with makeLocked: either this load sees the context it made,
	// or it sees exited and cancels it itself.
	fl.exited.Store(true)
	if in := fl.inner.Load(); in != nil {
		in.cancel(nil)
	}
	return true
}

// stop halts the call with h; under its shard's lock, so that an exit
// that reports false finds the context cancelled with h as its cause.
func (fl *Flight) stop(h *Halt) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.halt = h
	if in := fl.inner.Load(); in != nil {
		in.cancel(h)
		return
	}
	fl.makeLocked()
}

// makeLocked makes the cancellable context, cancelled already when the
// call was halted or has exited; under fl.mu.
func (fl *Flight) makeLocked() *cancellable {
	parent := fl.parent
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancelCause(parent)
	in := &cancellable{ctx: ctx, cancel: cancel}
	if fl.halt != nil {
		cancel(fl.halt)
	}
	fl.inner.Store(in)
	if fl.exited.Load() { // see Exit
		cancel(nil)
	}
	return in
}

// Done returns a channel closed when a trip halts the call, when its
// parent is done, or when it has exited. The first call makes it.
func (fl *Flight) Done() <-chan struct{} {
	if in := fl.inner.Load(); in != nil {
		return in.ctx.Done()
	}
	fl.mu.Lock()
	in := fl.inner.Load()
	if in == nil {
		in = fl.makeLocked()
	}
	fl.mu.Unlock()
	return in.ctx.Done()
}

// Err returns context.Canceled once a trip halted the call or it exited,
// and its parent's error otherwise.
func (fl *Flight) Err() error {
	if in := fl.inner.Load(); in != nil {
		return in.ctx.Err()
	}
	if fl.exited.Load() {
		return context.Canceled
	}
	if fl.parent == nil {
		return nil
	}
	return fl.parent.Err()
}

// Deadline returns its parent's deadline.
func (fl *Flight) Deadline() (time.Time, bool) {
	if fl.parent == nil {
		return time.Time{}, false
	}
	return fl.parent.Deadline()
}

// Value returns its parent's value for key. Once the cancellable context
// is made, it answers, so that context.Cause reports the trip.
func (fl *Flight) Value(key any) any {
	if in := fl.inner.Load(); in != nil {
		return in.ctx.Value(key)
	}
	if fl.parent == nil {
		return nil
	}
	return fl.parent.Value(key)
}

// Halted returns the trip that halted the call, if one did.
func (fl *Flight) Halted() (*Halt, bool) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.halt, fl.halt != nil
}

// String describes the context.
func (fl *Flight) String() string { return "killswitch.Flight" }

package killswitch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Switch. The zero value is usable: the wall clock,
// no event callback, and hooks bounded by DefaultHookTimeout.
type Options struct {
	// Clock returns the current time for Halt.At and events; nil means
	// time.Now.
	Clock func() time.Time
	// OnEvent, when set, is called after every trip, resume and hook run,
	// in the order they happen (trips and resumes are serialized). The
	// guard uses it to audit them. It must not call Trip or Resume, and it
	// should return quickly: trips of other scopes wait for it.
	OnEvent func(Event)
	// HookTimeout bounds each OnTrip hook through its context; zero means
	// DefaultHookTimeout.
	HookTimeout time.Duration
}

// DefaultHookTimeout bounds an OnTrip hook when Options.HookTimeout is zero.
const DefaultHookTimeout = 10 * time.Second

// EventKind says what an Event reports.
type EventKind string

// The event kinds.
const (
	EventTrip   EventKind = "trip"   // a scope was tripped
	EventResume EventKind = "resume" // a scope was resumed
	EventHook   EventKind = "hook"   // an OnTrip hook ran; Err says whether it failed
)

// Event reports a trip, a resume or a hook run to Options.OnEvent.
type Event struct {
	Kind  EventKind
	Time  time.Time
	Scope Scope
	Who   string
	Why   string
	// Halted is, for a trip, how many calls in flight it stopped.
	Halted int
	// Hook names the hook, for EventHook.
	Hook string
	// Err is the hook's error (nil when it succeeded), for EventHook.
	Err error
}

// Hook is a revocation callback run after every trip, for example to revoke
// the credentials of the agent in h.Scope. ctx is bounded by the switch's
// HookTimeout; a hook must honour it. A hook's error or panic is reported
// through Options.OnEvent and returned by Trip; it never undoes the trip.
type Hook func(ctx context.Context, h *Halt) error

type hook struct {
	name string
	fn   Hook
}

const numShards = 64 // a power of two

// Switch is a kill switch: scoped trips that refuse new calls and cancel
// the contexts of calls in flight. Trips are sticky: only Resume ends one.
//
// A Switch is safe for concurrent use. Create it with New; the zero Switch
// is also ready to use, with the zero Options.
type Switch struct {
	opts Options

	// state is the trips in force, nil when there are none: the fast path
	// of Enter is one atomic load.
	state atomic.Pointer[state]

	ctl      sync.Mutex // serializes Trip, Resume, OnTrip and Watch
	hooks    []hook     // copy on write, under ctl
	watchers atomic.Pointer[[]*watcher]

	shards [numShards]shard
}

// New returns a Switch with no trips.
func New(opts Options) *Switch {
	return &Switch{opts: opts}
}

func (s *Switch) now() time.Time {
	if s.opts.Clock != nil {
		return s.opts.Clock()
	}
	return time.Now()
}

// OnTrip registers a hook that runs, in registration order, after every
// later trip. name identifies it in events and errors.
func (s *Switch) OnTrip(name string, fn Hook) {
	if fn == nil {
		return
	}
	s.ctl.Lock()
	s.hooks = append(slices.Clip(s.hooks), hook{name, fn})
	s.ctl.Unlock()
}

// Trip stops every call that scope covers: calls in flight have their
// contexts cancelled with a *Halt as cause and their exit functions report
// false, and new calls are refused until Resume(scope). When Trip returns,
// every covered context is done. Tripping a scope that is already tripped
// replaces its who and why.
//
// Then the OnTrip hooks run. The trip is in force even when Trip returns
// an error: the error joins the hooks' failures, each also reported as an
// EventHook.
func (s *Switch) Trip(scope Scope, who, why string) error {
	s.ctl.Lock()
	h := &Halt{Scope: scope, Who: who, Why: why, At: s.now()}
	s.state.Store(s.state.Load().with(h))
	n := s.sweep(h)
	s.emit(Event{Kind: EventTrip, Time: h.At, Scope: scope, Who: who, Why: why, Halted: n})
	hooks := s.hooks
	s.ctl.Unlock()
	return s.runHooks(h, hooks)
}

// Resume ends the trip of exactly scope; trips of broader or narrower
// scopes stay in force. Calls halted by the trip stay halted. It returns an
// error matching ErrNotTripped when scope is not tripped.
func (s *Switch) Resume(scope Scope, who, why string) error {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	st := s.state.Load()
	if st == nil || st.halts[scope] == nil {
		return fmt.Errorf("killswitch: resume %s: %w", scope, ErrNotTripped)
	}
	s.state.Store(st.without(scope))
	s.emit(Event{Kind: EventResume, Time: s.now(), Scope: scope, Who: who, Why: why})
	return nil
}

// Tripped returns the trip that covers a call with key k, if any. When
// several do, it returns the broadest (the one with the fewest fields set).
func (s *Switch) Tripped(k Key) (*Halt, bool) {
	h := s.state.Load().covering(k)
	return h, h != nil
}

// Lookup returns the trip of exactly scope, if it is tripped.
func (s *Switch) Lookup(scope Scope) (*Halt, bool) {
	st := s.state.Load()
	if st == nil {
		return nil, false
	}
	h := st.halts[scope]
	return h, h != nil
}

// Status returns the trips in force, broadest first.
func (s *Switch) Status() []Halt {
	st := s.state.Load()
	if st == nil {
		return []Halt{}
	}
	out := make([]Halt, len(st.sorted))
	for i, h := range st.sorted {
		out[i] = *h
	}
	return out
}

// InFlight returns the number of calls that entered and have neither
// exited nor been halted.
func (s *Switch) InFlight() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}

func exitHalted() bool { return false }

// Enter admits a call with key k into flight, or refuses it with the *Halt
// that covers it.
//
// On success it returns a context derived from ctx, cancelled with a
// *Halt cause when a later trip covers k, and an exit function to call
// once the call is over. exit is the commit point: it reports whether the
// call left before any trip covering it. When it returns false the call was
// halted and its result must be discarded. exit also releases the context,
// like a context.CancelFunc; it must be called once (a second call
// reports false).
//
// On refusal it returns ctx unchanged, an exit function that returns
// false, and the *Halt.
func (s *Switch) Enter(ctx context.Context, k Key) (context.Context, func() bool, error) {
	if h := s.state.Load().covering(k); h != nil {
		return ctx, exitHalted, h
	}
	fl := new(Flight)
	if err := s.Admit(ctx, k, fl); err != nil {
		return ctx, exitHalted, err
	}
	return fl, fl.Exit, nil
}

// sweep halts the calls h covers and cancels their contexts. It cancels
// under the shard's lock, so that an exit that reports false always finds
// the context cancelled with h as its cause.
func (s *Switch) sweep(h *Halt) int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for j := range sh.slots {
			sl := &sh.slots[j]
			if sl.live && h.Scope.Covers(sl.key) {
				sl.live, sl.halted = false, true
				sh.n--
				sl.fl.stop(h)
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

type watcher struct{ fn func(Event) }

// Watch adds fn as a receiver of every later event, after Options.OnEvent,
// with the same contract. It returns a function that removes it; once that
// returns, fn is not called again by trips and resumes.
func (s *Switch) Watch(fn func(Event)) (stop func()) {
	if fn == nil {
		return func() {}
	}
	w := &watcher{fn}
	s.ctl.Lock()
	s.setWatchers(func(ws []*watcher) []*watcher { return append(ws, w) })
	s.ctl.Unlock()
	return sync.OnceFunc(func() {
		s.ctl.Lock()
		s.setWatchers(func(ws []*watcher) []*watcher {
			return slices.DeleteFunc(ws, func(x *watcher) bool { return x == w })
		})
		s.ctl.Unlock()
	})
}

// setWatchers replaces the watchers with edit of a copy; under ctl.
func (s *Switch) setWatchers(edit func([]*watcher) []*watcher) {
	var cur []*watcher
	if p := s.watchers.Load(); p != nil {
		cur = slices.Clone(*p)
	}
	next := edit(cur)
	s.watchers.Store(&next)
}

func (s *Switch) emit(e Event) {
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(e)
	}
	if p := s.watchers.Load(); p != nil {
		for _, w := range *p {
			w.fn(e)
		}
	}
}

func (s *Switch) runHooks(h *Halt, hooks []hook) error {
	var errs []error
	for _, hk := range hooks {
		err := s.runHook(h, hk)
		s.emit(Event{Kind: EventHook, Time: s.now(), Scope: h.Scope, Who: h.Who, Why: h.Why, Hook: hk.name, Err: err})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Switch) runHook(h *Halt, hk hook) (err error) {
	timeout := s.opts.HookTimeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("killswitch: hook %q after trip of %s panicked: %v", hk.name, h.Scope, r)
		}
	}()
	if e := hk.fn(ctx, h); e != nil {
		return fmt.Errorf("killswitch: hook %q after trip of %s: %w", hk.name, h.Scope, e)
	}
	return nil
}

// slot holds one call from Enter to its exit.
type slot struct {
	key    Key
	fl     *Flight
	gen    uint32 // which call holds the slot
	held   bool   // a call holds the slot: it entered and has not exited
	live   bool   // held and not halted: in flight
	halted bool   // held and halted by a trip
}

// shard is a set of slots under one mutex. Slots are reused; a call's exit
// knows its slot by index and generation.
type shard struct {
	mu    sync.Mutex
	slots []slot
	free  []int32
	n     int      // live slots
	_     [64]byte // keep shards on separate cache lines
}

// take gives a call a slot; under sh.mu.
func (sh *shard) take(k Key, fl *Flight) (int32, uint32) {
	var idx int32
	if l := len(sh.free); l > 0 {
		idx = sh.free[l-1]
		sh.free = sh.free[:l-1]
	} else {
		sh.slots = append(sh.slots, slot{})
		idx = int32(len(sh.slots) - 1)
	}
	sl := &sh.slots[idx]
	sl.gen++
	sl.key, sl.fl = k, fl
	sl.held, sl.live, sl.halted = true, true, false
	sh.n++
	return idx, sl.gen
}

// release frees a held slot; under sh.mu.
func (sh *shard) release(idx int32) {
	sl := &sh.slots[idx]
	if sl.live {
		sh.n--
	}
	sl.key, sl.fl = Key{}, nil
	sl.held, sl.live, sl.halted = false, false, false
	sh.free = append(sh.free, idx)
}

// state is an immutable set of trips in force.
type state struct {
	halts  map[Scope]*Halt
	sorted []*Halt // broadest first, see rank
}

// rank orders scopes from broadest to narrowest: by the fields set, in the
// order of masks.
func rank(s Scope) int {
	m := 0
	if s.Tenant != "" {
		m |= 1
	}
	if s.Agent != "" {
		m |= 2
	}
	if s.Tool != "" {
		m |= 4
	}
	return maskRank[m]
}

// masks lists the field sets (tenant=1, agent=2, tool=4), broadest first.
var masks = [8]int{0, 1, 2, 4, 3, 5, 6, 7}

var maskRank = func() (r [8]int) {
	for i, m := range masks {
		r[m] = i
	}
	return r
}()

func (st *state) with(h *Halt) *state {
	n := &state{halts: make(map[Scope]*Halt, 1)}
	if st != nil {
		for k, v := range st.halts {
			n.halts[k] = v
		}
	}
	n.halts[h.Scope] = h
	n.sort()
	return n
}

func (st *state) without(s Scope) *state {
	if len(st.halts) == 1 {
		return nil
	}
	n := &state{halts: make(map[Scope]*Halt, len(st.halts)-1)}
	for k, v := range st.halts {
		if k != s {
			n.halts[k] = v
		}
	}
	n.sort()
	return n
}

func (st *state) sort() {
	st.sorted = st.sorted[:0]
	for _, h := range st.halts {
		st.sorted = append(st.sorted, h)
	}
	slices.SortFunc(st.sorted, func(a, b *Halt) int {
		if c := cmp.Compare(rank(a.Scope), rank(b.Scope)); c != 0 {
			return c
		}
		return cmp.Compare(a.Scope.String(), b.Scope.String())
	})
}

// covering returns the broadest trip that covers k, or nil.
func (st *state) covering(k Key) *Halt {
	if st == nil {
		return nil
	}
	if len(st.sorted) <= len(masks) {
		for _, h := range st.sorted {
			if h.Scope.Covers(k) {
				return h
			}
		}
		return nil
	}
	for _, m := range masks {
		var s Scope
		if m&1 != 0 {
			s.Tenant = k.Tenant
		}
		if m&2 != 0 {
			s.Agent = k.Agent
		}
		if m&4 != 0 {
			s.Tool = k.Tool
		}
		if h := st.halts[s]; h != nil {
			return h
		}
	}
	return nil
}

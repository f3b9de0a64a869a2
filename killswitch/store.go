package killswitch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Store keeps the trips of a fleet where every process sees them (a
// database). A StoreTrigger makes a Switch follow it. A store only keeps
// trips; what a trip stops, and what happens when the store cannot be
// read, is decided by the StoreTrigger. Mem is the in-memory store and the
// reference; package switchtest checks any store against this contract.
//
// Implementations must be safe for concurrent use (and, for shared
// stores, by many processes).
type Store interface {
	// Trip records h, replacing the trip of the same scope if there is
	// one. It returns only once h is durable and visible to Trips.
	Trip(ctx context.Context, h Halt) error
	// Resume removes the trip of exactly scope, or returns an error
	// matching ErrNotTripped when there is none.
	Resume(ctx context.Context, scope Scope) error
	// Trips returns the trips in force, in any order. A store that cannot
	// answer returns an error, never an empty list.
	Trips(ctx context.Context) ([]Halt, error)
}

// Watcher is implemented by a Store that pushes changes (PostgreSQL's
// LISTEN/NOTIFY). Watch blocks until ctx is done or the push channel
// breaks, and calls changed, which must not block, after every change
// made through any client of the store, and once as soon as it is
// listening (so that a change made before it listened is not missed).
type Watcher interface {
	Watch(ctx context.Context, changed func()) error
}

// Mem is an in-memory Store with push, for a fleet of Switches in one
// process and as the reference for other stores. Its zero value is empty
// and ready to use; it is safe for concurrent use.
type Mem struct {
	mu       sync.Mutex
	trips    map[Scope]Halt
	watchers map[*func()]struct{}
	// Err, when set, fails every call: a store that cannot be reached.
	err error
}

var (
	_ Store   = (*Mem)(nil)
	_ Watcher = (*Mem)(nil)
)

// SetErr makes every later call fail with err (nil restores the store);
// tests use it to cut a store off.
func (m *Mem) SetErr(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
	m.notify()
}

// Trip records h.
func (m *Mem) Trip(ctx context.Context, h Halt) error {
	if err := h.Scope.validate(); err != nil {
		return err
	}
	m.mu.Lock()
	if err := m.check(ctx); err != nil {
		m.mu.Unlock()
		return err
	}
	if m.trips == nil {
		m.trips = map[Scope]Halt{}
	}
	m.trips[h.Scope] = h
	m.mu.Unlock()
	m.notify()
	return nil
}

// Resume removes the trip of scope.
func (m *Mem) Resume(ctx context.Context, scope Scope) error {
	m.mu.Lock()
	if err := m.check(ctx); err != nil {
		m.mu.Unlock()
		return err
	}
	if _, ok := m.trips[scope]; !ok {
		m.mu.Unlock()
		return fmt.Errorf("killswitch: resume %s: %w", scope, ErrNotTripped)
	}
	delete(m.trips, scope)
	m.mu.Unlock()
	m.notify()
	return nil
}

// Trips returns the trips in force, broadest first.
func (m *Mem) Trips(ctx context.Context) ([]Halt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	out := make([]Halt, 0, len(m.trips))
	for _, h := range m.trips {
		out = append(out, h)
	}
	sortHalts(out)
	return out, nil
}

// Watch calls changed after every change until ctx is done.
func (m *Mem) Watch(ctx context.Context, changed func()) error {
	m.mu.Lock()
	if err := m.check(ctx); err != nil {
		m.mu.Unlock()
		return err
	}
	if m.watchers == nil {
		m.watchers = map[*func()]struct{}{}
	}
	m.watchers[&changed] = struct{}{}
	m.mu.Unlock()
	changed()
	<-ctx.Done()
	m.mu.Lock()
	delete(m.watchers, &changed)
	m.mu.Unlock()
	return ctx.Err()
}

func (m *Mem) check(ctx context.Context) error {
	if m.err != nil {
		return fmt.Errorf("killswitch: mem store: %w", m.err)
	}
	return ctx.Err()
}

func (m *Mem) notify() {
	m.mu.Lock()
	fns := make([]func(), 0, len(m.watchers))
	for f := range m.watchers {
		fns = append(fns, *f)
	}
	m.mu.Unlock()
	for _, f := range fns {
		f()
	}
}

// sortHalts orders trips broadest first, then by scope.
func sortHalts(hs []Halt) {
	slices.SortFunc(hs, func(a, b Halt) int {
		if c := rank(a.Scope) - rank(b.Scope); c != 0 {
			return c
		}
		return compareScopes(a.Scope, b.Scope)
	})
}

func compareScopes(a, b Scope) int {
	return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Agent, b.Agent), cmp.Compare(a.Tool, b.Tool))
}

// StoreOptions configure a StoreTrigger. The zero value names the
// trigger "store", trips everything at the first check that cannot read
// the store, and gives each check 5 seconds.
type StoreOptions struct {
	// Who names the trigger in the trip it makes when the store cannot
	// be read; empty means "store".
	Who string
	// Stale is how long the store may be unreadable before the trigger
	// trips everything (the zero Scope): a process that cannot see the
	// fleet's kill switch counts as tripped. The time counts from the last
	// successful check, or from the first check. Zero trips at the first
	// check that fails. The trip ends at the first check that reads the
	// store again.
	Stale time.Duration
	// Timeout bounds each read of the store; zero means 5 seconds.
	Timeout time.Duration
	// Publish makes Run write to the store every trip made in the switch
	// some other way (a breaker, a kill file, Switch.Trip): the whole
	// fleet then stops what one process stopped, and only a resume in the
	// store ends it, everywhere. A trip the store refuses is retried at
	// every check.
	Publish bool
	// OnError receives the errors of the checks Run makes, for logging.
	OnError func(error)
	// Clock gives the time of each check; nil means time.Now.
	Clock func() time.Time
}

// StoreTrigger makes a Switch follow a Store: each trip in the store is
// tripped in the switch (with the store's who and why), and each trip the
// trigger made is resumed once the store no longer holds it. Trips made in
// the switch some other way (a breaker, a kill file) are left alone. Run
// checks the store at an interval and, when the store is a Watcher, at
// once after every change: a trip anywhere in the fleet cancels the calls
// in flight here within a round trip. A StoreTrigger is safe for
// concurrent use.
type StoreTrigger struct {
	sw   *Switch
	st   Store
	opts StoreOptions

	mu       sync.Mutex
	lastGood time.Time
	mine     map[Scope]Halt // what this trigger tripped, as it tripped it
}

// staleWhy starts the why of the trip a StoreTrigger makes when its store
// cannot be read.
const staleWhy = "kill switch store unreadable"

// NewStoreTrigger returns a trigger that makes sw follow st. Nothing
// happens until Check or Run.
func NewStoreTrigger(sw *Switch, st Store, opts StoreOptions) (*StoreTrigger, error) {
	if sw == nil || st == nil {
		return nil, errors.New("killswitch: store trigger: nil Switch or Store")
	}
	if opts.Stale < 0 || opts.Timeout < 0 {
		return nil, fmt.Errorf("killswitch: store trigger: negative Stale %v or Timeout %v", opts.Stale, opts.Timeout)
	}
	if opts.Who == "" {
		opts.Who = "store"
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &StoreTrigger{sw: sw, st: st, opts: opts, mine: map[Scope]Halt{}}, nil
}

// Store returns the trigger's store.
func (t *StoreTrigger) Store() Store { return t.st }

// Trip records a trip of scope in the store, for the whole fleet, and
// trips the switch at once. When the store cannot record it, Trip still
// trips the switch here (fail closed) and returns the store's error.
func (t *StoreTrigger) Trip(ctx context.Context, scope Scope, who, why string) error {
	if err := scope.validate(); err != nil {
		return err
	}
	h := Halt{Scope: scope, Who: who, Why: why, At: t.opts.Clock()}
	err := t.st.Trip(ctx, h)
	t.mu.Lock()
	defer t.mu.Unlock()
	return errors.Join(err, t.tripLocked(h))
}

// Resume removes the trip of scope from the store, for the whole fleet,
// and resumes it here. It fails, and nothing resumes, when the store
// cannot be written.
func (t *StoreTrigger) Resume(ctx context.Context, scope Scope, who, why string) error {
	if err := t.st.Resume(ctx, scope); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.mine[scope]; ok {
		delete(t.mine, scope)
		if err := t.sw.Resume(scope, who, why); err != nil && !errors.Is(err, ErrNotTripped) {
			return err
		}
	}
	return nil
}

// Check reads the store once and makes the switch follow it. When the
// store cannot be read it returns the error and, once the store has been
// unreadable for longer than Stale, trips everything.
func (t *StoreTrigger) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	trips, err := t.st.Trips(ctx)
	now := t.opts.Clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastGood.IsZero() {
		t.lastGood = now
	}
	if err != nil {
		err = fmt.Errorf("killswitch: store: %w", err)
		if since := now.Sub(t.lastGood); since >= t.opts.Stale {
			if _, on := t.mine[Scope{}]; !on {
				h := Halt{Scope: Scope{}, Who: t.opts.Who, At: now,
					Why: fmt.Sprintf("%s for %v (%v)", staleWhy, since.Round(time.Millisecond), err)}
				return errors.Join(err, t.tripLocked(h))
			}
		}
		return err
	}
	t.lastGood = now
	var errs []error
	in := make(map[Scope]bool, len(trips))
	for _, h := range trips {
		in[h.Scope] = true
		if cur, ok := t.mine[h.Scope]; ok && cur.Who == h.Who && cur.Why == h.Why {
			continue
		}
		if err := t.tripLocked(h); err != nil {
			errs = append(errs, err)
		}
	}
	for scope, h := range t.mine {
		if in[scope] {
			continue
		}
		delete(t.mine, scope)
		why := "resumed in the store"
		if h.Who == t.opts.Who && strings.HasPrefix(h.Why, staleWhy) {
			why = "kill switch store readable again"
		}
		if err := t.sw.Resume(scope, t.opts.Who, why); err != nil && !errors.Is(err, ErrNotTripped) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tripLocked trips h in the switch and remembers it as the trigger's.
func (t *StoreTrigger) tripLocked(h Halt) error {
	t.mine[h.Scope] = h
	return t.sw.Trip(h.Scope, h.Who, h.Why)
}

// Run checks the store at once, then every interval and, when the store
// is a Watcher, after every change it pushes, until ctx is done; it
// returns ctx's error. A broken push channel is reopened after an
// interval; checks go on at the interval meanwhile.
func (t *StoreTrigger) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("killswitch: store trigger: interval %v is not positive", interval)
	}
	poke := make(chan struct{}, 1)
	changed := func() {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if w, ok := t.st.(Watcher); ok {
		wg.Go(func() {
			for {
				err := w.Watch(ctx, changed)
				if ctx.Err() != nil {
					return
				}
				if err != nil && t.opts.OnError != nil {
					t.opts.OnError(fmt.Errorf("killswitch: store watch: %w", err))
				}
				changed() // the store may have changed while no one listened
				select {
				case <-ctx.Done():
					return
				case <-time.After(interval):
				}
			}
		})
	}
	var pub publisher
	if t.opts.Publish {
		// The watcher runs inside Trip, under the switch's lock: it only
		// queues the trip and wakes the loop.
		stop := t.sw.Watch(func(e Event) {
			if e.Kind == EventTrip {
				pub.add(Halt{Scope: e.Scope, Who: e.Who, Why: e.Why, At: e.Time})
				changed()
			}
		})
		defer stop()
		// And the trips made before Run started.
		for _, h := range t.sw.Status() {
			pub.add(h)
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := t.publish(ctx, &pub); err != nil && ctx.Err() == nil && t.opts.OnError != nil {
			t.opts.OnError(err)
		}
		if err := t.Check(ctx); err != nil && ctx.Err() == nil && t.opts.OnError != nil {
			t.opts.OnError(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case <-poke:
		}
	}
}

// publisher queues the switch's trips for Run to publish.
type publisher struct {
	mu    sync.Mutex
	queue []Halt
}

func (p *publisher) add(h Halt) {
	p.mu.Lock()
	p.queue = append(p.queue, h)
	p.mu.Unlock()
}

func (p *publisher) take() []Halt {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queue
	p.queue = nil
	return q
}

// publish writes to the store the queued trips that the trigger did not
// make itself, and makes them the trigger's, so that a resume in the store
// ends them here too. Those the store refuses go back to the queue.
func (t *StoreTrigger) publish(ctx context.Context, p *publisher) error {
	var errs []error
	for _, h := range p.take() {
		t.mu.Lock()
		cur, ok := t.mine[h.Scope]
		t.mu.Unlock()
		if ok && cur.Who == h.Who && cur.Why == h.Why {
			continue // the store's own trip, or one already published
		}
		tctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
		err := t.st.Trip(tctx, h)
		cancel()
		if err != nil {
			p.add(h)
			errs = append(errs, fmt.Errorf("killswitch: publishing the trip of %s: %w", h.Scope, err))
			continue
		}
		t.mu.Lock()
		t.mine[h.Scope] = h
		t.mu.Unlock()
	}
	return errors.Join(errs...)
}

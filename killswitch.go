package agentguard

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

// WithKillSwitch makes sw the Guard's kill switch (the Halter stage). A
// call is admitted only when no trip covers its tenant, agent and tool; a
// refusal is a *DeniedError of CodeHalted whose Rule is the tripped scope
// and whose Reason is the trip's why. A trip during a call cancels the
// tool's context and returns ErrHalted to the caller at once; the tool's
// late result is discarded.
//
// Trips, resumes and the runs of OnTrip hooks (failures included) are
// recorded through the Guard's Recorder as EventHalt, EventResume and
// EventHook, and the breakers declared in the policy's breakers section
// trip sw for the offending agent (see also WithBreaker).
func WithKillSwitch(sw *killswitch.Switch) Option {
	return func(c *config) error {
		if sw == nil {
			return errors.New("agentguard: WithKillSwitch: nil switch")
		}
		ks := &switchHalter{sw: sw}
		if err := setStage("WithKillSwitch", &c.halter, Halter(ks)); err != nil {
			return err
		}
		c.observers = append(c.observers, ks)
		c.policyHooks = append(c.policyHooks, ks.setPolicy)
		c.onNew = append(c.onNew, func(g *Guard) error {
			ks.attach(g)
			return nil
		})
		return nil
	}
}

// attach records the switch's events through g, once, whichever option
// needs it first.
func (h *switchHalter) attach(g *Guard) {
	h.once.Do(func() {
		stop := h.sw.Watch(func(e killswitch.Event) { g.recordSwitch(e) })
		g.cfg.closers = append(g.cfg.closers, func() error { stop(); return nil })
	})
}

// WithBreaker adds a breaker with settings s that trips the kill switch
// for an agent whose calls cross one of its thresholds. It needs
// WithKillSwitch. Breakers can also be declared in the policy file.
//
// The breaker counts what the Guard records: a denial (other than by the
// kill switch) as Denied, a call that returned nil as Success, an error or
// a panic as Failure, and as spend the call's actual cost in s.SpendUnit.
// Halted calls and calls whose outcome is unknown are not counted. The
// call that trips a breaker returns after the switch's OnTrip hooks ran
// (each bounded by the switch's HookTimeout).
func WithBreaker(s killswitch.Settings) Option {
	return func(c *config) error {
		c.onNew = append(c.onNew, func(g *Guard) error {
			ks, ok := g.cfg.halter.(*switchHalter)
			if !ok {
				return fmt.Errorf("agentguard: WithBreaker %q: needs WithKillSwitch", s.Name)
			}
			b, err := killswitch.NewBreaker(ks.sw, s)
			if err != nil {
				return fmt.Errorf("agentguard: WithBreaker: %w", err)
			}
			ks.mu.Lock()
			ks.fixed = append(ks.fixed, b)
			ks.mu.Unlock()
			ks.publish()
			return nil
		})
		return nil
	}
}

// WithKillFile watches the kill file at path with a killswitch.FileTrigger
// and opts, checking it once in New (a kill file present at start trips
// before the first call) and then every interval until Close. It needs
// WithKillSwitch. `agentguard kill --file PATH` writes the file. Each
// check waits at most opts.Timeout for the file system, so New and Close
// return in bounded time even when the path blocks (see
// killswitch.FileTrigger.Check).
func WithKillFile(path string, interval time.Duration, opts killswitch.FileOptions) Option {
	return func(c *config) error {
		if interval <= 0 {
			return fmt.Errorf("agentguard: WithKillFile: interval %v is not positive", interval)
		}
		c.onNew = append(c.onNew, func(g *Guard) error {
			ks, ok := g.cfg.halter.(*switchHalter)
			if !ok {
				return errors.New("agentguard: WithKillFile: needs WithKillSwitch")
			}
			ks.attach(g) // so that a trip by the first check is recorded
			if opts.OnError == nil {
				opts.OnError = func(err error) {
					g.cfg.logger.Error("agentguard: kill file", zap.String("path", path), zap.Error(err))
				}
			}
			if opts.Clock == nil {
				opts.Clock = g.now
			}
			tr, err := killswitch.NewFileTrigger(ks.sw, path, opts)
			if err != nil {
				return fmt.Errorf("agentguard: WithKillFile: %w", err)
			}
			if err := tr.Check(g.now()); err != nil {
				opts.OnError(err)
			}
			g.background(func(ctx context.Context) { tr.Run(ctx, interval) })
			return nil
		})
		return nil
	}
}

// background runs fn in a goroutine until Close, which cancels its
// context and waits for it.
func (g *Guard) background(fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	g.cfg.closers = append(g.cfg.closers, func() error {
		cancel()
		<-done
		return nil
	})
}

// WithKillStore makes the kill switch follow a fleet's store (for
// example PostgreSQL's, from package postgres) through a
// killswitch.StoreTrigger with opts: a trip made anywhere in the fleet
// halts the calls in flight here, and a process that cannot read the
// store for longer than opts.Stale counts as tripped. The store is read
// once in New (a trip in force at start refuses the first call), then
// every interval and, when the store pushes changes, after every change,
// until Close. It needs WithKillSwitch. Trip and resume for the fleet
// with the trigger that Guard.KillStore returns, or from the command line
// (`agentguard kill --postgres DSN`).
func WithKillStore(st killswitch.Store, interval time.Duration, opts killswitch.StoreOptions) Option {
	return func(c *config) error {
		if st == nil {
			return errors.New("agentguard: WithKillStore: nil store")
		}
		if interval <= 0 {
			return fmt.Errorf("agentguard: WithKillStore: interval %v is not positive", interval)
		}
		c.onNew = append(c.onNew, func(g *Guard) error {
			ks, ok := g.cfg.halter.(*switchHalter)
			if !ok {
				return errors.New("agentguard: WithKillStore: needs WithKillSwitch")
			}
			ks.attach(g)
			if opts.OnError == nil {
				opts.OnError = func(err error) {
					g.cfg.logger.Error("agentguard: kill switch store", zap.Error(err))
				}
			}
			if opts.Clock == nil {
				opts.Clock = g.now
			}
			tr, err := killswitch.NewStoreTrigger(ks.sw, st, opts)
			if err != nil {
				return fmt.Errorf("agentguard: WithKillStore: %w", err)
			}
			if err := tr.Check(context.Background()); err != nil {
				opts.OnError(err)
			}
			g.killStore = tr
			g.background(func(ctx context.Context) { tr.Run(ctx, interval) })
			return nil
		})
		return nil
	}
}

// KillStore returns the trigger of WithKillStore, through which this
// process trips and resumes the whole fleet, or nil without one.
func (g *Guard) KillStore() *killswitch.StoreTrigger { return g.killStore }

// switchHalter is the Halter, and the Observer feeding the breakers, of a
// Guard with a kill switch.
type switchHalter struct {
	sw   *killswitch.Switch
	once sync.Once // attach

	mu       sync.Mutex                            // serializes changes of fixed and fromPol
	fixed    []*killswitch.Breaker                 // from WithBreaker
	fromPol  []*killswitch.Breaker                 // from the policy in force
	breakers atomic.Pointer[[]*killswitch.Breaker] // fixed and fromPol, for Observe
}

var (
	_ Halter   = (*switchHalter)(nil)
	_ Observer = (*switchHalter)(nil)
)

// Enter admits c unless a trip covers its tenant, agent or tool.
func (h *switchHalter) Enter(ctx context.Context, c *Call) (context.Context, func() bool, error) {
	hctx, exit, err := h.sw.Enter(ctx, killswitch.Key{Tenant: c.Principal.Tenant, Agent: c.Principal.Agent, Tool: c.Tool})
	if err != nil {
		return nil, nil, haltDenial(err)
	}
	return hctx, exit, nil
}

// admit is Enter for the pipeline's own use: fl, in the call's state,
// becomes the call's context, and nothing is allocated.
func (h *switchHalter) admit(ctx context.Context, c *Call, fl *killswitch.Flight) error {
	err := h.sw.Admit(ctx, killswitch.Key{Tenant: c.Principal.Tenant, Agent: c.Principal.Agent, Tool: c.Tool}, fl)
	if err != nil {
		return haltDenial(err)
	}
	return nil
}

// haltDenial is the denial of a call that a trip refused.
func haltDenial(err error) error {
	var halt *killswitch.Halt
	if errors.As(err, &halt) {
		return &DeniedError{Code: CodeHalted, Rule: halt.Scope.String(),
			Reason: nonEmpty(halt.Why, "the kill switch was tripped"), Err: halt}
	}
	return err
}

// Observe feeds the breakers from the Guard's events.
func (h *switchHalter) Observe(e *Event) {
	p := h.breakers.Load()
	if p == nil || len(*p) == 0 || e.Call == nil {
		return
	}
	var o killswitch.Outcome
	switch {
	case e.Kind == EventDecision && e.Decision == policy.Deny && e.Code != CodeHalted:
		o = killswitch.Denied
	case e.Kind == EventResult && e.Outcome == OutcomeOK:
		o = killswitch.Success
	case e.Kind == EventResult && (e.Outcome == OutcomeError || e.Outcome == OutcomePanic):
		o = killswitch.Failure
	default:
		return
	}
	at := e.Time
	for _, b := range *p {
		var spend int64
		if unit := b.Settings().SpendUnit; unit != "" {
			for _, c := range e.Actual {
				if c.Unit == unit && c.Micros > 0 && spend <= maxInt64-c.Micros {
					spend += c.Micros
				}
			}
		}
		b.Observe(e.Call.Principal.Agent, e.Call.Tool, o, spend, at)
	}
}

const maxInt64 = 1<<63 - 1

// setPolicy is the policy hook: it builds the breakers the policy declares,
// keeping the counts of those whose settings did not change.
func (h *switchHalter) setPolicy(p *policy.Policy) error {
	spec := p.Spec()
	h.mu.Lock()
	defer h.mu.Unlock()
	old := map[string]*killswitch.Breaker{}
	for _, b := range h.fromPol {
		old[b.Settings().Name] = b
	}
	next := make([]*killswitch.Breaker, 0, len(spec.Breakers))
	for _, pb := range spec.Breakers {
		s, err := breakerSettings(pb)
		if err != nil {
			return err
		}
		if b := old[s.Name]; b != nil && sameSettings(b.Settings(), s) {
			next = append(next, b)
			continue
		}
		b, err := killswitch.NewBreaker(h.sw, s)
		if err != nil {
			return fmt.Errorf("agentguard: policy breaker %q: %w", pb.Name, err)
		}
		next = append(next, b)
	}
	h.fromPol = next
	h.publishLocked()
	return nil
}

func (h *switchHalter) publish() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked()
}

func (h *switchHalter) publishLocked() {
	all := make([]*killswitch.Breaker, 0, len(h.fixed)+len(h.fromPol))
	all = append(all, h.fixed...)
	all = append(all, h.fromPol...)
	h.breakers.Store(&all)
}

// breakerSettings converts a policy's breaker to the killswitch's.
func breakerSettings(b policy.Breaker) (killswitch.Settings, error) {
	s := killswitch.Settings{
		Name:                b.Name,
		Tools:               b.Tools,
		ConsecutiveFailures: b.ConsecutiveFailures,
		ErrorRate:           b.ErrorRate,
		MinCalls:            b.MinCalls,
		DeniesPerMinute:     b.DeniesPerMinute,
		CallsPerMinute:      b.CallsPerMinute,
	}
	if len(b.Tools) > 0 {
		tools := append([]string(nil), b.Tools...)
		s.Match = func(tool string) bool {
			for _, t := range tools {
				if policy.Glob(t, tool) {
					return true
				}
			}
			return false
		}
	}
	if b.Window != "" {
		d, err := time.ParseDuration(b.Window)
		if err != nil || d <= 0 {
			return s, fmt.Errorf("agentguard: policy breaker %q: bad window %q", b.Name, b.Window)
		}
		s.Window = d
	}
	if b.SpendPerMinute != "" {
		a, err := budget.ParseAmount(b.SpendPerMinute)
		if err != nil {
			return s, fmt.Errorf("agentguard: policy breaker %q: spend_per_minute: %w", b.Name, err)
		}
		s.SpendPerMinute, s.SpendUnit = a.Micros, a.Unit
	}
	return s, nil
}

// sameSettings compares settings, ignoring Match (a function), which
// follows from Tools.
func sameSettings(a, b killswitch.Settings) bool {
	a.Match, b.Match = nil, nil
	return reflect.DeepEqual(a, b)
}

// recordSwitch records a trip, resume or hook run of the kill switch.
func (g *Guard) recordSwitch(e killswitch.Event) {
	ev := &Event{Time: e.Time, Control: &Control{Scope: e.Scope.String(), Who: e.Who, Why: e.Why}}
	switch e.Kind {
	case killswitch.EventTrip:
		ev.Kind = EventHalt
		ev.Reason = fmt.Sprintf("in-flight calls halted: %d", e.Halted)
	case killswitch.EventResume:
		ev.Kind = EventResume
	case killswitch.EventHook:
		ev.Kind = EventHook
		ev.Rule = e.Hook
		ev.Err = e.Err
		if e.Err != nil {
			ev.Reason = "revocation hook " + e.Hook + " failed: " + e.Err.Error()
		} else {
			ev.Reason = "revocation hook " + e.Hook + " ran"
		}
	default:
		return
	}
	if err := g.record(context.Background(), ev); err != nil {
		g.cfg.logger.Error("agentguard: kill switch event not recorded",
			zap.String("kind", string(ev.Kind)), zap.String("scope", ev.Control.Scope), zap.Error(err))
	}
	if e.Kind == killswitch.EventHook && e.Err != nil {
		g.cfg.logger.Error("agentguard: revocation hook failed", zap.String("hook", e.Hook),
			zap.String("scope", ev.Control.Scope), zap.Error(e.Err))
	}
}

// breakersNeedSwitch refuses a policy that declares breakers when the
// Guard has no kill switch for them to trip: ignoring them would fail open.
func (c *config) breakersNeedSwitch(p *policy.Policy) error {
	if len(p.Spec().Breakers) == 0 {
		return nil
	}
	if _, ok := c.halter.(*switchHalter); !ok {
		return errors.New("agentguard: the policy declares breakers, but the Guard has no kill switch for them to trip (WithKillSwitch)")
	}
	return nil
}

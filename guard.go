package agentguard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

// Guard checks, limits, approves, records and halts guarded tool calls. One
// Guard serves every tool of an agent, or of many agents. Build it with New;
// a Guard is safe for concurrent use.
type Guard struct {
	cfg    config
	pol    atomic.Pointer[policy.Policy]
	polMu  sync.Mutex // serialises SetPolicy, so hooks see swaps in order
	closed atomic.Bool
	lastID atomic.Int64 // the time part of the last call ID (see newCallID)
	once   sync.Once
	errs   error

	killStore *killswitch.StoreTrigger // from WithKillStore, set in New
}

// Option configures a Guard in New.
type Option func(*config) error

// config is what the options build. Fields for the stages are set by the
// With… options of the packages that fill them (killswitch.go, budget.go,
// approval.go, audit.go).
type config struct {
	policy      *policy.Policy
	policyFile  string
	policyHooks []func(*policy.Policy) error

	defaultPrincipal Principal
	env              string
	clock            func() time.Time
	realClock        bool // clock is time.Now: a duration needs only its monotonic reading
	logger           *zap.Logger
	// poolable is set when every stage that is given a call is built in
	// (or absent): none keeps the call after it ends, so its flight can
	// carry the next one (see flight). Observers must not keep events.
	poolable bool
	// observed is set when the Guard has observers of its own (not only
	// the kill switch's breakers): they read Event.Call.Args, so every
	// call's map is built.
	observed bool

	halter    Halter
	limiter   Limiter
	budgeter  Budgeter
	approvals Approvals
	recorder  Recorder
	// liveRecord is set when the recorder is the Guard's own file log,
	// which appends a record whatever its context: a call's own records
	// are appended with the caller's context, so that its end cuts short
	// a wait for a sync that hangs (see recordLive).
	liveRecord bool
	redactor   Redactor
	// cardRedactor is redactor, or the default redaction when that is
	// nil: what approval cards show.
	cardRedactor Redactor
	observers    []Observer

	// onNew runs at the end of New, in order, with the Guard built; an
	// error fails New. closers run at Close, in reverse order.
	onNew   []func(*Guard) error
	closers []func() error
}

// builtIn reports whether every stage of c that is given a call's *Call
// or context is the package's own, or absent.
func builtIn(c *config) bool {
	switch c.recorder.(type) {
	case nil, *auditRecorder:
	default:
		return false
	}
	switch c.halter.(type) {
	case nil, *switchHalter:
	default:
		return false
	}
	switch c.limiter.(type) {
	case nil, *limitStage:
	default:
		return false
	}
	switch c.budgeter.(type) {
	case nil, *budgetStage:
	default:
		return false
	}
	return true
}

// New builds a Guard. It validates every option and returns all the
// problems it found, joined. A Guard without a policy denies every call.
func New(opts ...Option) (*Guard, error) {
	g := &Guard{}
	c := &g.cfg
	var errs []error
	for i, o := range opts {
		if o == nil {
			errs = append(errs, fmt.Errorf("agentguard: option %d is nil", i))
			continue
		}
		if err := o(c); err != nil {
			errs = append(errs, err)
		}
	}
	if c.policy != nil && c.policyFile != "" {
		errs = append(errs, errors.New("agentguard: WithPolicy and WithPolicyFile both given"))
	}
	if c.policyFile != "" {
		p, err := policy.Load(c.policyFile)
		if err != nil {
			errs = append(errs, err)
		}
		c.policy = p
	}
	if err := budgetDefaults(c); err != nil {
		errs = append(errs, err)
	}
	c.policyHooks = append(c.policyHooks, c.breakersNeedSwitch)
	if c.clock == nil {
		c.clock, c.realClock = time.Now, true
	}
	if c.logger == nil {
		c.logger = zap.NewNop()
	}
	if r, ok := c.recorder.(Redactor); ok && c.redactor == nil {
		c.redactor = r
	}
	c.poolable = builtIn(c)
	if ar, ok := c.recorder.(*auditRecorder); ok {
		_, c.liveRecord = ar.log.(*audit.Log)
	}
	for _, o := range c.observers {
		if _, ok := o.(*switchHalter); !ok {
			c.observed = true
		}
	}
	c.cardRedactor = c.redactor
	if c.cardRedactor == nil {
		// Arguments never leave the pipeline unredacted: without a
		// redacting Recorder, cards get the default redaction of
		// package audit (and denials show no arguments).
		if r, err := audit.NewRedactor(audit.Redaction{}); err != nil {
			errs = append(errs, fmt.Errorf("agentguard: default redaction: %w", err))
		} else {
			c.cardRedactor = r
		}
	}
	if len(errs) > 0 {
		g.runClosers()
		return nil, errors.Join(errs...)
	}
	if c.policy != nil {
		if err := g.SetPolicy(c.policy); err != nil {
			g.runClosers()
			return nil, err
		}
	}
	for _, f := range c.onNew {
		if err := f(g); err != nil {
			g.runClosers()
			return nil, err
		}
	}
	return g, nil
}

// WithPolicy sets the policy that decides every call.
func WithPolicy(p *policy.Policy) Option {
	return func(c *config) error {
		if p == nil {
			return errors.New("agentguard: WithPolicy: nil policy")
		}
		c.policy = p
		return nil
	}
}

// WithPolicyFile loads the policy from a YAML or JSON file. ReloadPolicy
// reads the file again.
func WithPolicyFile(path string) Option {
	return func(c *config) error {
		if path == "" {
			return errors.New("agentguard: WithPolicyFile: empty path")
		}
		c.policyFile = path
		return nil
	}
}

// WithDefaultPrincipal sets the principal of calls whose context carries
// none, and fills the empty fields of those that carry one.
func WithDefaultPrincipal(p Principal) Option {
	return func(c *config) error {
		c.defaultPrincipal = p
		return nil
	}
}

// WithEnv names the environment the Guard runs in ("prod", "staging"); the
// policy sees it as call.env.
func WithEnv(env string) Option {
	return func(c *config) error {
		c.env = env
		return nil
	}
}

// WithClock sets the Guard's source of time; the default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("agentguard: WithClock: nil clock")
		}
		c.clock = now
		return nil
	}
}

// WithLogger sets the operational logger. It is separate from the audit
// log and never replaces it. The default discards everything.
func WithLogger(l *zap.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("agentguard: WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// setStage installs one stage, refusing nil and a second one.
func setStage[T comparable](name string, slot *T, v T) error {
	var zero T
	if v == zero {
		return fmt.Errorf("agentguard: %s: nil", name)
	}
	if *slot != zero {
		return fmt.Errorf("agentguard: %s: given twice", name)
	}
	*slot = v
	return nil
}

// WithHalter sets the kill-switch stage. Most programs use WithKillSwitch.
func WithHalter(h Halter) Option {
	return func(c *config) error { return setStage("WithHalter", &c.halter, h) }
}

// WithLimiter sets the rate-limit stage.
func WithLimiter(l Limiter) Option {
	return func(c *config) error { return setStage("WithLimiter", &c.limiter, l) }
}

// WithBudgeter sets the budget stage.
func WithBudgeter(b Budgeter) Option {
	return func(c *config) error { return setStage("WithBudgeter", &c.budgeter, b) }
}

// WithApprovals sets the approval stage. Most programs use WithApprover.
func WithApprovals(a Approvals) Option {
	return func(c *config) error { return setStage("WithApprovals", &c.approvals, a) }
}

// WithRecorder sets the audit stage. Most programs use WithAudit or
// WithAuditFile. When r is also a Redactor, denials and approval cards show
// only redacted arguments.
func WithRecorder(r Recorder) Option {
	return func(c *config) error { return setStage("WithRecorder", &c.recorder, r) }
}

// WithObserver adds an observer of every recorded event. Observers read
// each call's Call.Args, so a Guard with observers builds that map for
// every call; without them, an allowed call of a tool whose input is a
// small flat struct is decided and recorded without it.
func WithObserver(o Observer) Option {
	return func(c *config) error {
		if o == nil {
			return errors.New("agentguard: WithObserver: nil")
		}
		c.observers = append(c.observers, o)
		return nil
	}
}

// Policy returns the policy in force, or nil when there is none.
func (g *Guard) Policy() *policy.Policy { return g.pol.Load() }

// SetPolicy swaps the policy in force, atomically: a call is decided wholly
// by the old policy or wholly by the new one. When a component that
// depends on the policy (limits, budgets, breakers declared in it) refuses
// the new one, the old one stays and the error says why.
func (g *Guard) SetPolicy(p *policy.Policy) error {
	if p == nil {
		return errors.New("agentguard: SetPolicy: nil policy")
	}
	g.polMu.Lock()
	defer g.polMu.Unlock()
	for _, h := range g.cfg.policyHooks {
		if err := h(p); err != nil {
			return err
		}
	}
	g.pol.Store(p)
	return nil
}

// ReloadPolicy reads the file given to WithPolicyFile again and swaps it in.
// A bad file leaves the policy in force unchanged.
func (g *Guard) ReloadPolicy() error {
	if g.cfg.policyFile == "" {
		return errors.New("agentguard: ReloadPolicy: no policy file (WithPolicyFile)")
	}
	p, err := policy.Load(g.cfg.policyFile)
	if err != nil {
		return err
	}
	return g.SetPolicy(p)
}

// Close stops the Guard: later calls are denied as halted. It closes what
// the options opened (an audit log opened by WithAuditFile gets its final
// checkpoint). Close is idempotent; every call returns the same error.
func (g *Guard) Close() error {
	g.once.Do(func() {
		g.closed.Store(true)
		g.errs = g.runClosers()
	})
	return g.errs
}

func (g *Guard) runClosers() error {
	var errs []error
	for i := len(g.cfg.closers) - 1; i >= 0; i-- {
		if err := g.cfg.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// now returns the Guard's time.
func (g *Guard) now() time.Time { return g.cfg.clock() }

// since is the time elapsed since t by the Guard's clock. With the real
// clock it reads only the monotonic clock, about half the cost of now.
func (g *Guard) since(t time.Time) time.Duration {
	if g.cfg.realClock {
		return time.Since(t)
	}
	return g.now().Sub(t)
}

// Record writes e through the Guard's Recorder and shows it to its
// observers, as the Guard does with its own events. It is for
// integrations that record what is not a guarded call, such as a tool
// definition an MCP server announced (EventTool). Only EventTool is
// accepted: the kinds of calls and of the kill switch are the Guard's own.
// An error means e was not recorded.
func (g *Guard) Record(ctx context.Context, e *Event) error {
	if e == nil || e.Kind != EventTool {
		return errors.New("agentguard: Record: only EventTool events can be recorded from outside the guard")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	return g.record(ctx, e)
}

// record writes e through the Recorder, if any, then shows it to the
// observers. Events that are not about a call (halts, resumes, grants) are
// recorded through it too.
func (g *Guard) record(ctx context.Context, e *Event) (err error) {
	return g.recordCtx(ctx, e, false)
}

// recordLive is record for a call's decision or denial, recorded while
// the caller waits: with the Guard's own file log (config.liveRecord),
// the record is appended with ctx itself, so that when ctx ends while the
// log waits for a sync that hangs (a disk that stopped answering), the
// append returns its error (the record stays in the log, to be synced
// later) and the call is denied, rather than hanging with the disk. Any
// other Recorder gets ctx without its cancellation, as with record: it
// might not record at all with an ended context.
func (g *Guard) recordLive(ctx context.Context, e *Event) error {
	return g.recordCtx(ctx, e, g.cfg.liveRecord)
}

func (g *Guard) recordCtx(ctx context.Context, e *Event, live bool) (err error) {
	if e.Time.IsZero() {
		e.Time = g.now()
	}
	if r := g.cfg.recorder; r != nil {
		err = g.safeRecord(ctx, r, e, live)
	}
	g.observe(ctx, e)
	return err
}

func (g *Guard) safeRecord(ctx context.Context, r Recorder, e *Event, live bool) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("agentguard: recorder panicked: %v", v)
		}
	}()
	if !live && ctx.Done() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	return r.Record(ctx, e)
}

func (g *Guard) observe(ctx context.Context, e *Event) {
	for _, o := range g.cfg.observers {
		g.safeObserve(ctx, o, e)
	}
}

func (g *Guard) safeObserve(ctx context.Context, o Observer, e *Event) {
	defer func() {
		if v := recover(); v != nil {
			g.cfg.logger.Error("agentguard: observer panicked", zap.Any("panic", v))
		}
	}()
	if co, ok := o.(ContextObserver); ok {
		co.ObserveContext(ctx, e)
		return
	}
	o.Observe(e)
}

// redact returns args as the Guard shows them in denials: redacted by the
// Recorder when it is a Redactor, nil otherwise. It may return args itself
// when nothing in it is secret.
func (g *Guard) redact(args map[string]any) map[string]any {
	if g.cfg.redactor == nil || args == nil {
		return nil
	}
	return g.cfg.redactor.RedactArgs(args)
}

// redactCard returns args as approval cards (and so webhook bodies and
// inbox pages) show them: redacted by the Recorder when it is a Redactor,
// by the default redaction of package audit otherwise. It may return args
// itself when nothing in it is secret.
func (g *Guard) redactCard(args map[string]any) map[string]any {
	if g.cfg.cardRedactor == nil || args == nil {
		return nil
	}
	return g.cfg.cardRedactor.RedactArgs(args)
}

// redactCardLabels returns a tool's labels as a card shows them: in a map
// of the card's own, redacted as its arguments are (a value the card's
// redactor turns into anything but a string is shown as "[REDACTED]").
func (g *Guard) redactCardLabels(labels map[string]string) map[string]string {
	if len(labels) == 0 {
		return nil
	}
	m := make(map[string]any, len(labels))
	for k, v := range labels {
		m[k] = v
	}
	if g.cfg.cardRedactor != nil {
		m = g.cfg.cardRedactor.RedactArgs(m)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			s = "[REDACTED]"
		}
		out[k] = s
	}
	return out
}

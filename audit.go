package agentguard

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.uber.org/zap"

	"github.com/hardstop-labs/agentguard/audit"
)

// WithAudit records every event of the Guard in l, before the tool runs
// for decisions (the Recorder stage), and shows only arguments redacted by
// l's Redaction in denials and approval cards. When l cannot record a
// decision (it is latched after a failed write or fsync, or closed), the
// call is denied with CodeAuditUnavailable and the tool does not run. The
// Guard does not close l.
//
// A call's result record is appended with audit.Log.AppendLater: through
// the file's shared mapping (the default on Linux) it is in the file when
// the call returns, and is made durable by the next sync without making
// the caller wait for one. Written with write(2) (audit.Options.NoMap,
// other platforms), it goes out with the next record's write or within
// about 10 ms, so a crash of the process can lose the results of its last
// 10 ms (their decisions are in the log, so those calls read as allowed
// with no known outcome). Decisions, denials and kill-switch records are
// out of the process, and under the default sync durable, before the call
// goes on.
func WithAudit(l *audit.Log) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("agentguard: WithAudit: nil log")
		}
		return setStage("WithAudit", &c.recorder, Recorder(&auditRecorder{log: l}))
	}
}

// WithAuditFile opens the audit log at path (see audit.Open) and records
// every event in it as WithAudit does. opts, at most one, configure the
// log; the zero value is durable (every decision is fsynced before the
// tool runs). When opts has no Clock the log uses the Guard's clock
// (WithClock), and a call's records take the times the Guard read for the
// call, without reading the clock again: its decision, when it entered
// the guard (or when a human's approval came); its result, when the tool
// returned. When opts has no Logger the log uses the Guard's logger
// (WithLogger).
// Guard.Close closes the log, writing a final signed checkpoint when
// opts.SignerKey is set.
func WithAuditFile(path string, opts ...audit.Options) Option {
	return func(c *config) error {
		if len(opts) > 1 {
			return fmt.Errorf("agentguard: WithAuditFile: %d audit.Options given, want at most one", len(opts))
		}
		if path == "" {
			return errors.New("agentguard: WithAuditFile: empty path")
		}
		var o audit.Options
		if len(opts) == 1 {
			o = opts[0]
		}
		if o.Clock == nil {
			o.Clock = func() time.Time {
				if c.clock != nil {
					return c.clock()
				}
				return time.Now()
			}
		}
		if o.Logger == nil && c.logger != nil {
			o.Logger = c.logger
		}
		// A log whose clock is the Guard's is given each call's times,
		// read once by the pipeline, rather than reading the clock again.
		r := &auditRecorder{stamp: len(opts) == 0 || opts[0].Clock == nil}
		if err := setStage("WithAuditFile", &c.recorder, Recorder(r)); err != nil {
			return err
		}
		l, err := audit.Open(path, o)
		if err != nil {
			return fmt.Errorf("agentguard: WithAuditFile: %w", err)
		}
		if rec := l.Recovered(); rec != nil && c.logger != nil {
			c.logger.Warn("agentguard: audit log recovered after a crash", zap.String("file", rec.File),
				zap.Int64("offset", rec.Offset), zap.String("broken", rec.Broken))
		}
		r.log = l
		c.closers = append(c.closers, l.Close)
		return nil
	}
}

// WithAuditStore records every event of the Guard in l, a log kept in a
// shared store (audit.OpenStore; package postgres keeps one in
// PostgreSQL), as WithAudit does for a file: decisions are recorded
// durably before the tool runs, and a call whose decision the store cannot
// record is denied with CodeAuditUnavailable. Several processes recording
// into one store extend one chain. The Guard does not close the store.
func WithAuditStore(l *audit.StoreLog) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("agentguard: WithAuditStore: nil log")
		}
		return setStage("WithAuditStore", &c.recorder, Recorder(&auditRecorder{log: l}))
	}
}

// auditLog is what auditRecorder writes to: an *audit.Log or an
// *audit.StoreLog.
type auditLog interface {
	Append(ctx context.Context, r *audit.Record) error
	Redactor() *audit.Redactor
}

// auditRecorder is the Recorder and Redactor of WithAudit, WithAuditFile
// and WithAuditStore.
type auditRecorder struct {
	log auditLog

	// plans holds each tool's audit.Plan (by tool name): its env, tool
	// and labels encoded once, its argument keys with their redaction
	// worked out. nplans counts them, up to maxPlans.
	plans  sync.Map
	nplans atomic.Int64

	// stamp is set when the log's clock is the Guard's (WithAuditFile
	// without a Clock of its own): a call's records are given their
	// event's time (see recordBuf.fill), which the pipeline read already.
	stamp bool
}

// maxPlans bounds the tools a recorder keeps plans for; the records of
// further tools take the general path.
const maxPlans = 4096

// maxPlanKeys bounds the argument keys of one plan.
const maxPlanKeys = 64

var (
	_ Recorder = (*auditRecorder)(nil)
	_ Redactor = (*auditRecorder)(nil)
)

// Record appends e to the log. A failure is a *DeniedError of
// CodeAuditUnavailable whose Err is the log's error.
func (r *auditRecorder) Record(ctx context.Context, e *Event) error {
	if r.log == nil {
		return &DeniedError{Code: CodeAuditUnavailable, Reason: "the audit log is not open", Err: ErrAuditUnavailable}
	}
	buf := recordBufs.Get().(*recordBuf)
	defer buf.release()
	rec := buf.fill(e, r.stamp)
	if e.Call != nil {
		set(&rec.Plan, r.plan(e.Call, e.lazy, e.tool))
	}
	if e.Kind == EventResult {
		// The decision record holds the arguments; the result only needs
		// them to scrub the tool's error of the secrets among them.
		if rec.Error != "" && (rec.Args != nil || e.lazy != nil) {
			var secrets []string
			switch {
			case rec.Args != nil:
				_, secrets = r.log.Redactor().Args(rec.Args)
			case !rec.Plan.Clean((*flightArgs)(e.lazy)):
				// A lazy flight's arguments that the plan cannot vouch
				// for: the secrets are found in the map.
				_, secrets = r.log.Redactor().Args(e.lazy.args())
			}
			rec.Error = r.log.Redactor().Text(rec.Error, secrets)
		}
		rec.Args = nil
	} else if rec.Args == nil && e.lazy != nil {
		// A lazy flight's call: its arguments are read from the flight's
		// view, with no map unless redaction needs one.
		set(&rec.Reader, audit.ArgReader((*flightArgs)(e.lazy)))
	}
	if e.Kind == EventResult {
		// A compact result: what its decision record (the same call ID)
		// says already is not repeated, only who, which tool and how it
		// ended.
		setStr(&rec.Env, "")
		setStr(&rec.Rule, "")
		setStr(&rec.PolicyVersion, "")
		setSlice(&rec.Estimate, nil)
		rec.Labels = nil
	}
	var err error
	if l, ok := r.log.(lazyLog); ok && e.Kind == EventResult {
		// Nothing waits on a result: it goes out with the next record's
		// write (see audit.Log.AppendLater), with no system call of its
		// own. The decision it follows was written before the tool ran.
		err = l.AppendLater(ctx, rec)
	} else {
		err = r.log.Append(ctx, rec)
	}
	if err != nil {
		return &DeniedError{Code: CodeAuditUnavailable, Reason: "the audit log cannot record this call", Err: err}
	}
	return nil
}

// plan returns the plan of c's tool, made at its first call and remade
// with more keys after a call with an argument key it did not know (up
// to maxPlanKeys); nil past maxPlans tools, or for a call whose env or
// labels are not the plan's (another Wrap of the same name).
//
// lazy, when not nil, is the flight whose view holds c's arguments (c.Args
// is nil): a new plan knows every field of its struct. tc, when not nil,
// is the configuration of c's tool: the plan found is kept there, for the
// tool's next calls to take without a lookup.
func (r *auditRecorder) plan(c *Call, lazy *flight, tc *toolConfig) *audit.Plan {
	if c.Tool == "" {
		return nil
	}
	if tc != nil {
		if tp := tc.plan.Load(); tp != nil && tp.r == r && tp.tool == c.Tool && !tp.p.Missed() {
			// The plan matched the tool's env and labels, which do not
			// change (the Guard's env, the tool's labels).
			return tp.p
		}
	}
	p := r.findPlan(c, lazy)
	if tc != nil && p != nil {
		tc.plan.Store(&toolPlan{r: r, tool: c.Tool, p: p})
	}
	return p
}

// toolPlan is a plan kept in a tool's configuration: that of recorder r
// for the tool's name.
type toolPlan struct {
	r    *auditRecorder
	tool string
	p    *audit.Plan
}

// findPlan is plan without the tool's configuration.
func (r *auditRecorder) findPlan(c *Call, lazy *flight) *audit.Plan {
	v, ok := r.plans.Load(c.Tool)
	if !ok {
		if r.nplans.Add(1) > maxPlans {
			return nil
		}
		var keys []string
		if lazy != nil {
			for _, f := range lazy.view.plan.fields {
				keys = append(keys, f.name)
			}
		} else {
			keys = slices.Collect(maps.Keys(c.Args))
		}
		v, _ = r.plans.LoadOrStore(c.Tool, r.log.Redactor().Plan(c.Env, c.Tool, c.Labels, keys))
	}
	p := v.(*audit.Plan)
	if !p.Matches(c.Env, c.Labels) {
		return nil
	}
	if p.Missed() && p.NumKeys() < maxPlanKeys {
		args := c.Args
		if args == nil && lazy != nil {
			args = lazy.args()
		}
		np := p.Extend(args)
		r.plans.CompareAndSwap(c.Tool, p, np)
		return np
	}
	return p
}

// lazyLog is an auditLog that can take a record without writing it out at
// once: an *audit.Log.
type lazyLog interface {
	AppendLater(ctx context.Context, r *audit.Record) error
}

// RedactArgs returns args redacted as the log redacts them.
func (r *auditRecorder) RedactArgs(args map[string]any) map[string]any {
	if r.log == nil {
		return nil
	}
	return r.log.Redactor().RedactArgs(args)
}

// recordBuf is room for the record of one event and its costs, reused
// through recordBufs: the log keeps nothing of a record after Append.
type recordBuf struct {
	rec   audit.Record
	costs [4]audit.Cost
}

var recordBufs = sync.Pool{New: func() any { return new(recordBuf) }}

// release returns b to the pool. It does not clear b (fill sets every
// field of the record, and clearing a struct of pointers costs a write
// barrier per pointer while the collector runs): a pooled buffer may keep
// its last record's values alive until it is reused or the pool is
// emptied by a collection.
func (b *recordBuf) release() {
	recordBufs.Put(b)
}

// fill maps e to b's record (the record the log writes) and returns it;
// the costs use b's room when they fit. The log redacts the arguments, and
// the error text with the secrets found in them; Record drops a result's
// arguments, which its decision record has.
//
// With stamp, a call's decision or result keeps e.Time as its time
// (the log's clock is the Guard's, which the pipeline read for it);
// otherwise the log reads its clock.
//
// It sets every field of the record, and writes a field only when its
// value changes: most of a tool's records repeat its env, tool, rule and
// principal, and the record lives on the heap, where each pointer written
// while the collector runs costs a write barrier (assigning a whole
// Record costs one per pointer of the struct).
func (b *recordBuf) fill(e *Event, stamp bool) *audit.Record {
	r := &b.rec
	r.Seq, r.Prev, r.Duration = 0, audit.Hash{}, e.Duration
	var at time.Time
	if stamp && e.Call != nil && (e.Kind == EventDecision || e.Kind == EventResult) {
		at = e.Time
	}
	set(&r.Time, at)
	setStr(&r.Log, "")
	setStr(&r.Kind, audit.Kind(e.Kind))
	setStr(&r.Code, string(e.Code))
	setStr(&r.Stage, string(e.Stage))
	setStr(&r.Rule, e.Rule)
	setStr(&r.Reason, e.Reason)
	setStr(&r.PolicyVersion, e.PolicyVersion)
	setStr(&r.Approver, e.Approver)
	setStr(&r.Grant, e.Grant)
	setStr(&r.Note, e.Note)
	setStr(&r.Outcome, string(e.Outcome))
	setStr(&r.Checkpoint, "")
	set(&r.Plan, nil)
	room := b.costs[:]
	var est, act []audit.Cost
	est, room = appendCosts(room, e.Estimate)
	act, _ = appendCosts(room, e.Actual)
	setSlice(&r.Estimate, est)
	setSlice(&r.Actual, act)
	var p audit.Principal
	var call, env, tool string
	var args map[string]any
	var labels map[string]string
	if c := e.Call; c != nil {
		call, env, tool, args, labels = c.ID, c.Env, c.Tool, c.Args, c.Labels
		p = audit.Principal(c.Principal)
	}
	setStr(&r.Call, call)
	setStr(&r.Env, env)
	setStr(&r.Tool, tool)
	setStr(&r.Principal.Agent, p.Agent)
	setStr(&r.Principal.Requester, p.Requester)
	setStr(&r.Principal.Tenant, p.Tenant)
	setStr(&r.Principal.Session, p.Session)
	r.Args, r.Labels = args, labels
	set(&r.Reader, nil) // Record gives a lazy flight's
	decision := ""
	switch e.Kind {
	case EventDecision, EventApproval:
		decision = e.Decision.String()
	}
	setStr(&r.Decision, decision)
	if len(e.Shadow) == 0 {
		setSlice(&r.Shadow, nil)
	} else {
		// The record's own array is reused: the log keeps nothing of a
		// record after Append.
		sh := r.Shadow[:0]
		for _, s := range e.Shadow {
			sh = append(sh, audit.Shadow{Rule: s.Rule, Effect: s.Effect.String(), Reason: s.Reason})
		}
		r.Shadow = sh
	}
	errText := ""
	if e.Err != nil {
		errText = e.Err.Error()
	}
	setStr(&r.Error, errText)
	if e.RetryAfter > 0 && r.Reason != "" {
		r.Reason += fmt.Sprintf(" (retry after %s)", e.RetryAfter.Round(time.Millisecond))
	}
	var ctl *audit.Control
	if e.Control != nil {
		ctl = &audit.Control{Scope: e.Control.Scope, Who: e.Control.Who, Why: e.Control.Why}
	}
	set(&r.Control, ctl)
	return r
}

// set stores v in *p unless *p holds it already (no write, so no write
// barrier, for the fields a tool's records repeat).
func set[T comparable](p *T, v T) {
	if *p != v {
		*p = v
	}
}

// setStr is set for strings, comparing their addresses and lengths, not
// their bytes: an equal string at another address is stored again, which
// costs less than comparing it.
func setStr[S ~string](p *S, v S) {
	if len(*p) != len(v) || unsafe.StringData(string(*p)) != unsafe.StringData(string(v)) {
		*p = v
	}
}

// setSlice stores s in *p unless *p is the same slice already.
func setSlice[T any](p *[]T, s []T) {
	if len(*p) != len(s) || cap(*p) != cap(s) || unsafe.SliceData(*p) != unsafe.SliceData(s) {
		*p = s
	}
}

// appendCosts converts cs into the start of room when it fits, into a
// new slice otherwise; it returns the costs and what is left of room.
// A cost already in room is not written again.
func appendCosts(room []audit.Cost, cs []Cost) (out, rest []audit.Cost) {
	if len(cs) == 0 {
		return nil, room
	}
	if len(cs) <= len(room) {
		out, rest = room[:len(cs):len(cs)], room[len(cs):]
	} else {
		out, rest = make([]audit.Cost, len(cs)), room
	}
	for i, c := range cs {
		set(&out[i], audit.Cost{Unit: c.Unit, Micros: c.Micros})
	}
	return out, rest
}

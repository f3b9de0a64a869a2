package budget

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/hardstop-labs/agentguard/policy"
)

// ErrExceeded is the sentinel of every refusal of a cap; the
// *ExceededError returned unwraps to it.
var ErrExceeded = errors.New("budget: cap exceeded")

// ErrSettled is returned by a second Commit or Release of a Reservation.
var ErrSettled = errors.New("budget: reservation already settled")

// Per says whose spend a cap counts, or whose calls a limit counts.
type Per uint8

// The scopes. The zero value is PerGlobal: one account shared by every
// caller, the strictest choice.
const (
	PerGlobal    Per = iota // everyone together
	PerTenant               // each tenant
	PerAgent                // each agent
	PerRequester            // each requester (the human the agent acts for)
	PerSession              // each session
)

// ParsePer parses "global", "tenant", "agent", "requester" or "session".
func ParsePer(s string) (Per, error) {
	switch s {
	case "global":
		return PerGlobal, nil
	case "tenant":
		return PerTenant, nil
	case "agent":
		return PerAgent, nil
	case "requester":
		return PerRequester, nil
	case "session":
		return PerSession, nil
	}
	return 0, fmt.Errorf("budget: per %q: want global, tenant, agent, requester or session", s)
}

// String returns the scope as ParsePer reads it.
func (p Per) String() string {
	switch p {
	case PerTenant:
		return "tenant"
	case PerAgent:
		return "agent"
	case PerRequester:
		return "requester"
	case PerSession:
		return "session"
	}
	return "global"
}

// value returns the part of s that p keys on.
func (p Per) value(s *Subject) string {
	switch p {
	case PerTenant:
		return s.Tenant
	case PerAgent:
		return s.Agent
	case PerRequester:
		return s.Requester
	case PerSession:
		return s.Session
	}
	return ""
}

// Subject is who makes a call and which tool it calls: what caps and
// limits are keyed by. Empty fields are values like any other (all calls
// with no tenant share one tenant account).
type Subject struct {
	Agent     string
	Requester string
	Tenant    string
	Session   string
	Tool      string
}

// Cap is a hard limit on spend in one unit, for each scope, over a window.
// The zero value names nothing and is rejected by NewLedger.
type Cap struct {
	// Name names the cap in refusals and in the policy's usage.caps.
	Name string
	// Per says whose spend is counted; the zero value counts everyone's
	// together.
	Per Per
	// Tools restricts the cap to tools matching one of these patterns
	// (policy.Glob: "db.*", "mcp/**"); empty means every tool.
	Tools []string
	// Limit is the cap and its unit.
	Limit Amount
	// Window is the period spend is counted over; the zero value is Total.
	Window Window
}

// Options configures a Ledger. The zero value is the in-memory store, the
// system clock and holds of 15 minutes.
type Options struct {
	// Store persists the accounts; nil means a new Mem.
	Store Store
	// Clock tells the time for methods without an explicit time; nil
	// means time.Now.
	Clock func() time.Time
	// Hold is how long a reservation may stay open, after the call starts
	// (see Request.Wait), before it is charged its estimate; zero means 15
	// minutes. A call settled later is still charged in full: its
	// estimate, or its actual cost when that is larger (see Commit).
	Hold time.Duration
}

// DefaultHold is the Hold of a zero Options.
const DefaultHold = 15 * time.Minute

// Ledger holds spend to caps: Reserve before a call, then Commit its
// actual cost or Release it. Calls that would go past any cap that
// applies are refused, atomically across caps, so parallel calls cannot
// race past a cap. A Ledger is safe for concurrent use.
type Ledger struct {
	caps  []*ledgerCap
	store Store
	mem   *Mem // store, when it is a Mem: reservations go straight to its accounts
	clock func() time.Time
	hold  time.Duration
	last  atomic.Int64         // the latest reservation time, in Unix nanoseconds
	keyed [PerSession + 1]bool // the Per values some cap keys on
	seed  maphash.Seed
	memo  [memoSize]atomic.Pointer[capSlots]
}

// capSlots is what a subject's calls reserve against: the caps that apply
// to its tool, their account keys and, on a Mem, the accounts. A Ledger
// remembers them for the subjects it saw last (a bounded table), so that
// a reservation resolves nothing.
type capSlots struct {
	s     Subject // the fields the caps key on; the others are empty
	caps  []*ledgerCap
	keys  []string
	accts []*account // on a Mem

	capBuf  [2]*ledgerCap
	keyBuf  [2]string
	acctBuf [2]*account
}

// notBefore returns t, or the latest reservation time when t is earlier:
// a clock that moves backwards cannot reopen a window that has passed.
func (l *Ledger) notBefore(t time.Time) time.Time {
	n := t.UnixNano()
	for {
		last := l.last.Load()
		if n < last {
			return time.Unix(0, last).In(t.Location())
		}
		if n == last || l.last.CompareAndSwap(last, n) {
			return t
		}
	}
}

type ledgerCap struct {
	Cap
	prefix string                    // "name|window|per="
	day    atomic.Pointer[dayWindow] // the calendar day last seen, for a Day window

	mu   sync.RWMutex
	keys map[string]string // scope value → prefix+value, to spare an allocation per call
}

// dayWindow is one calendar day of a Day window: its start, as Start
// returns it, and its end, in Unix nanoseconds.
type dayWindow struct {
	since      time.Time
	start, end int64
}

// start returns c.Window.Start(t), remembering the current day of a Day
// window: working out a date in a time zone is the costly part.
func (c *ledgerCap) start(t time.Time) time.Time {
	if c.Window.kind != kindDay {
		return c.Window.Start(t)
	}
	n := t.UnixNano()
	if d := c.day.Load(); d != nil && d.start <= n && n < d.end {
		return d.since
	}
	since := c.Window.Start(t)
	end, _ := c.Window.Reset(t)
	c.day.Store(&dayWindow{since: since, start: since.UnixNano(), end: end.UnixNano()})
	return since
}

// maxKeyCache bounds each cap's cache of account keys.
const maxKeyCache = 4096

// key returns the account key of scope value v.
func (c *ledgerCap) key(v string) string {
	if c.Per == PerGlobal {
		return c.prefix
	}
	c.mu.RLock()
	k, ok := c.keys[v]
	c.mu.RUnlock()
	if ok {
		return k
	}
	k = c.prefix + v
	c.mu.Lock()
	if len(c.keys) >= maxKeyCache {
		clear(c.keys)
	}
	if c.keys == nil {
		c.keys = make(map[string]string)
	}
	c.keys[v] = k
	c.mu.Unlock()
	return k
}

// NewLedger returns a ledger enforcing caps. Cap names must be unique and
// not empty, units valid, limits non-negative, windows and tool patterns
// valid.
func NewLedger(caps []Cap, opts Options) (*Ledger, error) {
	l := &Ledger{store: opts.Store, clock: opts.Clock, hold: opts.Hold, seed: maphash.MakeSeed()}
	if l.store == nil {
		l.store = NewMem()
	}
	l.mem, _ = l.store.(*Mem)
	if l.clock == nil {
		l.clock = time.Now
	}
	if l.hold < 0 {
		return nil, fmt.Errorf("budget: negative hold %s", l.hold)
	}
	if l.hold == 0 {
		l.hold = DefaultHold
	}
	seen := make(map[string]bool, len(caps))
	var errs []error
	for i, c := range caps {
		where := fmt.Sprintf("budget: cap %d %q", i, c.Name)
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("%s: missing name", where))
		case strings.Contains(c.Name, "|"):
			errs = append(errs, fmt.Errorf("%s: name must not contain '|'", where))
		case seen[c.Name]:
			errs = append(errs, fmt.Errorf("%s: duplicate name", where))
		}
		seen[c.Name] = true
		if err := c.Limit.Check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: limit: %w", where, err))
		}
		if err := c.Window.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if c.Per > PerSession {
			errs = append(errs, fmt.Errorf("%s: invalid per %d", where, c.Per))
		}
		if err := checkGlobs(c.Tools); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		c.Tools = append([]string(nil), c.Tools...)
		if c.Per <= PerSession {
			l.keyed[c.Per] = true
		}
		l.caps = append(l.caps, &ledgerCap{Cap: c, prefix: c.Name + "|" + c.Window.String() + "|" + c.Per.String() + "="})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return l, nil
}

func checkGlobs(globs []string) error {
	for _, g := range globs {
		if g == "" {
			return errors.New("empty tool pattern")
		}
	}
	return nil
}

// matchTool reports whether tool matches one of globs (policy.Glob), or
// globs is empty.
func matchTool(globs []string, tool string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if g == tool || policy.Glob(g, tool) {
			return true
		}
	}
	return false
}

// Covers reports whether a cap applies to calls of tool: whether Reserve
// would hold anything for them.
func (l *Ledger) Covers(tool string) bool {
	for i := range l.caps {
		if matchTool(l.caps[i].Tools, tool) {
			return true
		}
	}
	return false
}

// Caps returns the ledger's caps.
func (l *Ledger) Caps() []Cap {
	out := make([]Cap, len(l.caps))
	for i, c := range l.caps {
		out[i] = c.Cap
	}
	return out
}

// Request is what Reserve reserves for.
type Request struct {
	// ID names the reservation in the store; unique among open ones. Empty
	// means a new random ID.
	ID string
	// Subject is who calls which tool: it selects the caps that apply.
	Subject Subject
	// Estimate is what the call may cost, at most one amount per unit.
	// A cap whose unit is missing reserves nothing but still refuses when
	// it is used up: a call of unknown cost is not let through a full cap.
	// The reservation keeps the slice until it is settled (a Commit of it
	// charges the estimate): it must not be changed meanwhile.
	Estimate []Amount
	// Wait is how long the call may wait after the reservation before it
	// starts, such as the deadline of a human's approval: the Hold counts
	// from then, so that a call waiting for a human is not charged its
	// estimate under it. Zero means the call starts at once; negative
	// is refused.
	Wait time.Duration
}

// Reserve is ReserveAt at the ledger's clock's time.
func (l *Ledger) Reserve(ctx context.Context, r Request) (*Reservation, error) {
	return l.ReserveAt(ctx, l.clock(), r)
}

// ReserveAt reserves r.Estimate at time t against every cap that applies
// to r.Subject (every cap whose Tools match r.Subject.Tool), atomically:
// either every cap holds its share or none does. A cap refuses when what
// it has spent and reserved in its window, plus the estimate, would go
// past its limit, or when nothing is left of it. The refusal is an
// *ExceededError; any other error (a bad estimate, a store that fails or
// times out with ctx) is returned as is: the call must not run either way.
//
// The reservation must be settled with Commit or Release; one left open
// past t plus r.Wait plus the ledger's Hold is charged its estimate (and a
// later Commit the rest of its actual cost). A t earlier than
// that of an earlier reservation counts as that time: a clock that moves
// backwards cannot reopen a window that has passed.
func (l *Ledger) ReserveAt(ctx context.Context, t time.Time, r Request) (*Reservation, error) {
	res := new(Reservation)
	if err := l.reserveAt(ctx, t, r, res); err != nil {
		return nil, err
	}
	return res, nil
}

// ReserveInto is ReserveAt with the reservation kept in res, which the
// caller owns (in its own per-call state, say), so that it costs no
// allocation. res must be zero or settled, and must not be copied or
// reused until it is settled. On error res holds nothing.
func (l *Ledger) ReserveInto(ctx context.Context, t time.Time, res *Reservation, r Request) error {
	return l.reserveAt(ctx, t, r, res)
}

func (l *Ledger) reserveAt(ctx context.Context, t time.Time, r Request, res *Reservation) error {
	t = l.notBefore(t)
	if r.Wait < 0 {
		return fmt.Errorf("budget: negative wait %v", r.Wait)
	}
	for i, a := range r.Estimate {
		if err := a.Check(); err != nil {
			return fmt.Errorf("budget: estimate: %w", err)
		}
		for _, b := range r.Estimate[:i] {
			if a.Unit == b.Unit {
				return fmt.Errorf("budget: estimate: unit %s given twice", a.Unit)
			}
		}
	}
	// Field by field rather than *res = Reservation{…}: the buffers need
	// no clearing, and a struct copy into the heap costs write barriers.
	// Pointers are written only when they change: in the heap, while the
	// collector marks, every pointer write costs a write barrier.
	if res.l != l {
		res.l = l
	}
	if res.hold != nil || res.caps != nil || res.over != nil || res.mh.h != nil {
		res.hold, res.caps, res.over, res.mh.h = nil, nil, nil, nil
	}
	res.est = r.Estimate
	res.done.Store(false)
	cs := l.slots(&r.Subject)
	if len(cs.caps) == 0 {
		return nil
	}
	id := r.ID
	if id == "" {
		id = uuid.NewString()
	}
	h := &res.h
	h.ID, h.At, h.Deadline, h.Entries = id, t, t.Add(r.Wait).Add(l.hold), res.entBuf[:0]
	res.caps = cs.caps
	for i, c := range cs.caps {
		h.Entries = append(h.Entries, Entry{})
		e := &h.Entries[i]
		e.Key, e.Since, e.Limit, e.Amount, e.Used = cs.keys[i], c.start(t), c.Limit.Micros, amountIn(r.Estimate, c.Limit.Unit), 0
	}
	var err error
	if l.mem != nil {
		if err = ctx.Err(); err != nil {
			err = fmt.Errorf("budget: mem: %w", err)
		} else {
			res.mh.h, res.mh.accts = h, cs.accts
			err = l.mem.reserve(&res.mh)
		}
	} else {
		err = l.store.Reserve(ctx, h)
	}
	if err != nil {
		var full *FullError
		if errors.As(err, &full) && full.Entry >= 0 && full.Entry < len(h.Entries) {
			err = l.exceeded(t, res.caps[full.Entry], &h.Entries[full.Entry], full, &r.Subject)
		} else {
			err = fmt.Errorf("budget: store: %w", err)
		}
		res.hold, res.mh.h, res.caps = nil, nil, nil
		return err
	}
	res.hold = h
	return nil
}

// slots returns the caps, keys and accounts that s's calls reserve
// against, from the table of subjects seen or, the first time, resolved.
func (l *Ledger) slots(s *Subject) *capSlots {
	k, h := l.keyOf(s)
	i := h & (memoSize - 2) // two ways, as in Limiter.resolve
	for w := range uint64(2) {
		if cs := l.memo[i+w].Load(); cs != nil && cs.s == k {
			return cs
		}
	}
	cs := &capSlots{s: k}
	cs.caps, cs.keys = cs.capBuf[:0], cs.keyBuf[:0]
	for _, c := range l.caps {
		if matchTool(c.Tools, s.Tool) {
			cs.caps = append(cs.caps, c)
			cs.keys = append(cs.keys, c.key(c.Per.value(s)))
		}
	}
	if l.mem != nil {
		cs.accts = l.mem.accountsOf(cs.acctBuf[:0], cs.keys)
	}
	slot := &l.memo[i+(h>>63)]
	if l.memo[i].Load() == nil {
		slot = &l.memo[i]
	} else if l.memo[i+1].Load() == nil {
		slot = &l.memo[i+1]
	}
	slot.Store(cs)
	return cs
}

// keyOf returns the fields of s the caps key on, and their hash.
func (l *Ledger) keyOf(s *Subject) (Subject, uint64) { return subjectKey(l.seed, &l.keyed, s) }

// subjectKey returns the fields of s that a table keyed on the Per values
// set in keyed tells apart (the tool always), and their hash with seed.
func subjectKey(seed maphash.Seed, keyed *[PerSession + 1]bool, s *Subject) (Subject, uint64) {
	k := Subject{Tool: s.Tool}
	h := maphash.String(seed, s.Tool)
	mix := func(v string) {
		h = (h ^ maphash.String(seed, v)) * 0x9e3779b97f4a7c15
	}
	if keyed[PerTenant] {
		k.Tenant = s.Tenant
		mix(k.Tenant)
	}
	if keyed[PerAgent] {
		k.Agent = s.Agent
		mix(k.Agent)
	}
	if keyed[PerRequester] {
		k.Requester = s.Requester
		mix(k.Requester)
	}
	if keyed[PerSession] {
		k.Session = s.Session
		mix(k.Session)
	}
	return k, h
}

func amountIn(as []Amount, unit string) int64 {
	for _, a := range as {
		if a.Unit == unit {
			return a.Micros
		}
	}
	return 0
}

func (l *Ledger) exceeded(t time.Time, c *ledgerCap, e *Entry, f *FullError, s *Subject) *ExceededError {
	u := c.Limit.Unit
	err := &ExceededError{
		Cap:      c.Name,
		Per:      c.Per,
		Scope:    c.Per.value(s),
		Window:   c.Window,
		Limit:    c.Limit,
		Spent:    Amount{Micros: f.Spent, Unit: u},
		Reserved: Amount{Micros: f.Reserved, Unit: u},
		Asked:    Amount{Micros: e.Amount, Unit: u},
		Overage:  f.Spent > c.Limit.Micros,
	}
	// Waiting helps only when the ask fits an empty window.
	if reset, ok := c.Window.Reset(t); ok && c.Limit.Micros > 0 && e.Amount <= c.Limit.Micros {
		err.RetryAfter = reset.Sub(t)
	}
	return err
}

// ExceededError is a refusal by a cap. It unwraps to ErrExceeded.
type ExceededError struct {
	Cap    string // the cap's name
	Per    Per
	Scope  string // the tenant, agent, requester or session counted; empty for PerGlobal
	Window Window
	Limit  Amount
	Spent  Amount // charged in the window
	// Reserved is held by calls in flight in the window.
	Reserved Amount
	// Asked is this call's estimate in the cap's unit.
	Asked Amount
	// Overage is true when the window's spend is already above the limit:
	// the cap stays shut until its window resets.
	Overage bool
	// RetryAfter is how long until the window resets, when an empty window
	// would fit the call; zero when waiting cannot help.
	RetryAfter time.Duration
}

// Error describes the refusal with its amounts.
func (e *ExceededError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "budget: cap %q", e.Cap)
	if e.Per != PerGlobal {
		fmt.Fprintf(&b, " for %s %q", e.Per, e.Scope)
	}
	b.WriteString(" exceeded: ")
	b.WriteString(e.Reason())
	return b.String()
}

// Reason describes the amounts, without the cap's name: "spent 24.5 USD
// and reserved 0.4 USD of 25 USD per day; this call needs 0.2 USD".
func (e *ExceededError) Reason() string {
	var b strings.Builder
	fmt.Fprintf(&b, "spent %s", e.Spent)
	if e.Reserved.Micros > 0 {
		fmt.Fprintf(&b, " and reserved %s", e.Reserved)
	}
	fmt.Fprintf(&b, " of %s", e.Limit)
	switch e.Window.kind {
	case kindDay:
		b.WriteString(" per day")
		if e.Window.loc != nil && e.Window.loc != time.UTC {
			fmt.Fprintf(&b, " (%s)", e.Window.loc)
		}
	case kindHour:
		b.WriteString(" per hour")
	case kindRolling:
		fmt.Fprintf(&b, " per %s", e.Window.d)
	default:
		b.WriteString(" in total")
	}
	if e.Asked.Micros > 0 {
		fmt.Fprintf(&b, "; this call needs %s", e.Asked)
	} else {
		b.WriteString("; nothing is left")
	}
	if e.Overage {
		b.WriteString("; the cap was overrun and stays shut until its window resets")
	}
	return b.String()
}

// Unwrap returns ErrExceeded.
func (e *ExceededError) Unwrap() error { return ErrExceeded }

// Reservation is budget held for one call by Ledger.Reserve. Settle it
// exactly once, with Commit or Release. It is safe for concurrent use; only
// the first settlement counts.
type Reservation struct {
	l    *Ledger
	hold *Hold // nil when no cap applies; else &h
	caps []*ledgerCap
	est  []Amount
	done atomic.Bool
	over []Amount
	mh   memHold // the hold in the ledger's Mem; mh.h is nil on another store

	// Room for the common case of at most two caps, so that a reservation
	// is one allocation, or none (ReserveInto).
	h       Hold
	entBuf  [2]Entry
	actBuf  [2]int64
	overBuf [2]Amount
}

// ID returns the reservation's ID in the store; empty when no cap applied.
func (r *Reservation) ID() string {
	if r.hold == nil {
		return ""
	}
	return r.hold.ID
}

// Left returns what is left of each cap that applies after this
// reservation, one amount per cap.
func (r *Reservation) Left() []Amount {
	if r.hold == nil {
		return nil
	}
	out := make([]Amount, len(r.caps))
	for i, c := range r.caps {
		e := r.hold.Entries[i]
		out[i] = Amount{Micros: subSat(subSat(e.Limit, e.Used), e.Amount), Unit: c.Limit.Unit}
	}
	return out
}

// Caps returns the names of the caps the reservation holds, in the order
// of Left.
func (r *Reservation) Caps() []string {
	out := make([]string, len(r.caps))
	for i, c := range r.caps {
		out[i] = c.Name
	}
	return out
}

// Commit is CommitAt at the ledger's clock's time.
func (r *Reservation) Commit(ctx context.Context, actual []Amount) error {
	return r.CommitAt(ctx, r.l.clock(), actual)
}

// CommitAt charges the call's actual cost, at most one amount per unit,
// and releases the rest of the estimate. Actual above the estimate is
// charged in full and reported by Overage; a cap it overruns stays shut
// until its window resets. Units that no cap counts are ignored.
//
// A commit at or after the deadline is late: the estimate was charged at
// the deadline, and the actual cost is charged where it is larger (in
// full: an overrun shuts the cap); CommitAt then returns ErrExpired. An
// actual cost is never dropped, unless the commit comes more than
// KeepExpired after the deadline (the store may have forgotten the hold:
// ErrUnknownHold). A second settlement returns ErrSettled.
func (r *Reservation) CommitAt(ctx context.Context, t time.Time, actual []Amount) error {
	// The reservation's own estimate (the same slice) was checked when it
	// was reserved, and charges nothing above itself.
	if est := r.est; len(actual) > 0 && len(actual) == len(est) && &actual[0] == &est[0] {
		if r.done.Swap(true) {
			return ErrSettled
		}
		return r.commitChecked(ctx, t, actual)
	}
	for i, a := range actual {
		if err := a.Check(); err != nil {
			return fmt.Errorf("budget: actual: %w", err)
		}
		for _, b := range actual[:i] {
			if a.Unit == b.Unit {
				return fmt.Errorf("budget: actual: unit %s given twice", a.Unit)
			}
		}
	}
	if r.done.Swap(true) {
		return ErrSettled
	}
	for _, a := range actual {
		if e := amountIn(r.est, a.Unit); a.Micros > e {
			if r.over == nil {
				r.over = r.overBuf[:0]
			}
			r.over = append(r.over, Amount{Micros: a.Micros - e, Unit: a.Unit})
		}
	}
	return r.commitChecked(ctx, t, actual)
}

// commitChecked is CommitAt once actual is checked and the reservation
// marked settled.
func (r *Reservation) commitChecked(ctx context.Context, t time.Time, actual []Amount) error {
	if r.hold == nil {
		return nil
	}
	v := r.actBuf[:0]
	for range r.caps {
		v = append(v, 0)
	}
	for i, c := range r.caps {
		v[i] = amountIn(actual, c.Limit.Unit)
	}
	return r.settle(ctx, t, v)
}

// Release is ReleaseAt at the ledger's clock's time.
func (r *Reservation) Release(ctx context.Context) error {
	return r.ReleaseAt(ctx, r.l.clock())
}

// ReleaseAt gives the whole reservation back, charging nothing: the call
// did not run. After the deadline the estimate has been charged instead
// and ReleaseAt returns ErrExpired. A second settlement returns
// ErrSettled.
func (r *Reservation) ReleaseAt(ctx context.Context, t time.Time) error {
	if r.done.Swap(true) {
		return ErrSettled
	}
	if r.hold == nil {
		return nil
	}
	return r.settle(ctx, t, nil)
}

func (r *Reservation) settle(ctx context.Context, t time.Time, v []int64) error {
	var err error
	if r.mh.h != nil {
		if err = ctx.Err(); err != nil {
			err = fmt.Errorf("budget: mem: %w", err)
		} else {
			err = r.l.mem.settle(&r.mh, v, t)
		}
	} else {
		err = r.l.store.Settle(ctx, r.hold.ID, v, t)
	}
	if err != nil && !errors.Is(err, ErrExpired) && !errors.Is(err, ErrUnknownHold) {
		return fmt.Errorf("budget: store: %w", err)
	}
	return err
}

// Overage returns what a Commit charged above the estimate, by unit.
func (r *Reservation) Overage() []Amount { return r.over }

// Usage is one cap's account for a subject, in the current window.
type Usage struct {
	Cap      string
	Per      Per
	Scope    string
	Window   Window
	Limit    Amount
	Spent    Amount
	Reserved Amount
	Calls    int64
	// Left is the limit less spent and reserved, never below zero.
	Left Amount
}

// Usage is UsageAt at the ledger's clock's time.
func (l *Ledger) Usage(ctx context.Context, s Subject) ([]Usage, error) {
	return l.UsageAt(ctx, l.clock(), s)
}

// UsageAt reports, for every cap that applies to s (all caps when s.Tool
// is empty), what s's scope has spent, reserved and called in the window
// containing t.
func (l *Ledger) UsageAt(ctx context.Context, t time.Time, s Subject) ([]Usage, error) {
	var q []Query
	var cs []*ledgerCap
	for i := range l.caps {
		c := l.caps[i]
		if s.Tool != "" && !matchTool(c.Tools, s.Tool) {
			continue
		}
		q = append(q, Query{Key: c.key(c.Per.value(&s)), Since: c.Window.Start(t)})
		cs = append(cs, c)
	}
	if len(q) == 0 {
		return nil, nil
	}
	ts, err := l.store.Usage(ctx, t, q)
	if err != nil {
		return nil, fmt.Errorf("budget: store: %w", err)
	}
	if len(ts) != len(q) {
		return nil, fmt.Errorf("budget: store: %d tallies for %d queries", len(ts), len(q))
	}
	out := make([]Usage, len(q))
	for i, c := range cs {
		u := c.Limit.Unit
		out[i] = Usage{
			Cap: c.Name, Per: c.Per, Scope: c.Per.value(&s), Window: c.Window, Limit: c.Limit,
			Spent:    Amount{Micros: ts[i].Spent, Unit: u},
			Reserved: Amount{Micros: ts[i].Reserved, Unit: u},
			Calls:    ts[i].Calls,
			Left:     Amount{Micros: subSat(c.Limit.Micros, addSat(ts[i].Spent, ts[i].Reserved)), Unit: u},
		}
	}
	return out, nil
}

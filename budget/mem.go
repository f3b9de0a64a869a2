package budget

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Mem is the in-memory Store: the default of a Ledger and the reference
// for other stores. Its accounts live as long as the process. It is safe
// for concurrent use; one mutex makes every Reserve atomic.
//
// Mem keeps charges in one-second buckets and merges buckets older than
// the windows it is asked about (less a minute of slack) into one total,
// so memory grows with the number of accounts and open holds (and holds
// expired unsettled in the last KeepExpired), not with the number of calls. A rolling window counts charges up to one second
// older than its start; never fewer.
type Mem struct {
	mu       sync.Mutex
	accounts map[string]*account
	holds    map[string]*Hold
	// due is at or before the earliest deadline of the open holds: until
	// then no hold can expire and expire need not look.
	due time.Time
	// expired are the holds charged at their deadline and not settled
	// since, kept for a late Settle; forgotten KeepExpired after their
	// deadline (looked at when forget is due).
	expired map[string]*Hold
	forget  time.Time
}

var _ Store = (*Mem)(nil)

// memSlack is how far before a window's start Mem keeps buckets apart, so
// that callers whose clocks differ a little still count exactly.
const memSlack = 60 // seconds

// NewMem returns an empty in-memory store.
func NewMem() *Mem {
	return &Mem{accounts: make(map[string]*account), holds: make(map[string]*Hold), expired: make(map[string]*Hold)}
}

type bucket struct {
	sec   int64 // Unix seconds
	spent int64
	calls int64
}

type account struct {
	buckets []bucket // by sec, ascending
	sum     bucket   // the sums of buckets (sec unused); saturating
	base    bucket   // merged charges older than cut
	cut     int64    // Unix seconds; charges before it are in base
	holds   map[*Hold]int64
	held    int64     // the sum of holds; saturating
	oldest  time.Time // no open hold is older; conservative
}

func floorSec(t time.Time) int64 { return t.Unix() } // Unix rounds toward negative infinity

// Reserve implements Store.
func (m *Mem) Reserve(ctx context.Context, h *Hold) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("budget: mem: %w", err)
	}
	if h == nil || h.ID == "" {
		return fmt.Errorf("budget: mem: hold without ID")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(h.At)
	if _, ok := m.holds[h.ID]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicateHold, h.ID)
	}
	for i := range h.Entries {
		e := &h.Entries[i]
		a := m.account(e.Key)
		a.prune(e.Since, h.At)
		spent, _ := a.spent(e.Since)
		reserved := a.reserved(e.Since)
		used := addSat(spent, reserved)
		if used >= e.Limit || addSat(used, e.Amount) > e.Limit {
			return &FullError{Entry: i, Spent: spent, Reserved: reserved}
		}
		e.Used = used
	}
	m.holds[h.ID] = h
	if len(m.holds) == 1 || h.Deadline.Before(m.due) {
		m.due = h.Deadline
	}
	for i := range h.Entries {
		e := &h.Entries[i]
		a := m.accounts[e.Key]
		if a.holds == nil {
			a.holds = make(map[*Hold]int64)
		}
		if len(a.holds) == 0 || h.At.Before(a.oldest) {
			a.oldest = h.At
		}
		a.holds[h] = e.Amount
		a.held = addSat(a.held, e.Amount)
	}
	return nil
}

// Settle implements Store.
func (m *Mem) Settle(ctx context.Context, id string, actual []int64, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("budget: mem: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.holds[id]
	if !ok {
		h, ok = m.expired[id]
	}
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownHold, id)
	}
	if actual != nil && len(actual) != len(h.Entries) {
		return fmt.Errorf("budget: mem: settle %q: %d amounts for %d entries", id, len(actual), len(h.Entries))
	}
	for _, v := range actual {
		if v < 0 {
			return fmt.Errorf("budget: mem: settle %q: negative amount %d", id, v)
		}
	}
	if m.expired[id] == h || !at.Before(h.Deadline) {
		// Late: charged its amounts at expiry; a larger actual is charged
		// in full, as part of the same call.
		if m.holds[id] == h {
			m.expireHold(h)
		}
		delete(m.expired, id)
		sec := floorSec(h.At)
		for i, e := range h.Entries {
			if actual != nil && actual[i] > e.Amount {
				m.account(e.Key).add(sec, actual[i]-e.Amount, 0)
			}
		}
		return fmt.Errorf("%w: %q", ErrExpired, id)
	}
	if actual == nil {
		m.drop(h)
		return nil
	}
	m.charge(h, actual)
	return nil
}

// Usage implements Store.
func (m *Mem) Usage(ctx context.Context, at time.Time, q []Query) ([]Tally, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("budget: mem: %w", err)
	}
	out := make([]Tally, len(q))
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(at)
	for i, q := range q {
		a, ok := m.accounts[q.Key]
		if !ok {
			continue
		}
		a.prune(q.Since, at)
		out[i].Spent, out[i].Calls = a.spent(q.Since)
		out[i].Reserved = a.reserved(q.Since)
	}
	return out, nil
}

func (m *Mem) account(key string) *account {
	a, ok := m.accounts[key]
	if !ok {
		a = &account{cut: minSec}
		m.accounts[key] = a
	}
	return a
}

const minSec = -1 << 62

// expire charges every open hold whose deadline is at or before at. It
// looks at the holds only when the earliest deadline may have passed, so
// its cost is spread thin: holds are short-lived.
func (m *Mem) expire(at time.Time) {
	if len(m.expired) > 0 && !m.forget.After(at) {
		var next time.Time
		for id, h := range m.expired {
			f := h.Deadline.Add(KeepExpired)
			if !f.After(at) {
				delete(m.expired, id)
				continue
			}
			if next.IsZero() || f.Before(next) {
				next = f
			}
		}
		m.forget = next
	}
	if len(m.holds) == 0 || m.due.After(at) {
		return
	}
	var next time.Time
	for _, h := range m.holds {
		if !h.Deadline.After(at) {
			m.expireHold(h)
			continue
		}
		if next.IsZero() || h.Deadline.Before(next) {
			next = h.Deadline
		}
	}
	m.due = next
}

// expireHold charges h its own amounts, as one call, and keeps it for a
// late Settle.
func (m *Mem) expireHold(h *Hold) {
	m.charge(h, nil)
	f := h.Deadline.Add(KeepExpired)
	if len(m.expired) == 0 || f.Before(m.forget) {
		m.forget = f
	}
	m.expired[h.ID] = h
}

// charge removes h and charges actual, or its own amounts when actual is
// nil, as one call.
func (m *Mem) charge(h *Hold, actual []int64) {
	m.drop(h)
	sec := floorSec(h.At)
	for i, e := range h.Entries {
		v := e.Amount
		if actual != nil {
			v = actual[i]
		}
		m.account(e.Key).add(sec, v, 1)
	}
}

// drop removes h from the holds and its accounts.
func (m *Mem) drop(h *Hold) {
	delete(m.holds, h.ID)
	for _, e := range h.Entries {
		a := m.accounts[e.Key]
		v, ok := a.holds[h]
		if !ok {
			continue
		}
		delete(a.holds, h)
		if a.held != MaxMicros {
			a.held -= v
		}
		if len(a.holds) == 0 {
			a.held = 0
		}
	}
}

// add charges v micro-units and calls calls at second sec.
func (a *account) add(sec, v, calls int64) {
	if sec < a.cut {
		a.base.spent = addSat(a.base.spent, v)
		a.base.calls = addSat(a.base.calls, calls)
		return
	}
	a.sum.spent = addSat(a.sum.spent, v)
	a.sum.calls = addSat(a.sum.calls, calls)
	n := len(a.buckets)
	i := sort.Search(n, func(i int) bool { return a.buckets[i].sec >= sec })
	if i < n && a.buckets[i].sec == sec {
		a.buckets[i].spent = addSat(a.buckets[i].spent, v)
		a.buckets[i].calls = addSat(a.buckets[i].calls, calls)
		return
	}
	a.buckets = append(a.buckets, bucket{})
	copy(a.buckets[i+1:], a.buckets[i:])
	a.buckets[i] = bucket{sec: sec, spent: v, calls: calls}
}

// prune merges buckets well before since (or before at, when since is the
// zero time of a Total window) into base.
func (a *account) prune(since, at time.Time) {
	f := floorSec(since)
	if since.IsZero() {
		f = floorSec(at)
	}
	f -= memSlack
	if f <= a.cut {
		return
	}
	n := 0
	for n < len(a.buckets) && a.buckets[n].sec < f {
		b := a.buckets[n]
		a.base.spent = addSat(a.base.spent, b.spent)
		a.base.calls = addSat(a.base.calls, b.calls)
		if a.sum.spent != MaxMicros {
			a.sum.spent -= b.spent
		}
		if a.sum.calls != MaxMicros {
			a.sum.calls -= b.calls
		}
		n++
	}
	a.buckets = append(a.buckets[:0], a.buckets[n:]...)
	a.cut = f
}

// spent returns the charges and calls at or after since. When since is
// before cut, everything merged into base counts too: more than the
// window, never less.
func (a *account) spent(since time.Time) (spent, calls int64) {
	s := floorSec(since)
	if since.IsZero() {
		s = minSec
	}
	spent, calls = a.sum.spent, a.sum.calls
	for _, b := range a.buckets {
		if b.sec >= s {
			break
		}
		if spent != MaxMicros {
			spent -= b.spent
		}
		if calls != MaxMicros {
			calls -= b.calls
		}
	}
	if s < a.cut {
		spent = addSat(spent, a.base.spent)
		calls = addSat(calls, a.base.calls)
	}
	return spent, calls
}

// reserved returns the sum of open holds made at or after since.
func (a *account) reserved(since time.Time) int64 {
	if len(a.holds) == 0 {
		return 0
	}
	if !a.oldest.Before(since) {
		return a.held
	}
	var r int64
	oldest := time.Time{}
	for h, v := range a.holds {
		at := h.At
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
		if !at.Before(since) {
			r = addSat(r, v)
		}
	}
	a.oldest = oldest
	return r
}

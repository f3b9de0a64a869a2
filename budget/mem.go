package budget

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Mem is the in-memory Store: the default of a Ledger and the reference
// for other stores. Its accounts live as long as the process. It is safe
// for concurrent use. Each account has a mutex of its own; a Reserve or
// Settle locks the accounts of its hold (in a fixed order), so it is
// atomic across them while calls on other accounts go on in parallel.
//
// Mem keeps charges in one-second buckets and merges buckets older than
// the windows it is asked about (less a minute of slack) into one total,
// so memory grows with the number of accounts and open holds (and holds
// expired unsettled in the last KeepExpired), not with the number of
// calls. A rolling window counts charges up to one second older than its
// start; never fewer.
//
// An open hold is expired, in each of its accounts, by the next Reserve or
// Usage of that account at or after its deadline (every account's numbers
// are then as if it had been expired at its deadline).
type Mem struct {
	mu       sync.Mutex // guards accounts, nextOrd, byID and forget
	accounts map[string]*account
	nextOrd  uint64
	// byID are the holds reserved through Reserve, until settled, or
	// forgotten KeepExpired after their deadline (looked at when forget
	// is due).
	byID   map[string]*memHold
	forget time.Time
}

var _ Store = (*Mem)(nil)

// memSlack is how far before a window's start Mem keeps buckets apart, so
// that callers whose clocks differ a little still count exactly.
const memSlack = 60 // seconds

// NewMem returns an empty in-memory store.
func NewMem() *Mem {
	return &Mem{accounts: make(map[string]*account), byID: make(map[string]*memHold)}
}

type bucket struct {
	sec   int64 // Unix seconds
	spent int64
	calls int64
}

// account is one account's numbers, under its own mutex.
type account struct {
	mu      sync.Mutex
	ord     uint64    // lock order
	buckets []bucket  // by sec, ascending
	sum     bucket    // the sums of buckets (sec unused); saturating
	base    bucket    // merged charges older than cut
	cut     int64     // Unix seconds; charges before it are in base
	holds   *holdLink // the open holds' entries, a doubly linked list
	nholds  int
	held    int64     // the sum of holds; saturating
	oldest  time.Time // no open hold is older; conservative
	due     time.Time // no open hold's deadline is earlier; conservative
}

// holdLink is an open hold's entry in its account's list of open holds,
// kept in the hold: linking and unlinking it costs no map and no
// allocation.
type holdLink struct {
	prev, next *holdLink
	mh         *memHold // nil while not in a list
	entry      int
	amount     int64
}

// link adds l, entry i of mh, to a's open holds; under a.mu.
func (a *account) link(l *holdLink, mh *memHold, i int, amount int64) {
	l.mh, l.entry, l.amount = mh, i, amount
	l.prev, l.next = nil, a.holds
	if a.holds != nil {
		a.holds.prev = l
	}
	a.holds = l
	a.nholds++
}

// unlink removes l from a's open holds, if it is there; under a.mu.
func (a *account) unlink(l *holdLink) bool {
	if l.mh == nil {
		return false
	}
	if l.prev != nil {
		l.prev.next = l.next
	} else {
		a.holds = l.next
	}
	if l.next != nil {
		l.next.prev = l.prev
	}
	l.prev, l.next, l.mh = nil, nil, nil
	a.nholds--
	return true
}

// memHold is a hold as Mem keeps it: the hold, its accounts by entry, and
// which entries were charged at expiry. A Ledger on a Mem keeps it inside
// its Reservation, so that a reservation costs no allocation.
type memHold struct {
	h       *Hold
	accts   []*account // by entry
	charged []bool     // by entry: expired, charged its amount; under the entry's account's lock
	links   []holdLink // by entry: in the entry's account's list while open
	expired atomic.Bool
	settled bool // under the locks of all accts

	acctBuf    [2]*account
	chargedBuf [2]bool
	linkBuf    [2]holdLink
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
	mh := &memHold{h: h, settled: true}
	m.mu.Lock()
	m.forgetDue(h.At)
	if _, ok := m.byID[h.ID]; ok {
		m.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrDuplicateHold, h.ID)
	}
	mh.accts = mh.acctBuf[:0]
	for i := range h.Entries {
		mh.accts = append(mh.accts, m.accountLocked(h.Entries[i].Key))
	}
	// Registered before it is held, so that the same ID reserved twice at
	// once is refused; until reserve succeeds it counts as settled.
	m.byID[h.ID] = mh
	if f := h.Deadline.Add(KeepExpired); len(m.byID) == 1 || f.Before(m.forget) {
		m.forget = f
	}
	m.mu.Unlock()
	if err := m.reserve(mh); err != nil {
		m.mu.Lock()
		if m.byID[h.ID] == mh {
			delete(m.byID, h.ID)
		}
		m.mu.Unlock()
		return err
	}
	return nil
}

// accountsOf appends the accounts of keys to dst, making those never
// seen.
func (m *Mem) accountsOf(dst []*account, keys []string) []*account {
	m.mu.Lock()
	for _, k := range keys {
		dst = append(dst, m.accountLocked(k))
	}
	m.mu.Unlock()
	return dst
}

// reserve records mh if every entry fits, atomically across its accounts.
func (m *Mem) reserve(mh *memHold) error {
	h := mh.h
	mh.settled = true // until held
	mh.expired.Store(false)
	mh.charged = mh.chargedBuf[:0]
	for range h.Entries {
		mh.charged = append(mh.charged, false)
	}
	if n := len(h.Entries); n <= len(mh.linkBuf) {
		mh.links = mh.linkBuf[:n]
	} else {
		mh.links = make([]holdLink, n)
	}
	var order [4]*account
	locked := lockAll(order[:0], mh.accts)
	for i := range h.Entries {
		e := &h.Entries[i]
		a := mh.accts[i]
		a.expire(h.At)
		a.prune(e.Since, h.At)
		spent, _ := a.spent(e.Since)
		reserved := a.reserved(e.Since)
		used := addSat(spent, reserved)
		if used >= e.Limit || addSat(used, e.Amount) > e.Limit {
			unlockAll(locked)
			return &FullError{Entry: i, Spent: spent, Reserved: reserved}
		}
		e.Used = used
	}
	for i := range h.Entries {
		e := &h.Entries[i]
		a := mh.accts[i]
		if a.nholds == 0 || h.At.Before(a.oldest) {
			a.oldest = h.At
		}
		if a.nholds == 0 || h.Deadline.Before(a.due) {
			a.due = h.Deadline
		}
		a.link(&mh.links[i], mh, i, e.Amount)
		a.held = addSat(a.held, e.Amount)
	}
	mh.settled = false
	unlockAll(locked)
	return nil
}

// lockAll locks accts in their lock order, each once, and returns them as
// locked.
func lockAll(dst []*account, accts []*account) []*account {
	if len(accts) == 1 {
		accts[0].mu.Lock()
		return accts
	}
next:
	for _, a := range accts {
		for _, b := range dst {
			if a == b {
				continue next
			}
		}
		dst = append(dst, a)
	}
	for i := 1; i < len(dst); i++ {
		for j := i; j > 0 && dst[j].ord < dst[j-1].ord; j-- {
			dst[j], dst[j-1] = dst[j-1], dst[j]
		}
	}
	for _, a := range dst {
		a.mu.Lock()
	}
	return dst
}

func unlockAll(locked []*account) {
	for _, a := range locked {
		a.mu.Unlock()
	}
}

// Settle implements Store.
func (m *Mem) Settle(ctx context.Context, id string, actual []int64, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("budget: mem: %w", err)
	}
	m.mu.Lock()
	mh, ok := m.byID[id]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownHold, id)
	}
	err := m.settle(mh, actual, at)
	if err == nil || errors.Is(err, ErrExpired) || errors.Is(err, ErrUnknownHold) {
		m.mu.Lock()
		if m.byID[id] == mh {
			delete(m.byID, id)
		}
		m.mu.Unlock()
	}
	return err
}

// settle ends mh at at: see Store.Settle.
func (m *Mem) settle(mh *memHold, actual []int64, at time.Time) error {
	h := mh.h
	if actual != nil && len(actual) != len(h.Entries) {
		return fmt.Errorf("budget: mem: settle %q: %d amounts for %d entries", h.ID, len(actual), len(h.Entries))
	}
	for _, v := range actual {
		if v < 0 {
			return fmt.Errorf("budget: mem: settle %q: negative amount %d", h.ID, v)
		}
	}
	var order [4]*account
	locked := lockAll(order[:0], mh.accts)
	defer unlockAll(locked)
	if mh.settled {
		return fmt.Errorf("%w: %q", ErrUnknownHold, h.ID)
	}
	mh.settled = true
	sec := floorSec(h.At)
	if mh.expired.Load() || !at.Before(h.Deadline) {
		// Late: charged its amounts at expiry; a larger actual is charged
		// in full, as part of the same call.
		for i, e := range h.Entries {
			a := mh.accts[i]
			if !mh.charged[i] {
				a.expireHold(mh, i)
			}
			if actual != nil && actual[i] > e.Amount {
				a.add(sec, actual[i]-e.Amount, 0)
			}
		}
		return fmt.Errorf("%w: %q", ErrExpired, h.ID)
	}
	for i, a := range mh.accts {
		a.drop(mh, i)
		if actual != nil {
			a.add(sec, actual[i], 1)
		}
	}
	return nil
}

// Usage implements Store.
func (m *Mem) Usage(ctx context.Context, at time.Time, q []Query) ([]Tally, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("budget: mem: %w", err)
	}
	out := make([]Tally, len(q))
	m.mu.Lock()
	m.forgetDue(at)
	m.mu.Unlock()
	for i, q := range q {
		m.mu.Lock()
		a, ok := m.accounts[q.Key]
		m.mu.Unlock()
		if !ok {
			continue
		}
		a.mu.Lock()
		a.expire(at)
		a.prune(q.Since, at)
		out[i].Spent, out[i].Calls = a.spent(q.Since)
		out[i].Reserved = a.reserved(q.Since)
		a.mu.Unlock()
	}
	return out, nil
}

// accountLocked returns the account of key, making it; under m.mu.
func (m *Mem) accountLocked(key string) *account {
	a, ok := m.accounts[key]
	if !ok {
		m.nextOrd++
		a = &account{cut: minSec, ord: m.nextOrd}
		m.accounts[key] = a
	}
	return a
}

const minSec = -1 << 62

// forgetDue forgets the holds of byID KeepExpired after their deadline;
// under m.mu. It looks only when the earliest may be due.
func (m *Mem) forgetDue(at time.Time) {
	if len(m.byID) == 0 || m.forget.After(at) {
		return
	}
	var next time.Time
	for id, mh := range m.byID {
		f := mh.h.Deadline.Add(KeepExpired)
		if !f.After(at) {
			delete(m.byID, id)
			continue
		}
		if next.IsZero() || f.Before(next) {
			next = f
		}
	}
	m.forget = next
}

// expire charges every open hold of a whose deadline is at or before at,
// its amount in a, as one call. It looks at the holds only when the
// earliest deadline may have passed; under a.mu.
func (a *account) expire(at time.Time) {
	if a.nholds == 0 || a.due.After(at) {
		return
	}
	var next time.Time
	for l := a.holds; l != nil; {
		mh, i := l.mh, l.entry
		l = l.next
		if !mh.h.Deadline.After(at) {
			a.expireHold(mh, i)
			continue
		}
		if next.IsZero() || mh.h.Deadline.Before(next) {
			next = mh.h.Deadline
		}
	}
	a.due = next
}

// expireHold charges entry i of mh, whose account a is, its amount as one
// call, and marks the hold expired; under a.mu.
func (a *account) expireHold(mh *memHold, i int) {
	a.drop(mh, i)
	a.add(floorSec(mh.h.At), mh.h.Entries[i].Amount, 1)
	mh.charged[i] = true
	mh.expired.Store(true)
}

// drop removes entry i of mh, whose account a is, from a's open holds;
// under a.mu.
func (a *account) drop(mh *memHold, i int) {
	l := &mh.links[i]
	amount := l.amount
	if !a.unlink(l) {
		return
	}
	if a.held != MaxMicros {
		a.held -= amount
	}
	if a.nholds == 0 {
		a.held = 0
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
	if n > 0 && a.buckets[n-1].sec == sec { // the common case: this second's bucket
		b := &a.buckets[n-1]
		b.spent, b.calls = addSat(b.spent, v), addSat(b.calls, calls)
		return
	}
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
	if a.nholds == 0 {
		return 0
	}
	if !a.oldest.Before(since) {
		return a.held
	}
	var r int64
	oldest := time.Time{}
	for l := a.holds; l != nil; l = l.next {
		at := l.mh.h.At
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
		if !at.Before(since) {
			r = addSat(r, l.amount)
		}
	}
	a.oldest = oldest
	return r
}

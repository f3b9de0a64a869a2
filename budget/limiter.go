package budget

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/hardstop-labs/agentguard/policy"
)

// ErrLimited is the sentinel of every rate-limit refusal; the
// *LimitedError returned unwraps to it.
var ErrLimited = errors.New("budget: rate limited")

// Limit is a token-bucket rate limit: each scope (Per) gets, for each tool
// the limit covers, a bucket of Burst tokens refilled at Rate tokens per
// second; a call takes one token.
type Limit struct {
	// Name names the limit in refusals; empty means "limits[i]" after its
	// index.
	Name string
	// Tools restricts the limit to tools matching one of these patterns
	// (policy.Glob), each tool with its own buckets. Empty means every tool,
	// sharing one bucket per scope: "60 calls a minute per agent".
	Tools []string
	// Per says whose calls share a bucket; the zero value is everyone's.
	Per Per
	// Rate is the refill rate in calls per second; it must be positive
	// (rate.Inf admits everything).
	Rate rate.Limit
	// Burst is the size of the bucket: how many calls may come at once.
	// It must be at least 1.
	Burst int
	// Wait makes Allow wait for a token, within its context's deadline,
	// instead of refusing at once.
	Wait bool
}

// ParseRate parses a rate written as "<count>/<period>", as policy
// files do (policy.ParseRate): "10/minute", "5/s", "100/hour", "1000/day",
// or "3/30s" with any Go duration.
func ParseRate(s string) (rate.Limit, error) {
	n, per, err := policy.ParseRate(s)
	if err != nil {
		return 0, fmt.Errorf("budget: rate %q: %w", s, err)
	}
	return rate.Limit(n / per.Seconds()), nil
}

// LimiterOptions configures a Limiter. The zero value is the system clock
// and at most DefaultMaxBuckets buckets.
type LimiterOptions struct {
	// Clock tells the time for Allow; nil means time.Now. Waiting uses
	// timers from package time (testing/synctest makes them instant).
	Clock func() time.Time
	// MaxBuckets bounds the number of buckets kept; zero means
	// DefaultMaxBuckets. Buckets that have refilled are dropped first (a
	// full bucket is the same as a new one, so dropping it grants
	// nothing); when every bucket is in use, calls needing a new one are
	// refused.
	MaxBuckets int
	// Store, when set, keeps the buckets instead of the limiter's memory:
	// a store shared by several processes (package postgres) makes them
	// admit together what one limit allows. Each call is then a round trip
	// to the store, which must answer within the call's context; a store
	// error refuses the call. MaxBuckets does not apply.
	Store LimitStore
}

// DefaultMaxBuckets is the MaxBuckets of a zero LimiterOptions.
const DefaultMaxBuckets = 1 << 20

const (
	nShards  = 32
	memoSize = 4096 // resolved subjects kept, a power of two
)

// Limiter admits calls under rate limits. A clock that moves backwards
// grants nothing. A Limiter is safe for concurrent use.
//
// In memory, each bucket is a GCRA cell: its theoretical arrival time in
// one atomic word, which a call moves forward with a compare-and-swap.
// That is the token bucket of golang.org/x/time/rate with Burst tokens
// refilled every 1/Rate, to the nanosecond. The buckets a subject takes
// from are resolved once and remembered (a bounded table, see memoSize),
// so that an allowed call is a hash of the subject, one compare-and-swap
// per limit, no lock and no allocation.
type Limiter struct {
	limits   []Limit
	cell     []cellRule // by limit
	clock    func() time.Time
	store    LimitStore
	perShard int
	seed     maphash.Seed
	keyed    [PerSession + 1]bool // the Per values some limit keys on
	shards   [nShards]shard
	memo     [memoSize]atomic.Pointer[resolved]
}

// cellRule is a limit's GCRA rule: a token every interval nanoseconds,
// and tol = Burst × interval of tolerance.
type cellRule struct {
	interval int64 // 0 for rate.Inf: everything is admitted
	tol      int64
}

type shard struct {
	mu      sync.Mutex
	m       map[bucketKey]*tokens
	sweepAt int
	_       [32]byte // keeps shards on their own cache lines
}

type bucketKey struct {
	limit int
	scope string
	tool  string
}

// tokens is one bucket: its theoretical arrival time (TAT) in Unix
// nanoseconds. The bucket is full when the TAT is at or before now. A
// bucket dropped from its shard is marked dead, so that a caller holding
// it resolves it again rather than take from a bucket no one else sees.
type tokens struct {
	tat atomic.Int64
}

const (
	tatDead = math.MinInt64     // dropped from its shard
	tatNew  = math.MinInt64 + 1 // never used: full
)

// resolved is the buckets of one subject, under each limit that applies
// to its tool.
type resolved struct {
	s    Subject // the fields the limits key on; the others are empty
	lims []int   // the limits that apply, in order
	bs   []*tokens

	limBuf [2]int // room for two limits: one allocation per subject
	bBuf   [2]*tokens
}

// NewLimiter returns a limiter enforcing limits.
func NewLimiter(limits []Limit, opts LimiterOptions) (*Limiter, error) {
	l := &Limiter{clock: opts.Clock, store: opts.Store, seed: maphash.MakeSeed()}
	if l.clock == nil {
		l.clock = time.Now
	}
	max := opts.MaxBuckets
	if max < 0 {
		return nil, fmt.Errorf("budget: negative MaxBuckets %d", max)
	}
	if max == 0 {
		max = DefaultMaxBuckets
	}
	l.perShard = (max + nShards - 1) / nShards
	var errs []error
	for i, lm := range limits {
		if lm.Name == "" {
			lm.Name = fmt.Sprintf("limits[%d]", i)
		}
		where := fmt.Sprintf("budget: limit %d %q", i, lm.Name)
		if !(lm.Rate > 0) || math.IsNaN(float64(lm.Rate)) {
			errs = append(errs, fmt.Errorf("%s: rate must be positive", where))
		}
		if lm.Burst < 1 {
			errs = append(errs, fmt.Errorf("%s: burst must be at least 1", where))
		}
		if lm.Per > PerSession {
			errs = append(errs, fmt.Errorf("%s: invalid per %d", where, lm.Per))
		} else {
			l.keyed[lm.Per] = true
		}
		if err := checkGlobs(lm.Tools); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		lm.Tools = append([]string(nil), lm.Tools...)
		l.limits = append(l.limits, lm)
		l.cell = append(l.cell, newCellRule(lm.Rate, lm.Burst))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i := range l.shards {
		l.shards[i].m = make(map[bucketKey]*tokens)
		l.shards[i].sweepAt = 64
	}
	return l, nil
}

// newCellRule returns the GCRA rule of rate r and burst b. The interval
// is 1/r rounded up to the nanosecond (never more than r calls a second),
// unless 1/r is a whole number of nanoseconds up to floating-point error.
func newCellRule(r rate.Limit, b int) cellRule {
	if r == rate.Inf || !(r > 0) {
		return cellRule{}
	}
	f := float64(time.Second) / float64(r)
	iv := math.Ceil(f)
	if rd := math.Round(f); math.Abs(f-rd) <= 1e-6*math.Max(1, rd) {
		iv = rd
	}
	switch {
	case iv < 1:
		iv = 1
	case iv > math.MaxInt64/4:
		iv = math.MaxInt64 / 4
	}
	c := cellRule{interval: int64(iv)}
	if b < 1 {
		b = 1
	}
	if int64(b) > math.MaxInt64/4/c.interval {
		c.tol = math.MaxInt64 / 4
	} else {
		c.tol = int64(b) * c.interval
	}
	return c
}

// take takes a token from b at t (Unix nanoseconds) when one is free by
// t+max: it returns how long to wait for it (0 when free now). Otherwise
// it takes nothing and returns how long until one would be free, and
// ok false. stale reports a bucket dropped from its shard: nothing taken.
func (c cellRule) take(b *tokens, t, max int64) (delay int64, ok, stale bool) {
	if c.interval == 0 {
		return 0, true, false
	}
	for {
		v := b.tat.Load()
		if v == tatDead {
			return 0, false, true
		}
		tat := v
		if t > tat {
			tat = t
		}
		next := tat + c.interval // tat ≤ now + tol, far from overflow
		d := next - t - c.tol
		if d > max {
			return d, false, false
		}
		if b.tat.CompareAndSwap(v, next) {
			return d, true, false
		}
	}
}

// giveBack returns a token taken from b.
func (c cellRule) giveBack(b *tokens) {
	if c.interval == 0 {
		return
	}
	for {
		v := b.tat.Load()
		if v == tatDead || b.tat.CompareAndSwap(v, v-c.interval) {
			return
		}
	}
}

// Limits returns the limiter's limits.
func (l *Limiter) Limits() []Limit { return append([]Limit(nil), l.limits...) }

// Len returns the number of buckets kept.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// LimitedError is a refusal by a rate limit. It unwraps to ErrLimited and
// to Err.
type LimitedError struct {
	Limit string // the limit's name
	Per   Per
	Scope string // the tenant, agent, requester or session; empty for PerGlobal
	Tool  string // the tool whose bucket is empty; empty when the limit covers all tools together
	Rate  rate.Limit
	Burst int
	// RetryAfter is how long until a token is free, if no one else takes
	// it; zero when the limiter is full (see LimiterOptions.MaxBuckets).
	RetryAfter time.Duration
	// Err is why a wait ended early (the context's error), or nil.
	Err error
}

// Error describes the refusal.
func (e *LimitedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "budget: rate limit %q", e.Limit)
	if e.Per != PerGlobal {
		fmt.Fprintf(&b, " for %s %q", e.Per, e.Scope)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason())
	return b.String()
}

// Reason describes the limit without its name: "at most 3 calls at once,
// then 10/minute, for tool \"send_email\"".
func (e *LimitedError) Reason() string {
	if e.RetryAfter == 0 && e.Err == nil && e.Burst == 0 {
		return "too many rate-limit buckets in use"
	}
	s := fmt.Sprintf("at most %d calls at once, then %s", e.Burst, formatRate(e.Rate))
	if e.Tool != "" {
		s += fmt.Sprintf(", for tool %q", e.Tool)
	} else {
		s += ", across all tools"
	}
	if e.Err != nil {
		s += " (the wait for a token was cut short)"
	}
	return s
}

// Unwrap returns ErrLimited and Err.
func (e *LimitedError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrLimited, e.Err}
	}
	return []error{ErrLimited}
}

func formatRate(r rate.Limit) string {
	switch {
	case r == rate.Inf:
		return "unlimited"
	case r >= 1:
		return strconv.FormatFloat(float64(r), 'g', 6, 64) + "/s"
	case r*60 >= 1:
		return strconv.FormatFloat(float64(r)*60, 'g', 6, 64) + "/minute"
	case r*3600 >= 1:
		return strconv.FormatFloat(float64(r)*3600, 'g', 6, 64) + "/hour"
	}
	return strconv.FormatFloat(float64(r)*86400, 'g', 6, 64) + "/day"
}

// AllowAt admits one call of s at time t under every limit that applies,
// or refuses it with a *LimitedError, taking no token from any limit. It
// never waits. t earlier than a bucket's latest time counts as that time.
func (l *Limiter) AllowAt(t time.Time, s Subject) error {
	return l.admit(context.Background(), false, t, s)
}

// Allow admits one call of s at the limiter's clock's time. Under limits
// with Wait it waits for a token when one will be free before ctx's
// deadline (any time, when ctx has none), and refuses at once otherwise;
// when ctx ends during the wait, the tokens are given back and the
// refusal wraps ctx's error.
func (l *Limiter) Allow(ctx context.Context, s Subject) error {
	return l.admit(ctx, true, l.clock(), s)
}

// Admit is Allow at time t, which the caller read from the limiter's
// clock (when the call was made): a caller that has the time already
// spares the limiter a second reading of the clock.
func (l *Limiter) Admit(ctx context.Context, t time.Time, s Subject) error {
	return l.admit(ctx, true, t, s)
}

func (l *Limiter) admit(ctx context.Context, mayWait bool, at time.Time, s Subject) error {
	if l.store != nil {
		return l.admitStore(ctx, mayWait, at, s)
	}
	t := at.UnixNano()
	for {
		r, refused := l.resolve(&s, t)
		if r == nil {
			lm := &l.limits[refused]
			return &LimitedError{Limit: lm.Name, Per: lm.Per, Scope: lm.Per.value(&s), Tool: s.Tool}
		}
		err, stale := l.take(ctx, mayWait, t, r, &s)
		if !stale {
			return err
		}
		l.forget(r)
	}
}

// take takes a token from each of r's buckets, or none, waiting when a
// limit says so. stale reports a bucket of r dropped meanwhile: nothing
// was taken, r must be resolved again.
func (l *Limiter) take(ctx context.Context, mayWait bool, t int64, r *resolved, s *Subject) (err error, stale bool) {
	if len(r.lims) == 1 && !(mayWait && l.limits[r.lims[0]].Wait) {
		// The common path: one limit, no wait, no allocation.
		i := r.lims[0]
		d, ok, stale := l.cell[i].take(r.bs[0], t, 0)
		if ok || stale {
			return nil, stale
		}
		return l.limited(i, s, d), false
	}
	var wait int64
	var waitOn int
	for j, i := range r.lims {
		lm := &l.limits[i]
		max := int64(0)
		if lm.Wait && mayWait {
			max = math.MaxInt64
			if dl, ok := ctx.Deadline(); ok {
				max = dl.UnixNano() - t
			}
		}
		d, ok, stale := l.cell[i].take(r.bs[j], t, max)
		if !ok {
			l.giveBack(r, j)
			if stale {
				return nil, true
			}
			return l.limited(i, s, d), false
		}
		if d > wait {
			wait, waitOn = d, i
		}
	}
	if wait <= 0 {
		return nil, false
	}
	tm := time.NewTimer(time.Duration(wait))
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil, false
	case <-ctx.Done():
		l.giveBack(r, len(r.lims))
		le := l.limited(waitOn, s, wait)
		le.Err = context.Cause(ctx)
		return le, false
	}
}

// giveBack returns the tokens taken from r's first n buckets.
func (l *Limiter) giveBack(r *resolved, n int) {
	for j := range n {
		l.cell[r.lims[j]].giveBack(r.bs[j])
	}
}

func (l *Limiter) limited(i int, s *Subject, retry int64) *LimitedError {
	lm := &l.limits[i]
	tool := ""
	if len(lm.Tools) > 0 {
		tool = s.Tool
	}
	return &LimitedError{Limit: lm.Name, Per: lm.Per, Scope: lm.Per.value(s), Tool: tool, Rate: lm.Rate, Burst: lm.Burst, RetryAfter: time.Duration(retry)}
}

// keyOf returns the fields of s the limits key on, and their hash.
func (l *Limiter) keyOf(s *Subject) (Subject, uint64) { return subjectKey(l.seed, &l.keyed, s) }

// resolve returns the buckets of s, from the table of resolved subjects
// or, the first time, from the shards (making the buckets). When a shard
// is full it returns nil and the limit whose bucket it could not make.
func (l *Limiter) resolve(s *Subject, t int64) (*resolved, int) {
	k, h := l.keyOf(s)
	// Two ways: a subject lives in one of two neighbouring entries.
	i := h & (memoSize - 2)
	for w := range uint64(2) {
		if r := l.memo[i+w].Load(); r != nil && r.s == k {
			return r, -1
		}
	}
	r := &resolved{s: k}
	r.lims, r.bs = r.limBuf[:0], r.bBuf[:0]
	for i := range l.limits {
		lm := &l.limits[i]
		if !matchTool(lm.Tools, s.Tool) {
			continue
		}
		bk := bucketKey{limit: i, scope: lm.Per.value(s)}
		if len(lm.Tools) > 0 {
			bk.tool = s.Tool
		}
		sh := &l.shards[l.shardOf(&bk)]
		sh.mu.Lock()
		b := sh.get(&bk, t, l.perShard)
		sh.mu.Unlock()
		if b == nil {
			return nil, i
		}
		r.lims = append(r.lims, i)
		r.bs = append(r.bs, b)
	}
	slot := &l.memo[i+(h>>63)]
	if l.memo[i].Load() == nil {
		slot = &l.memo[i]
	} else if l.memo[i+1].Load() == nil {
		slot = &l.memo[i+1]
	}
	slot.Store(r)
	return r, -1
}

// forget drops r from the table of resolved subjects.
func (l *Limiter) forget(r *resolved) {
	_, h := l.keyOf(&r.s)
	i := h & (memoSize - 2)
	l.memo[i].CompareAndSwap(r, nil)
	l.memo[i+1].CompareAndSwap(r, nil)
}

func (l *Limiter) shardOf(k *bucketKey) int {
	h := maphash.String(l.seed, k.scope) ^ maphash.String(l.seed, k.tool)*31 ^ uint64(k.limit)*0x9e3779b97f4a7c15
	return int(h % nShards)
}

// get returns the bucket of k, making one if there is room; under s.mu.
func (s *shard) get(k *bucketKey, t int64, max int) *tokens {
	if b, ok := s.m[*k]; ok {
		return b
	}
	if len(s.m) >= s.sweepAt || len(s.m) >= max {
		s.sweep(t)
		s.sweepAt = 2 * len(s.m)
		if s.sweepAt < 64 {
			s.sweepAt = 64
		}
		if len(s.m) >= max {
			return nil
		}
	}
	b := &tokens{}
	b.tat.Store(tatNew)
	s.m[*k] = b
	return b
}

// sweep drops the buckets that are full at t: they are the same as new.
// A bucket is marked dead as it is dropped, unless a call took from it
// meanwhile, in which case it stays.
func (s *shard) sweep(t int64) {
	for k, b := range s.m {
		if v := b.tat.Load(); v <= t && b.tat.CompareAndSwap(v, tatDead) {
			delete(s.m, k)
		}
	}
}

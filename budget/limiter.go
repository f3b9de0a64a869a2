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

const nShards = 32

// Limiter admits calls under rate limits. A clock that moves backwards
// grants nothing: each bucket's time only moves forward. A Limiter is safe
// for concurrent use.
type Limiter struct {
	limits   []Limit
	clock    func() time.Time
	store    LimitStore
	perShard int
	seed     maphash.Seed
	shards   [nShards]shard
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

type tokens struct {
	lim  *rate.Limiter
	last time.Time // the latest time seen; time never moves back
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
		}
		if err := checkGlobs(lm.Tools); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		lm.Tools = append([]string(nil), lm.Tools...)
		l.limits = append(l.limits, lm)
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

// taken is a token taken from one limit during admit.
type taken struct {
	r *rate.Reservation
	t time.Time
}

func (l *Limiter) admit(ctx context.Context, mayWait bool, t time.Time, s Subject) error {
	if l.store != nil {
		return l.admitStore(ctx, mayWait, t, s)
	}
	n := 0
	for i := range l.limits {
		if matchTool(l.limits[i].Tools, s.Tool) {
			n++
		}
	}
	var got []taken
	var wait time.Duration
	var waitErr *LimitedError
	for i := range l.limits {
		lm := &l.limits[i]
		if !matchTool(lm.Tools, s.Tool) {
			continue
		}
		max := time.Duration(0)
		if lm.Wait && mayWait {
			max = math.MaxInt64
			if dl, ok := ctx.Deadline(); ok {
				max = dl.Sub(t)
			}
		}
		k := bucketKey{limit: i, scope: lm.Per.value(&s)}
		if len(lm.Tools) > 0 {
			k.tool = s.Tool
		}
		refuse := func(retry time.Duration) error {
			cancel(got)
			return &LimitedError{Limit: lm.Name, Per: lm.Per, Scope: k.scope, Tool: k.tool, Rate: lm.Rate, Burst: lm.Burst, RetryAfter: retry}
		}
		sh := &l.shards[l.shardOf(&k)]
		sh.mu.Lock()
		b := sh.get(&k, lm, t, l.perShard)
		if b == nil {
			sh.mu.Unlock()
			cancel(got)
			return &LimitedError{Limit: lm.Name, Per: lm.Per, Scope: k.scope, Tool: s.Tool}
		}
		if t.After(b.last) {
			b.last = t
		}
		now := b.last
		if n == 1 && max == 0 {
			// The common path: one limit, no wait, no allocation.
			if b.lim.AllowN(now, 1) {
				sh.mu.Unlock()
				return nil
			}
			retry := tokenTime(lm.Rate, 1-b.lim.TokensAt(now))
			sh.mu.Unlock()
			return refuse(retry)
		}
		r := b.lim.ReserveN(now, 1)
		sh.mu.Unlock()
		d := r.DelayFrom(now)
		if !r.OK() || d > max {
			r.CancelAt(now)
			return refuse(d)
		}
		got = append(got, taken{r: r, t: now})
		if d > wait {
			wait = d
			waitErr = &LimitedError{Limit: lm.Name, Per: lm.Per, Scope: k.scope, Tool: k.tool, Rate: lm.Rate, Burst: lm.Burst, RetryAfter: d}
		}
	}
	if wait <= 0 {
		return nil
	}
	tm := time.NewTimer(wait)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		cancel(got)
		waitErr.Err = context.Cause(ctx)
		return waitErr
	}
}

// tokenTime returns how long r takes to refill need tokens.
func tokenTime(r rate.Limit, need float64) time.Duration {
	if need <= 0 || r == rate.Inf {
		return 0
	}
	return time.Duration(math.Ceil(need / float64(r) * float64(time.Second)))
}

func cancel(got []taken) {
	for _, g := range got {
		g.r.CancelAt(g.t)
	}
}

func (l *Limiter) shardOf(k *bucketKey) int {
	h := maphash.String(l.seed, k.scope) ^ maphash.String(l.seed, k.tool)*31 ^ uint64(k.limit)*0x9e3779b97f4a7c15
	return int(h % nShards)
}

// get returns the bucket of k, making one if there is room.
func (s *shard) get(k *bucketKey, lm *Limit, t time.Time, max int) *tokens {
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
	b := &tokens{lim: rate.NewLimiter(lm.Rate, lm.Burst), last: t}
	s.m[*k] = b
	return b
}

// sweep drops the buckets that are full at t: they are the same as new.
func (s *shard) sweep(t time.Time) {
	for k, b := range s.m {
		at := b.last
		if t.After(at) {
			at = t
		}
		if b.lim.TokensAt(at) >= float64(b.lim.Burst()) {
			delete(s.m, k)
		}
	}
}

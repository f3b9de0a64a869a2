package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Bucket is one rate-limit bucket a call takes a token from, as a
// LimitStore sees it: a GCRA bucket that admits Burst calls at once and
// then one every Interval.
type Bucket struct {
	// Key names the bucket: the limit, its scope and its tool.
	Key string
	// Interval is the time one token takes to refill (1/rate).
	Interval time.Duration
	// Burst is how many calls may come at once; at least 1.
	Burst int
}

// LimitStore keeps rate-limit buckets where several processes share them
// (a database), so that N replicas together admit what one limit allows.
// The Limiter decides which buckets a call takes from; the store keeps
// each bucket's theoretical arrival time (GCRA) and takes tokens
// atomically. MemLimits is the in-memory store and the reference; package
// storetest (RunLimits) checks any store against this contract.
//
// Implementations must be safe for concurrent use, by many goroutines and,
// for shared stores, many processes.
type LimitStore interface {
	// Take takes one token from every bucket at time at, atomically:
	// either from all or from none. A bucket never seen is full. With
	// tat the bucket's theoretical arrival time (at, for a new bucket or
	// one whose tat is earlier), a bucket admits when
	// tat + Interval - at <= Burst × Interval, and then its tat becomes
	// tat + Interval. When a bucket does not admit, Take returns the
	// index of the first that does not, and how long until it would;
	// nothing changes. When all admit it returns -1 and zero.
	Take(ctx context.Context, at time.Time, bs []Bucket) (refused int, retry time.Duration, err error)
}

// MemLimits is an in-memory LimitStore. Its zero value is empty and ready
// to use; it is safe for concurrent use.
type MemLimits struct {
	mu  sync.Mutex
	tat map[string]time.Time
}

var _ LimitStore = (*MemLimits)(nil)

// Take takes a token from every bucket, or from none.
func (m *MemLimits) Take(ctx context.Context, at time.Time, bs []Bucket) (int, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("budget: mem limits: %w", err)
	}
	if err := checkBuckets(bs); err != nil {
		return 0, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	next := make([]time.Time, len(bs))
	for i, b := range bs {
		tat := m.tat[b.Key]
		if tat.Before(at) {
			tat = at
		}
		n, retry := GCRA(tat, at, b)
		if retry > 0 {
			return i, retry, nil
		}
		next[i] = n
	}
	if m.tat == nil {
		m.tat = map[string]time.Time{}
	}
	for i, b := range bs {
		m.tat[b.Key] = next[i]
	}
	return -1, 0, nil
}

// GCRA is the rule of LimitStore.Take for one bucket: given its
// theoretical arrival time tat (not before at), it returns the new tat
// when the bucket admits a call at at, or how long until it would.
func GCRA(tat, at time.Time, b Bucket) (next time.Time, retry time.Duration) {
	next = tat.Add(b.Interval)
	if over := next.Sub(at) - time.Duration(b.Burst)*b.Interval; over > 0 {
		return time.Time{}, over
	}
	return next, 0
}

func checkBuckets(bs []Bucket) error {
	for _, b := range bs {
		if b.Key == "" || b.Interval < 0 || b.Burst < 1 {
			return fmt.Errorf("budget: bucket %q: interval %v, burst %d: want a key, an interval of at least 0 and a burst of at least 1", b.Key, b.Interval, b.Burst)
		}
	}
	return nil
}

// interval is the refill time of one token at r, at least a nanosecond;
// zero for rate.Inf.
func interval(r rate.Limit) time.Duration {
	if r == rate.Inf {
		return 0
	}
	d := math.Ceil(float64(time.Second) / float64(r))
	if d >= math.MaxInt64 {
		return math.MaxInt64 / 1024
	}
	return max(time.Duration(d), 1)
}

// admitStore admits s at t through the limiter's store: one token from the
// bucket of every limit that applies, atomically. A limit with Wait waits
// for the retry time within ctx's deadline and tries again.
func (l *Limiter) admitStore(ctx context.Context, mayWait bool, t time.Time, s Subject) error {
	var bs []Bucket
	var idx []int
	for i := range l.limits {
		lm := &l.limits[i]
		if !matchTool(lm.Tools, s.Tool) {
			continue
		}
		tool := ""
		if len(lm.Tools) > 0 {
			tool = s.Tool
		}
		key := lm.Name + "|" + lm.Per.String() + "=" + lm.Per.value(&s) + "|tool=" + tool
		bs = append(bs, Bucket{Key: key, Interval: interval(lm.Rate), Burst: lm.Burst})
		idx = append(idx, i)
	}
	if len(bs) == 0 {
		return nil
	}
	for {
		refused, retry, err := l.store.Take(ctx, t, bs)
		if err != nil {
			return fmt.Errorf("budget: rate-limit store: %w", err)
		}
		if refused < 0 {
			return nil
		}
		if refused >= len(bs) {
			return errors.New("budget: rate-limit store: refused a bucket it was not given")
		}
		lm := &l.limits[idx[refused]]
		tool := ""
		if len(lm.Tools) > 0 {
			tool = s.Tool
		}
		le := &LimitedError{Limit: lm.Name, Per: lm.Per, Scope: lm.Per.value(&s), Tool: tool, Rate: lm.Rate, Burst: lm.Burst, RetryAfter: retry}
		if !(lm.Wait && mayWait) {
			return le
		}
		if dl, ok := ctx.Deadline(); ok && t.Add(retry).After(dl) {
			return le
		}
		tm := time.NewTimer(retry)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			le.Err = context.Cause(ctx)
			return le
		}
		t = l.clock()
	}
}

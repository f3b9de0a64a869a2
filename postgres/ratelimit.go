package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/hardstop-labs/agentguard/budget"
)

// Limits is the budget.LimitStore of a fleet: rate-limit buckets (GCRA)
// shared by every process, so that N replicas together admit what one
// limit allows. Pass it as budget.LimiterOptions.Store (through
// agentguard.WithRateLimits). A call's buckets are taken in one
// transaction and one round trip, locked in key order; times are kept to
// the microsecond (intervals are rounded up to one). A Limits is safe for
// concurrent use.
type Limits struct {
	db *DB
}

var _ budget.LimitStore = (*Limits)(nil)

// Limits returns the rate-limit store kept in db.
func (db *DB) Limits() *Limits { return &Limits{db: db} }

// Take takes a token from every bucket at time at, or from none.
func (l *Limits) Take(ctx context.Context, at time.Time, bs []budget.Bucket) (int, time.Duration, error) {
	ctx, cancel := l.db.bound(ctx)
	defer cancel()
	keys := make([]string, len(bs))
	ivs := make([]int64, len(bs))
	bursts := make([]int32, len(bs))
	for i, b := range bs {
		if b.Key == "" || b.Interval < 0 || b.Burst < 1 || b.Burst > 1<<30 {
			return 0, 0, fmt.Errorf("budget: postgres: bucket %q: interval %v, burst %d out of range", b.Key, b.Interval, b.Burst)
		}
		keys[i] = b.Key
		ivs[i] = int64((b.Interval + time.Microsecond - 1) / time.Microsecond)
		bursts[i] = int32(b.Burst)
	}
	var refused int
	var retryUS int64
	err := l.db.pool.QueryRow(ctx, `SELECT * FROM rate_take($1, $2, $3, $4)`, at.UnixMicro(), keys, ivs, bursts).Scan(&refused, &retryUS)
	if err != nil {
		return 0, 0, fmt.Errorf("budget: postgres: take: %w", err)
	}
	return refused, time.Duration(retryUS) * time.Microsecond, nil
}

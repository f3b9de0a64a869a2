package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hardstop-labs/agentguard/budget"
)

// Ledger is the budget.Store of a fleet: every process's reservations
// against the same caps count together. A reservation locks the accounts
// it touches (transaction advisory locks, always in the same order),
// expires due holds and checks every entry in one transaction, in one
// round trip; with N callers and room for k, exactly k succeed, whatever
// process they run in. Settle and Usage are one round trip each.
//
// Times are kept to the microsecond. A Ledger is safe for concurrent use.
type Ledger struct {
	db *DB
}

var _ budget.Store = (*Ledger)(nil)

// Ledger returns the budget store kept in db.
func (db *DB) Ledger() *Ledger { return &Ledger{db: db} }

// Reserve records h if every entry fits (see budget.Store).
func (l *Ledger) Reserve(ctx context.Context, h *budget.Hold) error {
	ctx, cancel := l.db.bound(ctx)
	defer cancel()
	if h == nil || h.ID == "" {
		return errors.New("budget: postgres: hold without ID")
	}
	n := len(h.Entries)
	keys := make([]string, n)
	since := make([]time.Time, n)
	limits := make([]int64, n)
	amounts := make([]int64, n)
	for i, e := range h.Entries {
		keys[i], since[i], limits[i], amounts[i] = e.Key, e.Since, e.Limit, e.Amount
	}
	var full int
	var spent, reserved *int64
	var used []int64
	err := l.db.pool.QueryRow(ctx, `SELECT * FROM budget_reserve($1, $2, $3, $4, $5, $6, $7)`,
		h.ID, h.At, h.Deadline, keys, since, limits, amounts).Scan(&full, &spent, &reserved, &used)
	if err != nil {
		return fmt.Errorf("budget: postgres: reserve %q: %w", h.ID, err)
	}
	switch {
	case full == -2:
		return fmt.Errorf("%w: %q", budget.ErrDuplicateHold, h.ID)
	case full >= 0:
		return &budget.FullError{Entry: full, Spent: deref(spent), Reserved: deref(reserved)}
	case len(used) != n:
		return fmt.Errorf("budget: postgres: reserve %q: %d usages for %d entries", h.ID, len(used), n)
	}
	for i := range h.Entries {
		h.Entries[i].Used = used[i]
	}
	return nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// Settle ends the hold id (see budget.Store).
func (l *Ledger) Settle(ctx context.Context, id string, actual []int64, at time.Time) error {
	ctx, cancel := l.db.bound(ctx)
	defer cancel()
	if actual != nil && len(actual) == 0 {
		actual = []int64{} // an empty array, not NULL: a commit of a hold with no entries
	}
	var res int
	if err := l.db.pool.QueryRow(ctx, `SELECT budget_settle($1, $2, $3)`, id, actual, at).Scan(&res); err != nil {
		return fmt.Errorf("budget: postgres: settle %q: %w", id, err)
	}
	switch res {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w: %q", budget.ErrUnknownHold, id)
	case 2:
		return fmt.Errorf("%w: %q", budget.ErrExpired, id)
	case 3:
		return fmt.Errorf("budget: postgres: settle %q: %d amounts for another number of entries", id, len(actual))
	case 4:
		return fmt.Errorf("budget: postgres: settle %q: a negative amount", id)
	}
	return fmt.Errorf("budget: postgres: settle %q: unexpected result %d", id, res)
}

// Usage reports the accounts named by q at time at (see budget.Store).
func (l *Ledger) Usage(ctx context.Context, at time.Time, q []budget.Query) ([]budget.Tally, error) {
	ctx, cancel := l.db.bound(ctx)
	defer cancel()
	keys := make([]string, len(q))
	since := make([]time.Time, len(q))
	for i := range q {
		keys[i], since[i] = q[i].Key, q[i].Since
	}
	rows, err := l.db.pool.Query(ctx, `SELECT * FROM budget_usage($1, $2, $3)`, at, keys, since)
	if err != nil {
		return nil, fmt.Errorf("budget: postgres: usage: %w", err)
	}
	defer rows.Close()
	out := make([]budget.Tally, len(q))
	for rows.Next() {
		var i int
		var t budget.Tally
		if err := rows.Scan(&i, &t.Spent, &t.Reserved, &t.Calls); err != nil {
			return nil, fmt.Errorf("budget: postgres: usage: %w", err)
		}
		if i < 1 || i > len(q) {
			return nil, fmt.Errorf("budget: postgres: usage: row %d of %d", i, len(q))
		}
		out[i-1] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("budget: postgres: usage: %w", err)
	}
	return out, nil
}

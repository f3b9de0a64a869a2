// Package storetest checks a budget.Store against the contract written on
// the interface. A driver's test is one line:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func() budget.Store { return newStore(t) })
//	}
//
// Every subtest names its accounts and holds with a random prefix, so a
// store shared between runs (a database) needs no cleaning.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hardstop-labs/agentguard/budget"
)

// Run runs the conformance suite, calling newStore for a store per subtest.
func Run(t *testing.T, newStore func() budget.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"ReserveCommit", testReserveCommit},
		{"Release", testRelease},
		{"AtomicRefusal", testAtomicRefusal},
		{"FullRefusesZero", testFullRefusesZero},
		{"Overage", testOverage},
		{"ExpireOnReserve", testExpireOnReserve},
		{"ExpireOnUsage", testExpireOnUsage},
		{"SettleLate", testSettleLate},
		{"LateCommitChargedInFull", testLateCommitChargedInFull},
		{"LateCommitAfterExpiry", testLateCommitAfterExpiry},
		{"Window", testWindow},
		{"HoldsInWindow", testHoldsInWindow},
		{"Duplicate", testDuplicate},
		{"Unknown", testUnknown},
		{"BadSettle", testBadSettle},
		{"Cancelled", testCancelled},
		{"Parallel", testParallel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, &env{s: newStore(), prefix: uuid.NewString() + "/"})
		})
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	s      budget.Store
	prefix string
	n      int
}

func (e *env) key(name string) string { return e.prefix + name }

func (e *env) hold(at time.Time, entries ...budget.Entry) *budget.Hold {
	e.n++
	for i := range entries {
		entries[i].Key = e.key(entries[i].Key)
	}
	return &budget.Hold{ID: fmt.Sprintf("%shold-%d", e.prefix, e.n), At: at, Deadline: at.Add(time.Hour), Entries: entries}
}

func (e *env) tally(t *testing.T, at time.Time, key string, since time.Time) budget.Tally {
	t.Helper()
	ts, err := e.s.Usage(context.Background(), at, []budget.Query{{Key: e.key(key), Since: since}})
	if err != nil {
		t.Fatalf("Usage(%s): %v", key, err)
	}
	if len(ts) != 1 {
		t.Fatalf("Usage(%s) returned %d tallies, want 1", key, len(ts))
	}
	return ts[0]
}

func want(t *testing.T, got budget.Tally, spent, reserved, calls int64, what string) {
	t.Helper()
	if got != (budget.Tally{Spent: spent, Reserved: reserved, Calls: calls}) {
		t.Errorf("%s: tally = %+v, want {Spent:%d Reserved:%d Calls:%d}", what, got, spent, reserved, calls)
	}
}

func entry(key string, limit, amount int64) budget.Entry {
	return budget.Entry{Key: key, Limit: limit, Amount: amount}
}

var ctx = context.Background()

func testReserveCommit(t *testing.T, e *env) {
	h := e.hold(t0, entry("a", 100, 30), entry("b", 50, 10))
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if h.Entries[0].Used != 0 || h.Entries[1].Used != 0 {
		t.Errorf("Used = %d, %d, want 0, 0", h.Entries[0].Used, h.Entries[1].Used)
	}
	want(t, e.tally(t, t0, "a", time.Time{}), 0, 30, 0, "a after Reserve")
	want(t, e.tally(t, t0, "b", time.Time{}), 0, 10, 0, "b after Reserve")
	if err := e.s.Settle(ctx, h.ID, []int64{20, 0}, t0.Add(time.Second)); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	want(t, e.tally(t, t0, "a", time.Time{}), 20, 0, 1, "a after Settle")
	want(t, e.tally(t, t0, "b", time.Time{}), 0, 0, 1, "b after Settle")

	h2 := e.hold(t0.Add(time.Minute), entry("a", 100, 5))
	if err := e.s.Reserve(ctx, h2); err != nil {
		t.Fatalf("second Reserve: %v", err)
	}
	if h2.Entries[0].Used != 20 {
		t.Errorf("second Reserve: Used = %d, want 20", h2.Entries[0].Used)
	}
}

func testRelease(t *testing.T, e *env) {
	h := e.hold(t0, entry("a", 100, 30))
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := e.s.Settle(ctx, h.ID, nil, t0); err != nil {
		t.Fatalf("Settle(nil): %v", err)
	}
	want(t, e.tally(t, t0, "a", time.Time{}), 0, 0, 0, "after release")
}

func testAtomicRefusal(t *testing.T, e *env) {
	if err := e.s.Reserve(ctx, e.hold(t0, entry("b", 50, 45))); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	h := e.hold(t0, entry("a", 100, 10), entry("b", 50, 10), entry("c", 100, 10))
	err := e.s.Reserve(ctx, h)
	var full *budget.FullError
	if !errors.As(err, &full) {
		t.Fatalf("Reserve over the limit = %v, want a *budget.FullError", err)
	}
	if !errors.Is(err, budget.ErrExceeded) {
		t.Errorf("refusal %v does not match budget.ErrExceeded", err)
	}
	if full.Entry != 1 || full.Spent != 0 || full.Reserved != 45 {
		t.Errorf("FullError = %+v, want {Entry:1 Spent:0 Reserved:45}", *full)
	}
	want(t, e.tally(t, t0, "a", time.Time{}), 0, 0, 0, "a after refusal")
	want(t, e.tally(t, t0, "c", time.Time{}), 0, 0, 0, "c after refusal")
	if err := e.s.Settle(ctx, h.ID, nil, t0); !errors.Is(err, budget.ErrUnknownHold) {
		t.Errorf("Settle of a refused hold = %v, want ErrUnknownHold", err)
	}
	// Exactly the room left fits.
	if err := e.s.Reserve(ctx, e.hold(t0, entry("b", 50, 5))); err != nil {
		t.Errorf("Reserve of exactly the room left: %v", err)
	}
}

func testFullRefusesZero(t *testing.T, e *env) {
	h := e.hold(t0, entry("a", 10, 10))
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := e.s.Reserve(ctx, e.hold(t0, entry("a", 10, 0))); !errors.Is(err, budget.ErrExceeded) {
		t.Errorf("Reserve of zero on a full account = %v, want a refusal", err)
	}
	if err := e.s.Reserve(ctx, e.hold(t0, entry("z", 0, 0))); !errors.Is(err, budget.ErrExceeded) {
		t.Errorf("Reserve against a zero limit = %v, want a refusal", err)
	}
}

func testOverage(t *testing.T, e *env) {
	h := e.hold(t0, entry("a", 100, 10))
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := e.s.Settle(ctx, h.ID, []int64{150}, t0); err != nil {
		t.Fatalf("Settle above the limit: %v", err)
	}
	want(t, e.tally(t, t0, "a", time.Time{}), 150, 0, 1, "after overage")
	err := e.s.Reserve(ctx, e.hold(t0, entry("a", 100, 1)))
	var full *budget.FullError
	if !errors.As(err, &full) || full.Spent != 150 {
		t.Errorf("Reserve after overage = %v, want a *FullError with Spent 150", err)
	}
}

func testExpireOnReserve(t *testing.T, e *env) {
	h := e.hold(t0, entry("a", 100, 60))
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	// Just before the deadline the hold is still open.
	if err := e.s.Reserve(ctx, e.hold(h.Deadline.Add(-time.Millisecond), entry("a", 100, 50))); !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("Reserve before the deadline = %v, want a refusal", err)
	}
	// At the deadline it is charged its amount, as one call.
	h2 := e.hold(h.Deadline, entry("a", 100, 40))
	if err := e.s.Reserve(ctx, h2); err != nil {
		t.Fatalf("Reserve at the deadline: %v", err)
	}
	if h2.Entries[0].Used != 60 {
		t.Errorf("Used = %d, want 60 (the expired estimate)", h2.Entries[0].Used)
	}
	want(t, e.tally(t, h.Deadline, "a", time.Time{}), 60, 40, 1, "after expiry")
	if err := e.s.Settle(ctx, h.ID, []int64{1}, h.Deadline); !errors.Is(err, budget.ErrExpired) {
		t.Errorf("Settle of an expired hold = %v, want ErrExpired", err)
	}
	want(t, e.tally(t, h.Deadline, "a", time.Time{}), 60, 40, 1, "after a late Settle below the estimate")
	if err := e.s.Settle(ctx, h.ID, []int64{1}, h.Deadline); !errors.Is(err, budget.ErrUnknownHold) {
		t.Errorf("second Settle of an expired hold = %v, want ErrUnknownHold", err)
	}
}

func testExpireOnUsage(t *testing.T, e *env) {
	h := e.hold(t0, entry("a", 100, 60))
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	want(t, e.tally(t, h.Deadline, "a", time.Time{}), 60, 0, 1, "Usage at the deadline")
}

func testSettleLate(t *testing.T, e *env) {
	h := e.hold(t0, entry("a", 100, 60))
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := e.s.Settle(ctx, h.ID, []int64{5}, h.Deadline); !errors.Is(err, budget.ErrExpired) {
		t.Errorf("Settle at the deadline = %v, want ErrExpired", err)
	}
	want(t, e.tally(t, h.Deadline, "a", time.Time{}), 60, 0, 1, "after a late commit")
	h2 := e.hold(t0, entry("b", 100, 70))
	if err := e.s.Reserve(ctx, h2); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := e.s.Settle(ctx, h2.ID, nil, h2.Deadline.Add(time.Minute)); !errors.Is(err, budget.ErrExpired) {
		t.Errorf("release after the deadline = %v, want ErrExpired", err)
	}
	want(t, e.tally(t, h2.Deadline, "b", time.Time{}), 70, 0, 1, "after a late release")
}

// testLateCommitChargedInFull: a commit at or after the deadline of a hold
// nothing expired yet is charged its actual cost when that is larger than
// the hold's amount, in full and as one call, and the overrun shuts the
// account; each entry on its own.
func testLateCommitChargedInFull(t *testing.T, e *env) {
	h := e.hold(t0, entry("a", 100, 10), entry("b", 100, 10))
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	late := h.Deadline.Add(time.Minute)
	if err := e.s.Settle(ctx, h.ID, []int64{150, 4}, late); !errors.Is(err, budget.ErrExpired) {
		t.Fatalf("late Settle = %v, want ErrExpired", err)
	}
	want(t, e.tally(t, late, "a", time.Time{}), 150, 0, 1, "a after a late commit above the estimate")
	want(t, e.tally(t, late, "b", time.Time{}), 10, 0, 1, "b after a late commit below the estimate")
	err := e.s.Reserve(ctx, e.hold(late, entry("a", 100, 0)))
	var full *budget.FullError
	if !errors.As(err, &full) || full.Spent != 150 {
		t.Errorf("Reserve after a late overrun = %v, want a *FullError with Spent 150", err)
	}
	if err := e.s.Settle(ctx, h.ID, []int64{500, 500}, late); !errors.Is(err, budget.ErrUnknownHold) {
		t.Errorf("second late Settle = %v, want ErrUnknownHold", err)
	}
	want(t, e.tally(t, late, "a", time.Time{}), 150, 0, 1, "a after a second late Settle")
}

// testLateCommitAfterExpiry: a hold that Reserve or Usage already expired
// (charged its amount as a call) is still there for a late commit, which
// adds what its actual exceeds the amount by, without a new call; bad
// amounts change nothing; a late release charges nothing more.
func testLateCommitAfterExpiry(t *testing.T, e *env) {
	h := e.hold(t0, entry("a", 100, 10))
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	want(t, e.tally(t, h.Deadline, "a", time.Time{}), 10, 0, 1, "Usage at the deadline expires the hold")
	h2 := e.hold(h.Deadline, entry("c", 100, 5))
	if err := e.s.Reserve(ctx, h2); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := e.s.Reserve(ctx, e.hold(h2.Deadline, entry("c", 100, 1))); err != nil {
		t.Fatalf("Reserve at the deadline: %v", err)
	}
	later := h2.Deadline.Add(time.Hour)
	if err := e.s.Settle(ctx, h.ID, []int64{-1}, later); err == nil || errors.Is(err, budget.ErrExpired) {
		t.Errorf("late Settle with a negative amount = %v, want an error", err)
	}
	if err := e.s.Settle(ctx, h.ID, []int64{1, 2}, later); err == nil || errors.Is(err, budget.ErrExpired) {
		t.Errorf("late Settle with two amounts for one entry = %v, want an error", err)
	}
	want(t, e.tally(t, later, "a", time.Time{}), 10, 0, 1, "a after bad late settles")
	if err := e.s.Settle(ctx, h.ID, []int64{70}, later); !errors.Is(err, budget.ErrExpired) {
		t.Fatalf("late Settle of a hold Usage expired = %v, want ErrExpired", err)
	}
	want(t, e.tally(t, later, "a", time.Time{}), 70, 0, 1, "a after a late commit")
	if err := e.s.Settle(ctx, h2.ID, nil, later); !errors.Is(err, budget.ErrExpired) {
		t.Fatalf("late release of a hold Reserve expired = %v, want ErrExpired", err)
	}
	// The hold made at h2's deadline has expired by now too: 5 + 1, two calls.
	want(t, e.tally(t, later, "c", time.Time{}), 6, 0, 2, "c after a late release")
}

func testWindow(t *testing.T, e *env) {
	day1 := t0
	day2 := t0.Add(24 * time.Hour)
	h := e.hold(day1, budget.Entry{Key: "a", Since: day1.Truncate(24 * time.Hour), Limit: 100, Amount: 80})
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := e.s.Settle(ctx, h.ID, []int64{80}, day1); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	since2 := day2.Truncate(24 * time.Hour)
	want(t, e.tally(t, day2, "a", since2), 0, 0, 0, "the next window")
	h2 := e.hold(day2, budget.Entry{Key: "a", Since: since2, Limit: 100, Amount: 90})
	if err := e.s.Reserve(ctx, h2); err != nil {
		t.Fatalf("Reserve in the next window: %v", err)
	}
	if h2.Entries[0].Used != 0 {
		t.Errorf("Used in the next window = %d, want 0", h2.Entries[0].Used)
	}
	// A charge exactly at Since counts.
	h3 := e.hold(since2, budget.Entry{Key: "b", Since: since2, Limit: 100, Amount: 7})
	if err := e.s.Reserve(ctx, h3); err != nil {
		t.Fatalf("Reserve at Since: %v", err)
	}
	if err := e.s.Settle(ctx, h3.ID, []int64{7}, since2); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	want(t, e.tally(t, since2.Add(time.Hour), "b", since2), 7, 0, 1, "a charge at Since")
	// The whole history still counts from an earlier Since.
	want(t, e.tally(t, day2, "a", time.Time{}), 80, 90, 1, "all time")
}

func testHoldsInWindow(t *testing.T, e *env) {
	h := e.hold(t0, entry("a", 100, 30))
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	want(t, e.tally(t, t0, "a", t0.Add(time.Second)), 0, 0, 0, "a hold before Since")
	want(t, e.tally(t, t0, "a", t0), 0, 30, 0, "a hold at Since")
}

func testDuplicate(t *testing.T, e *env) {
	h := e.hold(t0, entry("a", 100, 1))
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	dup := &budget.Hold{ID: h.ID, At: t0, Deadline: t0.Add(time.Hour), Entries: []budget.Entry{{Key: e.key("a"), Limit: 100, Amount: 1}}}
	if err := e.s.Reserve(ctx, dup); !errors.Is(err, budget.ErrDuplicateHold) {
		t.Errorf("Reserve of a held ID = %v, want ErrDuplicateHold", err)
	}
	want(t, e.tally(t, t0, "a", time.Time{}), 0, 1, 0, "after the duplicate")
}

func testUnknown(t *testing.T, e *env) {
	if err := e.s.Settle(ctx, e.prefix+"never", []int64{1}, t0); !errors.Is(err, budget.ErrUnknownHold) {
		t.Errorf("Settle of an unknown hold = %v, want ErrUnknownHold", err)
	}
	h := e.hold(t0, entry("a", 100, 1))
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := e.s.Settle(ctx, h.ID, []int64{1}, t0); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	if err := e.s.Settle(ctx, h.ID, []int64{1}, t0); !errors.Is(err, budget.ErrUnknownHold) {
		t.Errorf("second Settle = %v, want ErrUnknownHold", err)
	}
	want(t, e.tally(t, t0, "a", time.Time{}), 1, 0, 1, "after two settles")
	want(t, e.tally(t, t0, "never-seen", time.Time{}), 0, 0, 0, "an account never seen")
}

func testBadSettle(t *testing.T, e *env) {
	h := e.hold(t0, entry("a", 100, 1), entry("b", 100, 1))
	if err := e.s.Reserve(ctx, h); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := e.s.Settle(ctx, h.ID, []int64{1}, t0); err == nil {
		t.Errorf("Settle with one amount for two entries succeeded")
	}
	if err := e.s.Settle(ctx, h.ID, []int64{1, -1}, t0); err == nil {
		t.Errorf("Settle with a negative amount succeeded")
	}
	want(t, e.tally(t, t0, "a", time.Time{}), 0, 1, 0, "after bad settles")
}

func testCancelled(t *testing.T, e *env) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	h := e.hold(t0, entry("a", 100, 1))
	if err := e.s.Reserve(c, h); err == nil {
		t.Fatalf("Reserve with a cancelled context succeeded")
	}
	if _, err := e.s.Usage(c, t0, []budget.Query{{Key: e.key("a")}}); err == nil {
		t.Errorf("Usage with a cancelled context succeeded")
	}
	want(t, e.tally(t, t0, "a", time.Time{}), 0, 0, 0, "after a cancelled Reserve")
}

func testParallel(t *testing.T, e *env) {
	const callers, room = 200, 37
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	keyA, keyB := e.key("a"), e.key("b")
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &budget.Hold{
				ID: fmt.Sprintf("%sp-%d", e.prefix, i), At: t0, Deadline: t0.Add(time.Hour),
				Entries: []budget.Entry{{Key: keyA, Limit: room * 3, Amount: 3}, {Key: keyB, Limit: 1 << 40, Amount: 3}},
			}
			err := e.s.Reserve(ctx, h)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, budget.ErrExceeded):
				refused.Add(1)
			default:
				t.Errorf("Reserve: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != room || refused.Load() != callers-room {
		t.Errorf("%d callers for room %d: %d reserved, %d refused", callers, room, ok.Load(), refused.Load())
	}
	want(t, e.tally(t, t0, "a", time.Time{}), 0, room*3, 0, "a after the race")
	want(t, e.tally(t, t0, "b", time.Time{}), 0, room*3, 0, "b after the race")
}

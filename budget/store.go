package budget

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors a Store returns, and a Ledger passes on.
var (
	// ErrUnknownHold means Settle named a hold the store does not hold:
	// never reserved, already settled, or expired more than KeepExpired
	// ago.
	ErrUnknownHold = errors.New("budget: unknown or settled reservation")
	// ErrExpired means Settle came late, at or after the hold's deadline:
	// the store charged the hold's amounts at expiry and, for a commit,
	// whatever the actual cost exceeds them by (see Store.Settle).
	ErrExpired = errors.New("budget: reservation expired: charged its estimate, or its actual cost when larger")
	// ErrDuplicateHold means Reserve was given the ID of a hold the store
	// still holds.
	ErrDuplicateHold = errors.New("budget: duplicate reservation ID")
)

// Store persists the accounts of a Ledger. The Ledger decides which
// accounts a call touches, with which limits and windows; the store only
// keeps the numbers and checks them atomically. Mem is the in-memory
// store and the reference; package storetest checks any store against
// this contract.
//
// An account is named by Entry.Key. Its state is a history of charges,
// each with a time (its hold's At), an amount and whether it counts as a
// call, and its open holds. A store may forget or merge charges older than
// every window it is asked about, as long as it never counts less than the
// contract says.
//
// A store may keep times to the microsecond (as PostgreSQL does); the
// conformance suite uses no finer times.
//
// Implementations must be safe for concurrent use, by many goroutines and,
// for shared stores, many processes.
type Store interface {
	// Reserve records h if every entry fits, atomically: either all of h's
	// entries are held or none.
	//
	// First, every hold whose Deadline is at or before h.At is expired:
	// charged its amounts (as a call) and kept as expired (see Settle)
	// rather than open. Then, for each entry,
	// used is the sum of the account's charges and open holds whose time
	// is at or after Since. An entry fits when used < Limit and
	// used+Amount <= Limit (a full account refuses even a zero amount). When
	// an entry does not fit, Reserve returns a *FullError naming the first
	// entry that does not fit, in order, and changes nothing else. When all
	// fit, Reserve sets each entry's Used to its used, and holds h until
	// Settle or its Deadline.
	//
	// Reserve returns ErrDuplicateHold when h.ID is held already, and an
	// error when ctx is done before h was recorded. A store may keep h; the
	// caller does not change it after Reserve returns nil.
	Reserve(ctx context.Context, h *Hold) error

	// Settle ends the hold named id at time at.
	//
	// With actual nil, the hold is released: removed with no charge and no
	// call. Otherwise actual has one amount per entry of the hold, and each
	// is charged to its entry's account at the hold's At, as one call,
	// whatever the limits (this is how overage is recorded).
	//
	// A late Settle, at or after the hold's Deadline, finds the hold
	// expired: if Reserve or Usage has not expired it yet, Settle does so
	// first (its amounts charged, as one call). Then, with actual nil,
	// nothing more is charged; otherwise each entry whose actual exceeds
	// its amount is charged the difference too, at the hold's At, as part
	// of the same call (no call is added). So a late commit is charged in
	// full, never less than its estimate: a call that outlived its hold
	// (a long tool, a long wait) cannot have its cost dropped, and an
	// overrun shuts the cap as any overage does. A late Settle returns
	// ErrExpired, having charged what it says.
	//
	// To settle a hold late, a store remembers an expired hold (its ID, At
	// and entries) until it is settled, for at least KeepExpired after its
	// Deadline; after that it may forget it. ErrUnknownHold is returned for
	// an id the store does not hold: never reserved, already settled
	// (whether on time or late), or expired and forgotten. A Settle that
	// returns any other error (bad actual, ctx done) changes nothing,
	// except that a due hold may have been expired. The store must not
	// keep actual after Settle returns.
	Settle(ctx context.Context, id string, actual []int64, at time.Time) error

	// Usage reports the accounts named by q at time at: for each query,
	// the charges and calls at or after Since, and the open holds whose At
	// is at or after Since. Holds whose Deadline is at or before at are
	// expired first, as in Reserve. An account never seen reports zeros.
	Usage(ctx context.Context, at time.Time, q []Query) ([]Tally, error)
}

// KeepExpired is how long after its Deadline a Store must still be able to
// settle an expired hold (see Store.Settle): a call that runs this long
// past its hold is still charged in full.
const KeepExpired = 24 * time.Hour

// Hold is a reservation as a Store sees it.
type Hold struct {
	// ID names the hold; unique among open holds.
	ID string
	// At is when the hold was made. Its charges belong to At, whenever it
	// is settled.
	At time.Time
	// Deadline is when an unsettled hold is charged its amounts. The
	// Ledger sets it to At plus the request's Wait plus its Hold.
	Deadline time.Time
	// Entries are the accounts the hold touches, one per cap, each at
	// most once.
	Entries []Entry
}

// Entry is one account touched by a Hold.
type Entry struct {
	// Key names the account: the cap, its window and its scope, such as
	// "daily-spend|day|tenant=acme".
	Key string
	// Since is the start of the window that contains the hold's At.
	Since time.Time
	// Limit is the cap in micro-units.
	Limit int64
	// Amount is what the hold reserves, in micro-units.
	Amount int64
	// Used is set by Store.Reserve on success: what the account had spent
	// and reserved in the window, before this hold.
	Used int64
}

// Query names an account and the start of the window to report.
type Query struct {
	Key   string
	Since time.Time
}

// Tally is what one account holds in a window, in micro-units.
type Tally struct {
	Spent    int64 // charged by settled and expired holds
	Reserved int64 // held by open holds
	Calls    int64 // settled (not released) and expired holds
}

// FullError is the refusal of Store.Reserve: entry Entry did not fit.
type FullError struct {
	Entry    int   // index in Hold.Entries
	Spent    int64 // the account's Tally.Spent in the window
	Reserved int64 // the account's Tally.Reserved in the window
}

// Error describes the refusal.
func (e *FullError) Error() string {
	return fmt.Sprintf("budget: entry %d is full (spent %d, reserved %d micro-units)", e.Entry, e.Spent, e.Reserved)
}

// Unwrap returns ErrExceeded.
func (e *FullError) Unwrap() error { return ErrExceeded }

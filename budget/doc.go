// Package budget keeps agents within rate limits and hard spending caps.
//
// A [Limiter] admits calls under token-bucket rate limits (from
// golang.org/x/time/rate). A [Ledger] holds spend to caps: reserve the
// estimated cost before a call, commit the actual cost after it, release
// what was not used. Reservation is atomic across every cap that applies,
// so parallel calls cannot race past a cap: with N callers and room for k,
// exactly k succeed. Both fail closed: a store that errors or times out
// refuses the call, and there is no path that allows now and checks later.
//
// The root package wires both into a Guard (agentguard.WithBudget and
// agentguard.WithRateLimits); this package has no dependency on it.
//
// # Amounts
//
// An [Amount] is an exact integer count of micro-units of a unit ("USD",
// "tokens"): no floats are ever added up. [ParseAmount] reads "25.00 USD",
// "1.5M tokens" or "0.000002 USD"; negative, NaN-like, overflowing, too
// precise or unitless amounts are errors that unwrap to [ErrAmount].
// Arithmetic saturates instead of wrapping.
//
// # Caps and windows
//
// A [Cap] limits spend in one unit, counted separately for each scope
// ([Per]: global, tenant, agent, requester or session) and, when it lists
// tools, only for calls of those tools. It counts over a [Window]: a
// calendar day in UTC or a named time zone (days start at local midnight
// and last 23 or 25 hours across daylight-saving changes), a clock hour, a
// rolling duration, or all time.
//
// A call fits a cap when what the cap's account has spent and reserved in
// the window, plus the call's estimate, stays within the limit, and
// something is left: a call whose cost is unknown does not pass a full cap.
// A refusal is an [*ExceededError] (matching [ErrExceeded]) naming the
// cap, the amounts spent, reserved, asked and allowed, and how long until
// the window resets when that would help.
//
// # Reservations
//
// [Ledger.Reserve] returns a [*Reservation], to be settled exactly once:
// [Reservation.Commit] charges the actual cost and releases the rest of
// the estimate; [Reservation.Release] charges nothing. Actual cost above
// the estimate is charged in full, reported by [Reservation.Overage], and
// when it overruns a cap the cap stays shut until its window resets. A
// reservation neither committed nor released within the ledger's Hold
// (counted after the request's Wait) is charged its estimate: an unknown
// outcome costs the worst case. A commit that comes later still charges
// the actual cost where it is larger, in full: an actual cost is never
// dropped (within [KeepExpired]), and a call that outlived its hold
// overruns a cap visibly, shutting it, like any overage.
//
// Every method that depends on time has a form with an explicit time
// (ReserveAt, CommitAt, UsageAt, AllowAt), and Options.Clock replaces the
// clock of the others, so tests need no sleeping.
//
// # Stores
//
// The ledger's logic lives once in [Ledger]; a [Store] only keeps the
// numbers and checks a reservation atomically. [Mem] is the in-memory
// store, the default and the reference. Package storetest is the
// conformance suite every store must pass; a PostgreSQL store, for fleets,
// runs the same suite.
//
// A Ledger on a Mem skips the Store interface: it resolves the accounts of
// a subject once (a bounded table of the subjects seen last), and a
// reservation locks only its own accounts, each under a mutex of its own.
// With [Ledger.ReserveInto], the reservation lives in the caller's
// per-call state: reserving and settling then allocate nothing.
//
// # Rate limits
//
// A [Limit] gives each scope a bucket of Burst tokens refilled at Rate per
// second, one bucket per tool when the limit lists tools and one for all
// tools otherwise. [Limiter.AllowAt] refuses at once with a
// [*LimitedError] (matching [ErrLimited]) carrying RetryAfter;
// [Limiter.Allow] waits instead, within the context's deadline, for
// limits with Wait. A clock that moves backwards grants nothing. Buckets
// that have refilled are dropped, which grants nothing either, and
// LimiterOptions.MaxBuckets bounds memory with millions of distinct
// agents. In memory a bucket is one atomic word (GCRA, the same
// admissions as golang.org/x/time/rate's token bucket) and the buckets of
// a subject are resolved once, so an admitted call takes no lock and
// allocates nothing.
//
// # Policy files
//
// [CapsFromPolicy] and [LimitsFromPolicy] convert a policy's budgets and
// limits sections; [PolicyUsage] turns a ledger's [Usage] into the
// policy's usage variable, so rules like usage.spend["USD"] > 20.0 work.
//
// # Concurrency
//
// Ledger, Reservation, Limiter and Mem are safe for concurrent use.
// Amount and Window are values. The other types (Cap, Limit, Subject,
// Request, Usage, Hold, Entry, Query, Tally and the errors) are plain data:
// safe to share once no one writes them.
package budget

// Package postgres keeps a fleet's shared state in one PostgreSQL
// database, so that several processes guarding agents act as one: budget
// caps hold across all of them, one kill stops them all, and so on.
//
// It lives in a module of its own (github.com/hardstop-labs/agentguard/postgres)
// so that the core library never depends on a database driver; it uses
// github.com/jackc/pgx/v5.
//
// # Schema and migrations
//
// Open connects and migrates: every table and function lives in one schema
// (Options.Schema, "agentguard" by default), created and upgraded from SQL
// files embedded in the package (migrations/NNNN_*.sql), applied in order,
// each once, recorded in the schema's schema_migrations table. Migrate runs
// in one transaction under an advisory lock of the schema, so processes
// that start together wait for one another and never apply a migration
// twice; a schema newer than the code is refused.
//
// # The ledger
//
// DB.Ledger is a budget.Store: pass it as budget.Options.Store (through
// agentguard.WithBudget). A reservation touches all its caps in one
// transaction and one round trip (the budget_reserve function), locking
// the accounts it touches with transaction advisory locks taken in key
// order; with N callers in any number of processes and room for k, exactly
// k succeed. Settle commits, releases, or, at or after the hold's deadline,
// charges the estimate in full; abandoned holds are charged when they come
// due. The conformance suite budget/storetest runs against it unchanged.
//
// # Rate limits
//
// DB.Limits is a budget.LimitStore: pass it as budget.LimiterOptions.Store
// (through agentguard.WithRateLimits) and every process takes its tokens
// from the same GCRA buckets (the rate_take function: one round trip, the
// buckets locked in key order, all or none), so N replicas admit together
// what one limit allows, with a retry-after.
//
// # Approvals
//
// DB.Grants is an approval.Store (approval.Options.Store): a grant given
// in one process covers the calls of all. DB.Approvals is an
// approval.Approver, the fleet's inbox: a call that needs a person waits
// with its card in the approval_pending table; an answer given through
// any process (Approvals.Answer, `agentguard approvals approve
// --postgres DSN`) is written once, reaches the waiting process by
// LISTEN/NOTIFY (or polling), and is taken once. Put it behind an
// approval.Gate (agentguard.WithApprover does), which binds the verdict
// to the request's ID, hash and deadline.
//
// # The kill switch
//
// DB.KillStore is a killswitch.Store and killswitch.Watcher: the trips in
// force, one row per scope, and a trigger on the table that NOTIFYs the
// channel "<schema>.kill" at every change. Give it to
// agentguard.WithKillStore: each process's killswitch.StoreTrigger LISTENs
// on a connection of its own and re-reads the trips at once after a
// change (polling at the interval as a fallback), so a trip anywhere
// cancels the calls in flight in every process within milliseconds; a
// process that cannot read the table for longer than its staleness bound
// trips everything until it can again. `agentguard kill --postgres DSN`
// trips from the command line.
package postgres

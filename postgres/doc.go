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
// to the request's ID, hash and deadline. For a webhook, set
// Approvals.Announce to PostWebhook: the card is posted, signed, once it
// waits in the database, and Approvals.WebhookHandler, served by any
// process, takes the signed callback (its nonce once across the fleet)
// and releases the call wherever it waits. For people in a browser,
// approval.NewInbox(approval.InboxOptions{Pending: db.Approvals(), …}),
// served by any process, lists every process's waiting cards and answers
// them once, under the identity the inbox verified
// (InboxOptions.Authenticate), which the waiting call's audit record names
// as its approver.
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
//
// # The audit log
//
// DB.AuditStore is an audit.Store: give it to audit.OpenStore, with the
// same log ID in every process, and the StoreLog to
// agentguard.WithAuditStore. Each append is one transaction that takes
// the log's advisory lock (audit_head), reads the head, and inserts the
// line built on it, in the format of a file log; the processes extend one
// chain. The audit_log table is append-only: statement triggers refuse
// every UPDATE, DELETE and TRUNCATE, even the owner's, and a row trigger
// refuses an INSERT that does not extend the chain (wrong seq, log or
// prev). Only a superuser who disables the triggers gets past them, which
// an external checkpoint then shows. audit.Export writes the lines as a
// file (`agentguard audit export --postgres DSN`) that audit.Verify
// checks (`agentguard audit verify`). Signed checkpoints are records of
// the chain; StoreOptions.Sinks keep copies outside the database
// (audit.FileSink), and DB.CheckpointSink keeps the checkpoints of any log
// (a file log's too) in the append-only audit_checkpoints table.
//
// When the database cannot be reached, an append fails and the guard
// denies the call (no evidence, no action); nothing is latched, so the
// next call records again once the database is back (TestFleetOutage).
//
// # Roles
//
// The schema's owner migrates it (Open); agents run as a role with
// DB.GrantAgent's privileges and open it with Options.NoMigrate:
//
//	GRANT USAGE ON SCHEMA agentguard TO agent;
//	GRANT SELECT ON agentguard.schema_migrations TO agent;
//	GRANT SELECT, INSERT, UPDATE, DELETE ON agentguard.budget_holds, agentguard.budget_hold_entries,
//	      agentguard.budget_charges, agentguard.budget_expired, agentguard.rate_buckets TO agent;
//	GRANT SELECT ON agentguard.kill_trips TO agent;
//	GRANT SELECT, INSERT, DELETE ON agentguard.approval_pending TO agent;
//	GRANT UPDATE (taken) ON agentguard.approval_pending TO agent;
//	GRANT SELECT, INSERT, UPDATE, DELETE ON agentguard.approval_grants TO agent;
//	GRANT SELECT, INSERT ON agentguard.audit_log, agentguard.audit_checkpoints TO agent;
//	GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA agentguard TO agent;
//
// An agent can then append to the audit log but not change or delete a
// line, read the kill switch but not trip or resume it, and ask for an
// approval but not answer one (TestGrantAgent). Operators (the CLI) use
// the owner or a role with the rest. Limits: the ledger's and the
// grants' tables are the agents' to write, because the budget logic and
// the approval Gate run in the agent's process; an agent's role can
// therefore forge a grant or rewrite its spend. Keep the database's
// credentials out of the model's reach, as every other credential.
package postgres

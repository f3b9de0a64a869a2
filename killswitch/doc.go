// Package killswitch stops AI agents' tool calls from outside the agent's
// reach: new calls in a tripped scope are refused, and calls already in
// flight have their contexts cancelled at once.
//
// # Scopes and trips
//
// A [Scope] names what a trip stops: everything (the zero Scope), a
// tenant, an agent, a tool, or a combination (an agent's calls to one
// tool). [Switch.Trip] takes who and why; a trip is sticky, and only
// [Switch.Resume] of the same scope ends it: no timeout resets it.
//
// # Calls in flight
//
// [Switch.Enter] admits a call into flight and returns a context that a
// covering trip cancels with a [*Halt] as its cause (context.Cause), which
// unwraps to [ErrHalted]. Its exit function is the commit point: it
// reports whether the call left before any trip covering it; a call whose
// exit reports false was halted, and its result must be discarded. When
// Trip returns, every covered call's context is done and every covered
// exit reports false, even for tools that ignore their context; a caller
// that runs the tool on a goroutine of its own (agentguard's Preemptive
// tools) can return at once without waiting for them.
//
// When nothing is tripped, Enter is one atomic load and a slot taken under
// one of 64 mutexes; exit gives the slot back. [Switch.Admit] does the same
// with the call's state in a [Flight] the caller keeps (agentguard keeps
// it in its per-call state): the Flight is the call's context, and its
// Done channel, the only part that needs allocating, is made when the tool
// first asks for it or when a trip halts the call. An admitted call that
// never watches its context costs no allocation; Enter allocates the
// Flight and its exit function (see BenchmarkEnterExit).
//
// # Revocation hooks and events
//
// [Switch.OnTrip] registers hooks that run after every trip, for example to
// revoke the agent's credentials. Their failures and panics are returned
// by Trip and reported, like every trip and resume, to [Options.OnEvent],
// which agentguard uses to write them to the audit log.
//
// # Triggers
//
// A [FileTrigger] trips while a kill file exists; [NewHandler] serves an
// HTTP API with a bearer token; [OnSignal] trips on OS signals. A kill
// file that cannot be read (other than absent) for the trigger's staleness
// bound trips the trigger's scope, whatever the reason: fail closed. A
// check waits at most [FileOptions.Timeout] for the file system, so a path
// that blocks (a hung network mount) counts as unreadable rather than
// wedging the trigger; a kill file that is not a regular file (a named
// pipe, a device, a directory) trips at once ([ErrNotRegular]).
// Removing the file does not resume unless the trigger has
// ResumeOnRemove; otherwise resume in process ([Switch.Resume], the HTTP
// API). A file still present after a resume trips again at the next check.
//
// # Fleets
//
// A [Store] keeps trips where every process of a fleet sees them (package
// postgres keeps them in PostgreSQL); a [StoreTrigger] makes each
// process's Switch follow it: [StoreTrigger.Trip] and
// [StoreTrigger.Resume] change the store for everyone, and
// [StoreTrigger.Run] re-reads it at an interval and, when the store is a
// [Watcher], at once after every change, so a trip anywhere cancels the
// calls in flight everywhere. A process that cannot read the store for
// longer than [StoreOptions].Stale trips everything until it can again.
// With [StoreOptions].Publish, a trip made in the process some other way
// (a breaker, a kill file) is written to the store too, so it stops the
// whole fleet until it is resumed in the store.
// [Mem] is the in-memory store and the reference; package switchtest
// checks a store against the contract.
//
// # Kill file format
//
// A kill file is UTF-8 text of at most 4096 bytes ([MaxKillFileSize]):
//
//	Refund loop: agent sent 40 refunds in a minute
//	agent: support-bot
//	tool: refund
//	tenant: acme
//	by: alice
//
// The first line is always the reason (control characters removed, cut at
// 512 bytes). Each later line is blank, a comment starting with "#", or
// "key: value" with key tenant, agent or tool (narrowing the trigger's
// scope) or by (who wrote it); each key at most once, values of at most
// 256 bytes. A file that breaks these rules, or whose scope falls outside
// the trigger's, still trips: it trips the trigger's whole scope, with the
// first line and the problem as reason. `agentguard kill` writes such a
// file atomically; so does [WriteKillFile].
//
// # HTTP API
//
// Every request needs "Authorization: Bearer TOKEN" (401 otherwise; the
// token is compared in constant time). Bodies and responses are JSON.
//
//	GET  /status  → 200 {"tripped": [{"scope": {...}, "who": ..., "why": ..., "at": ...}]}
//	POST /trip    {"scope": {"tenant": ..., "agent": ..., "tool": ...}, "who": ..., "why": ...}
//	              → 200 and the status; "error" says if a hook failed (the trip holds)
//	POST /resume  same body → 200 and the status, or 409 when the scope is not tripped
//
// A missing who becomes "http:" and the client's address. Mount the
// handler under a prefix with http.StripPrefix.
//
// # Breakers
//
// A [Breaker] counts the calls of each agent that the caller observes
// ([Breaker.Observe]) and trips that agent's scope when one of its
// [Settings] thresholds is crossed: consecutive failures, error rate over
// a window with a floor of calls, denials, calls or spend per minute. One
// agent's calls never trip another agent; counts are exact under
// concurrent observation.
package killswitch

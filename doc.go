// Package agentguard puts structural safety controls around an AI agent's
// tool calls: a policy decides every call, budgets and rate limits cap
// what it may spend, a human approves what is risky, a tamper-evident log
// records everything before it runs, and a kill switch stops it, from
// outside the agent's reach. Every control fails closed.
//
// # The Guard
//
// Build one Guard with New from a policy and the controls you want, then
// wrap each tool function with Wrap. The wrapped function has the same type
// as the tool; every call through it runs the pipeline:
//
//	identify → kill switch → policy → rate limit → budget → approval → record → run → settle → record → breakers
//
// Any error in the steps before the run ends the call as a denial, which is
// recorded; no error inside the guard lets a tool run unguarded.
//
//	g, err := agentguard.New(
//		agentguard.WithPolicyFile("policy.yaml"),
//		agentguard.WithApprover(approval.Func(askOnSlack)),
//		agentguard.WithAuditFile("audit.jsonl"),
//	)
//	if err != nil { ... }
//	defer g.Close()
//	send := agentguard.Wrap(g, "send_email", sendEmail)
//	ctx = agentguard.WithPrincipal(ctx, agentguard.Principal{Agent: "support-bot", Requester: "alice"})
//	receipt, err := send(ctx, EmailArgs{To: "bob@example.com"})
//
// A Guard without a policy denies every call.
//
// # Three forms
//
// Wrap guards a typed function func(C, In) (Out, error), where C is
// context.Context or a framework's own context type. WrapJSON guards a tool
// that takes raw JSON arguments, as LLM APIs deliver them, and WrapJSONAs
// takes raw JSON for a tool of its own type, decoding it once. Guard.Check
// and Ticket.Done are the two-step form for adapters and code that cannot
// be wrapped.
//
// # Arguments
//
// What the policy judges, what the approval hash covers, what the card
// shows, what the audit log records and what the tool receives are one
// value. The policy sees the arguments as call.args, a map of JSON values.
// Raw JSON that two decoders could read differently is denied with
// CodeInvalidCall before the policy sees it, and the reason names the key
// and its path: a duplicate key, or two keys equal under Unicode simple
// case folding (strings.EqualFold: "to" and "TO", "k" and the Kelvin sign
// U+212A, "s" and the long s U+017F), in any object at any depth, since
// encoding/json fills a struct field from any key that folds to its name
// and keeps the last, while other parsers keep the first; invalid UTF-8 in
// a key or string, raw or as a lone surrogate escape, which decoders
// replace with U+FFFD; an integer beyond 64 bits; a number with more
// digits than a double holds; nesting deeper than 48 levels. A
// map[string]any given to Check or Wrap, a framework's decoded JSON, is
// refused for case-folded keys at any depth as well.
//
// Numbers are exact. An integer, from JSON or from a Go integer field, is
// an int64 in call.args, or a uint64 above the int64 range (CEL int and
// uint), never rounded through a float64; other numbers are float64 (CEL
// double), and a Go float64 field stays a float64 even when whole. CEL
// compares across int, uint and double exactly, so rules such as
// call.args.amount > 100.0 work on either; arithmetic needs one type
// (double(call.args.n) * 1.5). The approval card is a deep copy, so an
// approver that edits it changes nothing.
//
// WrapJSON hands its tool the checked bytes. A tool that decodes them into
// a struct should be wrapped with WrapJSONAs instead: encoding/json would
// fill field To from a lone key "TO", which the policy sees as
// call.args.TO. WrapJSONAs refuses unknown fields and numbers its type
// would round, and builds call.args from the value the tool receives.
//
// # Identity
//
// A call is made for a Principal: the agent, the requester it acts for, the
// tenant and the session. WithPrincipal puts one in a context;
// WithDefaultPrincipal fills what the context does not say. The policy sees
// the principal, the tool, its arguments (as JSON values), its labels, the
// environment (WithEnv) and, with a budget, what the principal has spent.
//
// # Denials
//
// A refused call returns a *DeniedError. Its Error text is written for the
// model that made the call: what it tried, which rule or limit stopped it,
// what would let it through, whether retrying can help, and that it should
// tell the user and ask a human rather than work around the refusal.
// MarshalJSON gives the same fields to programs. Every denial matches
// ErrDenied and the sentinel of its Code (ErrPolicyDenied, ErrHalted,
// ErrRateLimited, ErrBudgetExceeded, ErrApprovalRequired, ErrApprovalDenied,
// ErrApprovalTimeout, ErrApprovalInvalid, ErrAuditUnavailable,
// ErrInvalidCall, ErrUnavailable, ErrCancelled, ErrInternal) through
// errors.Is. The Reason is never an internal error's text: a stage that
// fails with an error of its own is refused with a fixed sentence for its
// stage and CodeUnavailable (a control that could not decide), and the
// error itself stays in Err and the audit record. The caller's own cancel
// or deadline is CodeCancelled, never a kill-switch halt.
// For frameworks that hide a tool's errors from the model, DenyAs returns
// the denial as the tool's result, of any type (DenyAsValue for strings).
//
// A tool whose context is a framework's own type still runs with the
// guarded context: see Wrap, and Context for ADK's tool.Context.
//
// The tool's own errors pass through untouched. A tool that panics has its
// panic recorded and re-raised.
//
// # Stages
//
// The controls plug into the pipeline through small interfaces: Halter
// (killswitch), Limiter and Budgeter (budget), Approvals (approval) and
// Recorder (audit), with Observer for breakers. The With… options of this
// package install the implementations of the sibling packages; a program
// can supply its own.
//
// # Concurrency
//
// A Guard and the functions Wrap returns are safe for concurrent use. The
// policy can be swapped atomically while calls run (SetPolicy,
// ReloadPolicy, WithPolicyWatch).
package agentguard

// Package policy loads, compiles and evaluates agentguard policies: CEL
// rules that decide whether a tool call runs, needs a human, or is
// refused, together with the rate limits, budgets, cost estimates and
// breakers that other stages enforce.
//
// A policy is compiled once ([Parse], [Load] or [Compile]) into an
// immutable [*Policy], safe for concurrent use, whose [Policy.Decide]
// evaluates one call. Every expression is type-checked at load time; a
// file with any problem is rejected whole with an [ErrorList] naming the
// file, line and column, the rule, the field, and the position inside the
// expression:
//
//	policy: bad.yaml:4:12: rule "x": match: at 1:1: undeclared reference to 'cal'
//
// # File format
//
// A policy file is YAML, or JSON when its first non-blank character is
// '{'. Unknown fields are errors, and so are, in JSON as in YAML, a key
// given twice in one object and a key that differs from another, or from
// a field's name, only in case ("EFFECT"). A file must say its version: a
// file of "---", "null" or "{}" (one emptied or cut short) is an error,
// not a policy that denies everything. Files are at most [MaxFileSize]
// bytes, and YAML aliases may not expand the document beyond
// [MaxYAMLNodes] nodes.
//
//	version: 1                # required: the format version, 1
//	default: deny             # deny (when absent), approve or allow: the effect when no rule matches
//	rules:                    # at most MaxRules
//	  - name: big-refunds     # required, unique; named in decisions and errors
//	    match: call.tool == "refund" && call.args.amount > 100   # CEL, of type bool
//	    effect: approve       # required: allow, deny or approve (run only after a human approves)
//	    reason: refunds over 100 need a human   # shown to the model and the approver
//	    mode: enforce         # enforce (when absent) or shadow: evaluated and reported, never decides
//	    timeout: 10m          # approve rules only: how long to wait for a human (a Go duration)
//	limits:                   # token-bucket rate limits
//	  - name: email-rate      # optional, unique when given
//	    tools: [send_email]   # tool names or globs; absent means every tool
//	    per: agent            # agent (when absent), tenant, requester, session or global
//	    rate: 10/minute       # N/period: s, second(s), m, min(s), minute(s), h, hr, hour(s), d, day(s), or a duration ("1/500ms")
//	    burst: 3              # bucket size; 0 means the stage's default
//	    wait: false           # wait within the context's deadline instead of refusing
//	budgets:                  # hard caps on spend
//	  - name: daily-spend     # required, unique
//	    per: tenant           # tenant, agent or global (when absent)
//	    tools: ["llm.*"]      # optional: only calls to these tools count
//	    limit: "25.00 USD"    # a decimal number, optional K, M or G, a space and a unit ("1.5M tokens"); exact to a micro-unit, as the budget reads it
//	    window: day           # total (when absent), day (UTC), day:Europe/Paris, hour, or a duration of 1s or more ("15m")
//	costs:                    # estimates of a call's cost before it runs; the first entry whose tools match applies
//	  - tools: ["llm.*"]      # tool names or globs; absent means every tool
//	    estimate: double(call.args.max_tokens) * 0.000002   # CEL, of type double or int, in whole units
//	    unit: USD             # a letter, then letters, digits, '_', '-' or '.'; at most 32
//	breakers:                 # trip the kill switch for an agent; zero thresholds are off
//	  - name: flaky           # required, unique
//	    tools: [db.query]     # optional
//	    consecutive_failures: 5
//	    error_rate: 0.5       # 0..1, over window, once min_calls calls were seen
//	    min_calls: 20
//	    window: 1m            # a Go duration; 1m when absent
//	    denies_per_minute: 30
//	    calls_per_minute: 600
//	    spend_per_minute: "2 USD"
//
// The same policy can be written in Go as a [Spec] and compiled with
// [Compile]. Tool globs (in limits, budgets, costs and breakers, and the
// glob function) follow [Glob]: * matches a run of characters without '/',
// ** matches any run, ? one character other than '/'.
//
// # CEL variables
//
// Rules and cost estimates see three variables:
//
//   - call: the call. call.id, call.tool, call.agent, call.requester,
//     call.tenant, call.session and call.env are strings; call.args is a
//     map(string, dyn) of the arguments as JSON values; call.labels is a
//     map(string, string) of the tool's labels; call.time is the
//     timestamp the call entered the guard.
//   - now: the timestamp of the decision.
//   - usage: what the call's principal has spent and called in the current
//     budget windows: usage.spend is a map(string, double) by unit
//     (usage.spend["USD"]), usage.calls an int, usage.caps a
//     map(string, double) of what is left by budget name. The guard
//     computes usage only for policies that refer to it
//     ([Policy.UsesUsage]).
//
// Reading a missing key (call.args.missing) is an error, which denies the
// call: test with has(call.args.x), "x" in call.args, or the optional
// syntax call.args.?x.orValue(default).
//
// Numbers in call.args are exact. An integer is an int (a uint above the
// int range): the guard reads a JSON integer, or a Go integer field, as
// int64 or uint64, never through a double, so account 9007199254740993 is
// not 9007199254740992. Any other number is a double (a float64 field
// stays a double even when it holds a whole number). Comparisons mix int,
// uint and double freely and exactly (call.args.amount > 100.0,
// call.args.n == 3, call.args.id == 18446744073709551615u), but
// arithmetic does not: call.args.n + 1 works on an int, while an int times
// 1.5 has no overload, errs, and so denies; write double(call.args.n) *
// 1.5 when a number may be either.
//
// # Functions
//
// Besides CEL's standard functions and macros (size, startsWith,
// endsWith, contains, matches, in, has, all, exists, exists_one, map,
// filter, timestamps and durations) and the string extensions of cel-go
// (lowerAscii, upperAscii, split, join, replace, trim, indexOf, substring,
// format, …), rules may call:
//
//   - glob(pattern, s): s matches the glob pattern ([Glob]).
//   - urlHost(url): the host of a URL as Go's HTTP client dials it (IDNA
//     lookup mapping, so a fullwidth dot is a dot; lower-cased, without
//     port or trailing dot); an error when the URL has no host or the host
//     cannot be mapped ([URLHost]).
//   - emailDomain(addr): the domain of exactly one e-mail address, parsed
//     by net/mail and mapped like a host; an error for anything else:
//     several addresses, a group, comments, control characters
//     ([EmailDomain]).
//   - inCIDR(ip, cidr): ip is inside the prefix; an error when either does
//     not parse ([InCIDR]).
//   - isIP(s): s is an IPv4 or IPv6 address.
//   - hostMatch(host, pattern): host equals pattern, or is a subdomain of
//     it when the pattern is "*.example.com"; both are mapped as urlHost
//     maps a host, so case and trailing dots are ignored; an error when
//     either cannot be mapped ([HostMatch]).
//
// # Semantics
//
// Of the enforced rules that match a call, a deny rule wins over an
// approve rule, and an approve rule over an allow rule, whatever their
// order in the file; among matching rules of the winning effect, the
// first in the file is named. When none matches, the default decides
// (deny unless written otherwise). Shadow rules are evaluated and
// reported in [Decision.Shadow] (a failing shadow rule as the deny it
// would cause) but never change the decision.
//
// Every failure denies: a rule that errs (a missing key, a division by
// zero, a helper given bad input), returns something other than a bool,
// or goes over [CostLimit], and a context that ends, all produce a Deny
// whose Rule names the failing rule and whose Err is an [*EvalError].
// CEL's own && and || absorb errors (error || true is true, error && false
// is false), which would turn an error into an allow, or let a deny rule
// fail to match. Here they are strict and evaluated left to right: a && b
// is a ? b : false and a || b is a ? true : b, so the left operand still
// decides alone (has(call.args.x) && call.args.x > 1 guards as expected),
// but an error that is reached is never hidden; the all and exists macros
// are strict the same way. Each rule is compiled as its own program, so no
// rule hides another's error either. One exception is by design: a rule
// whose top-level && chain tests call.tool (call.tool == "x", call.tool in
// [...]) is not evaluated at all for other tools. Deny rules are
// evaluated first and a matching one ends the evaluation; otherwise every
// enforced rule that may match is evaluated, so that any failure denies.
//
// Expressions are limited at load time to [MaxExprSize] bytes, [MaxNesting]
// levels of nesting and two levels of nested comprehensions; a rule whose
// least static cost is over [CostLimit] is rejected.
//
// # Bounded evaluation
//
// Every evaluation is bounded by [CostLimit] and the call's context. A
// rule whose worst cost over inputs of any size is within CostLimit (as
// CEL's static estimate proves it: comparisons, field and key tests,
// string tests against constants) runs as it is, with no tracking: the
// hot path. Every other rule (comprehensions, replace, + of strings or
// lists, searches and matches over arguments, the string functions of
// cel-go's ext library) runs with runtime cost tracking against
// CostLimit and, in its loops, interruption when the context ends (its
// deadline); the context is also checked before each rule. Before such a
// rule runs for a call, the call's arguments are checked against
// [MaxArgString] (any string or key, in bytes) and [MaxArgsSize] (all of
// them): larger arguments deny the call, Rule "argument-size", with an
// error matching [ErrArgsTooLarge] and a reason that says where and how
// large (never what). indexOf and lastIndexOf search in linear time
// (cel-go's compare rune by rune: two 120 KB strings took seconds).
//
// Every decision carries the policy's version ([Policy.Version]): the hex
// SHA-256 of the policy's canonical form, which does not depend on the
// file format, key order, or the order of rules, budgets and breakers.
//
// # Performance
//
// A rule whose top-level && chain tests call.tool == "x" (or
// call.tool in ["x", "y"]) is evaluated only for those tools, and then
// without the test; this is sound because false && anything is false in
// CEL, even an error. Variables are read from the [Input] without building
// a map per call.
//
// Rules of the common shapes are also compiled to Go at load time:
// comparisons (==, !=, <, <=, >, >=) of call's fields, call.args and
// call.labels entries, usage.calls, usage.spend and usage.caps entries and
// constants; size; startsWith, endsWith, contains and matches with a
// constant pattern; in a list of constants; has; !, && and || (which the
// policy evaluates left to right, see Semantics) and ?:. A compiled rule
// evaluates without CEL and without allocating. Whenever it meets what it
// cannot answer exactly as CEL would (any error, such as a missing key or
// an operation on the wrong type; a list or map; a NaN; a cost that might
// reach [CostLimit]), the rule's CEL program decides instead, so decisions,
// errors and reasons are CEL's. With [Call.Reader], the arguments are read
// in place, and their map is built only for a rule CEL evaluates. Decide
// on a policy of 20 rules over 10 tools takes a few hundred nanoseconds
// and allocates nothing (see BenchmarkDecide).
//
// # Reloading
//
// A [*Policy] never changes: reload by compiling a new one and swapping a
// pointer atomically. A [Watcher] does this for a file, keeping the last
// good policy when the file becomes bad; [Watch] runs one until its
// context ends.
package policy

// Package approval puts a human in front of risky tool calls, and makes
// their answer binding: an approval counts only for the exact call it was
// given, only once, and only before its deadline. Anything else — a
// rejection, a timeout, an error, a cancelled context, a verdict for
// another call — refuses the call.
//
// # Requests and verdicts
//
// A Request is a decision card: the tool, its (redacted) arguments, the
// principal, labels, the rule and reason that asked for approval, the
// estimated cost and what is left of the budget, when it was asked, its
// deadline, and its Hash. An Approver answers it with a Verdict: approved
// or not, who decided, a note, the request's ID and Hash, and optionally a
// Grant. Func turns a plain function into an Approver; Request.Approve,
// Request.ApproveFor and Request.Reject build verdicts bound to the request.
//
// # The call hash
//
// Request.Hash is the lowercase hexadecimal SHA-256 of the canonical
// encoding of the call (Canonical, HashCall), which is the UTF-8 JSON text
// of the object
//
//	{"args":ARGS,"principal":{"agent":A,"requester":R,"session":S,"tenant":T},"tool":TOOL}
//
// where ARGS is the arguments object ({} when there are none) and the four
// principal fields are always present, as strings. In the encoding, at
// every level: object keys are sorted by their bytes and unique; there is
// no space outside strings; numbers are written as they were first
// encoded by Go's encoding/json: an integer (any Go integer type, up to
// uint64) as its exact decimal digits, never rounded through a double, so
// 9007199254740993 and 9007199254740992 hash differently; a float64 in the
// shortest form that reads back exactly, without a fraction when it is
// whole (3.0 is written 3, and hashes as the integer 3 does) and with an
// exponent only below 1e-6 or from 1e21; a json.Number as its text; strings escape '"' and '\\' with a backslash, \b \f \n \r
// \t as such, other bytes below 0x20 as \u00xx (lowercase hex), U+2028 and
// U+2029 as \u2028 and \u2029, invalid UTF-8 as \ufffd, and nothing else
// ('<', '>', '&' and non-ASCII are written as they are). The guard hashes
// the unredacted arguments, so two calls whose secrets differ have
// different hashes even when their cards look alike.
//
// # The Gate
//
// Gate enforces the rules around any Approver: Gate.Ask fills the card's
// hash and deadline, skips the wait when a live grant covers the call,
// asks the approver otherwise, and accepts the verdict only when it names
// this request's ID and hash, arrives before the deadline and while the
// caller's context is live, and the request was never asked before. Every
// refusal is a *RefusedError that unwraps to one of ErrRejected,
// ErrTimeout, ErrMismatch (the verdict names another request), ErrForged
// (it names this request but another call's hash), ErrReused (the verdict
// or the request was used before: a replay), ErrCancelled, ErrApprover
// (the approver or the grant store failed) or ErrInvalid; ErrCancelled also unwraps to context.Cause of the caller's
// context, so a kill switch that cancels the call is reported as itself.
// An approver that ignores its context does not hold the call: the Gate
// stops waiting at the deadline.
//
// # Grants
//
// A verdict may grant a remembered approval for a duration: ScopeSameArgs
// (the same hash: tool, arguments and principal), ScopeTool (the tool, for
// the same agent and tenant) or ScopeAgent (everything for the same agent
// and tenant); ScopeCall remembers nothing. Live grants are Permits kept in
// a Store (Mem by default); a call a permit covers is approved without
// asking, and the Outcome names the permit. Gate.Grants lists live
// permits and Gate.Revoke removes one, effective for the next call. A Store
// only keeps permits; the matching and expiry live in the Gate, and
// package storetest checks any Store against the contract.
//
// # Adapters
//
//   - Console asks at a terminal: y, n, or "always [DURATION] [SCOPE]",
//     each naming its numbered card ("y 2") once a second card was shown.
//   - Webhook POSTs the card as signed JSON and waits for a signed callback
//     on its http.Handler (see the Webhook type for the wire format).
//   - Inbox is an http.Handler that lists pending cards and takes verdicts,
//     by a JSON API with a bearer token and by an HTML page for a person in
//     a browser, protected against cross-site requests. Who answered is
//     the identity InboxOptions.Authenticate verifies (TrustHeader for an
//     SSO proxy), or else a typed name recorded as "typed:NAME".
//   - Chain asks several approvers at once; the first answer wins.
//   - AllowAll and DenyAll answer at once, for tests.
//
// # What people see
//
// A person approves the call they saw. WriteCard, the console, the inbox
// page and the agentguard CLI show a card whole, its arguments in full,
// with every character that is invisible or reorders text (controls, bidi
// controls, zero-width characters, odd spaces, bytes that are not UTF-8)
// escaped by Visible; the inbox page also lists what differs between two
// pending cards of the same tool, and the CLI approves only with the start
// of the card's hash.
package approval

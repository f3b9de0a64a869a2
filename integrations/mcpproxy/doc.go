// Package mcpproxy guards an MCP server over its JSON-RPC wire, without an
// MCP SDK: it is the engine of `agentguard mcp-proxy`, which starts a
// third-party server as a child over stdio (Child) and re-exposes its
// tools guarded (Proxy) over stdio or streamable HTTP (HTTP), and it holds
// what the SDK integrations share: tool definitions and their labels and
// hashes (Tool), pins (Pins), the denial's tool result (DenialResult),
// finishing a call on every path (Run), hiding (Hidden) and watching for
// changes (WatchChanges).
//
// # The proxy
//
// Every tools/call passes the Guard before the server sees it: the policy
// sees the tool's name, its raw arguments and its annotations as labels; a
// refused call is answered with an isError tool result and never reaches
// the server. Everything else passes through untouched. Messages two JSON
// parsers could read differently (duplicate or case-folded keys in the
// envelope or the params, batches, data after the object) are refused. A
// call to a tool the server does not list is refused.
//
// # Failures
//
// A server that exits, hangs (Options.Timeout) or writes what is not
// JSON-RPC gets every waiting request answered with a clear error (a tool
// result for a call, whose outcome is recorded as unknown), is stopped and
// reaped; later requests are answered at once. A trip of the kill switch
// answers a call in flight at once and tells the server to cancel it; a
// call the client cancels is finished at once. Child.Stop closes the
// server's input, then sends SIGTERM, then SIGKILL to its process group,
// so that nothing it started is left behind.
package mcpproxy

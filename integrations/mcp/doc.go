// Package agentguardmcp guards the tools of MCP servers built with
// github.com/modelcontextprotocol/go-sdk.
package agentguardmcp

package agentguardmcp

import (
	"context"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// refreshTool is the name of the placeholder ToolsChanged adds and
// removes at once; Middleware hides it and refuses calls to it.
const refreshTool = "agentguard.refresh"

// ToolsChanged tells the clients of s that its list of tools changed
// (notifications/tools/list_changed), so that they list again and see
// what Options.HideTools hides now. The SDK sends that notification only
// when a tool is added or removed, so ToolsChanged adds a placeholder
// tool and removes it at once; the middleware never lists it and refuses
// calls to it.
func ToolsChanged(s *mcp.Server) {
	s.AddTool(&mcp.Tool{Name: refreshTool, Description: "agentguard: a placeholder that is never listed", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "not a tool"}}}, nil
		})
	s.RemoveTools(refreshTool)
}

// NotifyChanges calls ToolsChanged(s) whenever sw (when not nil) trips or
// resumes and whenever the policy in force in g changes (SetPolicy,
// ReloadPolicy, agentguard.WithPolicyWatch), checking every interval (a
// second when zero), until ctx ends or stop is called.
func NotifyChanges(ctx context.Context, s *mcp.Server, g *agentguard.Guard, sw *killswitch.Switch, interval time.Duration) (stop func()) {
	return mcpproxy.WatchChanges(ctx, g, sw, interval, func() { ToolsChanged(s) })
}

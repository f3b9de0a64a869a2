package agentguardmcpgo

import (
	"context"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// NotifyChanges tells every client of s that its list of tools changed
// (notifications/tools/list_changed) whenever sw (when not nil) trips or
// resumes and whenever the policy in force in g changes, checking every
// interval (a second when zero), until ctx ends or stop is called. With
// ToolFilter, clients then list again and no longer see what can no
// longer be allowed.
func NotifyChanges(ctx context.Context, s *server.MCPServer, g *agentguard.Guard, sw *killswitch.Switch, interval time.Duration) (stop func()) {
	return mcpproxy.WatchChanges(ctx, g, sw, interval, func() { s.SendNotificationToAllClients(mcp.MethodNotificationToolsListChanged, nil) })
}

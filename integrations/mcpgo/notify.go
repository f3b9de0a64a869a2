package agentguardmcpgo

import (
	"context"
	"time"

	"github.com/hardstop-labs/agentguard"
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
	notify := func() { s.SendNotificationToAllClients(mcp.MethodNotificationToolsListChanged, nil) }
	ctx, cancel := context.WithCancel(ctx)
	unwatch := func() {}
	if sw != nil {
		unwatch = sw.Watch(func(killswitch.Event) { notify() })
	}
	if interval <= 0 {
		interval = time.Second
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		last := g.Policy()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if now := g.Policy(); now != last {
					last = now
					notify()
				}
			}
		}
	}()
	return func() {
		cancel()
		unwatch()
		<-done
	}
}

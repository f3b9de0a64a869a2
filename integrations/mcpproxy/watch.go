package mcpproxy

import (
	"context"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/killswitch"
)

// WatchChanges calls notify whenever sw (when not nil) trips or resumes
// and whenever the policy in force in g changes (SetPolicy, ReloadPolicy,
// agentguard.WithPolicyWatch), checking every interval (a second when
// zero), until ctx ends or stop is called: what an integration that hides
// tools needs to send tools/list_changed.
func WatchChanges(ctx context.Context, g *agentguard.Guard, sw *killswitch.Switch, interval time.Duration, notify func()) (stop func()) {
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

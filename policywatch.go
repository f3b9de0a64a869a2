package agentguard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/hardstop-labs/agentguard/policy"
)

// WithPolicyWatch re-reads the file given to WithPolicyFile every interval
// and swaps in each new policy that compiles, atomically (see SetPolicy).
// When the file is bad or cannot be read, or a component refuses the new
// policy, the policy in force stays and onError, when not nil, hears about
// the problem once (it is logged either way). The watcher stops at Close.
func WithPolicyWatch(interval time.Duration, onError func(error)) Option {
	return func(c *config) error {
		if interval <= 0 {
			return fmt.Errorf("agentguard: WithPolicyWatch: interval %v is not positive", interval)
		}
		c.onNew = append(c.onNew, func(g *Guard) error {
			path := g.cfg.policyFile
			if path == "" {
				return errors.New("agentguard: WithPolicyWatch: no policy file (WithPolicyFile)")
			}
			report := func(err error) {
				g.cfg.logger.Warn("agentguard: policy reload failed; the policy in force stays", zap.String("file", path), zap.Error(err))
				if onError != nil {
					onError(err)
				}
			}
			swap := func(p *policy.Policy) {
				if err := g.SetPolicy(p); err != nil {
					report(err)
				}
			}
			w, err := policy.NewWatcher(path, policy.WatchOptions{OnChange: swap, OnError: report})
			if err != nil {
				return err
			}
			// The file may have changed since New loaded it.
			if cur := g.Policy(); cur == nil || cur.Version() != w.Policy().Version() {
				swap(w.Policy())
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				w.Run(ctx, interval) // returns when ctx is cancelled
			}()
			g.cfg.closers = append(g.cfg.closers, func() error {
				cancel()
				<-done
				return nil
			})
			return nil
		})
		return nil
	}
}

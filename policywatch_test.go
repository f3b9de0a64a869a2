package agentguard_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hardstop-labs/agentguard"
)

func TestWithPolicyWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "policy.yaml")
		write := func(s string) {
			if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write("version: 1\nrules:\n  - {name: reads, match: 'call.tool == \"read\"', effect: allow}\n")
		var mu sync.Mutex
		var problems []error
		g, err := agentguard.New(
			agentguard.WithPolicyFile(path),
			agentguard.WithPolicyWatch(time.Second, func(err error) {
				mu.Lock()
				problems = append(problems, err)
				mu.Unlock()
			}),
		)
		if err != nil {
			t.Fatal(err)
		}
		read := agentguard.Wrap(g, "read", func(ctx context.Context, in string) (string, error) { return "ok", nil })
		if _, err := read(context.Background(), "x"); err != nil {
			t.Fatalf("read under the first policy: %v", err)
		}

		// A new file takes over at the next tick.
		write("version: 1\nrules:\n  - {name: no-reads, match: 'call.tool == \"read\"', effect: deny, reason: closed}\n")
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		_, err = read(context.Background(), "x")
		var d *agentguard.DeniedError
		if !errors.As(err, &d) || d.Rule != "no-reads" {
			t.Fatalf("read under the second policy = %v, want denied by no-reads", err)
		}
		version := g.Policy().Version()

		// A bad file keeps the policy in force and is reported once.
		write("version: 1\nrules:\n  - {name: broken, match: 'nope', effect: allow}\n")
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if g.Policy().Version() != version {
			t.Errorf("a bad file replaced the policy")
		}
		mu.Lock()
		if len(problems) != 1 || !strings.Contains(problems[0].Error(), `rule "broken"`) {
			t.Errorf("problems = %v, want one naming the rule", problems)
		}
		mu.Unlock()
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestWithPolicyWatchNeedsFile(t *testing.T) {
	if _, err := agentguard.New(agentguard.WithPolicyWatch(time.Second, nil)); err == nil {
		t.Error("New with WithPolicyWatch and no policy file succeeded")
	}
	if _, err := agentguard.New(agentguard.WithPolicyWatch(0, nil)); err == nil {
		t.Error("New with a zero interval succeeded")
	}
}

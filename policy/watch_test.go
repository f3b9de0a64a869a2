package policy

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
)

const (
	allowPolicy = "version: 1\ndefault: allow\n"
	denyPolicy  = "version: 1\nrules:\n  - {name: r, match: 'call.tool == \"x\"', effect: deny}\ndefault: allow\n"
	badPolicy   = "rules:\n  - {name: r, match: 'nope', effect: deny}\n"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestWatcherCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, path, allowPolicy)
	var changes []*Policy
	var errs []error
	w, err := NewWatcher(path, WatchOptions{
		OnChange: func(p *Policy) { changes = append(changes, p) },
		OnError:  func(err error) { errs = append(errs, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	first := w.Policy()
	if got := decide(first, "x", nil); got.Effect != Allow {
		t.Fatalf("first policy: Decide = %+v", got)
	}

	// Nothing changed.
	if changed, err := w.Check(); changed || err != nil {
		t.Errorf("Check unchanged = %v, %v", changed, err)
	}

	// A bad file keeps the old policy and reports once.
	write(t, path, badPolicy)
	for range 3 {
		changed, err := w.Check()
		if changed || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `rule "r"`) {
			t.Errorf("Check bad = %v, %v; want the rule's error", changed, err)
		}
	}
	if w.Policy() != first || len(errs) != 1 || len(changes) != 0 {
		t.Errorf("after a bad file: policy replaced %v, %d errors, %d changes", w.Policy() != first, len(errs), len(changes))
	}

	// A good file replaces it.
	write(t, path, denyPolicy)
	if changed, err := w.Check(); !changed || err != nil {
		t.Errorf("Check good = %v, %v", changed, err)
	}
	if got := decide(w.Policy(), "x", nil); got.Effect != Deny || got.Rule != "r" {
		t.Errorf("new policy: Decide = %+v", got)
	}
	if len(changes) != 1 || changes[0] != w.Policy() {
		t.Errorf("OnChange calls = %d", len(changes))
	}

	// The same policy written differently is not a change.
	write(t, path, "# a comment\n"+denyPolicy)
	if changed, err := w.Check(); changed || err != nil {
		t.Errorf("Check comment-only = %v, %v", changed, err)
	}

	// A missing file keeps the policy too.
	current := w.Policy()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Check(); err == nil || !strings.Contains(err.Error(), "cannot read") {
		t.Errorf("Check missing = %v", err)
	}
	if w.Policy() != current || len(errs) != 2 {
		t.Errorf("after a missing file: replaced %v, %d errors", w.Policy() != current, len(errs))
	}
}

func TestNewWatcherBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, path, badPolicy)
	if _, err := NewWatcher(path, WatchOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewWatcher(bad) = %v, want ErrInvalid", err)
	}
	if err := Watch(context.Background(), path, time.Second, nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Watch(bad) = %v, want ErrInvalid", err)
	}
	if err := Watch(context.Background(), path, 0, nil, nil); err == nil {
		t.Errorf("Watch with zero interval succeeded")
	}
}

func TestWatchRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "policy.yaml")
		write(t, path, allowPolicy)
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		var got []Effect
		done := make(chan error)
		go func() {
			done <- Watch(ctx, path, time.Second, func(p *Policy) {
				mu.Lock()
				got = append(got, decide(p, "x", nil).Effect)
				mu.Unlock()
			}, nil)
		}()
		synctest.Wait()
		write(t, path, denyPolicy)
		time.Sleep(1500 * time.Millisecond) // fake time: one tick
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch = %v, want context.Canceled", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 2 || got[0] != Allow || got[1] != Deny {
			t.Errorf("policies seen = %v, want [allow deny]", got)
		}
	})
}

//go:build unix

package agentguard_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/killswitch"
)

// TestWithKillFileFIFO: a named pipe at the kill path hung New for ever
// (the first check blocked opening it). Now New returns, the Guard starts
// halted (a kill file that is not a regular file trips), and Close
// returns. Issue 12, item 2.
func TestWithKillFileFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "KILL")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	t.Cleanup(func() { // free an open left blocked, should there be one
		if fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			syscall.Close(fd)
		}
	})
	within := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { defer close(done); f() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not return within 20s", what)
		}
	}
	var g *agentguard.Guard
	var err error
	within("New", func() {
		g, err = agentguard.New(agentguard.WithPolicy(ksPolicy(t, ksAllowAll)),
			agentguard.WithKillSwitch(killswitch.New(killswitch.Options{})),
			agentguard.WithKillFile(path, time.Hour, killswitch.FileOptions{Stale: time.Hour}))
	})
	if err != nil {
		t.Fatal(err)
	}
	tool := agentguard.Wrap(g, "t", func(ctx context.Context, _ struct{}) (string, error) { return "ran", nil })
	_, err = tool(as("bot"), struct{}{})
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Code != agentguard.CodeHalted || !strings.Contains(d.Reason, "not a regular file") {
		t.Errorf("call with a named pipe as kill file = %v, want halted: not a regular file", err)
	}
	within("Close", func() { g.Close() })
}

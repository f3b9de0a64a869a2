package mcpproxy_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
	"github.com/hardstop-labs/agentguard/policy"
)

// startChild runs a proxy in process in front of the fake server as a
// child process.
func startChild(t *testing.T, mode string, timeout time.Duration) (*client, *mcpproxy.Child, func() error, string) {
	t.Helper()
	t.Setenv("MCPPROXY_FAKE", mode)
	child, err := mcpproxy.StartChild(os.Args[0], []string{"-test.run=^$"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Stop(50 * time.Millisecond) })
	pol, err := policy.Parse("p.yaml", []byte(proxyPolicy))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	g, err := agentguard.New(agentguard.WithPolicy(pol), agentguard.WithAuditFile(path, audit.Options{Sync: audit.SyncNever}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	p := mcpproxy.New(g, mcpproxy.Options{Timeout: timeout})
	cinR, cinW := io.Pipe()
	coutR, coutW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		served <- p.Serve(context.Background(), mcpproxy.Streams{ClientIn: cinR, ClientOut: coutW, ServerOut: child.Stdout(), ServerIn: child.Stdin(),
			StopServer: func() { go child.Stop(50 * time.Millisecond) }})
		coutW.Close()
	}()
	end := func() error {
		cinW.Close()
		err := <-served
		g.Close()
		if _, verr := audit.Verify(audit.VerifyOptions{}, path); verr != nil {
			t.Fatalf("audit.Verify: %v", verr)
		}
		return err
	}
	return newClient(t, cinW, coutR), child, end, path
}

func waitReaped(t *testing.T, c *mcpproxy.Child) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second): // a guard against a hung test
		t.Fatal("the child was not reaped")
	}
	if err := syscall.Kill(-c.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("the child's process group still has members (kill: %v)", err)
	}
}

func TestChildCrashes(t *testing.T) {
	c, child, end, _ := startChild(t, "ok", 5*time.Second)
	c.initialize()
	r := result(t, c.call("crash", `{}`))
	if r["isError"] != true || !strings.Contains(resultText(r), "not running") {
		t.Fatalf("call that crashed the server: %v", r)
	}
	waitReaped(t, child)
	r = result(t, c.call("echo", `{}`))
	if r["isError"] != true {
		t.Fatalf("call after the crash: %v", r)
	}
	if m := c.request("tools/list", map[string]any{}); m["error"] == nil {
		t.Fatalf("tools/list after the crash: %v", m)
	}
	if err := end(); err != nil {
		t.Fatal(err)
	}
}

func TestChildHangs(t *testing.T) {
	c, child, end, _ := startChild(t, "hang", 200*time.Millisecond)
	m := c.request("initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "x"}})
	if m["error"] == nil || !strings.Contains(m["error"].(map[string]any)["message"].(string), "did not answer") {
		t.Fatalf("initialize to a hung server: %v", m)
	}
	r := result(t, c.call("echo", `{}`))
	if denialCode(r) != "policy_denied" || !strings.Contains(resultText(r), "could not be read") {
		t.Fatalf("call to a hung server: %v", r)
	}
	if err := end(); err != nil {
		t.Fatal(err)
	}
	if err := child.Stop(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitReaped(t, child)
}

func TestChildWritesGarbage(t *testing.T) {
	c, child, end, _ := startChild(t, "ok", 5*time.Second)
	c.initialize()
	r := result(t, c.call("garbage", `{}`))
	if r["isError"] != true || !strings.Contains(resultText(r), "not JSON-RPC") {
		t.Fatalf("call answered with garbage: %v", r)
	}
	waitReaped(t, child) // the proxy stopped it
	if err := end(); err != nil {
		t.Fatal(err)
	}
}

// TestChildStubborn: a server that ignores its input ending and SIGTERM
// is killed, and reaped.
func TestChildStubborn(t *testing.T) {
	t.Setenv("MCPPROXY_FAKE", "stubborn")
	child, err := mcpproxy.StartChild(os.Args[0], []string{"-test.run=^$"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Stop(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitReaped(t, child)
}

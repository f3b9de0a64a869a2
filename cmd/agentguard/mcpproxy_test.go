package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary run as the agentguard command, for the
// tests that need the proxy as a process of its own.
func TestMain(m *testing.M) {
	if os.Getenv("AGENTGUARD_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// filesystemServer is the real third-party server, installed from the npm
// registry by integrations/mcpproxy/.ci.sh.
var filesystemServer = filepath.Join("..", "..", "integrations", "mcpproxy", "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js")

type proxyProc struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	marker string // a directory only this proxy's server was given
	audit  string
	stderr *lockedBuffer
	next   int
}

// lockedBuffer is a bytes.Buffer the proxy's stderr copier and the test
// may use at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startProxy(t *testing.T) *proxyProc {
	t.Helper()
	if _, err := os.Stat(filesystemServer); err != nil {
		t.Skipf("the filesystem server is not installed (run integrations/mcpproxy/.ci.sh, as CI does): %v", err)
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "served")
	if err := os.Mkdir(marker, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(marker, "a.txt"), []byte("alpha"), 0o600); err != nil {
		t.Fatal(err)
	}
	marker, _ = filepath.EvalSymlinks(marker)
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(fmt.Sprintf(`version: 1
default: deny
rules:
  - name: reads
    match: call.tool == "read_text_file" && call.args.path.startsWith(%q)
    effect: allow
`, marker+"/")), 0o600)
	p := &proxyProc{marker: marker, audit: filepath.Join(dir, "audit.jsonl"), stderr: &lockedBuffer{}}
	p.cmd = exec.Command(os.Args[0], "mcp-proxy", "--policy", pol, "--audit", p.audit, "--hide", "--", "node", filesystemServer, marker)
	p.cmd.Env = append(os.Environ(), "AGENTGUARD_TEST_MAIN=1")
	p.cmd.Stderr = p.stderr
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.out = bufio.NewScanner(out)
	p.out.Buffer(make([]byte, 1<<20), 1<<24)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	return p
}

func (p *proxyProc) request(t *testing.T, method string, params any) map[string]any {
	t.Helper()
	p.next++
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": p.next, "method": method, "params": params})
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
	for p.out.Scan() {
		var m map[string]any
		if err := json.Unmarshal(p.out.Bytes(), &m); err != nil {
			t.Fatalf("the proxy wrote %q", p.out.Bytes())
		}
		if id, ok := m["id"].(float64); ok && int(id) == p.next {
			return m
		}
	}
	t.Fatalf("the proxy ended its output; stderr: %s", p.stderr)
	return nil
}

func (p *proxyProc) initialize(t *testing.T) {
	t.Helper()
	m := p.request(t, "initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "desktop", "version": "1"}})
	if m["result"] == nil {
		t.Fatalf("initialize: %v; stderr: %s", m, p.stderr)
	}
	p.in.Write([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n"))
}

// wait waits for the proxy to exit and returns its exit code.
func (p *proxyProc) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second): // a guard against a hung test
		t.Fatalf("the proxy did not exit; stderr: %s", p.stderr)
		return -1
	}
}

// orphans returns the processes still running with the marker in their
// command line: the server, if the proxy left it behind.
func orphans(marker string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(marker)) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && bytes.Contains(st, []byte(") Z ")) {
			continue // a zombie is not running (and not ours to reap)
		}
		out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}

// TestMCPProxyClientEOF: the proxy guards the real server, and when the
// client goes away it stops the server, leaves no process behind, and
// its audit log verifies.
func TestMCPProxyClientEOF(t *testing.T) {
	p := startProxy(t)
	p.initialize(t)
	list := p.request(t, "tools/list", map[string]any{})
	tools, _ := list["result"].(map[string]any)["tools"].([]any)
	if len(tools) != 1 || tools[0].(map[string]any)["name"] != "read_text_file" {
		t.Fatalf("tools/list with --hide: %v", list)
	}
	m := p.request(t, "tools/call", map[string]any{"name": "read_text_file", "arguments": map[string]any{"path": filepath.Join(p.marker, "a.txt")}})
	if r := m["result"].(map[string]any); r["isError"] == true || !strings.Contains(fmt.Sprint(r["content"]), "alpha") {
		t.Fatalf("allowed read: %v", m)
	}
	target := filepath.Join(p.marker, "b.txt")
	m = p.request(t, "tools/call", map[string]any{"name": "write_file", "arguments": map[string]any{"path": target, "content": "x"}})
	if r := m["result"].(map[string]any); r["isError"] != true {
		t.Fatalf("write: %v", m)
	}
	p.in.Close()
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit code %d; stderr: %s", code, p.stderr)
	}
	if o := orphans(p.marker); len(o) > 0 {
		t.Fatalf("processes left behind: %v", o)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("the denied write created its file (%v)", err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"audit", "verify", p.audit}, &out, &errb); code != 0 {
		t.Fatalf("audit verify: %d %s %s", code, out.String(), errb.String())
	}
	// Every tool the server showed was recorded with its definition's hash.
	b, err := os.ReadFile(p.audit)
	if err != nil {
		t.Fatal(err)
	}
	var seen int
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var rec struct{ Kind, Tool, Rule, Note string }
		if json.Unmarshal(line, &rec) == nil && rec.Kind == "tool" && rec.Rule == "tool-new" && len(rec.Note) == 64 {
			seen++
		}
	}
	if seen < 10 {
		t.Fatalf("%d tool-new records, want one per tool of the filesystem server", seen)
	}
}

// TestMCPProxySIGTERM: a SIGTERM to the proxy stops it and its server.
func TestMCPProxySIGTERM(t *testing.T) {
	p := startProxy(t)
	p.initialize(t)
	if len(orphans(p.marker)) == 0 {
		t.Fatal("the server is not running (the orphan check would prove nothing)")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit code %d; stderr: %s", code, p.stderr)
	}
	if o := orphans(p.marker); len(o) > 0 {
		t.Fatalf("processes left behind: %v", o)
	}
}

func TestMCPProxyUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"mcp-proxy", "--", "node"}, &out, &errb); code != 2 {
		t.Fatalf("without --policy: exit %d, want 2", code)
	}
	if code := run([]string{"mcp-proxy", "--policy", "p.yaml"}, &out, &errb); code != 2 {
		t.Fatalf("without a command: exit %d, want 2", code)
	}
	if code := run([]string{"mcp-proxy", "--policy", "testdata/policy.yaml", "--approver", "nobody", "--", "true"}, &out, &errb); code != 1 {
		t.Fatalf("with an unknown approver: exit %d, want 1 (%s)", code, errb.String())
	}
}

func TestMCPPins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	var out, errb bytes.Buffer
	h := strings.Repeat("ab", 32)
	if code := run([]string{"mcp-pins", "accept", "--pins", path, "read_file", h}, &out, &errb); code != 0 {
		t.Fatalf("accept: %d %s", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"mcp-pins", "list", "--pins", path}, &out, &errb); code != 0 || out.String() != h+" read_file\n" {
		t.Fatalf("list: %d %q", code, out.String())
	}
	if code := run([]string{"mcp-pins", "accept", "--pins", path, "read_file", "short"}, &out, &errb); code != 1 {
		t.Fatalf("accept of a bad hash: exit %d, want 1", code)
	}
}

// TestMCPProxyListen: with --listen the proxy serves MCP over streamable
// HTTP in front of the real server, and a SIGTERM stops both.
func TestMCPProxyListen(t *testing.T) {
	if _, err := os.Stat(filesystemServer); err != nil {
		t.Skipf("the filesystem server is not installed (run integrations/mcpproxy/.ci.sh, as CI does): %v", err)
	}
	dir := t.TempDir()
	marker, _ := filepath.EvalSymlinks(dir)
	os.WriteFile(filepath.Join(marker, "a.txt"), []byte("alpha"), 0o600)
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, []byte(fmt.Sprintf("version: 1\ndefault: deny\nrules:\n  - name: reads\n    match: call.tool == \"read_text_file\" && call.args.path.startsWith(%q)\n    effect: allow\n", marker+"/")), 0o600)
	cmd := exec.Command(os.Args[0], "mcp-proxy", "--policy", pol, "--listen", "127.0.0.1:0", "--", "node", filesystemServer, marker)
	cmd.Env = append(os.Environ(), "AGENTGUARD_TEST_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	url := ""
	for url == "" && sc.Scan() {
		if _, after, ok := strings.Cut(sc.Text(), "MCP over HTTP at "); ok {
			url = after
		}
	}
	if url == "" {
		t.Fatal("the proxy did not say where it listens")
	}
	go io.Copy(io.Discard, stderr)
	postJSON := func(body string) map[string]any {
		t.Helper()
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	if m := postJSON(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"web","version":"1"}}}`); m["result"] == nil {
		t.Fatalf("initialize: %v", m)
	}
	postJSON(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	m := postJSON(fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_text_file","arguments":{"path":%q}}}`, filepath.Join(marker, "a.txt")))
	if !strings.Contains(fmt.Sprint(m["result"]), "alpha") {
		t.Fatalf("allowed read over HTTP: %v", m)
	}
	m = postJSON(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/tmp/x","content":"x"}}}`)
	if r, _ := m["result"].(map[string]any); r["isError"] != true {
		t.Fatalf("denied write over HTTP: %v", m)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(20 * time.Second): // a guard against a hung test
		t.Fatal("the proxy did not exit on SIGTERM")
	}
	if o := orphans(marker); len(o) > 0 {
		t.Fatalf("processes left behind: %v", o)
	}
}

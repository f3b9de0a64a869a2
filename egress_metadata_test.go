package agentguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// metadataServices are the cloud metadata and credential addresses egress
// refuses whatever AllowPrivate and wide AllowCIDRs prefixes say (see
// metadataAddrs for whose each is).
var metadataServices = []string{
	"169.254.169.254", "fd00:ec2::254", "fd20:ce::254", "169.254.170.2", "169.254.170.23", "fd00:ec2::23",
	"100.100.100.200", "168.63.129.16", "169.254.0.23", "192.0.0.192",
}

// TestMetadataStaysRefused: AllowPrivate opened 100.64.0.0/10, and with it
// Alibaba Cloud's metadata service 100.100.100.200; other clouds' metadata
// and credential endpoints (ECS, EKS Pod Identity, Google's IPv6 address,
// Azure's WireServer, Tencent, Oracle Classic) were not known as metadata
// at all, so a wide AllowCIDRs prefix, or no check (168.63.129.16 and
// 192.0.0.192 are not private), let them through. Every one stays
// refused, in every form it can be written in, unless named exactly.
// Issue 12, item 5.
func TestMetadataStaysRefused(t *testing.T) {
	cfg := func(opts ...EgressOption) *egressConfig { return egConfig(t, opts...) }
	wide := []*egressConfig{
		cfg(), cfg(AllowPrivate()), cfg(AllowPrivate(), AllowCIDRs("0.0.0.0/0", "::/0")),
		cfg(AllowCIDRs("100.64.0.0/10", "169.254.0.0/16", "168.63.0.0/16", "192.0.0.0/24", "fd00::/8")),
	}
	for _, s := range metadataServices {
		a := netip.MustParseAddr(s)
		forms := []netip.Addr{a}
		if a.Is4() {
			b := a.As4()
			forms = append(forms, netip.AddrFrom16(a.As16()), // ::ffff:a.b.c.d
				netip.AddrFrom16([16]byte{0: 0x00, 1: 0x64, 2: 0xff, 3: 0x9b, 12: b[0], 13: b[1], 14: b[2], 15: b[3]})) // 64:ff9b::/96
		}
		for _, f := range forms {
			for i, c := range wide {
				if got := c.refused(f); got != "metadata" {
					t.Errorf("config %d: refused(%s) = %q, want metadata", i, f, got)
				}
			}
		}
		bits := 32
		if a.Is6() {
			bits = 128
		}
		if got := cfg(AllowCIDRs(netip.PrefixFrom(a, bits).String())).refused(a); got != "" {
			t.Errorf("AllowCIDRs(%s/%d): refused(%s) = %q, want it let through", s, bits, s, got)
		}
		if got := cfg(AllowCIDRs(netip.PrefixFrom(a, bits-1).Masked().String())).refused(a); got != "metadata" {
			t.Errorf("AllowCIDRs of a /%d around %s: refused = %q, want metadata", bits-1, s, got)
		}
	}
	// The ranges around them open as before.
	for _, tc := range []struct{ addr, want string }{{"100.100.100.201", ""}, {"100.64.0.1", ""}, {"10.0.0.1", ""}, {"169.254.170.3", "link-local"}} {
		if got := cfg(AllowPrivate()).refused(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("AllowPrivate: refused(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// egConfig applies opts to a new egress configuration.
func egConfig(t *testing.T, opts ...EgressOption) *egressConfig {
	t.Helper()
	c := &egressConfig{}
	for _, o := range opts {
		o(c)
	}
	if c.err != nil {
		t.Fatal(c.err)
	}
	return c
}

// dialRecorder stands in for the network: it records what the transport
// would have dialled and dials nothing.
type dialRecorder struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialRecorder) dial(_ context.Context, _, address string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs = append(d.addrs, address)
	return nil, errors.New("dialRecorder: no network in tests")
}

// TestEgressMetadataThroughTransport: through the transport with
// AllowPrivate, a host resolving to a metadata address, or its literal, is
// denied before any dial; a private address is dialled (recorded, never
// sent: no packet leaves for a non-loopback address).
func TestEgressMetadataThroughTransport(t *testing.T) {
	g, _ := egGuard(t, "version: 1\ndefault: allow\n")
	names := map[string][]netip.Addr{"intranet.example.com": {netip.MustParseAddr("10.1.2.3")}}
	for i, s := range metadataServices {
		names["meta"+string(rune('a'+i))+".example.com"] = []netip.Addr{netip.MustParseAddr(s)}
	}
	resolve := func(_ context.Context, h string) ([]netip.Addr, error) {
		if a, ok := names[h]; ok {
			return a, nil
		}
		return nil, errors.New("unknown host")
	}
	rec := &dialRecorder{}
	tr := Transport(g, nil, EgressResolver(resolve), AllowPrivate())
	tr.(*egressTransport).dialFn = rec.dial
	c := &http.Client{Transport: tr}
	for i, s := range metadataServices {
		host := s
		if strings.Contains(s, ":") {
			host = "[" + s + "]"
		}
		for _, u := range []string{"http://" + host + "/latest/meta-data/", "http://meta" + string(rune('a'+i)) + ".example.com/"} {
			_, err := egGet(c, context.Background(), u)
			var d *DeniedError
			if !errors.As(err, &d) || d.Rule != RuleEgressAddress || !strings.Contains(d.Reason, "metadata address") {
				t.Errorf("GET %s with AllowPrivate = %v, want a metadata denial", u, err)
			}
		}
	}
	if len(rec.addrs) != 0 {
		t.Fatalf("metadata addresses were dialled: %v", rec.addrs)
	}
	if _, err := egGet(c, context.Background(), "http://intranet.example.com/"); err == nil || errors.As(err, new(*DeniedError)) {
		t.Errorf("GET of a private host with AllowPrivate = %v, want the recorder's dial error", err)
	}
	if len(rec.addrs) == 0 || rec.addrs[0] != "10.1.2.3:80" {
		t.Errorf("dialled %v, want 10.1.2.3:80", rec.addrs)
	}
}

// TestEgressPathSegments: segments that Tomcat, Spring or IIS read as ".."
// ("..;", "..\", their percent-encoded forms, once or twice) and any
// backslash are refused as ".." is. Issue 12, item 5.
func TestEgressPathSegments(t *testing.T) {
	g, _ := egGuard(t, "version: 1\ndefault: allow\n")
	rec := &dialRecorder{}
	tr := Transport(g, nil, EgressResolver(newEgResolver("api.example.com", "127.0.0.1").resolve), AllowCIDRs("127.0.0.1/32"))
	tr.(*egressTransport).dialFn = rec.dial
	for _, p := range []string{
		"/a/../admin", "/a/..;/admin", "/a/..;jsessionid=x/admin", "/a/%2e%2e%3b/admin", "/a/%2E%2E;/admin",
		"/a/..%5cadmin", "/a/..\\admin", "/a\\b", "/a/%5c", "/a/.;/b", "/a/.../b", "/a/.. /b", "/a/%252e%252e/admin",
		"/a/%252e%252e%253b/admin", "/a/..%252fadmin", "/..", "/.",
	} {
		req, err := http.NewRequest("GET", "http://api.example.com"+p, nil)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		_, err = tr.RoundTrip(req)
		var d *DeniedError
		if !errors.As(err, &d) || d.Code != CodeInvalidCall {
			t.Errorf("GET %s = %v, want an invalid-call denial", p, err)
		}
	}
	if len(rec.addrs) != 0 {
		t.Errorf("a refused path was dialled: %v", rec.addrs)
	}
	for _, p := range []string{"/a/b.c/d", "/.well-known/x", "/v1.2/items", "/a/b..c", "/a/%2e%2efoo", "/100%25", "/a;b/c"} {
		args, err := egressArgs(&http.Request{Method: "GET", URL: mustURL(t, "http://api.example.com"+p)})
		if err != nil {
			t.Errorf("egressArgs(%s) = %v, want accepted (path %v)", p, err, args["path"])
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

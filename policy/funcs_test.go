package policy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"read_*", "read_file", true},
		{"read_*", "read_", true},
		{"read_*", "write_file", false},
		{"*", "", true},
		{"", "", true},
		{"", "x", false},
		{"db.*", "db.delete", true},
		{"db.*", "db/delete", false},
		{"mcp/*", "mcp/github", true},
		{"mcp/*", "mcp/github/issues", false},
		{"mcp/**", "mcp/github/issues", true},
		{"**/*.go", "a/b/c.go", true},
		{"**/*.go", "c.go", false},
		{"**.go", "c.go", true},
		{"a?c", "abc", true},
		{"a?c", "a/c", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"*x", strings.Repeat("a", 10000), false},
		{strings.Repeat("*a", 50), strings.Repeat("a", 10000) + "b", false},
	} {
		if got := Glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Glob(%q, %.20q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestURLHost(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"https://API.Example.com:8443/v1?q=1", "api.example.com", false},
		{"https://example.com./", "example.com", false},
		{"http://[::1]:80/", "::1", false},
		{"http://user:pw@host.io/x", "host.io", false},
		{"example.com/path", "", true},
		{"", "", true},
		{"http://%zz", "", true},
		// Read as the HTTP client dials: escapes decoded, IDNA lookup
		// mapping, IP addresses canonical (issue 11, item 4).
		{"http://EVIL%EF%BC%8ECOM/", "evil.com", false},             // fullwidth dot
		{"http://evil\uff0ecom/", "evil.com", false},                // the same, unescaped
		{"http://ev%69l.com/", "", true},                            // an escaped ASCII letter: url.Parse refuses it, as the client does
		{"http://\uff25\uff36\uff29\uff2c.com/", "evil.com", false}, // fullwidth letters
		{"http://evil\u3002com./", "evil.com", false},               // ideographic full stop
		{"http://B\u00fccher.DE/", "xn--bcher-kva.de", false},
		{"http://[0:0::1]/", "::1", false},
		{"http://[::FFFF:10.0.0.1]/", "::ffff:10.0.0.1", false},
		{"http://a\u200db.com/", "", true},     // a joiner the lookup profile refuses
		{"http://xn--a.\u00e9.com/", "", true}, // bad punycode beside a non-ASCII label
	} {
		got, err := URLHost(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("URLHost(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestEmailDomain(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"bob@Acme.COM", "acme.com", false},
		{"Bob <bob@other.com>", "other.com", false},
		{"Bob <bob@other.com.>", "", true},
		{`"Re: Bob (work)" <bob@acme.com>`, "acme.com", false},
		{"<bob@acme.com>", "acme.com", false},
		{`"Bob, Jr." <bob@acme.com>`, "acme.com", false},
		{"bob@B\u00fccher.de", "xn--bcher-kva.de", false}, // IDN: the lookup form
		{"bob@acme\uff0ecom", "acme.com", false},          // a fullwidth dot, as the network reads it
		{"nobody", "", true},
		{"@acme.com", "", true},
		{"bob@", "", true},
		{"bob@acme.com, eve@evil.com", "", true},
		// Anything but exactly one address (issue 11, item 4).
		{"a@b@evil.com", "", true},
		{"eve@evil.com <bob@acme.com>", "", true},
		{"eve@evil.com\x00@acme.com", "", true},
		{"eve@evil.com\r\n@acme.com", "", true},
		{"friends: eve@evil.com, bob@acme.com;", "", true},
		{"friends: bob@acme.com;", "", true},
		{"bob@acme.com (eve@evil.com)", "", true},
		{"bob@(evil.com)acme.com", "", true},
		{"eve(@acme.com)@evil.com", "", true},
		{`"eve@evil.com"@acme.com`, "", true},
		{"bob@[10.0.0.1]", "", true},
		{"bob@acme.com eve@evil.com", "", true},
		{"bob@a\u200db.com", "", true},
	} {
		got, err := EmailDomain(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("EmailDomain(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestInCIDR(t *testing.T) {
	for _, tc := range []struct {
		ip, cidr string
		want     bool
		err      bool
	}{
		{"10.1.2.3", "10.0.0.0/8", true, false},
		{"11.1.2.3", "10.0.0.0/8", false, false},
		{"::ffff:10.1.2.3", "10.0.0.0/8", true, false},
		{"fd00::1", "fd00::/8", true, false},
		{"10.1.2.3", "fd00::/8", false, false},
		{"10.1.2", "10.0.0.0/8", false, true},
		{"10.1.2.3", "10.0.0.0", false, true},
	} {
		got, err := InCIDR(tc.ip, tc.cidr)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("InCIDR(%q, %q) = %v, %v; want %v, error %v", tc.ip, tc.cidr, got, err, tc.want, tc.err)
		}
	}
}

func TestHostMatch(t *testing.T) {
	for _, tc := range []struct {
		host, pattern string
		want          bool
	}{
		{"api.example.com", "*.example.com", true},
		{"a.b.example.com", "*.EXAMPLE.com", true},
		{"example.com", "*.example.com", false},
		{"evilexample.com", "*.example.com", false},
		{"Example.COM.", "example.com", true},
		{"example.com", "example.com.", true},
		{"api.example.com", "example.com", false},
		{"", "", false},
		{"x.", "*.", false},
		{"x.", "*..", false},
		// Both sides read as the network reads them.
		{"evil\uff0ecom", "evil.com", true},
		{"api.evil\uff0ecom", "*.evil.com", true},
		{"api.evil.com", "*.EVIL\uff0eCOM", true},
		{"b\u00fccher.de", "xn--bcher-kva.de", true},
		{"0:0::1", "::1", true},
	} {
		if got, err := HostMatch(tc.host, tc.pattern); got != tc.want || err != nil {
			t.Errorf("HostMatch(%q, %q) = %v, %v; want %v", tc.host, tc.pattern, got, err, tc.want)
		}
	}
	if _, err := HostMatch("a\u200db.com", "*.b.com"); err == nil {
		t.Error("HostMatch with an unmappable host: no error")
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in     string
		events float64
		per    time.Duration
		err    bool
	}{
		{"10/minute", 10, time.Minute, false},
		{"5/s", 5, time.Second, false},
		{"100/hour", 100, time.Hour, false},
		{"2/day", 2, 24 * time.Hour, false},
		{"3/minutes", 3, time.Minute, false},
		{"1/500ms", 1, 500 * time.Millisecond, false},
		{" 0.5 / sec ", 0.5, time.Second, false},
		{"10", 0, 0, true},
		{"1/ms", 0, 0, true},
		{"1/", 0, 0, true},
		{"4/hr", 4, time.Hour, false},
		{"7/days", 7, 24 * time.Hour, false},
		{"0/s", 0, 0, true},
		{"-1/s", 0, 0, true},
		{"x/s", 0, 0, true},
		{"1/fortnight", 0, 0, true},
		{"1/-5s", 0, 0, true},
		{"NaN/s", 0, 0, true},
		{"Inf/s", 0, 0, true},
	} {
		events, per, err := ParseRate(tc.in)
		if events != tc.events || per != tc.per || (err != nil) != tc.err {
			t.Errorf("ParseRate(%q) = %v, %v, %v; want %v, %v, error %v", tc.in, events, per, err, tc.events, tc.per, tc.err)
		}
	}
}

func TestParseWindow(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind string
		err  bool
	}{
		{"", "total", false},
		{"total", "total", false},
		{"day", "day", false},
		{"day:Europe/Paris", "day", false},
		{"hour", "hour", false},
		{"15m", "every", false},
		{"day:", "", true},
		{"day:Nowhere/Land", "", true},
		{"day:../../etc/passwd", "", true},
		{"-1h", "", true},
		{"week", "", true},
	} {
		w, err := ParseWindow(tc.in)
		if w.Kind != tc.kind || (err != nil) != tc.err {
			t.Errorf("ParseWindow(%q) = %+v, %v; want kind %q, error %v", tc.in, w, err, tc.kind, tc.err)
		}
	}
	if w, _ := ParseWindow("day:Europe/Paris"); w.Location == nil || w.Location.String() != "Europe/Paris" {
		t.Errorf("ParseWindow(day:Europe/Paris).Location = %v", w.Location)
	}
}

func TestCheckAmount(t *testing.T) {
	for _, tc := range []struct {
		in    string
		value float64
		unit  string
		err   bool
	}{
		{"25.00 USD", 25, "USD", false},
		{"1.5M tokens", 1.5e6, "tokens", false},
		{"2K credits", 2000, "credits", false},
		{"3G bytes", 3e9, "bytes", false},
		{"0 USD", 0, "USD", false},
		{"25", 0, "", true},
		{"USD 25", 0, "", true},
		{"-5 USD", 0, "", true},
		{"1e3 USD", 0, "", true},
		{".5 USD", 0.5, "USD", false},
		{"1.0000001 USD", 0, "", true},            // finer than a micro-unit: budget.ParseAmount refuses it
		{"99999999999999999999 USD", 0, "", true}, // above the largest int64 of micro-units
		{"9223372036854.775807 USD", 9223372036854.775807, "USD", false},
		{"5. USD", 0, "", true},
		{"5 $", 0, "", true},
		{"5 US D", 0, "", true},
	} {
		v, u, err := CheckAmount(tc.in)
		if v != tc.value || u != tc.unit || (err != nil) != tc.err {
			t.Errorf("CheckAmount(%q) = %v, %q, %v; want %v, %q, error %v", tc.in, v, u, err, tc.value, tc.unit, tc.err)
		}
	}
}

// TestHostsReadAsTheNetworkReadsThem: a deny rule on a host holds for
// every spelling of the URL that Go's HTTP client dials to that host, and
// a host the lookup profile cannot map is denied by an evaluation error
// (issue 11, item 4).
func TestHostsReadAsTheNetworkReadsThem(t *testing.T) {
	p := mustParse(t, `
version: 1
default: deny
rules:
  - name: no-evil
    match: hostMatch(urlHost(call.args.url), "evil.com") || emailDomain(call.args.to) == "evil.com"
    effect: deny
  - name: fetch
    match: call.tool == "fetch"
    effect: allow
`)
	for _, tc := range []struct {
		url, to string
		want    Effect
	}{
		{"https://acme.com/", "bob@acme.com", Allow},
		{"http://EVIL%EF%BC%8ECOM/", "bob@acme.com", Deny},
		{"http://evil\u3002com/", "bob@acme.com", Deny},
		{"https://acme.com/", "eve@evil.com <bob@acme.com>", Deny},
		{"https://acme.com/", "eve@evil.com\x00@acme.com", Deny},
		{"https://acme.com/", "bob@EVIL\uff0eCOM", Deny},
		{"http://a\u200db.com/", "bob@acme.com", Deny},
	} {
		d := decide(p, "fetch", map[string]any{"url": tc.url, "to": tc.to})
		if d.Effect != tc.want || tc.want == Deny && d.Rule != "no-evil" {
			t.Errorf("url %q, to %q: %v by %q (%v), want %v", tc.url, tc.to, d.Effect, d.Rule, d.Err, tc.want)
		}
	}
}

// dialedHost returns the host Go's HTTP client dials for rawURL, read
// from the address its transport hands the dialer (no network is used),
// and false when the client refuses the URL before dialing.
func dialedHost(rawURL string) (string, bool) {
	var addr string
	errDial := errors.New("no network in tests")
	tr := &http.Transport{
		DialContext: func(_ context.Context, _, a string) (net.Conn, error) {
			addr = a
			return nil, errDial
		},
		Proxy: nil,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return "", false
	}
	if _, err := tr.RoundTrip(req); !errors.Is(err, errDial) {
		return "", false
	}
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false
	}
	return h, true
}

// sameHost reports whether the client's dial host and URLHost's agree, up
// to what DNS ignores (case, a trailing dot) and IP address spelling.
func sameHost(dialed, got string) bool {
	if a, err := netip.ParseAddr(dialed); err == nil {
		return a.String() == got
	}
	return strings.TrimSuffix(strings.ToLower(dialed), ".") == got
}

func TestURLHostIsTheDialedHost(t *testing.T) {
	for _, u := range []string{
		"http://EVIL%EF%BC%8ECOM/", "http://evil\u3002com./", "http://B\u00fccher.DE:8080/",
		"http://\uff25\uff36\uff29\uff2c.com/", "http://API.Example.com.:443/x", "http://[0:0::1]/", "http://10.0.0.1/",
		"http://user:pw@host.io/", "http://xn--bcher-kva.de/",
	} {
		dialed, ok := dialedHost(u)
		got, err := URLHost(u)
		if !ok || err != nil || !sameHost(dialed, got) {
			t.Errorf("URLHost(%q) = %q, %v; the HTTP client dials %q (%v)", u, got, err, dialed, ok)
		}
	}
}

// FuzzURLHostIsTheDialedHost: whenever URLHost reads a host, it is the
// host Go's HTTP client dials for the same URL.
func FuzzURLHostIsTheDialedHost(f *testing.F) {
	for _, h := range []string{"evil.com", "EVIL%EF%BC%8ECOM", "evil\u3002com.", "B\u00fccher.de", "[::1]", "a\u200db.com", "xn--a.\u00e9", "\u00df.de", "\u0130.com"} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, host string) {
		u := "http://" + host + "/"
		got, err := URLHost(u)
		if err != nil {
			return
		}
		dialed, ok := dialedHost(u)
		if !ok {
			return // the client refuses what the policy could read: nothing is dialed
		}
		if !sameHost(dialed, got) {
			t.Fatalf("URLHost(%q) = %q, but the HTTP client dials %q", u, got, dialed)
		}
	})
}

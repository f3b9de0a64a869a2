package policy

import (
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
		{"Bob <bob@other.com.>", "other.com", false},
		{"a@b@evil.com", "evil.com", false},
		{"nobody", "", true},
		{"@acme.com", "", true},
		{"bob@", "", true},
		{"bob@acme.com, eve@evil.com", "", true},
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
	} {
		if got := HostMatch(tc.host, tc.pattern); got != tc.want {
			t.Errorf("HostMatch(%q, %q) = %v, want %v", tc.host, tc.pattern, got, tc.want)
		}
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
		{".5 USD", 0, "", true},
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

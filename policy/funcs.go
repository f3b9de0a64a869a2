package policy

import (
	"errors"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"golang.org/x/net/idna"
)

// helperFunctions declares the helper functions rules may call. Each
// returns a CEL error (and so denies the call) on input it cannot read.
func helperFunctions() []cel.EnvOption {
	return []cel.EnvOption{
		binaryString("glob", cel.BoolType, func(p, s string) (ref.Val, error) {
			return types.Bool(Glob(p, s)), nil
		}),
		unaryString("urlHost", cel.StringType, func(s string) (ref.Val, error) {
			h, err := URLHost(s)
			return types.String(h), err
		}),
		unaryString("emailDomain", cel.StringType, func(s string) (ref.Val, error) {
			d, err := EmailDomain(s)
			return types.String(d), err
		}),
		binaryString("inCIDR", cel.BoolType, func(ip, cidr string) (ref.Val, error) {
			in, err := InCIDR(ip, cidr)
			return types.Bool(in), err
		}),
		unaryString("isIP", cel.BoolType, func(s string) (ref.Val, error) {
			_, err := netip.ParseAddr(s)
			return types.Bool(err == nil), nil
		}),
		binaryString("hostMatch", cel.BoolType, func(h, p string) (ref.Val, error) {
			ok, err := HostMatch(h, p)
			return types.Bool(ok), err
		}),
	}
}

// unaryString declares name(string) as a CEL function of result type out.
// A non-string argument or an error from f is a CEL error.
func unaryString(name string, out *cel.Type, f func(string) (ref.Val, error)) cel.EnvOption {
	return cel.Function(name,
		cel.Overload(name+"_string", []*cel.Type{cel.StringType}, out,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				s, ok := v.(types.String)
				if !ok {
					return types.NewErr("%s: argument must be a string", name)
				}
				return celResult(f(string(s)))
			})))
}

// binaryString declares name(string, string) like unaryString.
func binaryString(name string, out *cel.Type, f func(a, b string) (ref.Val, error)) cel.EnvOption {
	return cel.Function(name,
		cel.Overload(name+"_string_string", []*cel.Type{cel.StringType, cel.StringType}, out,
			cel.BinaryBinding(func(a, b ref.Val) ref.Val {
				as, ok1 := a.(types.String)
				bs, ok2 := b.(types.String)
				if !ok1 || !ok2 {
					return types.NewErr("%s: arguments must be strings", name)
				}
				return celResult(f(string(as), string(bs)))
			})))
}

func celResult(v ref.Val, err error) ref.Val {
	if err != nil {
		return types.WrapErr(err)
	}
	return v
}

// Glob reports whether s matches pattern, where * matches any run of
// characters other than '/', ** matches any run of characters including
// '/', ? matches one character other than '/', and every other character
// matches itself. Tool globs in limits, budgets, costs and breakers use
// it, and rules call it as glob(pattern, s).
func Glob(pattern, s string) bool {
	// Tokens: a byte, '?' (any but '/'), '*' (a run without '/') or '**'
	// (any run). The match is a simulation of the pattern's automaton over
	// s: time O(len(pattern)·len(s)), memory O(len(pattern)), never
	// exponential.
	type token struct {
		kind byte // 'c', '?', '*', 'D' (for **)
		c    byte
	}
	toks := make([]token, 0, len(pattern))
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				toks = append(toks, token{kind: 'D'})
				for i+1 < len(pattern) && pattern[i+1] == '*' {
					i++
				}
			} else {
				toks = append(toks, token{kind: '*'})
			}
		case '?':
			toks = append(toks, token{kind: '?'})
		default:
			toks = append(toks, token{kind: 'c', c: c})
		}
	}
	cur := make([]bool, len(toks)+1)
	next := make([]bool, len(toks)+1)
	// closure: a star can match the empty run.
	closure := func(set []bool) {
		for i := 0; i < len(toks); i++ {
			if set[i] && (toks[i].kind == '*' || toks[i].kind == 'D') {
				set[i+1] = true
			}
		}
	}
	cur[0] = true
	closure(cur)
	for j := 0; j < len(s); j++ {
		c := s[j]
		any := false
		clear(next)
		for i, t := range toks {
			if !cur[i] {
				continue
			}
			switch t.kind {
			case 'c':
				if c == t.c {
					next[i+1], any = true, true
				}
			case '?':
				if c != '/' {
					next[i+1], any = true, true
				}
			case '*':
				if c != '/' {
					next[i], any = true, true
				}
			case 'D':
				next[i], any = true, true
			}
		}
		if !any {
			return false
		}
		closure(next)
		cur, next = next, cur
	}
	return cur[len(toks)]
}

// URLHost returns the host of a URL the way Go's HTTP client reads it to
// dial: URL escapes decoded, an IP address in its canonical form, an ASCII
// name as it is, any other name mapped by IDNA's lookup profile
// (golang.org/x/net/idna.Lookup, as net/http and x/net/http/httpguts map
// it), then lower-cased and without port, brackets or trailing dot.
// URLHost("https://API.Example.com.:443/x") is "api.example.com", and
// URLHost("http://EVIL%EF%BC%8ECOM/") (a fullwidth dot) is "evil.com", the
// host the client dials. It fails on a string that does not parse as a
// URL with a host (a bare "example.com/x" has none: write the scheme), and
// on a host the lookup profile cannot map.
func URLHost(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("urlHost: not a URL")
	}
	if u.Hostname() == "" {
		return "", errors.New("urlHost: URL has no host")
	}
	return lookupHost("urlHost", u.Hostname())
}

// lookupHost reads host name h as the network does (see URLHost). who
// names the helper in errors.
func lookupHost(who, h string) (string, error) {
	if a, err := netip.ParseAddr(strings.TrimSuffix(h, ".")); err == nil {
		return a.String(), nil
	}
	if !isASCII(h) {
		m, err := idna.Lookup.ToASCII(h)
		if err != nil {
			return "", errors.New(who + ": the host cannot be mapped to an ASCII name (IDNA lookup)")
		}
		h = m
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" {
		return "", errors.New(who + ": empty host")
	}
	return h, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// EmailDomain returns the domain of exactly one e-mail address, parsed
// strictly by net/mail (RFC 5322): EmailDomain("Bob <bob@Other.COM>") is
// "other.com". A display name is allowed and ignored; the domain is the
// address's own, mapped as URLHost maps hosts (IDNA lookup profile, so an
// internationalized domain is returned in its ASCII "xn--" form), lower-
// cased and without trailing dot. It fails on anything but one address:
// no '@' or no domain, several addresses or a group, text after the
// address ("eve@evil.com <bob@acme.com>"), control characters
// ("eve@evil.com\x00@acme.com"), comments (which can hide a domain), a
// quoted local part holding '@', and a domain literal ("[10.0.0.1]").
func EmailDomain(addr string) (string, error) {
	fail := errors.New("emailDomain: not exactly one e-mail address")
	quoted := false
	for i := 0; i < len(addr); i++ {
		switch c := addr[i]; {
		case c < 0x20 || c == 0x7f:
			return "", fail
		case c == '\\' && quoted:
			i++ // a quoted pair
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(' || c == ')' || c == ':' || c == ';':
			// A comment, or a group ("friends: bob@acme.com;").
			return "", fail
		}
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || strings.Count(a.Address, "@") != 1 {
		return "", fail
	}
	i := strings.LastIndexByte(a.Address, '@')
	d := a.Address[i+1:]
	if i < 1 || d == "" || strings.HasPrefix(d, "[") {
		return "", fail
	}
	return lookupHost("emailDomain", d)
}

// InCIDR reports whether ip (IPv4 or IPv6) is inside cidr ("10.0.0.0/8").
// An IPv4-mapped IPv6 address counts as its IPv4 address. It fails when
// either does not parse.
func InCIDR(ip, cidr string) (bool, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false, errors.New("inCIDR: not an IP address")
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false, errors.New("inCIDR: not a CIDR prefix")
	}
	return p.Contains(a.Unmap()) || p.Contains(a), nil
}

// HostMatch reports whether host matches pattern, both read as URLHost
// reads a host (IDNA lookup mapping, case and trailing dots ignored): a
// host written with a fullwidth dot matches the pattern of the host it
// dials. A pattern "*.example.com" matches every subdomain of example.com
// (not example.com itself); any other pattern matches only the same host.
// An empty host or pattern matches nothing. It fails when either cannot
// be mapped.
func HostMatch(host, pattern string) (bool, error) {
	if host == "" || pattern == "" {
		return false, nil
	}
	h, err := lookupHost("hostMatch", host)
	if err != nil {
		return false, err
	}
	wild := false
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		wild, pattern = true, rest
		if rest == "" || rest == "." {
			return false, nil
		}
	}
	p, err := lookupHost("hostMatch", pattern)
	if err != nil {
		return false, err
	}
	if wild {
		return strings.HasSuffix(h, "."+p), nil
	}
	return h == p, nil
}

package policy

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
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
			return types.Bool(HostMatch(h, p)), nil
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

// URLHost returns the host of a URL, lower-cased, without port, brackets
// or trailing dot: URLHost("https://API.Example.com.:443/x") is
// "api.example.com". It fails on a string that does not parse as a URL
// with a host (a bare "example.com/x" has none: write the scheme).
func URLHost(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("urlHost: not a URL")
	}
	h := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if h == "" {
		return "", errors.New("urlHost: URL has no host")
	}
	return h, nil
}

// EmailDomain returns the domain of an e-mail address, lower-cased and
// without trailing dot: EmailDomain("Bob <bob@Other.COM>") is "other.com".
// It fails when the address has no '@' or no domain, or holds several
// addresses.
func EmailDomain(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if i := strings.LastIndexByte(addr, '<'); i >= 0 && strings.HasSuffix(addr, ">") {
		addr = addr[i+1 : len(addr)-1]
	}
	i := strings.LastIndexByte(addr, '@')
	if i < 1 || strings.ContainsAny(addr, " \t\r\n<>,;") {
		return "", errors.New("emailDomain: not an e-mail address")
	}
	d := strings.TrimSuffix(strings.ToLower(addr[i+1:]), ".")
	if d == "" || strings.ContainsAny(d, " \t\r\n<>@,;") {
		return "", errors.New("emailDomain: not an e-mail address")
	}
	return d, nil
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

// HostMatch reports whether host matches pattern, ignoring case and
// trailing dots. A pattern "*.example.com" matches every subdomain of
// example.com (not example.com itself); any other pattern matches only
// the same host.
func HostMatch(host, pattern string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	pattern = strings.TrimSuffix(strings.ToLower(pattern), ".")
	if host == "" || pattern == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		return rest != "" && strings.HasSuffix(host, "."+rest)
	}
	return host == pattern
}

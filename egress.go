package agentguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hardstop-labs/agentguard/policy"
)

// StageEgress is the stage of a denial by the egress transport's address
// check: the policy allowed the request's host, but the host resolved to
// an address egress refuses (see Transport).
const StageEgress Stage = "egress"

// RuleEgressAddress is the Rule of a denial by the egress address check.
const RuleEgressAddress = "egress-address"

// EgressTool is the default name of the pseudo-tool whose calls are the
// requests of a guarded Transport.
const EgressTool = "http"

// EgressOption configures Transport and HTTPClient.
type EgressOption func(*egressConfig)

type egressConfig struct {
	tool         string
	resolve      func(ctx context.Context, host string) ([]netip.Addr, error)
	allow        []netip.Prefix
	allowPrivate bool
	toolOpts     []ToolOption
	err          error
}

// EgressName sets the name of the pseudo-tool whose calls the requests
// are, for the policy (call.tool), limits, the kill switch and the audit
// log. The default is EgressTool ("http").
func EgressName(name string) EgressOption {
	return func(c *egressConfig) {
		if err := validTool(name); err != nil {
			c.err = errors.Join(c.err, fmt.Errorf("agentguard: EgressName: %w", err))
			return
		}
		c.tool = name
	}
}

// EgressResolver sets how host names are resolved; the default is
// net.DefaultResolver. Tests use it to map names to a local server
// without DNS. r gets the host lower-cased, without a trailing dot, and
// never an IP literal; it is called only for hosts the policy admitted.
// An error, an empty answer, an invalid address or a panic fails the
// request. r must be safe for concurrent use.
func EgressResolver(r func(ctx context.Context, host string) ([]netip.Addr, error)) EgressOption {
	return func(c *egressConfig) {
		if r == nil {
			c.err = errors.Join(c.err, errors.New("agentguard: EgressResolver: nil resolver"))
			return
		}
		c.resolve = r
	}
}

// AllowCIDRs lets requests reach addresses inside the given prefixes
// ("10.1.0.0/16", "::1/128") that the address check refuses otherwise. A
// cloud metadata address is let through only by a prefix that is exactly
// it ("169.254.169.254/32"), never by a wider one. A prefix that does not
// parse makes every request a denial with ErrInvalidCall.
func AllowCIDRs(prefixes ...string) EgressOption {
	return func(c *egressConfig) {
		for _, s := range prefixes {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				c.err = errors.Join(c.err, fmt.Errorf("agentguard: AllowCIDRs: %q is not a CIDR prefix", s))
				continue
			}
			c.allow = append(c.allow, p.Masked())
		}
	}
}

// AllowPrivate lets requests reach private addresses: RFC 1918
// (10/8, 172.16/12, 192.168/16), shared (100.64/10) and IPv6 unique local
// (fc00::/7) addresses. Loopback, link-local, the other classes and every
// cloud metadata address stay refused, including those inside these
// ranges (Alibaba Cloud's 100.100.100.200; see Transport for the list).
func AllowPrivate() EgressOption {
	return func(c *egressConfig) { c.allowPrivate = true }
}

// EgressToolOptions applies opts (Labels, Estimate, …) to the pseudo-tool
// of every request, as Wrap applies them to a tool.
func EgressToolOptions(opts ...ToolOption) EgressOption {
	return func(c *egressConfig) { c.toolOpts = append(c.toolOpts, opts...) }
}

// Transport returns an http.RoundTripper that makes every request a
// guarded call of a pseudo-tool named "http" (see EgressName), with the
// same policy, rate limits, budget, approvals, audit and kill switch as
// any tool. Put it under every tool's HTTP client and a default-deny
// policy becomes an egress allowlist.
//
// # What the policy sees
//
// The call's arguments (call.args) describe the request, never the
// secrets in it:
//
//	method          "GET"
//	scheme          "https"
//	host            "api.example.com" (lower case, no trailing dot; an IPv6 address without brackets)
//	port            443 (from the URL, or the scheme's default)
//	path            "/v1/items" (decoded)
//	query           ["limit", "q"] (the keys, sorted; never the values)
//	headers         ["Authorization", "Content-Type"] (canonical names, sorted; never the values)
//	content_length  0 (-1 when unknown)
//	caller          {"tool": "search", "call": "…", "agent": "…", "requester": "…", "tenant": "…", "session": "…"}
//
// A rule that lets the search tool reach one API over HTTPS:
//
//	call.tool == "http" && call.args.caller.tool == "search" &&
//	  call.args.scheme == "https" && hostMatch(call.args.host, "*.example.com")
//
// caller is the guarded call whose context the request carries
// (CallFrom), with empty strings when there is none; the request is then
// made for that call's principal. The user and password of a URL are
// never shown to the policy, the audit log or in the errors Transport
// returns. A request that cannot be described safely is denied with
// ErrInvalidCall: a scheme other than http and https, a host that is not
// ASCII (write IDNs in punycode), a bad port, a path with a backslash or
// a segment that a server may read as "." or ".." (".", "..", "..;x" as
// Tomcat and Spring read it, "...", ". .", and the percent-encoded forms
// of these, encoded once or twice), or a Host header naming another host
// than the URL.
//
// # Addresses
//
// Transport dials every connection itself: it resolves the host once
// (EgressResolver), checks every address, and connects to exactly the
// address it checked, so a name cannot be re-bound between the check and
// the connection. It refuses, unless AllowCIDRs or AllowPrivate let them
// through, loopback, private, link-local, unspecified, multicast and
// reserved addresses, and IP literals in the URL are checked the same way.
// Cloud metadata and credential services stay refused under AllowPrivate
// and any AllowCIDRs prefix but one that is exactly the address (/32 or
// /128): 169.254.169.254 (AWS, Google Cloud, Azure, Oracle, DigitalOcean,
// IBM, OpenStack…), fd00:ec2::254 (AWS IPv6), fd20:ce::254 (Google Cloud
// IPv6), 169.254.170.2 (AWS ECS), 169.254.170.23 and fd00:ec2::23 (AWS EKS
// Pod Identity), 100.100.100.200 (Alibaba Cloud), 168.63.129.16 (Azure
// WireServer), 169.254.0.23 (Tencent Cloud) and 192.0.0.192 (Oracle Cloud
// Classic). IPv4-mapped and NAT64
// addresses are checked as the IPv4 address they carry. A request whose
// host resolves to any refused address is denied with ErrPolicyDenied,
// Stage StageEgress and Rule RuleEgressAddress, and the denial is
// recorded as a decision of the call, after the decision that admitted
// its host. Name resolution happens only after the policy admitted the
// host, so a denied host is never looked up.
//
// # Errors, redirects and the kill switch
//
// A denied request returns the guard's *DeniedError: errors.As finds it
// through the *url.Error of an http.Client. Each redirect is a request
// of its own and is checked as one. The request runs with the call's
// context, which the kill switch cancels: a trip returns ErrHalted while
// the request is in flight, and reads of its response body fail from then
// on. The call ends (Ticket.Done) when the response body is read to its
// end or closed, when the round trip fails, or at once for a response
// without a body (HEAD, 204, 304); close every body.
//
// base must be nil (a clone of http.DefaultTransport) or an
// *http.Transport; it is cloned, the clone's Proxy is cleared and its
// DialContext replaced (requests go directly to the checked address).
// Any other base, or one with DialTLS or DialTLSContext set, cannot be
// checked: every request is then denied with ErrInvalidCall. To combine
// with another RoundTripper, wrap the one Transport returns. Bad options
// and a nil Guard deny every request the same way.
//
// The RoundTripper is safe for concurrent use.
func Transport(g *Guard, base http.RoundTripper, opts ...EgressOption) http.RoundTripper {
	t := &egressTransport{g: g, cfg: egressConfig{tool: EgressTool}}
	for i, o := range opts {
		if o == nil {
			t.cfg.err = errors.Join(t.cfg.err, fmt.Errorf("agentguard: Transport: option %d is nil", i))
			continue
		}
		o(&t.cfg)
	}
	if t.cfg.resolve == nil {
		t.cfg.resolve = systemResolve
	}
	var ht *http.Transport
	switch b := base.(type) {
	case nil:
		ht = defaultTransport()
	case *http.Transport:
		if b == nil {
			t.cfg.err = errors.Join(t.cfg.err, errors.New("agentguard: Transport: nil *http.Transport base"))
			ht = &http.Transport{}
			break
		}
		//lint:ignore SA1019 a base that sets the deprecated DialTLS would dial around the check
		if b.DialTLS != nil || b.DialTLSContext != nil {
			t.cfg.err = errors.Join(t.cfg.err, errors.New("agentguard: Transport: the base transport dials TLS itself (DialTLS or DialTLSContext), so its addresses cannot be checked"))
		}
		ht = b.Clone()
	default:
		t.cfg.err = errors.Join(t.cfg.err, fmt.Errorf("agentguard: Transport: base of type %T is not an *http.Transport, so its addresses cannot be checked; wrap the guarded transport instead", base))
		ht = &http.Transport{}
	}
	ht.Proxy = nil
	ht.DialContext = t.dial // used instead of Dial when both are set
	t.base = ht
	return t
}

// defaultTransport returns a clone of http.DefaultTransport, or a
// transport with the same settings when a program replaced it.
func defaultTransport() *http.Transport {
	if d, ok := http.DefaultTransport.(*http.Transport); ok && d != nil {
		return d.Clone()
	}
	return &http.Transport{
		ForceAttemptHTTP2: true, MaxIdleConns: 100, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second, ExpectContinueTimeout: time.Second,
	}
}

// HTTPClient returns an *http.Client whose Transport is
// Transport(g, nil, opts...).
func HTTPClient(g *Guard, opts ...EgressOption) *http.Client {
	return &http.Client{Transport: Transport(g, nil, opts...)}
}

type egressTransport struct {
	g      *Guard
	cfg    egressConfig
	dialFn func(ctx context.Context, network, address string) (net.Conn, error) // nil: a net.Dialer; tests record instead
	base   *http.Transport
}

// CloseIdleConnections closes the idle connections of the transport, as
// http.Client.CloseIdleConnections expects.
func (t *egressTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// RoundTrip runs req as a guarded call: see Transport.
func (t *egressTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	ctx := req.Context()
	args, argErr := egressArgs(req)
	if c, ok := CallFrom(ctx); ok {
		ctx = WithPrincipal(ctx, c.Principal)
		if args != nil {
			args["caller"] = map[string]any{
				"tool": c.Tool, "call": c.ID, "agent": c.Principal.Agent, "requester": c.Principal.Requester,
				"tenant": c.Principal.Tenant, "session": c.Principal.Session,
			}
		}
	}
	opts := t.cfg.toolOpts
	if argErr != nil {
		// The request's own fault, said as a fixed sentence; what exactly
		// is wrong is the denial's cause, in the audit record.
		argErr = errors.Join(&DeniedError{Code: CodeInvalidCall,
			Reason: "the HTTP request cannot be checked safely: its URL or Host header is malformed, ambiguous or not http(s)",
			Needs:  "a corrected request"}, argErr)
	}
	if err := errors.Join(t.cfg.err, argErr); err != nil {
		opts = append(slices.Clip(opts), func(c *toolConfig) { c.err = errors.Join(c.err, err) })
	}
	tk, err := t.g.Check(ctx, t.cfg.tool, args, opts...)
	if err != nil {
		closeBody()
		return nil, err
	}
	resp, err := t.base.RoundTrip(req.WithContext(tk.Context()))
	if err != nil {
		var d *DeniedError
		if errors.As(err, &d) && d.Stage == StageEgress {
			err = t.denyAddress(ctx, tk, d)
		}
		return nil, tk.Done(nil, err)
	}
	resp.Request = req
	if resp.Body == http.NoBody { // HEAD, 204, 304, an empty body: nothing to wait for
		if err := tk.Done(resp.StatusCode, nil); err != nil {
			return nil, err
		}
		return resp, nil
	}
	body := &egressBody{rc: resp.Body, tk: tk, status: resp.StatusCode}
	if w, ok := resp.Body.(io.Writer); ok {
		// A protocol switch (101) hands out a connection to write to.
		resp.Body = &egressConn{egressBody: body, w: w}
	} else {
		resp.Body = body
	}
	return resp, nil
}

// denyAddress records the address check's denial d of the admitted call
// tk as a decision, and returns a copy filled in for the call.
func (t *egressTransport) denyAddress(ctx context.Context, tk *Ticket, d *DeniedError) error {
	cp := *d
	c := tk.Call()
	cp.CallID, cp.Tool, cp.Args = c.ID, c.Tool, t.g.redact(tk.f.args())
	ev := &Event{
		Kind: EventDecision, Call: c, Decision: policy.Deny, Code: cp.Code, Stage: cp.Stage,
		Rule: cp.Rule, Reason: cp.Reason, Estimate: c.Estimate,
	}
	if err := t.g.record(ctx, ev); err != nil {
		cp.Err = errors.Join(cp.Err, err)
	}
	return &cp
}

// egressBody ends its call when it is read to the end, fails, or is
// closed; once the kill switch halts the call, reads fail.
type egressBody struct {
	rc     io.ReadCloser
	tk     *Ticket
	status int
	once   sync.Once
	ended  atomic.Bool // set after done
	done   error       // what Done returned
}

func (b *egressBody) finish(err error) error {
	b.once.Do(func() {
		b.done = b.tk.Done(b.status, err)
		b.ended.Store(true)
	})
	return b.done
}

func (b *egressBody) Read(p []byte) (int, error) {
	if b.ended.Load() {
		if b.done != nil {
			return 0, b.done
		}
		return b.rc.Read(p)
	}
	if ctx := b.tk.Context(); ctx.Err() != nil {
		if err := b.finish(context.Cause(ctx)); err != nil {
			return 0, err
		}
		return 0, context.Cause(ctx)
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		if derr := b.finish(nil); derr != nil {
			return n, derr
		}
	case err != nil:
		if derr := b.finish(err); derr != nil {
			return n, derr
		}
	}
	return n, err
}

func (b *egressBody) Close() error {
	err := b.rc.Close()
	if derr := b.finish(nil); derr != nil {
		var d *DeniedError
		if errors.As(derr, &d) {
			return derr
		}
	}
	return err
}

// egressConn is the body of a response that switched protocols: it is
// written to as well, until the call ends or is halted.
type egressConn struct {
	*egressBody
	w io.Writer
}

func (c *egressConn) Write(p []byte) (int, error) {
	if c.ended.Load() {
		if c.done != nil {
			return 0, c.done
		}
		return 0, errors.New("agentguard: egress: write after the call ended")
	}
	if ctx := c.tk.Context(); ctx.Err() != nil {
		if err := c.finish(context.Cause(ctx)); err != nil {
			return 0, err
		}
		return 0, context.Cause(ctx)
	}
	return c.w.Write(p)
}

// egressArgs describes req for the policy. It never includes the URL's
// userinfo, a query value or a header value. On a request it cannot
// describe safely it returns what it could and an error naming the
// problem.
func egressArgs(req *http.Request) (map[string]any, error) {
	if req.URL == nil {
		return nil, errors.New("agentguard: egress: request without a URL")
	}
	u := req.URL
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	scheme := strings.ToLower(u.Scheme)
	args := map[string]any{"method": method, "scheme": scheme}
	var errs []error
	var defPort int64
	switch scheme {
	case "http":
		defPort = 80
	case "https":
		defPort = 443
	default:
		errs = append(errs, fmt.Errorf("agentguard: egress: scheme %q is not http or https", clip(u.Scheme)))
	}
	if u.Opaque != "" {
		errs = append(errs, errors.New("agentguard: egress: opaque URL (scheme:opaque) has no host"))
	}
	host, err := normHost(u.Hostname())
	if err != nil {
		errs = append(errs, err)
	}
	args["host"] = host
	port := defPort
	if ps := u.Port(); ps != "" {
		p, err := strconv.ParseInt(ps, 10, 64)
		if err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("agentguard: egress: port %q is not a number from 1 to 65535", clip(ps)))
			p = 0
		}
		port = p
	}
	args["port"] = port
	if req.Host != "" {
		hh := req.Host
		if h, _, err := net.SplitHostPort(hh); err == nil {
			hh = h
		}
		hh = strings.TrimSuffix(strings.TrimPrefix(hh, "["), "]")
		if nh, err := normHost(hh); err != nil || nh != host {
			errs = append(errs, errors.New("agentguard: egress: the Host header names another host than the URL"))
		}
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	if strings.Contains(path, "\\") {
		errs = append(errs, errors.New("agentguard: egress: the path has a backslash, which some servers read as \"/\""))
	} else if hasDotSegment(path) {
		errs = append(errs, errors.New("agentguard: egress: the path has a \".\" or \"..\" segment, or one a server may read as such (\"..;\")"))
	}
	args["path"] = path
	q, qerr := queryKeys(u.RawQuery)
	if qerr != nil {
		errs = append(errs, qerr)
	}
	args["query"] = q
	headers := make([]string, 0, len(req.Header))
	for k := range req.Header {
		headers = append(headers, http.CanonicalHeaderKey(k))
	}
	slices.Sort(headers)
	args["headers"] = slices.Compact(headers)
	cl := req.ContentLength
	if cl == 0 && req.Body != nil && req.Body != http.NoBody {
		cl = -1
	}
	args["content_length"] = cl
	args["caller"] = map[string]any{"tool": "", "call": "", "agent": "", "requester": "", "tenant": "", "session": ""}
	return args, errors.Join(errs...)
}

// normHost returns h lower-cased, without trailing dot, checking that it
// is an IP address or an ASCII host name.
func normHost(h string) (string, error) {
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", errors.New("agentguard: egress: the URL has no host")
	}
	// An address first, before lower-casing, which would rewrite the
	// bytes of an IPv6 zone that is not UTF-8: the policy must see the
	// host that is dialed, as policy.URLHost reads it.
	if a, err := netip.ParseAddr(h); err == nil {
		if !asciiName(a.Zone()) {
			return "", errors.New("agentguard: egress: the IPv6 zone is not an ASCII interface name")
		}
		return a.String(), nil
	}
	h = strings.ToLower(h)
	if !asciiName(h) {
		return "", errors.New("agentguard: egress: the host is not an IP address or an ASCII host name (write internationalized names in punycode)")
	}
	if strings.Contains(h, "..") || h[0] == '.' || h[len(h)-1] == '.' {
		return "", errors.New("agentguard: egress: the host has an empty label")
	}
	return h, nil
}

// asciiName reports whether s holds only lower-case ASCII letters,
// digits, '-', '.' and '_' (a host name, or an interface name).
func asciiName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// hasDotSegment reports whether a segment of path (decoded once) may be
// read by a server as "." or "..": after a second percent-decoding (for
// servers that decode twice), without its ";" parameters (Tomcat and
// Spring read "..;x" as ".."), it is dots, possibly with spaces (Windows
// drops trailing dots and spaces).
func hasDotSegment(path string) bool {
	for seg := range strings.SplitSeq(path, "/") {
		if strings.Contains(seg, "%") {
			if d, err := url.PathUnescape(seg); err == nil {
				if strings.Contains(d, "/") || strings.Contains(d, "\\") {
					return true
				}
				seg = d
			}
		}
		seg, _, _ = strings.Cut(seg, ";")
		if strings.Contains(seg, ".") && strings.Trim(seg, ". ") == "" {
			return true
		}
	}
	return false
}

// queryKeys returns the distinct keys of a raw query, sorted.
func queryKeys(raw string) ([]string, error) {
	keys := []string{}
	if raw == "" {
		return keys, nil
	}
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, _, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return keys, errors.New("agentguard: egress: the query has a badly escaped key")
		}
		keys = append(keys, dk)
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

func systemResolve(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// dial resolves the host of address once, checks every address, and
// connects to one of the checked addresses.
func (t *egressTransport) dial(ctx context.Context, network, address string) (net.Conn, error) {
	h, ps, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("agentguard: egress: dial address: %w", err)
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("agentguard: egress: dial port %q", ps)
	}
	host, err := normHost(h)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(h); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = t.lookup(ctx, host)
		if err != nil {
			return nil, err
		}
	}
	for _, a := range addrs {
		if class := t.cfg.refused(a); class != "" {
			return nil, addressDenial(host, a, class)
		}
	}
	d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	dialFn := d.DialContext
	if t.dialFn != nil {
		dialFn = t.dialFn
	}
	var errs []error
	for _, a := range addrs {
		c, err := dialFn(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (t *egressTransport) lookup(ctx context.Context, host string) (addrs []netip.Addr, err error) {
	defer func() {
		if v := recover(); v != nil {
			addrs, err = nil, fmt.Errorf("agentguard: egress: resolver panicked: %v", v)
		}
	}()
	addrs, err = t.cfg.resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("agentguard: egress: resolving %q: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("agentguard: egress: resolving %q: no addresses", host)
	}
	return addrs, nil
}

func addressDenial(host string, a netip.Addr, class string) *DeniedError {
	what := "the host " + host + " resolves to " + a.String() + ", "
	if ip, err := netip.ParseAddr(host); err == nil && ip == a {
		what = "the address " + host + " is "
	}
	return &DeniedError{
		Code: CodePolicyDenied, Stage: StageEgress, Rule: RuleEgressAddress,
		Reason: what + article(class) + " " + class + " address, which egress does not reach",
		Needs:  "a human: only an operator can allow this address (AllowCIDRs)",
	}
}

func article(class string) string {
	switch class[0] {
	case 'a', 'e', 'i', 'o', 'u':
		return "an"
	}
	return "a"
}

// refused returns the class of a when the configuration refuses it, ""
// when a may be reached.
func (c *egressConfig) refused(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	a = a.WithZone("")
	class := addrClass(a)
	if class == "" {
		return ""
	}
	if class == "private" && c.allowPrivate {
		return ""
	}
	u := a.Unmap()
	for _, p := range c.allow {
		if !p.Contains(u) && !p.Contains(a) {
			continue
		}
		if class == "metadata" && p.Bits() != p.Addr().BitLen() {
			continue
		}
		return ""
	}
	return class
}

var (
	// metadataAddrs are the cloud metadata and credential services that
	// answer on a fixed address inside the instance: refused even by
	// AllowPrivate, and let through only by an AllowCIDRs prefix that is
	// exactly the address. Each is listed for the services its provider
	// documents at that address:
	//   - 169.254.169.254: the instance metadata service of AWS (IMDS),
	//     Google Cloud, Azure (IMDS), Oracle Cloud (OCI), DigitalOcean,
	//     IBM Cloud, Hetzner, OpenStack and others;
	//   - fd00:ec2::254: AWS IMDS over IPv6 (Nitro instances);
	//   - fd20:ce::254: Google Cloud's metadata server over IPv6;
	//   - 169.254.170.2: the AWS ECS task metadata and credentials endpoint;
	//   - 169.254.170.23, fd00:ec2::23: the AWS EKS Pod Identity agent
	//     (pod credentials);
	//   - 100.100.100.200: Alibaba Cloud's metadata service, inside the
	//     shared 100.64.0.0/10 range that AllowPrivate opens;
	//   - 168.63.129.16: Azure's WireServer (VM agent, extension settings,
	//     health), on a public address;
	//   - 169.254.0.23: Tencent Cloud's metadata service
	//     (metadata.tencentyun.com);
	//   - 192.0.0.192: the metadata service of Oracle Cloud Infrastructure
	//     Classic (the older Oracle cloud), in 192.0.0.0/24.
	metadataAddrs = []netip.Addr{
		netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("fd00:ec2::254"), netip.MustParseAddr("fd20:ce::254"),
		netip.MustParseAddr("169.254.170.2"), netip.MustParseAddr("169.254.170.23"), netip.MustParseAddr("fd00:ec2::23"),
		netip.MustParseAddr("100.100.100.200"), netip.MustParseAddr("168.63.129.16"), netip.MustParseAddr("169.254.0.23"),
		netip.MustParseAddr("192.0.0.192"),
	}
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
	addrClasses = []struct {
		class    string
		prefixes []netip.Prefix
	}{
		{"unspecified", prefixes("0.0.0.0/8", "::/128")},
		{"loopback", prefixes("127.0.0.0/8", "::1/128")},
		{"private", prefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")},
		{"link-local", prefixes("169.254.0.0/16", "fe80::/10")},
		{"multicast", prefixes("224.0.0.0/4", "ff00::/8")},
		{"reserved", prefixes("240.0.0.0/4", "::/96")},
	}
)

func prefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// addrClass returns the class of a refused by default, or "" for an
// address on the public internet.
func addrClass(a netip.Addr) string {
	a = a.WithZone("").Unmap()
	if nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	if slices.Contains(metadataAddrs, a) {
		return "metadata"
	}
	for _, c := range addrClasses {
		for _, p := range c.prefixes {
			if p.Contains(a) {
				return c.class
			}
		}
	}
	return ""
}

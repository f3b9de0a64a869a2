package approval

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// InboxOptions configure an Inbox.
type InboxOptions struct {
	// Token is the shared secret that lets a client in: as a bearer token
	// on the JSON API, and typed once into the login form by a person, who
	// then holds a session cookie. Required, at least 16 bytes.
	Token string
	// Clock returns the current time; it decides which requests are past
	// their deadline, so give it the Gate's clock. Nil means time.Now.
	Clock func() time.Time
	// Session is how long a browser login lasts. Zero means 12 hours.
	Session time.Duration
	// Authenticate returns the verified identity of the person who sent r
	// (a user name, an e-mail address), and true; false when r carries
	// none. When it is set, every answer (on the page and on the API) is
	// recorded as that identity, which becomes the approver in the audit
	// log; an answer without an identity is refused (401), and a typed
	// name is ignored. When it is nil, an answer must carry a typed name,
	// recorded as "typed:NAME" so that the audit log says nobody verified
	// it; an empty name is refused (400). TrustHeader builds one for an
	// SSO proxy.
	Authenticate func(r *http.Request) (identity string, ok bool)
	// Pending is where the waiting requests are read and answered when
	// they wait outside this process: in a database shared by a fleet
	// (postgres.Approvals), so that a person using the inbox of one
	// process answers a call waiting in another. Nil means the Inbox's
	// own memory: the requests its Approve is given. With Pending set,
	// the Inbox's Approve hands each request to Pending when Pending is
	// also an Approver, and refuses it otherwise.
	Pending PendingStore
}

// PendingStore holds the requests waiting for a person's answer, for an
// Inbox to list and answer (InboxOptions.Pending). Its methods are safe
// for concurrent use.
type PendingStore interface {
	// Pending returns the waiting requests, oldest first, leaving out
	// those past their deadline and those answered already.
	Pending(ctx context.Context) ([]Request, error)
	// Answer delivers a to the call waiting for a.ID, as an approval
	// (with a.Grant) when approve is true and a rejection otherwise;
	// a.By is who answered, as the audit log will record it. Each
	// request takes one answer: an answer to a request no call waits for
	// (unknown, answered already, past its deadline) returns an error
	// wrapping ErrNotPending, and one whose hash is not the request's an
	// error wrapping ErrHashMismatch; either way nothing is delivered.
	Answer(ctx context.Context, a Answer, approve bool) error
}

// Errors of PendingStore.Answer.
var (
	// ErrNotPending: no call waits for the request (unknown, answered
	// already, or past its deadline).
	ErrNotPending = errors.New("approval: no call is waiting for this request")
	// ErrHashMismatch: the answer names another call's hash.
	ErrHashMismatch = errors.New("approval: hash does not match the request")
)

// TrustHeader returns an InboxOptions.Authenticate that takes the
// identity from the request header name, as an SSO or identity-aware
// proxy sets it (X-Forwarded-User, X-Auth-Request-Email, …). Use it only
// when every request reaches the inbox through that proxy and the proxy
// overwrites the header on every request: a client that can reach the
// inbox directly can set the header to any name. A header that is absent,
// empty, longer than 200 bytes, or holds characters Visible would escape,
// gives no identity.
func TrustHeader(name string) func(*http.Request) (string, bool) {
	return func(r *http.Request) (string, bool) {
		vs := r.Header.Values(name)
		if len(vs) != 1 {
			return "", false // absent, or set twice: which one is true?
		}
		id := strings.TrimSpace(vs[0])
		return id, validName(id)
	}
}

// validName reports whether s can name a person in the audit log: not
// empty, at most 200 bytes, nothing invisible.
func validName(s string) bool {
	return s != "" && len(s) <= 200 && Visible(s) == s
}

// Inbox is an Approver whose requests wait in a list until someone
// answers them over HTTP. Its ServeHTTP serves, relative to where it is
// mounted (use http.StripPrefix):
//
//	GET  /api/pending  {"pending":[card…]}: the waiting Requests, oldest first
//	POST /api/approve  {"id":…,"hash":…,"by":…,"note":…,"grant":{"scope":"tool","duration":"10m"}}
//	POST /api/deny     {"id":…,"hash":…,"by":…,"note":…}
//	GET  /             an HTML page listing the cards with approve/deny forms
//	POST /login        form field token: starts a browser session (a cookie)
//	POST /decide       the page's form: id, hash, action (approve|deny), by, note, grant, csrf
//
// Who answered is recorded as the identity InboxOptions.Authenticate
// verifies, or else as the typed name ("by") prefixed "typed:"; an answer
// with neither is refused. The page refreshes itself, shows when each card
// expires, shows its arguments in full with invisible characters escaped
// (Visible), and, for two pending cards of the same tool, what differs
// between them.
//
// The API needs "Authorization: Bearer TOKEN". The page needs the session
// cookie (with the bearer token alone it can be viewed but its forms do not
// work), and its form also a per-session CSRF token.
// Every request with an unsafe method is refused when the browser marks it
// cross-site (Sec-Fetch-Site, or an Origin that is not the Host), so a page
// elsewhere cannot post into the inbox. An answer must name a waiting
// request and its hash; the API returns 200 when it was delivered, 400 for
// a malformed body, 401 without a valid token, 403 for a cross-site
// request or a bad CSRF token, 404 when no call waits for the request
// (unknown, answered or past its deadline), 409 when the hash is not
// the request's, and 503 when the PendingStore cannot be read or written.
// The JSON API reads bodies of at most 64 KiB.
//
// The requests wait in the Inbox's memory, or, with InboxOptions.Pending,
// in a store shared by the processes of a fleet: then the page and the API
// list every process's waiting requests, and an answer given here releases
// the call waiting in another process, once.
//
// It is safe for concurrent use; every answer reaches only its own call.
type Inbox struct {
	token   [32]byte // SHA-256 of the token, compared in constant time
	clock   func() time.Time
	session time.Duration
	authn   func(*http.Request) (string, bool)
	store   PendingStore
	ask     Approver // where Approve puts requests; nil when store is not an Approver
	handler http.Handler

	mu       sync.Mutex
	sessions map[string]inboxSession // session ID → session
}

// memPending is an Inbox's own PendingStore: the requests wait in memory.
type memPending struct {
	clock   func() time.Time
	mu      sync.Mutex
	pending map[string]*inboxWait
}

type inboxWait struct {
	card Request
	ch   chan Verdict // buffered 1
}

type inboxSession struct {
	csrf    string
	expires time.Time
}

var (
	_ Approver     = (*Inbox)(nil)
	_ http.Handler = (*Inbox)(nil)
)

const inboxCookie = "agentguard_inbox"

// NewInbox returns an empty Inbox.
func NewInbox(opts InboxOptions) (*Inbox, error) {
	if len(opts.Token) < 16 {
		return nil, errors.New("approval: NewInbox: Token shorter than 16 bytes")
	}
	in := &Inbox{token: sha256.Sum256([]byte(opts.Token)), clock: opts.Clock, session: opts.Session,
		authn: opts.Authenticate, store: opts.Pending, sessions: map[string]inboxSession{}}
	if in.clock == nil {
		in.clock = time.Now
	}
	if in.store == nil {
		mem := &memPending{clock: in.clock, pending: map[string]*inboxWait{}}
		in.store, in.ask = mem, mem
	} else {
		in.ask, _ = in.store.(Approver)
	}
	if in.session <= 0 {
		in.session = 12 * time.Hour
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/pending", in.apiPending)
	mux.HandleFunc("POST /api/approve", func(w http.ResponseWriter, r *http.Request) { in.apiDecide(w, r, true) })
	mux.HandleFunc("POST /api/deny", func(w http.ResponseWriter, r *http.Request) { in.apiDecide(w, r, false) })
	mux.HandleFunc("GET /{$}", in.page)
	mux.HandleFunc("POST /login", in.login)
	mux.HandleFunc("POST /decide", in.formDecide)
	in.handler = securityHeaders(http.NewCrossOriginProtection().Handler(mux))
	return in, nil
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the API and the page.
func (in *Inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) { in.handler.ServeHTTP(w, r) }

// Approve puts r in the inbox and waits for an answer or the end of ctx.
// With InboxOptions.Pending, it hands r to that store when the store is
// an Approver, and refuses r otherwise.
func (in *Inbox) Approve(ctx context.Context, r *Request) (Verdict, error) {
	if in.ask == nil {
		return Verdict{}, fmt.Errorf("approval: inbox: request %q: InboxOptions.Pending is not an Approver; give the Gate the approver whose requests it holds", r.ID)
	}
	return in.ask.Approve(ctx, r)
}

// Pending returns the waiting requests, oldest first. With
// InboxOptions.Pending, it reads that store and returns nil when it
// cannot.
func (in *Inbox) Pending() []Request {
	out, _ := in.store.Pending(context.Background())
	return out
}

// Approve puts r in memory and waits for an answer or the end of ctx.
func (m *memPending) Approve(ctx context.Context, r *Request) (Verdict, error) {
	wait := &inboxWait{card: *r, ch: make(chan Verdict, 1)}
	m.mu.Lock()
	if _, dup := m.pending[r.ID]; dup {
		m.mu.Unlock()
		return Verdict{}, fmt.Errorf("approval: inbox: request %q is already pending", r.ID)
	}
	m.pending[r.ID] = wait
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if m.pending[r.ID] == wait {
			delete(m.pending, r.ID)
		}
		m.mu.Unlock()
	}()
	select {
	case v := <-wait.ch:
		return v, nil
	case <-ctx.Done():
		return Verdict{}, context.Cause(ctx)
	}
}

// Pending returns the waiting requests, oldest first.
func (m *memPending) Pending(context.Context) ([]Request, error) {
	now := m.clock()
	m.mu.Lock()
	out := make([]Request, 0, len(m.pending))
	for _, p := range m.pending {
		if p.card.Deadline.IsZero() || now.Before(p.card.Deadline) {
			out = append(out, p.card)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Request) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Answer delivers a to the call waiting in memory, once.
func (m *memPending) Answer(_ context.Context, a Answer, approved bool) error {
	now := m.clock()
	m.mu.Lock()
	defer m.mu.Unlock()
	wait, ok := m.pending[a.ID]
	if !ok || !wait.card.Deadline.IsZero() && !now.Before(wait.card.Deadline) {
		return ErrNotPending
	}
	if subtle.ConstantTimeCompare([]byte(a.Hash), []byte(wait.card.Hash)) != 1 {
		return ErrHashMismatch
	}
	delete(m.pending, a.ID)
	v := Verdict{Approved: approved, By: a.By, Note: a.Note, ID: a.ID, Hash: a.Hash}
	if approved {
		v.Grant = a.Grant
	}
	wait.ch <- v
	return nil
}

// Answer is an answer to a waiting request, as the JSON API takes it.
type Answer struct {
	ID    string `json:"id"`
	Hash  string `json:"hash"`
	By    string `json:"by"`
	Note  string `json:"note,omitempty"`
	Grant *Grant `json:"grant,omitempty"`
}

// ParseAnswer decodes and checks an API answer: one JSON object with no
// unknown fields, an ID, a 64-hex-digit lowercase hash, and a name and
// note of bounded length.
func ParseAnswer(body []byte) (Answer, error) {
	var a Answer
	if err := decodeOne(body, &a, "answer"); err != nil {
		return Answer{}, err
	}
	return a, a.check()
}

// decodeOne decodes body as exactly one JSON object into v, refusing
// unknown fields and trailing data; what names v in errors.
func decodeOne(body []byte, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("approval: %s: %w", what, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("approval: %s: trailing data", what)
	}
	return nil
}

func (a *Answer) check() error {
	switch {
	case a.ID == "" || len(a.ID) > 256:
		return errors.New("approval: answer: missing or oversized id")
	case !validHash(a.Hash):
		return errors.New("approval: answer: hash is not 64 lowercase hex digits")
	case len(a.By) > 200 || len(a.Note) > 2000:
		return errors.New("approval: answer: by or note too long")
	}
	return nil
}

// identity returns the verified identity of r's sender, if any.
func (in *Inbox) identity(r *http.Request) (string, bool) {
	if in.authn == nil {
		return "", false
	}
	id, ok := in.authn(r)
	return id, ok && validName(id)
}

// approver returns who answers r, as the audit log records it: the
// verified identity, or the typed name prefixed "typed:". It returns an
// HTTP status and a message when there is neither.
func (in *Inbox) approver(r *http.Request, typed string) (string, int, string) {
	if in.authn != nil {
		if id, ok := in.identity(r); ok {
			return id, http.StatusOK, ""
		}
		return "", http.StatusUnauthorized, "approval: no verified identity for this request"
	}
	typed = strings.TrimSpace(typed)
	if !validName(typed) {
		return "", http.StatusBadRequest, "approval: name who answers (by): not empty, at most 200 bytes, nothing invisible"
	}
	return "typed:" + typed, http.StatusOK, ""
}

// decide delivers an answer; it returns the HTTP status and a message.
func (in *Inbox) decide(ctx context.Context, a Answer, approved bool) (int, string) {
	err := in.store.Answer(ctx, a, approved)
	switch {
	case err == nil:
		return http.StatusOK, ""
	case errors.Is(err, ErrNotPending):
		return http.StatusNotFound, ErrNotPending.Error()
	case errors.Is(err, ErrHashMismatch):
		return http.StatusConflict, ErrHashMismatch.Error()
	}
	return http.StatusServiceUnavailable, "approval: the answer cannot be delivered now; try again"
}

// bearer reports whether r carries the token as a bearer token.
func (in *Inbox) bearer(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], in.token[:]) == 1
}

// sessionOf returns the live session of r's cookie.
func (in *Inbox) sessionOf(r *http.Request) (inboxSession, bool) {
	c, err := r.Cookie(inboxCookie)
	if err != nil || c.Value == "" {
		return inboxSession{}, false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	s, ok := in.sessions[c.Value]
	if !ok || !in.clock().Before(s.expires) {
		return inboxSession{}, false
	}
	return s, true
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentguard inbox"`)
	}
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// errPendingUnreadable is what the API and the page say when the
// PendingStore cannot be read.
const errPendingUnreadable = "approval: the waiting requests cannot be read now; try again"

func (in *Inbox) apiPending(w http.ResponseWriter, r *http.Request) {
	if !in.bearer(r) {
		jsonError(w, http.StatusUnauthorized, "approval: bearer token required")
		return
	}
	pending, err := in.store.Pending(r.Context())
	if err != nil {
		jsonError(w, http.StatusServiceUnavailable, errPendingUnreadable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string][]Request{"pending": pending})
}

func (in *Inbox) apiDecide(w http.ResponseWriter, r *http.Request, approved bool) {
	if !in.bearer(r) {
		jsonError(w, http.StatusUnauthorized, "approval: bearer token required")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		jsonError(w, http.StatusRequestEntityTooLarge, "approval: body too large or unreadable")
		return
	}
	a, err := ParseAnswer(body)
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	by, code, msg := in.approver(r, a.By)
	if code != http.StatusOK {
		jsonError(w, code, msg)
		return
	}
	a.By = by
	if code, msg := in.decide(r.Context(), a, approved); code != http.StatusOK {
		jsonError(w, code, msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`+"\n")
}

func (in *Inbox) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	sum := sha256.Sum256([]byte(r.PostFormValue("token")))
	if subtle.ConstantTimeCompare(sum[:], in.token[:]) != 1 {
		w.WriteHeader(http.StatusUnauthorized)
		in.render(w, pageData{Login: true, Error: "wrong token"})
		return
	}
	id, csrf := rand.Text(), rand.Text()
	now := in.clock()
	in.mu.Lock()
	for k, s := range in.sessions {
		if !now.Before(s.expires) {
			delete(in.sessions, k)
		}
	}
	in.sessions[id] = inboxSession{csrf: csrf, expires: now.Add(in.session)}
	in.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: inboxCookie, Value: id, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(in.session / time.Second)})
	w.Header().Set("Location", "./")
	w.WriteHeader(http.StatusSeeOther)
}

func (in *Inbox) formDecide(w http.ResponseWriter, r *http.Request) {
	s, ok := in.sessionOf(r)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		in.render(w, pageData{Login: true, Error: "please log in"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "approval: bad form", http.StatusBadRequest)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
		http.Error(w, "approval: bad CSRF token", http.StatusForbidden)
		return
	}
	var approved bool
	switch r.PostForm.Get("action") {
	case "approve":
		approved = true
	case "deny":
	default:
		http.Error(w, "approval: action must be approve or deny", http.StatusBadRequest)
		return
	}
	a := Answer{ID: r.PostForm.Get("id"), Hash: r.PostForm.Get("hash"), By: r.PostForm.Get("by"), Note: r.PostForm.Get("note")}
	if g := r.PostForm.Get("grant"); g != "" {
		scope, dur, _ := strings.Cut(g, " ")
		sc, err1 := ParseScope(scope)
		d, err2 := time.ParseDuration(dur)
		if err1 != nil || err2 != nil || d <= 0 {
			http.Error(w, "approval: grant must be SCOPE DURATION", http.StatusBadRequest)
			return
		}
		a.Grant = &Grant{Scope: sc, Duration: d}
	}
	if err := a.check(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	by, code, msg := in.approver(r, a.By)
	if code != http.StatusOK {
		http.Error(w, msg, code)
		return
	}
	a.By = by
	if code, msg := in.decide(r.Context(), a, approved); code != http.StatusOK {
		http.Error(w, msg, code)
		return
	}
	w.Header().Set("Location", "./")
	w.WriteHeader(http.StatusSeeOther)
}

type pageCard struct {
	Request
	Short     string // the hash's first 12 digits, to tell cards apart
	ArgsJSON  string
	Estimate  string
	Left      string
	ExpiresIn string
	Diffs     []pageDiff
}

// pageDiff is what differs between a card and another pending card of the
// same tool.
type pageDiff struct {
	Other  string // the other card's ID
	Short  string // and its hash's first 12 digits
	Fields []diffField
	More   int // differing fields not listed
}

type diffField struct {
	Path, This, That string
}

type pageData struct {
	Login    bool
	Error    string
	CSRF     string
	Identity string // the verified identity of the viewer, if any
	AuthN    bool   // an authenticator is configured
	Cards    []pageCard
}

func (in *Inbox) page(w http.ResponseWriter, r *http.Request) {
	s, ok := in.sessionOf(r)
	if !ok {
		if !in.bearer(r) {
			w.WriteHeader(http.StatusUnauthorized)
			in.render(w, pageData{Login: true})
			return
		}
	}
	d := pageData{CSRF: s.csrf, AuthN: in.authn != nil}
	d.Identity, _ = in.identity(r)
	now := in.clock()
	pending, err := in.store.Pending(r.Context())
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		d.Error = errPendingUnreadable
		in.render(w, d)
		return
	}
	for _, c := range pending {
		var args bytes.Buffer
		enc := json.NewEncoder(&args)
		enc.SetEscapeHTML(false) // the template escapes; people should read <, > and & as they are
		enc.SetIndent("", "  ")
		if err := enc.Encode(c.Args); err != nil {
			args.Reset()
			args.WriteString("(arguments cannot be shown)")
		}
		pc := pageCard{Request: c, Short: short(c.Hash), ArgsJSON: Visible(args.String()),
			Estimate: Visible(amounts(c.Estimate)), Left: Visible(amounts(c.BudgetLeft)), ExpiresIn: "no deadline"}
		if !c.Deadline.IsZero() {
			pc.ExpiresIn = c.Deadline.Sub(now).Round(time.Second).String()
		}
		pc.Diffs = cardDiffs(c, pending)
		d.Cards = append(d.Cards, pc)
	}
	in.render(w, d)
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// The bounds of what the page lists of the differences between cards.
const (
	maxDiffCards  = 3
	maxDiffFields = 12
	maxDiffValue  = 120
)

// cardDiffs lists what differs between c and each other pending card of
// the same tool: the principal and every argument, by path.
func cardDiffs(c Request, pending []Request) []pageDiff {
	var out []pageDiff
	mine := flatCard(c)
	for _, o := range pending {
		if o.ID == c.ID || o.Tool != c.Tool {
			continue
		}
		if len(out) == maxDiffCards {
			break
		}
		theirs := flatCard(o)
		paths := make([]string, 0, len(mine)+len(theirs))
		for p := range mine {
			paths = append(paths, p)
		}
		for p := range theirs {
			if _, ok := mine[p]; !ok {
				paths = append(paths, p)
			}
		}
		slices.Sort(paths)
		d := pageDiff{Other: o.ID, Short: short(o.Hash)}
		for _, p := range paths {
			this, ok1 := mine[p]
			that, ok2 := theirs[p]
			if ok1 && ok2 && this == that {
				continue
			}
			if len(d.Fields) == maxDiffFields {
				d.More++
				continue
			}
			if !ok1 {
				this = "(absent)"
			}
			if !ok2 {
				that = "(absent)"
			}
			d.Fields = append(d.Fields, diffField{Path: Visible(clipText(p)), This: Visible(clipText(this)), That: Visible(clipText(that))})
		}
		if len(d.Fields) > 0 {
			out = append(out, d)
		}
	}
	return out
}

// flatCard maps every leaf of c's arguments (args.to, args.items[0].sku)
// and c's principal to its JSON text.
func flatCard(c Request) map[string]string {
	m := map[string]string{
		"principal.agent": c.Principal.Agent, "principal.requester": c.Principal.Requester,
		"principal.tenant": c.Principal.Tenant, "principal.session": c.Principal.Session,
	}
	var v any
	if b, err := marshal(c.Args); err == nil && json.Unmarshal(b, &v) == nil {
		flatten(m, "args", v)
	}
	return m
}

func flatten(m map[string]string, path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			m[path] = "{}"
		}
		for k, e := range x {
			flatten(m, path+"."+k, e)
		}
	case []any:
		if len(x) == 0 {
			m[path] = "[]"
		}
		for i, e := range x {
			flatten(m, fmt.Sprintf("%s[%d]", path, i), e)
		}
	default:
		b, _ := marshal(x)
		m[path] = string(b)
	}
}

func clipText(s string) string {
	if len(s) <= maxDiffValue {
		return s
	}
	i := maxDiffValue
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func (in *Inbox) render(w http.ResponseWriter, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := inboxPage.Execute(w, d); err != nil {
		// Headers are sent; all that is left is to stop writing.
		return
	}
}

var inboxPage = template.Must(template.New("inbox").Funcs(template.FuncMap{"vis": Visible}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>agentguard approvals</title>
{{if not .Login}}<meta http-equiv="refresh" content="15">{{end}}
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}.card{border:1px solid #888;padding:1em;margin:1em 0}pre{background:#f4f4f4;padding:.5em;overflow:auto;white-space:pre-wrap;word-break:break-all}.diff{background:#fff4d6;padding:.5em}td,th{text-align:left;padding:0 .5em;vertical-align:top}</style>
</head><body>
<h1>agentguard approvals</h1>
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
{{if .Login}}
<form method="post" action="login"><label>Token <input type="password" name="token" autocomplete="off"></label> <button>Log in</button></form>
{{else}}
{{if .Identity}}<p>You are <b>{{vis .Identity}}</b>; your answers are recorded under that name.</p>{{end}}
<p>This page refreshes itself every 15 seconds.</p>
{{if and (not .Cards) (not .Error)}}<p>No call is waiting for approval.</p>{{end}}
{{range .Cards}}{{$card := .}}
<div class="card">
<h2>{{vis .Tool}} <small><code>{{.Short}}</code></small></h2>
<p>Request <code>{{vis .ID}}</code> for agent <b>{{vis .Principal.Agent}}</b>{{if .Principal.Requester}} acting for <b>{{vis .Principal.Requester}}</b>{{end}}{{if .Principal.Tenant}} in tenant <b>{{vis .Principal.Tenant}}</b>{{end}}.</p>
{{if or .Rule .Reason}}<p>Rule <b>{{vis .Rule}}</b>: {{vis .Reason}}</p>{{end}}
{{if .Estimate}}<p>Estimated cost: {{.Estimate}}{{if .Left}}; budget left: {{.Left}}{{end}}</p>{{end}}
<pre>{{.ArgsJSON}}</pre>
{{range .Diffs}}<div class="diff"><p>Differs from the other pending <b>{{vis $card.Tool}}</b> card <code>{{.Short}}</code> (request <code>{{vis .Other}}</code>):</p>
<table><tr><th>field</th><th>this card</th><th>that card</th></tr>{{range .Fields}}<tr><td><code>{{.Path}}</code></td><td><code>{{.This}}</code></td><td><code>{{.That}}</code></td></tr>{{end}}</table>{{if .More}}<p>and {{.More}} more fields</p>{{end}}</div>{{end}}
<p><b>Expires in {{.ExpiresIn}}</b>{{if not .Deadline.IsZero}} (deadline {{.Deadline.UTC.Format "2006-01-02 15:04:05 UTC"}}){{end}} · hash <code>{{.Hash}}</code></p>
<form method="post" action="decide">
<input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="id" value="{{.ID}}"><input type="hidden" name="hash" value="{{.Hash}}">
{{if not $.AuthN}}<label>Your name <input name="by" maxlength="200" required></label>{{end}}
<label>Note <input name="note" maxlength="2000"></label>
<label>Remember <select name="grant"><option value="">this call only</option><option value="args 10m">same arguments, 10 minutes</option><option value="tool 10m">this tool, 10 minutes</option><option value="tool 1h">this tool, 1 hour</option><option value="agent 10m">everything for this agent, 10 minutes</option></select></label>
<button name="action" value="approve">Approve</button> <button name="action" value="deny">Deny</button>
</form>
</div>
{{end}}
{{end}}
</body></html>
`))

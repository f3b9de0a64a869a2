package approval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

const testToken = "inbox-token-0123456789"

func newInbox(t *testing.T) *Inbox {
	t.Helper()
	in, err := NewInbox(InboxOptions{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

type httpResult struct {
	code int
	body string
	hdr  http.Header
}

// do serves one request; hdr holds header pairs.
func do(h http.Handler, method, target, body string, hdr ...string) httpResult {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return httpResult{rec.Code, rec.Body.String(), rec.Header()}
}

// waitPending waits until n requests are pending in the inbox.
func waitPending(t *testing.T, in *Inbox, n int) []Request {
	t.Helper()
	synctest.Wait()
	p := in.Pending()
	if len(p) != n {
		t.Fatalf("%d pending, want %d", len(p), n)
	}
	return p
}

func TestInboxAPI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := newInbox(t)
		g := newGate(t, in, Options{Timeout: time.Minute})
		auth := []string{"Authorization", "Bearer " + testToken}

		r1 := askAsync(g, req("r1", "refund", map[string]any{"amount": 120}))
		time.Sleep(time.Second) // r1 is older than r2
		r2 := askAsync(g, req("r2", "delete", map[string]any{"table": "users"}))
		waitPending(t, in, 2)

		res := do(in, "GET", "/api/pending", "", auth...)
		if res.code != 200 || res.hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("list: %d %s", res.code, res.body)
		}
		var list struct{ Pending []Request }
		if err := json.Unmarshal([]byte(res.body), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Pending) != 2 || list.Pending[0].ID != "r1" || list.Pending[1].ID != "r2" || list.Pending[1].Args["table"] != "users" {
			t.Fatalf("list = %+v, want r1 then r2", list.Pending)
		}
		h1, h2 := list.Pending[0].Hash, list.Pending[1].Hash

		// Wrong or missing token.
		for _, a := range [][]string{nil, {"Authorization", "Bearer wrong-token-0123456789"}, {"Authorization", testToken}, {"Authorization", "Basic " + testToken}} {
			if res := do(in, "GET", "/api/pending", "", a...); res.code != http.StatusUnauthorized {
				t.Errorf("list with %v: %d, want 401", a, res.code)
			}
			body := fmt.Sprintf(`{"id":"r1","hash":%q,"by":"eve"}`, h1)
			if res := do(in, "POST", "/api/approve", body, a...); res.code != http.StatusUnauthorized {
				t.Errorf("approve with %v: %d, want 401", a, res.code)
			}
		}
		// Cross-site requests are refused even with the token.
		for _, x := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "same-site"}, {"Origin", "https://evil.example"}} {
			body := fmt.Sprintf(`{"id":"r1","hash":%q,"by":"eve"}`, h1)
			if res := do(in, "POST", "/api/approve", body, append(auth, x...)...); res.code != http.StatusForbidden {
				t.Errorf("cross-site approve with %v: %d, want 403", x, res.code)
			}
		}
		// Malformed answers, the wrong hash, an unknown request.
		for _, c := range []struct {
			body string
			want int
		}{
			{`{"id":"r1"`, 400},
			{fmt.Sprintf(`{"id":"r1","hash":%q,"extra":true}`, h1), 400},
			{fmt.Sprintf(`{"id":"r1","hash":%q}{}`, h1), 400},
			{fmt.Sprintf(`{"id":"r1","hash":%q}`, strings.ToUpper(h1)), 400},
			{fmt.Sprintf(`{"id":"r1","hash":%q,"grant":{"scope":"forever","duration":"1h"}}`, h1), 400},
			{fmt.Sprintf(`{"id":"r1","hash":%q,"by":"alice"}`, h2), 409},
			{fmt.Sprintf(`{"id":"nope","hash":%q,"by":"alice"}`, h1), 404},
			{fmt.Sprintf(`{"id":"r1","hash":%q}`, h1), 400},                    // nobody named
			{fmt.Sprintf(`{"id":"r1","hash":%q,"by":"  "}`, h1), 400},          // nobody named
			{fmt.Sprintf(`{"id":"r1","hash":%q,"by":"al\u202eice"}`, h1), 400}, // a name that hides characters
		} {
			if res := do(in, "POST", "/api/approve", c.body, auth...); res.code != c.want {
				t.Errorf("approve %s: %d %s, want %d", c.body, res.code, res.body, c.want)
			}
		}
		waitPending(t, in, 2) // nothing above was delivered

		// Approve r1 with a grant, deny r2.
		body := fmt.Sprintf(`{"id":"r1","hash":%q,"by":"alice","note":"fine","grant":{"scope":"args","duration":"10m"}}`, h1)
		if res := do(in, "POST", "/api/approve", body, append(auth, "Sec-Fetch-Site", "same-origin")...); res.code != 200 {
			t.Fatalf("approve: %d %s", res.code, res.body)
		}
		if res := do(in, "POST", "/api/deny", fmt.Sprintf(`{"id":"r2","hash":%q,"by":"bob","note":"never"}`, h2), auth...); res.code != 200 {
			t.Fatalf("deny: %d %s", res.code, res.body)
		}
		// A typed name is recorded as typed: nobody verified it.
		if r := <-r1; r.err != nil || r.out.Verdict.By != "typed:alice" || r.out.Permit == nil || r.out.Permit.Scope != ScopeSameArgs {
			t.Fatalf("r1 = %+v, %v; want approved by alice with an args grant", r.out, r.err)
		}
		r := <-r2
		var re *RefusedError
		if !errors.As(r.err, &re) || !errors.Is(r.err, ErrRejected) || re.By != "typed:bob" || re.Note != "never" {
			t.Fatalf("r2 = %v, want rejected by bob", r.err)
		}
		// Answering again finds nothing.
		if res := do(in, "POST", "/api/approve", body, auth...); res.code != 404 {
			t.Errorf("second approve: %d, want 404", res.code)
		}
		// A request past its deadline is not listed and cannot be answered.
		r3 := askAsync(g, req("r3", "x", nil))
		p := waitPending(t, in, 1)
		time.Sleep(time.Minute)
		synctest.Wait()
		if res := do(in, "POST", "/api/approve", fmt.Sprintf(`{"id":"r3","hash":%q,"by":"alice"}`, p[0].Hash), auth...); res.code != 404 {
			t.Errorf("late approve: %d, want 404", res.code)
		}
		if r := <-r3; !errors.Is(r.err, ErrTimeout) {
			t.Fatalf("r3 = %v, want timeout", r.err)
		}
	})
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestInboxPage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := newInbox(t)
		g := newGate(t, in, Options{Timeout: time.Minute})
		evil := `<script>alert(1)</script>`
		r1 := askAsync(g, &Request{ID: "r1", Tool: "send_email", Args: map[string]any{"to": evil}, Principal: Principal{Agent: "bot"}, Rule: "external-email", Reason: "mail leaves the company"})
		r2 := askAsync(g, req("r2", "delete", nil))
		p := waitPending(t, in, 2)

		// Not logged in: the login form, no cards.
		res := do(in, "GET", "/", "")
		if res.code != 401 || !strings.Contains(res.body, `name="token"`) || strings.Contains(res.body, "send_email") {
			t.Fatalf("page without login: %d %s", res.code, res.body)
		}
		if res.hdr.Get("X-Frame-Options") != "DENY" || !strings.Contains(res.hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("page headers = %v", res.hdr)
		}
		// Wrong token, cross-site login.
		if res := do(in, "POST", "/login", "token=wrong", "Content-Type", "application/x-www-form-urlencoded"); res.code != 401 || res.hdr.Get("Set-Cookie") != "" {
			t.Fatalf("login with a wrong token: %d, cookie %q", res.code, res.hdr.Get("Set-Cookie"))
		}
		if res := do(in, "POST", "/login", "token="+testToken, "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site"); res.code != 403 {
			t.Fatalf("cross-site login: %d, want 403", res.code)
		}
		res = do(in, "POST", "/login", "token="+testToken, "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin")
		if res.code != http.StatusSeeOther {
			t.Fatalf("login: %d %s", res.code, res.body)
		}
		cookie := res.hdr.Get("Set-Cookie")
		if !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
			t.Fatalf("cookie = %q", cookie)
		}
		cookie, _, _ = strings.Cut(cookie, ";")

		res = do(in, "GET", "/", "", "Cookie", cookie)
		if res.code != 200 || !strings.Contains(res.body, "send_email") || !strings.Contains(res.body, "mail leaves the company") {
			t.Fatalf("page: %d %s", res.code, res.body)
		}
		if strings.Contains(res.body, evil) || !strings.Contains(res.body, html.EscapeString(evil)) {
			t.Fatalf("page does not escape arguments:\n%s", res.body)
		}
		m := csrfRE.FindStringSubmatch(res.body)
		if m == nil {
			t.Fatal("no CSRF token in the page")
		}
		csrf := m[1]
		wrongCSRF := "A" + csrf[1:]
		if csrf[0] == 'A' {
			wrongCSRF = "B" + csrf[1:]
		}
		form := func(id, hash, action, token string, extra ...string) string {
			v := url.Values{"id": {id}, "hash": {hash}, "action": {action}, "csrf": {token}, "by": {"carol"}}
			for i := 0; i+1 < len(extra); i += 2 {
				v.Set(extra[i], extra[i+1])
			}
			return v.Encode()
		}
		ct := []string{"Content-Type", "application/x-www-form-urlencoded"}
		var h1, h2 string
		for _, c := range p {
			if c.ID == "r1" {
				h1 = c.Hash
			} else {
				h2 = c.Hash
			}
		}
		for _, c := range []struct {
			name string
			body string
			hdr  []string
			want int
		}{
			{"no cookie", form("r1", h1, "approve", csrf), ct, 401},
			{"no csrf", form("r1", h1, "approve", ""), append(ct, "Cookie", cookie), 403},
			{"wrong csrf", form("r1", h1, "approve", wrongCSRF), append(ct, "Cookie", cookie), 403},
			{"cross-site", form("r1", h1, "approve", csrf), append(ct, "Cookie", cookie, "Sec-Fetch-Site", "cross-site"), 403},
			{"other origin", form("r1", h1, "approve", csrf), append(ct, "Cookie", cookie, "Origin", "https://evil.example"), 403},
			{"bad action", form("r1", h1, "maybe", csrf), append(ct, "Cookie", cookie), 400},
			{"bad grant", form("r1", h1, "approve", csrf, "grant", "tool forever"), append(ct, "Cookie", cookie), 400},
			{"wrong hash", form("r1", h2, "approve", csrf), append(ct, "Cookie", cookie), 409},
		} {
			if res := do(in, "POST", "/decide", c.body, c.hdr...); res.code != c.want {
				t.Errorf("%s: %d %s, want %d", c.name, res.code, res.body, c.want)
			}
		}
		waitPending(t, in, 2)
		same := append(ct, "Cookie", cookie, "Origin", "http://example.com") // httptest's Host
		if res := do(in, "POST", "/decide", form("r1", h1, "approve", csrf, "grant", "tool 1h", "note", "ok"), same...); res.code != http.StatusSeeOther {
			t.Fatalf("approve by form: %d %s", res.code, res.body)
		}
		if res := do(in, "POST", "/decide", form("r2", h2, "deny", csrf), same...); res.code != http.StatusSeeOther {
			t.Fatalf("deny by form: %d %s", res.code, res.body)
		}
		if r := <-r1; r.err != nil || r.out.Verdict.By != "typed:carol" || r.out.Permit == nil || r.out.Permit.Scope != ScopeTool || r.out.Permit.Expires.Sub(r.out.Permit.Created) != time.Hour {
			t.Fatalf("r1 = %+v, %v", r.out, r.err)
		}
		if r := <-r2; !errors.Is(r.err, ErrRejected) {
			t.Fatalf("r2 = %v, want rejected", r.err)
		}
		// The session ends.
		time.Sleep(13 * time.Hour)
		if res := do(in, "GET", "/", "", "Cookie", cookie); res.code != 401 {
			t.Fatalf("page after the session ended: %d", res.code)
		}
	})
}

func TestNewInbox(t *testing.T) {
	if _, err := NewInbox(InboxOptions{Token: "short"}); err == nil {
		t.Error("NewInbox with a short token did not fail")
	}
}

// FuzzInboxRequest sends arbitrary requests, with the right token, to an
// inbox with one waiting request: nothing may panic, and an answer may
// reach the call only when it names the request and its hash.
func FuzzInboxRequest(f *testing.F) {
	hash := fmt.Sprintf("%064x", 42)
	f.Add("POST", "/api/approve", []byte(`{"id":"r1","hash":"`+hash+`","by":"a","grant":{"scope":"tool","duration":"1h"}}`), "")
	f.Add("POST", "/api/deny", []byte(`{"id":"r1","hash":"`+hash+`"}`), "same-origin")
	f.Add("GET", "/api/pending", []byte(nil), "")
	f.Add("POST", "/decide", []byte(`id=r1&hash=`+hash+`&action=approve&csrf=x`), "cross-site")
	f.Add("POST", "/login", []byte(`token=`+testToken), "")
	f.Add("GET", "/", []byte(nil), "")
	f.Fuzz(func(t *testing.T, method, path string, body []byte, site string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#?%") || strings.ContainsAny(method, " \r\n\t") || method == "" {
			return
		}
		in, err := NewInbox(InboxOptions{Token: testToken})
		if err != nil {
			t.Fatal(err)
		}
		wait := &inboxWait{card: Request{ID: "r1", Tool: "x", Hash: hash}, ch: make(chan Verdict, 1)}
		in.store.(*memPending).pending["r1"] = wait
		req, err := http.NewRequest(method, "http://inbox.test"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		if strings.HasPrefix(path, "/decide") || strings.HasPrefix(path, "/login") {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		// A site with a line break cannot be a header value: the request
		// then goes without Sec-Fetch-Site, as a same-site client's would.
		if strings.ContainsAny(site, "\r\n") {
			site = ""
		}
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		rec := httptest.NewRecorder()
		in.ServeHTTP(rec, req)
		io.Copy(io.Discard, rec.Body)
		select {
		case v := <-wait.ch:
			if v.ID != "r1" || v.Hash != hash || rec.Code != 200 {
				t.Fatalf("delivered %+v with status %d", v, rec.Code)
			}
			if v.Grant != nil && v.Grant.Duration < 0 {
				t.Fatalf("delivered a negative grant %+v", v.Grant)
			}
			if site != "" && site != "same-origin" && site != "none" {
				t.Fatalf("delivered a cross-site answer (Sec-Fetch-Site %q)", site)
			}
		default:
		}
	})
}

// login starts a browser session and returns its cookie and CSRF token.
func login(t *testing.T, in *Inbox, hdr ...string) (cookie, csrf string, page string) {
	t.Helper()
	res := do(in, "POST", "/login", "token="+testToken, "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin")
	if res.code != http.StatusSeeOther {
		t.Fatalf("login: %d %s", res.code, res.body)
	}
	cookie, _, _ = strings.Cut(res.hdr.Get("Set-Cookie"), ";")
	res = do(in, "GET", "/", "", append([]string{"Cookie", cookie}, hdr...)...)
	m := csrfRE.FindStringSubmatch(res.body)
	if res.code != 200 || m == nil {
		t.Fatalf("page: %d %s", res.code, res.body)
	}
	return cookie, m[1], res.body
}

// TestInboxRecordsVerifiedIdentity: with an authenticator, the approver
// is the verified identity, whatever name is typed, and an answer without
// one is refused; without one, the typed name is recorded as typed, and no
// name is refused (issue 11, item 6).
func TestInboxRecordsVerifiedIdentity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in, err := NewInbox(InboxOptions{Token: testToken, Authenticate: TrustHeader("X-Forwarded-User")})
		if err != nil {
			t.Fatal(err)
		}
		g := newGate(t, in, Options{Timeout: time.Minute})
		r1 := askAsync(g, req("r1", "refund", map[string]any{"amount": 120}))
		r2 := askAsync(g, req("r2", "refund", map[string]any{"amount": 7}))
		p := waitPending(t, in, 2)
		auth := []string{"Authorization", "Bearer " + testToken}
		body := fmt.Sprintf(`{"id":"r1","hash":%q,"by":"mallory"}`, p[0].Hash)
		for _, h := range [][]string{nil, {"X-Forwarded-User", ""}, {"X-Forwarded-User", "al\u202eice"}} {
			if res := do(in, "POST", "/api/approve", body, append(auth, h...)...); res.code != http.StatusUnauthorized {
				t.Errorf("approve with %q: %d %s, want 401", h, res.code, res.body)
			}
		}
		if res := do(in, "POST", "/api/approve", body, append(auth, "X-Forwarded-User", "alice@acme.com")...); res.code != 200 {
			t.Fatalf("approve: %d %s", res.code, res.body)
		}
		if r := <-r1; r.err != nil || r.out.Verdict.By != "alice@acme.com" {
			t.Fatalf("r1 = %+v, %v; want approved by the verified alice@acme.com", r.out, r.err)
		}

		// The page names the viewer and asks for no name; its form records
		// the identity too.
		cookie, csrf, page := login(t, in, "X-Forwarded-User", "bob@acme.com")
		if !strings.Contains(page, "You are <b>bob@acme.com</b>") || strings.Contains(page, `name="by"`) {
			t.Errorf("page with an identity:\n%s", page)
		}
		form := url.Values{"id": {"r2"}, "hash": {p[1].Hash}, "action": {"deny"}, "csrf": {csrf}, "by": {"mallory"}}.Encode()
		ct := []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", cookie}
		if res := do(in, "POST", "/decide", form, ct...); res.code != http.StatusUnauthorized {
			t.Errorf("form without an identity: %d, want 401", res.code)
		}
		if res := do(in, "POST", "/decide", form, append(ct, "X-Forwarded-User", "bob@acme.com")...); res.code != http.StatusSeeOther {
			t.Fatalf("form: %d %s", res.code, res.body)
		}
		var re *RefusedError
		if r := <-r2; !errors.As(r.err, &re) || re.By != "bob@acme.com" {
			t.Fatalf("r2 = %v, want rejected by the verified bob@acme.com", r.err)
		}
	})
	// Without an authenticator the page's form needs a typed name.
	synctest.Test(t, func(t *testing.T) {
		in := newInbox(t)
		g := newGate(t, in, Options{Timeout: time.Minute})
		r1 := askAsync(g, req("r1", "refund", map[string]any{"amount": 120}))
		p := waitPending(t, in, 1)
		cookie, csrf, page := login(t, in)
		if !strings.Contains(page, `name="by" maxlength="200" required`) {
			t.Errorf("the name field is not required:\n%s", page)
		}
		ct := []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", cookie}
		for _, by := range []string{"", "   "} {
			form := url.Values{"id": {"r1"}, "hash": {p[0].Hash}, "action": {"approve"}, "csrf": {csrf}, "by": {by}}.Encode()
			if res := do(in, "POST", "/decide", form, ct...); res.code != http.StatusBadRequest {
				t.Errorf("form with name %q: %d, want 400", by, res.code)
			}
		}
		waitPending(t, in, 1)
		form := url.Values{"id": {"r1"}, "hash": {p[0].Hash}, "action": {"approve"}, "csrf": {csrf}, "by": {"carol"}}.Encode()
		if res := do(in, "POST", "/decide", form, ct...); res.code != http.StatusSeeOther {
			t.Fatalf("form: %d %s", res.code, res.body)
		}
		if r := <-r1; r.err != nil || r.out.Verdict.By != "typed:carol" {
			t.Fatalf("r1 = %+v, %v; want approved by typed:carol", r.out, r.err)
		}
	})
}

// TestInboxPageHelpsTellCardsApart: the page refreshes itself, says when
// each card expires, shows invisible characters escaped, and shows what
// differs between two pending cards of the same tool (issue 11, item 6).
func TestInboxPageHelpsTellCardsApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := newInbox(t)
		g := newGate(t, in, Options{Timeout: 2 * time.Minute})
		askAsync(g, req("r1", "pay", map[string]any{"to": "acme", "amount": 20, "memo": "rent"}))
		time.Sleep(30 * time.Second)
		askAsync(g, req("r2", "pay", map[string]any{"to": "acme\u202e", "amount": 20000, "memo": "rent"}))
		askAsync(g, req("r3", "other", map[string]any{"x": 1}))
		waitPending(t, in, 3)
		_, _, page := login(t, in)
		for _, want := range []string{
			`http-equiv="refresh"`, "Expires in 1m30s", "Expires in 2m0s",
			`acme\u202e`, // escaped, in the arguments and in the differences
			"<code>args.amount</code></td><td><code>20</code></td><td><code>20000</code>",
			"<code>args.amount</code></td><td><code>20000</code></td><td><code>20</code>",
			"<code>args.to</code></td><td><code>&#34;acme&#34;</code></td><td><code>&#34;acme\\u202e&#34;</code>",
		} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q:\n%s", want, page)
			}
		}
		if strings.Contains(page, "\u202e") {
			t.Error("page shows U+202E raw")
		}
		if strings.Contains(page, "args.memo") || strings.Contains(page, "args.x") {
			t.Errorf("page lists fields that do not differ, or compares cards of different tools:\n%s", page)
		}
		if n := strings.Count(page, `class="diff"`); n != 2 {
			t.Errorf("%d difference boxes, want 2 (r1 against r2, r2 against r1)", n)
		}
		time.Sleep(3 * time.Minute) // every card times out
		synctest.Wait()
	})
}

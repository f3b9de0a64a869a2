package approval

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeStore is a PendingStore that honours the contract: it lists the
// cards not answered, takes one answer per card, and refuses a second
// answer and another call's hash. It records what it was given.
type fakeStore struct {
	mu      sync.Mutex
	cards   []Request
	answers []fakeAnswer
	fail    error // when set, every method returns it
}

type fakeAnswer struct {
	Answer
	approve bool
}

func (f *fakeStore) Pending(context.Context) ([]Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	var out []Request
	for _, c := range f.cards {
		if !f.answered(c.ID) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeStore) answered(id string) bool {
	for _, a := range f.answers {
		if a.ID == id {
			return true
		}
	}
	return false
}

func (f *fakeStore) Answer(_ context.Context, a Answer, approve bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	for _, c := range f.cards {
		switch {
		case c.ID != a.ID:
		case f.answered(a.ID):
			return fmt.Errorf("fake: %w: %q", ErrNotPending, a.ID)
		case c.Hash != a.Hash:
			return fmt.Errorf("fake: %w: %q", ErrHashMismatch, a.ID)
		default:
			f.answers = append(f.answers, fakeAnswer{a, approve})
			return nil
		}
	}
	return fmt.Errorf("fake: %w: %q", ErrNotPending, a.ID)
}

func (f *fakeStore) taken() []fakeAnswer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeAnswer(nil), f.answers...)
}

// TestInboxOverPendingStore: with InboxOptions.Pending, the API and the
// page list the store's cards and deliver answers to it, once, under the
// identity the inbox verified; the token, the cross-origin check and the
// CSRF token still guard every answer.
func TestInboxOverPendingStore(t *testing.T) {
	h1, h2 := fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 2)
	fs := &fakeStore{cards: []Request{
		{ID: "b-1", Tool: "refund", Hash: h1, Args: map[string]any{"amount": 250}, Principal: Principal{Agent: "bot-b"}},
		{ID: "c-1", Tool: "wire", Hash: h2, Principal: Principal{Agent: "bot-c"}},
	}}
	in, err := NewInbox(InboxOptions{Token: testToken, Pending: fs, Authenticate: TrustHeader("X-Forwarded-User")})
	if err != nil {
		t.Fatal(err)
	}
	auth := []string{"Authorization", "Bearer " + testToken}
	if p := in.Pending(); len(p) != 2 || p[0].ID != "b-1" {
		t.Fatalf("Pending() = %+v, want the store's two cards", p)
	}
	res := do(in, "GET", "/api/pending", "", auth...)
	if res.code != 200 || !strings.Contains(res.body, `"id":"b-1"`) || !strings.Contains(res.body, `"id":"c-1"`) {
		t.Fatalf("list: %d %s", res.code, res.body)
	}
	if res := do(in, "GET", "/api/pending", ""); res.code != http.StatusUnauthorized {
		t.Errorf("list without the token: %d, want 401", res.code)
	}

	body := fmt.Sprintf(`{"id":"b-1","hash":%q,"by":"mallory","note":"ok","grant":{"scope":"tool","duration":"10m"}}`, h1)
	user := []string{"X-Forwarded-User", "alice@acme.com"}
	for name, hdr := range map[string][]string{
		"no token":    user,
		"wrong token": append([]string{"Authorization", "Bearer " + testToken + "x"}, user...),
		"cross-site":  append(append([]string{"Sec-Fetch-Site", "cross-site"}, auth...), user...),
		"no identity": auth,
	} {
		if res := do(in, "POST", "/api/approve", body, hdr...); res.code == 200 {
			t.Errorf("approve with %s: 200, want a refusal", name)
		}
	}
	if got := fs.taken(); len(got) != 0 {
		t.Fatalf("refused requests reached the store: %+v", got)
	}
	bad := fmt.Sprintf(`{"id":"b-1","hash":%q}`, h2)
	if res := do(in, "POST", "/api/approve", bad, append(auth, user...)...); res.code != http.StatusConflict {
		t.Errorf("approve with c-1's hash: %d %s, want 409", res.code, res.body)
	}
	if res := do(in, "POST", "/api/approve", body, append(auth, user...)...); res.code != 200 {
		t.Fatalf("approve: %d %s", res.code, res.body)
	}
	res = do(in, "POST", "/api/approve", body, append(auth, "X-Forwarded-User", "bob@acme.com")...)
	if res.code != http.StatusNotFound || !strings.Contains(res.body, "no call is waiting") {
		t.Errorf("second approve: %d %s, want 404 no call is waiting", res.code, res.body)
	}
	got := fs.taken()
	if len(got) != 1 || !got[0].approve || got[0].By != "alice@acme.com" || got[0].Note != "ok" ||
		got[0].Grant == nil || got[0].Grant.Scope != ScopeTool || got[0].Grant.Duration != 10*time.Minute {
		t.Fatalf("store took %+v, want one approval by the verified alice@acme.com with the grant", got)
	}

	// The page lists what is left; its form (cookie, CSRF) denies it.
	cookie, csrf, page := login(t, in, user...)
	if strings.Contains(page, "b-1") || !strings.Contains(page, "c-1") || !strings.Contains(page, "bot-c") {
		t.Fatalf("page does not list exactly the waiting c-1:\n%s", page)
	}
	ct := []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", cookie, "X-Forwarded-User", "bob@acme.com"}
	form := url.Values{"id": {"c-1"}, "hash": {h2}, "action": {"deny"}, "note": {"no"}}
	if res := do(in, "POST", "/decide", form.Encode()+"&csrf=wrong", ct...); res.code != http.StatusForbidden {
		t.Errorf("form with a bad CSRF token: %d, want 403", res.code)
	}
	form.Set("csrf", csrf)
	if res := do(in, "POST", "/decide", form.Encode(), ct...); res.code != http.StatusSeeOther {
		t.Fatalf("form: %d %s", res.code, res.body)
	}
	if got := fs.taken(); len(got) != 2 || got[1].approve || got[1].ID != "c-1" || got[1].By != "bob@acme.com" || got[1].Grant != nil {
		t.Fatalf("store took %+v, want c-1 denied by the verified bob@acme.com", got)
	}
	if res := do(in, "POST", "/decide", form.Encode(), ct...); res.code != http.StatusNotFound {
		t.Errorf("second form answer: %d, want 404", res.code)
	}

	// The store is not an Approver: the Inbox cannot hold calls itself,
	// and says so instead of waiting for an answer nobody can give.
	g := newGate(t, in, Options{Timeout: time.Minute})
	_, err = g.Ask(context.Background(), req("x", "refund", nil))
	if !errors.Is(err, ErrApprover) || !strings.Contains(err.Error(), "not an Approver") {
		t.Fatalf("Ask through an inbox over a non-Approver store = %v, want ErrApprover", err)
	}
}

// TestInboxPendingStoreFails: a store that cannot be read or written
// gives 503 on the API and the page, and no answer is claimed delivered.
func TestInboxPendingStoreFails(t *testing.T) {
	fs := &fakeStore{fail: errors.New("connection refused to db.internal:5432")}
	in, err := NewInbox(InboxOptions{Token: testToken, Pending: fs})
	if err != nil {
		t.Fatal(err)
	}
	auth := []string{"Authorization", "Bearer " + testToken}
	if res := do(in, "GET", "/api/pending", "", auth...); res.code != http.StatusServiceUnavailable {
		t.Errorf("list: %d %s, want 503", res.code, res.body)
	}
	if res := do(in, "GET", "/", "", auth...); res.code != http.StatusServiceUnavailable ||
		!strings.Contains(res.body, "cannot be read") || strings.Contains(res.body, "No call is waiting") {
		t.Errorf("page: %d %s, want 503 saying the requests cannot be read", res.code, res.body)
	}
	body := fmt.Sprintf(`{"id":"b-1","hash":%q,"by":"alice"}`, fmt.Sprintf("%064x", 1))
	res := do(in, "POST", "/api/approve", body, auth...)
	if res.code != http.StatusServiceUnavailable || strings.Contains(res.body, "db.internal") {
		t.Errorf("approve: %d %s, want 503 without the store's error", res.code, res.body)
	}
	if in.Pending() != nil {
		t.Error("Pending() of an unreadable store is not nil")
	}
}

// TestInboxesShareAStore: two inboxes over one store that is also an
// Approver (two processes over one database): a call asked through one
// is listed and answered through the other, once.
func TestInboxesShareAStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := &memPending{clock: time.Now, pending: map[string]*inboxWait{}}
		inA, err := NewInbox(InboxOptions{Token: testToken, Pending: shared})
		if err != nil {
			t.Fatal(err)
		}
		inB, err := NewInbox(InboxOptions{Token: testToken, Pending: shared})
		if err != nil {
			t.Fatal(err)
		}
		g := newGate(t, inB, Options{Timeout: time.Minute})
		res := askAsync(g, req("r1", "refund", map[string]any{"amount": 120}))
		p := waitPending(t, inA, 1)
		auth := []string{"Authorization", "Bearer " + testToken}
		body := fmt.Sprintf(`{"id":"r1","hash":%q,"by":"carol"}`, p[0].Hash)
		if r := do(inA, "POST", "/api/approve", body, auth...); r.code != 200 {
			t.Fatalf("approve through A: %d %s", r.code, r.body)
		}
		if r := <-res; r.err != nil || r.out.Verdict.By != "typed:carol" {
			t.Fatalf("the call asked through B = %+v, %v; want approved by typed:carol", r.out, r.err)
		}
		if r := do(inB, "POST", "/api/approve", body, auth...); r.code != http.StatusNotFound {
			t.Errorf("second approve through B: %d, want 404", r.code)
		}
	})
}

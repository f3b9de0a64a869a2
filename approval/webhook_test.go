package approval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// inProcess returns a client that serves requests with h, in process.
func inProcess(h http.Handler) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Result(), nil
	})}
}

// receiver is the other end of a webhook: it checks each card's signature
// and hands the card to the test.
type receiver struct {
	t     *testing.T
	cards chan *Request
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := VerifyWebhook(testSecret, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, time.Now(), time.Minute); err != nil {
		rc.t.Errorf("card signature: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		rc.t.Errorf("card Content-Type = %q", ct)
	}
	var card Request
	if err := json.Unmarshal(body, &card); err != nil {
		rc.t.Errorf("card: %v", err)
	}
	rc.cards <- &card
	w.WriteHeader(http.StatusAccepted)
}

// post sends a callback body with the given headers to w and returns the status.
func post(w http.Handler, ts, sig string, body []byte) int {
	req := httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(body))
	if ts != "" {
		req.Header.Set(HeaderTimestamp, ts)
	}
	if sig != "" {
		req.Header.Set(HeaderSignature, sig)
	}
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, req)
	return rec.Code
}

func callbackBody(t *testing.T, c Callback) []byte {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signedPost(t *testing.T, w http.Handler, c Callback) int {
	t.Helper()
	body := callbackBody(t, c)
	ts, sig := SignWebhook(testSecret, time.Now(), body)
	return post(w, ts, sig, body)
}

func newWebhook(t *testing.T, rc *receiver) *Webhook {
	t.Helper()
	w, err := NewWebhook("https://approvals.example/cards", testSecret, WebhookOptions{Client: inProcess(rc), MaxSkew: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

type askResult struct {
	out Outcome
	err error
}

func askAsync(g *Gate, r *Request) chan askResult {
	ch := make(chan askResult, 1)
	go func() {
		out, err := g.Ask(context.Background(), r)
		ch <- askResult{out, err}
	}()
	return ch
}

func TestWebhookApproveAndReject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &receiver{t: t, cards: make(chan *Request, 1)}
		w := newWebhook(t, rc)
		g := newGate(t, w, Options{Timeout: time.Minute})

		res := askAsync(g, req("r1", "refund", map[string]any{"amount": 120}))
		card := <-rc.cards
		if card.ID != "r1" || card.Tool != "refund" || !validHash(card.Hash) || card.Deadline.IsZero() {
			t.Fatalf("card = %+v", card)
		}
		if code := signedPost(t, w, Callback{ID: card.ID, Hash: card.Hash, Approved: true, By: "alice", Nonce: "n1",
			Grant: &Grant{ScopeTool, 10 * time.Minute}}); code != http.StatusOK {
			t.Fatalf("callback status = %d, want 200", code)
		}
		r := <-res
		if r.err != nil || r.out.Verdict.By != "alice" || r.out.Permit == nil || r.out.Permit.Scope != ScopeTool {
			t.Fatalf("Ask = %+v, %v; want approved by alice with a tool grant", r.out, r.err)
		}

		res = askAsync(g, req("r2", "delete", nil))
		card = <-rc.cards
		if code := signedPost(t, w, Callback{ID: card.ID, Hash: card.Hash, By: "bob", Note: "no", Nonce: "n2"}); code != http.StatusOK {
			t.Fatalf("callback status = %d", code)
		}
		if r := <-res; !errors.Is(r.err, ErrRejected) {
			t.Fatalf("Ask = %v, want rejected", r.err)
		}
	})
}

func TestWebhookBadCallbacksAreRejected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &receiver{t: t, cards: make(chan *Request, 1)}
		w := newWebhook(t, rc)
		g := newGate(t, w, Options{Timeout: time.Minute})
		res := askAsync(g, req("r1", "refund", map[string]any{"amount": 120}))
		card := <-rc.cards
		good := Callback{ID: card.ID, Hash: card.Hash, Approved: true, By: "mallory", Nonce: "n1"}
		body := callbackBody(t, good)
		now := time.Now()
		ts, sig := SignWebhook(testSecret, now, body)
		otherTS, otherSig := SignWebhook([]byte("another secret, also 32 bytes..."), now, body)
		staleTS, staleSig := SignWebhook(testSecret, now.Add(-2*time.Minute), body)
		futureTS, futureSig := SignWebhook(testSecret, now.Add(2*time.Minute), body)
		for _, c := range []struct {
			name    string
			ts, sig string
			body    []byte
			want    int
		}{
			{"unsigned", "", "", body, http.StatusUnauthorized},
			{"no timestamp", "", sig, body, http.StatusUnauthorized},
			{"wrong secret", otherTS, otherSig, body, http.StatusUnauthorized},
			{"upper-case hex", ts, strings.ToUpper(sig[:3]) + strings.ToUpper(sig[3:]), body, http.StatusUnauthorized},
			{"upper-case hex digits only", ts, "v1=" + strings.ToUpper(sig[3:]), body, http.StatusUnauthorized},
			{"short signature", ts, sig[:len(sig)-2], body, http.StatusUnauthorized},
			{"no version", ts, sig[3:], body, http.StatusUnauthorized},
			{"stale", staleTS, staleSig, body, http.StatusUnauthorized},
			{"future", futureTS, futureSig, body, http.StatusUnauthorized},
			{"signed other body", ts, sig, bytes.Replace(body, []byte("mallory"), []byte("alice__"), 1), http.StatusUnauthorized},
			{"timestamp with sign", "+" + ts, sig, body, http.StatusUnauthorized},
		} {
			if code := post(w, c.ts, c.sig, c.body); code != c.want {
				t.Errorf("%s: status = %d, want %d", c.name, code, c.want)
			}
		}
		// A correctly signed callback for another hash is refused and not delivered.
		if code := signedPost(t, w, Callback{ID: card.ID, Hash: fmt.Sprintf("%064x", 9), Approved: true, By: "m", Nonce: "n9"}); code != http.StatusConflict {
			t.Errorf("mismatched hash: status = %d, want 409", code)
		}
		// Malformed JSON, even when signed.
		for _, b := range []string{`{`, `{"id":"r1"}`, `{"id":"r1","hash":"` + card.Hash + `","nonce":"x","extra":1}`, `{"id":"r1","hash":"` + card.Hash + `","nonce":"x"} {}`} {
			ts, sig := SignWebhook(testSecret, time.Now(), []byte(b))
			if code := post(w, ts, sig, []byte(b)); code != http.StatusBadRequest {
				t.Errorf("body %s: status = %d, want 400", b, code)
			}
		}
		// Nothing got through: the call is still waiting, and times out.
		r := <-res
		if !errors.Is(r.err, ErrTimeout) {
			t.Fatalf("Ask = %+v, %v; want timeout", r.out, r.err)
		}
		// A late callback, even well signed, finds no call.
		if code := post(w, ts, sig, body); code != http.StatusGone {
			t.Errorf("late callback: status = %d, want 410", code)
		}
		req := httptest.NewRequest(http.MethodGet, "/callback", nil)
		rec := httptest.NewRecorder()
		w.ServeHTTP(rec, req)
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("GET: status = %d, want 405", rec.Code)
		}
	})
}

func TestWebhookReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &receiver{t: t, cards: make(chan *Request, 1)}
		w := newWebhook(t, rc)
		g := newGate(t, w, Options{Timeout: time.Minute})
		res := askAsync(g, req("r1", "refund", map[string]any{"amount": 120}))
		card := <-rc.cards
		body := callbackBody(t, Callback{ID: card.ID, Hash: card.Hash, Approved: true, By: "alice", Nonce: "n1"})
		ts, sig := SignWebhook(testSecret, time.Now(), body)
		if code := post(w, ts, sig, body); code != http.StatusOK {
			t.Fatalf("first callback: %d", code)
		}
		if r := <-res; r.err != nil {
			t.Fatal(r.err)
		}
		// The same callback again, and the same request with a fresh nonce.
		if code := post(w, ts, sig, body); code != http.StatusConflict {
			t.Errorf("replayed callback: status = %d, want 409", code)
		}
		if code := signedPost(t, w, Callback{ID: card.ID, Hash: card.Hash, Approved: true, By: "alice", Nonce: "n2"}); code != http.StatusConflict {
			t.Errorf("second answer to one request: status = %d, want 409", code)
		}
		// Replaying the first callback's nonce on a second call, which has
		// the same arguments and so the same hash, is refused; the call
		// waits and is denied at its deadline.
		res = askAsync(g, req("r2", "refund", map[string]any{"amount": 120}))
		card2 := <-rc.cards
		if card2.Hash != card.Hash {
			t.Fatal("same arguments, different hashes")
		}
		if code := signedPost(t, w, Callback{ID: card2.ID, Hash: card2.Hash, Approved: true, By: "alice", Nonce: "n1"}); code != http.StatusConflict {
			t.Errorf("reused nonce: status = %d, want 409", code)
		}
		if r := <-res; !errors.Is(r.err, ErrTimeout) {
			t.Fatalf("Ask = %v, want timeout", r.err)
		}
	})
}

func TestWebhookPostFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusBadGateway) })
		w, err := NewWebhook("https://approvals.example/cards", testSecret, WebhookOptions{Client: inProcess(down)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = newGate(t, w, Options{}).Ask(t.Context(), req("r1", "x", nil))
		wantRefused(t, err, ErrApprover)
	})
	for _, c := range []struct {
		url    string
		secret []byte
	}{{"", testSecret}, {"https://x", []byte("short")}} {
		if _, err := NewWebhook(c.url, c.secret, WebhookOptions{}); err == nil {
			t.Errorf("NewWebhook(%q, %d bytes) did not fail", c.url, len(c.secret))
		}
	}
}

func TestVerifyWebhook(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"a":1}`)
	ts, sig := SignWebhook(testSecret, now, body)
	if ts != "1800000000" {
		t.Fatalf("timestamp = %s", ts)
	}
	if err := VerifyWebhook(testSecret, ts, sig, body, now.Add(299*time.Second), 5*time.Minute); err != nil {
		t.Fatalf("VerifyWebhook = %v", err)
	}
	for _, c := range []struct{ ts, sig string }{
		{ts, sig[:66]}, {ts, sig + "0"}, {ts, "v2=" + sig[3:]}, {ts, "v1=" + strings.Repeat("g", 64)},
		{"-" + ts, sig}, {strconv.Itoa(1_800_000_000 - 301), sig}, {"99999999999999999999", sig}, {"", sig},
	} {
		if err := VerifyWebhook(testSecret, c.ts, c.sig, body, now, 5*time.Minute); !errors.Is(err, ErrSignature) {
			t.Errorf("VerifyWebhook(%q, %q) = %v, want ErrSignature", c.ts, c.sig, err)
		}
	}
}

// FuzzWebhookCallback feeds arbitrary bodies, correctly signed or not, to
// a webhook with one waiting call: it must never panic, and must deliver
// only a well-formed callback naming the waiting request and its hash.
func FuzzWebhookCallback(f *testing.F) {
	hash := fmt.Sprintf("%064x", 42)
	f.Add([]byte(`{"id":"r1","hash":"`+hash+`","approved":true,"by":"a","nonce":"n"}`), true, "")
	f.Add([]byte(`{"id":"r1","hash":"`+hash+`","approved":true,"by":"a","nonce":"n","grant":{"scope":"tool","duration":"10m"}}`), true, "")
	f.Add([]byte(`{"id":"r1","hash":"`+hash+`","nonce":"n","grant":{"scope":"x","duration":"-1s"}}`), true, "")
	f.Add([]byte(`{"id":"r1"`), false, "v1=00")
	f.Add([]byte(``), false, "")
	f.Fuzz(func(t *testing.T, body []byte, sign bool, sig string) {
		now := time.Unix(1_800_000_000, 0)
		w, err := NewWebhook("https://x", testSecret, WebhookOptions{Clock: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		wait := &webhookWait{hash: hash, ch: make(chan Verdict, 1)}
		w.pending["r1"] = wait
		ts := strconv.FormatInt(now.Unix(), 10)
		if sign {
			ts, sig = SignWebhook(testSecret, now, body)
		}
		code, _ := w.callback(ts, sig, body)
		select {
		case v := <-wait.ch:
			if code != http.StatusOK || !sign || v.ID != "r1" || v.Hash != hash {
				t.Fatalf("delivered %+v with status %d (signed %v)", v, code, sign)
			}
			if v.Grant != nil && v.Grant.Duration < 0 {
				t.Fatalf("delivered a negative grant %+v", v.Grant)
			}
		default:
			if code == http.StatusOK {
				t.Fatal("status 200 without delivery")
			}
		}
	})
}

// TestWebhookOverHTTP runs both directions over real HTTP: the card to a
// receiver, which answers later with a signed callback to the webhook's
// handler.
func TestWebhookOverHTTP(t *testing.T) {
	tr := &http.Transport{}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()

	var callbackURL string
	answered := make(chan int, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := VerifyWebhook(testSecret, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, time.Now(), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var card Request
		json.Unmarshal(body, &card)
		w.WriteHeader(http.StatusAccepted)
		go func() { // a person answers a little later
			cb, _ := json.Marshal(Callback{ID: card.ID, Hash: card.Hash, Approved: true, By: "alice", Note: "over http", Nonce: "n-" + card.ID})
			ts, sig := SignWebhook(testSecret, time.Now(), cb)
			req, _ := http.NewRequest(http.MethodPost, callbackURL, bytes.NewReader(cb))
			req.Header.Set(HeaderTimestamp, ts)
			req.Header.Set(HeaderSignature, sig)
			resp, err := client.Do(req)
			if err != nil {
				answered <- 0
				return
			}
			resp.Body.Close()
			answered <- resp.StatusCode
		}()
	}))
	defer receiver.Close()
	wh, err := NewWebhook(receiver.URL, testSecret, WebhookOptions{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	callbacks := httptest.NewServer(wh)
	defer callbacks.Close()
	callbackURL = callbacks.URL

	g := newGate(t, wh, Options{Timeout: 10 * time.Second})
	out, err := g.Ask(t.Context(), req("r1", "refund", map[string]any{"amount": 120}))
	if err != nil || out.Verdict.By != "alice" || out.Verdict.Note != "over http" {
		t.Fatalf("Ask = %+v, %v", out, err)
	}
	if code := <-answered; code != http.StatusOK {
		t.Fatalf("callback status %d", code)
	}
}

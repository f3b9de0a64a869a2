package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/approval"
)

// A card posted to a webhook by the process where the call waits is
// answered by a signed callback that another process receives: the call
// is released once; a replay, a forged signature and an answer to nothing
// are refused.
func TestWebhookAcrossProcesses(t *testing.T) {
	dbB := testDB(t)                                                                  // where the call waits
	dbA, err := Open(context.Background(), testDSN(t), Options{Schema: dbB.Schema()}) // where the callback lands
	if err != nil {
		t.Fatal(err)
	}
	defer dbA.Close()
	secret := bytes.Repeat([]byte("s"), 32)
	h, err := dbA.Approvals().WebhookHandler(secret, 0)
	if err != nil {
		t.Fatal(err)
	}
	callbacks := httptest.NewServer(h)
	defer callbacks.Close()
	post := func(c approval.Callback, key []byte) int {
		body, _ := json.Marshal(c)
		ts, sig := approval.SignWebhook(key, time.Now(), body)
		req, _ := http.NewRequest(http.MethodPost, callbacks.URL, bytes.NewReader(body))
		req.Header.Set(approval.HeaderTimestamp, ts)
		req.Header.Set(approval.HeaderSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The receiver (a chat bot, say) gets the card and a person approves.
	cards := make(chan approval.Request, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := approval.VerifyWebhook(secret, r.Header.Get(approval.HeaderTimestamp), r.Header.Get(approval.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			t.Errorf("the card's signature: %v", err)
		}
		var card approval.Request
		json.Unmarshal(body, &card)
		cards <- card
	}))
	defer receiver.Close()
	ap := dbB.Approvals()
	ap.Announce = PostWebhook(receiver.URL, secret, nil)
	g, _ := approval.NewGate(ap, approval.Options{Timeout: time.Minute})
	done := make(chan error, 1)
	go func() {
		_, err := g.Ask(context.Background(), &approval.Request{ID: "w-1", Tool: "wire", Principal: approval.Principal{Agent: "bot"}})
		done <- err
	}()
	var card approval.Request
	select {
	case card = <-cards:
	case err := <-done:
		t.Fatalf("Ask returned %v before the card was posted", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no card was posted")
	}
	cb := approval.Callback{ID: card.ID, Hash: card.Hash, Approved: true, By: "alice", Nonce: "nonce-0123456789abcdef"}
	if code := post(cb, bytes.Repeat([]byte("x"), 32)); code != http.StatusUnauthorized {
		t.Fatalf("a forged callback: %d, want 401", code)
	}
	wrong := cb
	wrong.Hash, wrong.Nonce = "1111111111111111111111111111111111111111111111111111111111111111", "nonce-wrong-hash-0001"
	if code := post(wrong, secret); code != http.StatusConflict {
		t.Fatalf("a callback with another hash: %d, want 409", code)
	}
	if code := post(cb, secret); code != http.StatusOK {
		t.Fatalf("the callback: %d, want 200", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the waiting call: %v, want approved", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting call was not released")
	}
	if code := post(cb, secret); code != http.StatusConflict {
		t.Fatalf("a replayed callback: %d, want 409", code)
	}
	cb.Nonce = "nonce-another-one-0002"
	if code := post(cb, secret); code != http.StatusGone {
		t.Fatalf("a second answer: %d, want 410", code)
	}
}

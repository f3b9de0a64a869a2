package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hardstop-labs/agentguard/approval"
)

// PostWebhook returns an Announce function for Approvals that POSTs each
// card, as approval.Webhook does (the card as JSON, signed with secret in
// the approval.HeaderTimestamp and approval.HeaderSignature headers), to
// url. The receiver answers with a signed approval.Callback to
// Approvals.WebhookHandler, served by any process of the fleet. client nil
// means one with a 10-second timeout.
func PostWebhook(url string, secret []byte, client *http.Client) func(ctx context.Context, r *approval.Request) error {
	secret = bytes.Clone(secret)
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return func(ctx context.Context, r *approval.Request) error {
		body, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("approval: postgres: webhook: encoding the card: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("approval: postgres: webhook: %w", err)
		}
		ts, sig := approval.SignWebhook(secret, time.Now(), body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(approval.HeaderTimestamp, ts)
		req.Header.Set(approval.HeaderSignature, sig)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("approval: postgres: webhook: posting the card: %w", err)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("approval: postgres: webhook: posting the card: status %s", resp.Status)
		}
		return nil
	}
}

// WebhookHandler returns an http.Handler that takes signed webhook
// callbacks (approval.Callback, signed as approval.SignWebhook does, with
// a timestamp within maxSkew of now; zero means five minutes) and answers
// the fleet's waiting request through the database: whichever process
// receives the callback, the call waiting in another is released, once.
// A nonce seen before by any process is a replay (409); a request no call
// waits for is 410; a hash that is not the request's is 409; a bad
// signature is 401.
func (a *Approvals) WebhookHandler(secret []byte, maxSkew time.Duration) (http.Handler, error) {
	if len(secret) < 32 {
		return nil, errors.New("approval: postgres: webhook secret shorter than 32 bytes")
	}
	secret = bytes.Clone(secret)
	if maxSkew <= 0 {
		maxSkew = 5 * time.Minute
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "approval: POST a signed callback", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 64<<10))
		if err != nil {
			http.Error(w, "approval: callback too large or unreadable", http.StatusRequestEntityTooLarge)
			return
		}
		code, msg := a.callback(req.Context(), secret, maxSkew, req.Header.Get(approval.HeaderTimestamp), req.Header.Get(approval.HeaderSignature), body)
		if code != http.StatusOK {
			http.Error(w, msg, code)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`+"\n")
	}), nil
}

func (a *Approvals) callback(ctx context.Context, secret []byte, maxSkew time.Duration, ts, sig string, body []byte) (int, string) {
	now := time.Now()
	if err := approval.VerifyWebhook(secret, ts, sig, body, now, maxSkew); err != nil {
		return http.StatusUnauthorized, err.Error()
	}
	c, err := approval.ParseCallback(body)
	if err != nil {
		return http.StatusBadRequest, err.Error()
	}
	// The nonce, once, across the fleet; nonces older than any timestamp
	// that could still pass are forgotten.
	tag, err := a.db.pool.Exec(ctx, `WITH old AS (DELETE FROM approval_nonces WHERE at < $2)
		INSERT INTO approval_nonces (nonce, at) VALUES ($1, $3) ON CONFLICT DO NOTHING`,
		c.Nonce, now.Add(-2*maxSkew), now)
	if err != nil {
		return http.StatusServiceUnavailable, "approval: the fleet's database cannot take the callback"
	}
	if tag.RowsAffected() == 0 {
		return http.StatusConflict, "approval: replayed callback (nonce seen before)"
	}
	err = a.Answer(ctx, approval.Answer{ID: c.ID, Hash: c.Hash, By: c.By, Note: c.Note, Grant: c.Grant}, c.Approved)
	switch {
	case errors.Is(err, ErrNotPending):
		return http.StatusGone, "approval: no call is waiting for this request"
	case errors.Is(err, ErrHashMismatch):
		return http.StatusConflict, "approval: callback hash does not match the request"
	case err != nil:
		return http.StatusServiceUnavailable, "approval: the fleet's database cannot take the callback"
	}
	return http.StatusOK, ""
}

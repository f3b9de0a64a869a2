package approval

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The headers that carry a webhook signature, in both directions.
const (
	HeaderTimestamp = "Agentguard-Timestamp" // Unix seconds, decimal
	HeaderSignature = "Agentguard-Signature" // "v1=" and 64 lowercase hex digits
)

// ErrSignature is returned by VerifyWebhook for a missing, malformed,
// stale or wrong signature.
var ErrSignature = errors.New("approval: bad webhook signature")

// maxCallback is the largest callback body the Webhook reads.
const maxCallback = 64 << 10

// SignWebhook signs body at time t with secret and returns the values of
// the HeaderTimestamp and HeaderSignature headers. The signature is
// "v1=" followed by the lowercase hex HMAC-SHA256, keyed with secret, of
// the timestamp, a '.', and the body.
func SignWebhook(secret []byte, t time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(t.Unix(), 10)
	return timestamp, "v1=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifyWebhook checks a signature made by SignWebhook: the timestamp must
// be decimal Unix seconds within maxSkew of now, and the signature "v1="
// and exactly 64 lowercase hex digits equal (in constant time) to the
// HMAC of timestamp and body. Errors match ErrSignature.
func VerifyWebhook(secret []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	if timestamp == "" || signature == "" {
		return fmt.Errorf("%w: unsigned", ErrSignature)
	}
	if len(timestamp) > 19 {
		return fmt.Errorf("%w: malformed timestamp", ErrSignature)
	}
	for i := 0; i < len(timestamp); i++ {
		if c := timestamp[i]; c < '0' || c > '9' {
			return fmt.Errorf("%w: malformed timestamp", ErrSignature)
		}
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed timestamp", ErrSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("%w: stale timestamp", ErrSignature)
	}
	const prefix = "v1="
	if len(signature) != len(prefix)+64 || signature[:len(prefix)] != prefix || !validHash(signature[len(prefix):]) {
		return fmt.Errorf("%w: malformed signature", ErrSignature)
	}
	got, _ := hex.DecodeString(signature[len(prefix):])
	if !hmac.Equal(got, mac(secret, timestamp, body)) {
		return fmt.Errorf("%w: wrong signature", ErrSignature)
	}
	return nil
}

// Callback is the verdict a webhook receiver sends back, as JSON.
type Callback struct {
	ID       string `json:"id"`   // the request's ID
	Hash     string `json:"hash"` // the request's hash
	Approved bool   `json:"approved"`
	By       string `json:"by"`
	Note     string `json:"note,omitempty"`
	// Nonce is unique per callback (16 or more random bytes, encoded as
	// the receiver likes, at most 128 characters); a nonce seen before is a
	// replay.
	Nonce string `json:"nonce"`
	Grant *Grant `json:"grant,omitempty"`
}

// ParseCallback decodes and checks a callback body: one JSON object with
// no unknown fields, an ID, a 64-hex-digit lowercase hash and a nonce.
func ParseCallback(body []byte) (Callback, error) {
	var c Callback
	if err := decodeOne(body, &c, "callback"); err != nil {
		return Callback{}, err
	}
	switch {
	case c.ID == "" || len(c.ID) > 256:
		return Callback{}, errors.New("approval: callback: missing or oversized id")
	case !validHash(c.Hash):
		return Callback{}, errors.New("approval: callback: hash is not 64 lowercase hex digits")
	case c.Nonce == "" || len(c.Nonce) > 128:
		return Callback{}, errors.New("approval: callback: missing or oversized nonce")
	}
	return c, nil
}

// WebhookOptions configure a Webhook. The zero value uses a client with a
// ten-second timeout, the system clock and a five-minute skew.
type WebhookOptions struct {
	// Client sends the cards. Nil means a client with a 10s timeout.
	Client *http.Client
	// Clock returns the current time, for signatures and for deadlines
	// (give it the Gate's clock). Nil means time.Now.
	Clock func() time.Time
	// MaxSkew is how far a callback's timestamp may be from the clock.
	// Zero means five minutes.
	MaxSkew time.Duration
}

// Webhook is an Approver that POSTs each card to a URL and waits for the
// verdict to arrive as a callback on its ServeHTTP.
//
// The card is the Request as JSON, sent with Content-Type
// application/json and signed with the shared secret (SignWebhook) in the
// HeaderTimestamp and HeaderSignature headers; any status but 2xx refuses
// the request. The callback is a POST of a Callback as JSON, signed the
// same way with the same secret. ServeHTTP answers
//
//	200 the verdict was delivered to its waiting call
//	400 the body is not a valid Callback
//	401 unsigned, badly signed, or a timestamp outside MaxSkew
//	405 not a POST
//	409 a replay (a nonce or request already answered), or a hash that
//	    is not the request's: nothing is delivered
//	410 no call is waiting for this request (unknown, or too late)
//	413 a body over 64 KiB
//
// It is safe for concurrent use; every callback reaches only its own call.
type Webhook struct {
	url     string
	secret  []byte
	client  *http.Client
	clock   func() time.Time
	maxSkew time.Duration

	mu       sync.Mutex
	pending  map[string]*webhookWait
	nonces   map[string]time.Time // nonce → its callback's timestamp
	answered map[string]time.Time // request ID → when to forget it
}

type webhookWait struct {
	hash     string
	deadline time.Time    // zero: none
	ch       chan Verdict // buffered 1; receives at most one verdict
}

var (
	_ Approver     = (*Webhook)(nil)
	_ http.Handler = (*Webhook)(nil)
)

// NewWebhook returns a Webhook that posts cards to url, signing both
// directions with secret (at least 32 bytes).
func NewWebhook(url string, secret []byte, opts WebhookOptions) (*Webhook, error) {
	if url == "" {
		return nil, errors.New("approval: NewWebhook: empty URL")
	}
	if len(secret) < 32 {
		return nil, errors.New("approval: NewWebhook: secret shorter than 32 bytes")
	}
	if opts.MaxSkew < 0 {
		return nil, errors.New("approval: NewWebhook: negative MaxSkew")
	}
	w := &Webhook{url: url, secret: bytes.Clone(secret), client: opts.Client, clock: opts.Clock, maxSkew: opts.MaxSkew,
		pending: map[string]*webhookWait{}, nonces: map[string]time.Time{}, answered: map[string]time.Time{}}
	if w.client == nil {
		w.client = &http.Client{Timeout: 10 * time.Second}
	}
	if w.clock == nil {
		w.clock = time.Now
	}
	if w.maxSkew == 0 {
		w.maxSkew = 5 * time.Minute
	}
	return w, nil
}

// Approve posts r and waits for its callback or the end of ctx.
func (w *Webhook) Approve(ctx context.Context, r *Request) (Verdict, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return Verdict{}, fmt.Errorf("approval: webhook: encoding the card: %w", err)
	}
	wait := &webhookWait{hash: r.Hash, deadline: r.Deadline, ch: make(chan Verdict, 1)}
	w.mu.Lock()
	if _, dup := w.pending[r.ID]; dup || w.answered[r.ID] != (time.Time{}) {
		w.mu.Unlock()
		return Verdict{}, fmt.Errorf("approval: webhook: request %q is already pending or answered", r.ID)
	}
	w.pending[r.ID] = wait
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		if w.pending[r.ID] == wait {
			delete(w.pending, r.ID)
		}
		w.mu.Unlock()
	}()

	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Verdict{}, fmt.Errorf("approval: webhook: %w", err)
	}
	ts, sig := SignWebhook(w.secret, w.clock(), body)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set(HeaderTimestamp, ts)
	hreq.Header.Set(HeaderSignature, sig)
	resp, err := w.client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return Verdict{}, context.Cause(ctx)
		}
		return Verdict{}, fmt.Errorf("approval: webhook: posting the card: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return Verdict{}, fmt.Errorf("approval: webhook: posting the card: status %s", resp.Status)
	}
	select {
	case v := <-wait.ch:
		return v, nil
	case <-ctx.Done():
		return Verdict{}, context.Cause(ctx)
	}
}

// ServeHTTP receives callbacks.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "approval: POST a signed callback", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, req.Body, maxCallback))
	if err != nil {
		http.Error(rw, "approval: callback too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	code, msg := w.callback(req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderSignature), body)
	if code != http.StatusOK {
		http.Error(rw, msg, code)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	io.WriteString(rw, `{"ok":true}`+"\n")
}

// callback checks one callback and delivers it; it returns the HTTP status
// and a message.
func (w *Webhook) callback(timestamp, signature string, body []byte) (int, string) {
	now := w.clock()
	if err := VerifyWebhook(w.secret, timestamp, signature, body, now, w.maxSkew); err != nil {
		return http.StatusUnauthorized, err.Error()
	}
	c, err := ParseCallback(body)
	if err != nil {
		return http.StatusBadRequest, err.Error()
	}
	sec, _ := strconv.ParseInt(timestamp, 10, 64) // checked by VerifyWebhook
	w.mu.Lock()
	defer w.mu.Unlock()
	w.prune(now)
	if _, seen := w.nonces[c.Nonce]; seen {
		return http.StatusConflict, "approval: replayed callback (nonce seen before)"
	}
	w.nonces[c.Nonce] = time.Unix(sec, 0)
	if _, done := w.answered[c.ID]; done {
		return http.StatusConflict, "approval: replayed callback (request already answered)"
	}
	wait, ok := w.pending[c.ID]
	if !ok || !wait.deadline.IsZero() && !now.Before(wait.deadline) {
		return http.StatusGone, "approval: no call is waiting for this request"
	}
	if !hmac.Equal([]byte(c.Hash), []byte(wait.hash)) {
		return http.StatusConflict, "approval: callback hash does not match the request"
	}
	delete(w.pending, c.ID)
	w.answered[c.ID] = now.Add(2 * w.maxSkew)
	wait.ch <- Verdict{Approved: c.Approved, By: c.By, Note: c.Note, ID: c.ID, Hash: c.Hash, Grant: c.Grant}
	return http.StatusOK, ""
}

// prune forgets nonces too old to pass the timestamp check and answered
// requests past their memory. Called with w.mu held.
func (w *Webhook) prune(now time.Time) {
	if len(w.nonces)+len(w.answered) < 1024 {
		return
	}
	for n, t := range w.nonces {
		if now.Sub(t) > 2*w.maxSkew {
			delete(w.nonces, n)
		}
	}
	for id, t := range w.answered {
		if now.After(t) {
			delete(w.answered, id)
		}
	}
}

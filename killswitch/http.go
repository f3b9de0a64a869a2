package killswitch

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// HandlerOptions configure the HTTP handler. Token is required.
type HandlerOptions struct {
	// Token is the bearer token every request must carry in its
	// Authorization header; at least 16 bytes.
	Token string
}

// MinTokenLen is the shortest token NewHandler accepts, in bytes.
const MinTokenLen = 16

const maxBody = 64 << 10

// NewHandler returns an http.Handler that trips, resumes and reports the
// status of sw, for a bearer token. See the package documentation for the
// API; mount it under a prefix with http.StripPrefix.
func NewHandler(sw *Switch, opts HandlerOptions) (http.Handler, error) {
	if sw == nil {
		return nil, errors.New("killswitch: handler: nil Switch")
	}
	if len(opts.Token) < MinTokenLen {
		return nil, fmt.Errorf("killswitch: handler: token of %d bytes, want at least %d", len(opts.Token), MinTokenLen)
	}
	h := &handler{sw: sw, token: sha256.Sum256([]byte(opts.Token))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", h.status)
	mux.HandleFunc("POST /trip", h.trip)
	mux.HandleFunc("POST /resume", h.resume)
	h.mux = mux
	return h, nil
}

type handler struct {
	sw    *Switch
	token [sha256.Size]byte
	mux   *http.ServeMux
}

// ControlRequest is the body of a trip or resume request.
type ControlRequest struct {
	Scope Scope  `json:"scope"`
	Who   string `json:"who"`
	Why   string `json:"why"`
}

// StatusResponse is the body of every successful response: the trips in
// force after the request, broadest first. Error is set when a trip's
// hooks failed (the trip is in force all the same).
type StatusResponse struct {
	Tripped []Halt `json:"tripped"`
	Error   string `json:"error,omitempty"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if auth == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="killswitch"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{"killswitch: missing bearer token"})
		return
	}
	got := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(got[:], h.token[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="killswitch", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{"killswitch: invalid bearer token"})
		return
	}
	h.mux.ServeHTTP(w, r)
}

type errorBody struct {
	Error string `json:"error"`
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, StatusResponse{Tripped: h.sw.Status()})
}

func (h *handler) trip(w http.ResponseWriter, r *http.Request) {
	req, ok := readControl(w, r)
	if !ok {
		return
	}
	if req.Why == "" {
		req.Why = "tripped over HTTP"
	}
	resp := StatusResponse{}
	if err := h.sw.Trip(req.Scope, req.Who, req.Why); err != nil {
		resp.Error = err.Error()
	}
	resp.Tripped = h.sw.Status()
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) resume(w http.ResponseWriter, r *http.Request) {
	req, ok := readControl(w, r)
	if !ok {
		return
	}
	if req.Why == "" {
		req.Why = "resumed over HTTP"
	}
	if err := h.sw.Resume(req.Scope, req.Who, req.Why); err != nil {
		writeJSON(w, http.StatusConflict, errorBody{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, StatusResponse{Tripped: h.sw.Status()})
}

func readControl(w http.ResponseWriter, r *http.Request) (ControlRequest, bool) {
	var req ControlRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"killswitch: bad request body: " + err.Error()})
		return req, false
	}
	if dec.More() {
		writeJSON(w, http.StatusBadRequest, errorBody{"killswitch: bad request body: more than one JSON value"})
		return req, false
	}
	if req.Who == "" {
		req.Who = "http:" + r.RemoteAddr
	}
	return req, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) // the client going away is no concern of ours
}

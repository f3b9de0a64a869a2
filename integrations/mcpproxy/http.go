package mcpproxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
)

// HTTP serves the client side of a Proxy over the streamable HTTP
// transport of MCP, for clients that reach the proxy over the network
// rather than over stdio: a POST carries one JSON-RPC message (a request
// is answered in the response's body as application/json; a notification
// or a response gets 202 Accepted), and a GET opens a stream of
// server-sent events with what the server sends on its own
// (notifications, its requests). It serves one MCP session: the one the
// server behind the proxy has.
//
// Requests from several HTTP clients may be in flight at once: their IDs
// are replaced on the way in and restored on the way out, so that they
// cannot collide. A request with an Origin header other than a loopback
// one is refused (DNS rebinding); listen on a loopback address, or put an
// authenticating proxy in front. HTTP is safe for concurrent use.
type HTTP struct {
	in      *io.PipeWriter // the proxy's ClientIn
	inMu    sync.Mutex
	next    atomic.Int64
	session string

	mu      sync.Mutex
	waiting map[string]chan []byte // by the proxy-side ID
	streams map[chan []byte]struct{}
}

// NewHTTP starts p (Serve) with its client side connected to the returned
// handler and its server side to s (s.ClientIn and s.ClientOut are
// ignored). It serves until ctx ends or Close is called; done receives
// Serve's error.
func NewHTTP(ctx context.Context, p *Proxy, s Streams) (h *HTTP, done <-chan error) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h = &HTTP{in: inW, session: hex.EncodeToString(b), waiting: map[string]chan []byte{}, streams: map[chan []byte]struct{}{}}
	s.ClientIn, s.ClientOut = inR, outW
	errc := make(chan error, 1)
	go func() {
		errc <- p.Serve(ctx, s)
		outW.Close()
	}()
	go h.route(outR)
	return h, errc
}

// Close ends the client side: the proxy finishes what waits and Serve
// returns.
func (h *HTTP) Close() error { return h.in.Close() }

// route reads what the proxy sends the client and hands each message to
// the POST waiting for it or to the event streams.
func (h *HTTP) route(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		if msg, err := parse(line); err == nil && msg.isResponse() {
			h.mu.Lock()
			ch := h.waiting[string(msg.id)]
			delete(h.waiting, string(msg.id))
			h.mu.Unlock()
			if ch != nil {
				ch <- line
			}
			continue // an answer nobody waits for any more is dropped
		}
		h.mu.Lock()
		for st := range h.streams {
			select {
			case st <- line:
			default: // a stream that does not keep up misses messages, never blocks the proxy
			}
		}
		h.mu.Unlock()
	}
}

func (h *HTTP) send(line []byte) error {
	h.inMu.Lock()
	defer h.inMu.Unlock()
	_, err := h.in.Write(append(line, '\n'))
	return err
}

// ServeHTTP serves one request of the streamable HTTP transport.
func (h *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !localOrigin(r.Header.Get("Origin")) {
		http.Error(w, "agentguard mcp-proxy: origin not allowed", http.StatusForbidden)
		return
	}
	if sid := r.Header.Get("Mcp-Session-Id"); sid != "" && sid != h.session {
		http.Error(w, "agentguard mcp-proxy: unknown session", http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodPost:
		h.post(w, r)
	case http.MethodGet:
		h.stream(w, r)
	case http.MethodDelete:
		w.WriteHeader(http.StatusNoContent) // the session lasts as long as the server behind the proxy
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (h *HTTP) post(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<20))
	if err != nil {
		http.Error(w, "agentguard mcp-proxy: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	body = bytes.TrimSpace(body)
	if bytes.ContainsAny(body, "\n\r") {
		// One message per line on the proxy's side: a body with raw
		// newlines between tokens is compacted first.
		var buf bytes.Buffer
		if err := json.Compact(&buf, body); err != nil {
			writeJSON(w, http.StatusBadRequest, errorResponse(nil, codeParse, "agentguard mcp-proxy: "+err.Error()))
			return
		}
		body = buf.Bytes()
	}
	msg, err := parse(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse(nil, codeParse, "agentguard mcp-proxy: refused a message that is not unambiguous JSON-RPC: "+err.Error()))
		return
	}
	if !msg.isRequest() {
		if err := h.send(body); err != nil {
			http.Error(w, "agentguard mcp-proxy: the proxy is closed", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	// Replace the ID, so that requests of several clients cannot collide.
	ours, _ := json.Marshal("http-" + strconv.FormatInt(h.next.Add(1), 10))
	msg.m["id"] = ours
	line, err := json.Marshal(msg.m)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse(msg.id, codeInvalid, "agentguard mcp-proxy: "+err.Error()))
		return
	}
	ch := make(chan []byte, 1)
	h.mu.Lock()
	h.waiting[string(ours)] = ch
	h.mu.Unlock()
	if err := h.send(line); err != nil {
		h.mu.Lock()
		delete(h.waiting, string(ours))
		h.mu.Unlock()
		http.Error(w, "agentguard mcp-proxy: the proxy is closed", http.StatusServiceUnavailable)
		return
	}
	select {
	case ans := <-ch:
		out, err := object(ans)
		if err != nil {
			http.Error(w, "agentguard mcp-proxy: bad answer", http.StatusBadGateway)
			return
		}
		out["id"] = msg.id // the client's own ID back
		b, _ := json.Marshal(out)
		if msg.method == "initialize" {
			w.Header().Set("Mcp-Session-Id", h.session)
		}
		writeJSON(w, http.StatusOK, b)
	case <-r.Context().Done():
		h.mu.Lock()
		delete(h.waiting, string(ours))
		h.mu.Unlock()
		// The client gave up: so does the call.
		cancel, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "notifications/cancelled",
			"params": map[string]any{"requestId": json.RawMessage(ours), "reason": "the HTTP client went away"}})
		_ = h.send(cancel)
	}
}

func (h *HTTP) stream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan []byte, 64)
	h.mu.Lock()
	h.streams[ch] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.streams, ch)
		h.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	for {
		select {
		case line := <-ch:
			fmt.Fprintf(w, "event: message\ndata: %s\n\n", line)
			fl.Flush()
		case <-r.Context().Done():
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}

// localOrigin reports whether an Origin header is absent or names a
// loopback host.
func localOrigin(origin string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

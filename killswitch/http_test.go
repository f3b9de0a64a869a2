package killswitch

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const testToken = "s3cret-token-0123456789"

func do(t *testing.T, h http.Handler, method, path, auth, body string) (int, StatusResponse, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var resp StatusResponse
	var eb errorBody
	raw := rec.Body.String()
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal([]byte(raw), &resp); err != nil {
			t.Fatalf("%s %s: bad JSON %q: %v", method, path, raw, err)
		}
	} else if err := json.Unmarshal([]byte(raw), &eb); err != nil || eb.Error == "" {
		t.Fatalf("%s %s: error response %q is not {\"error\": ...}", method, path, raw)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return rec.Code, resp, eb.Error
}

func TestHandlerAuth(t *testing.T) {
	sw := New(Options{})
	h, err := NewHandler(sw, HandlerOptions{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	trip := `{"scope":{"agent":"a"},"who":"eve","why":"x"}`
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong-token-0123456789", "Basic " + testToken, testToken, "Bearer " + testToken + "x"} {
		code, _, msg := do(t, h, "POST", "/trip", auth, trip)
		if code != http.StatusUnauthorized {
			t.Errorf("trip with Authorization %q: code %d, want 401", auth, code)
		}
		if strings.Contains(msg, testToken) {
			t.Errorf("error message %q shows the token", msg)
		}
		code, _, _ = do(t, h, "GET", "/status", auth, "")
		if code != http.StatusUnauthorized {
			t.Errorf("status with Authorization %q: code %d, want 401", auth, code)
		}
	}
	if len(sw.Status()) != 0 {
		t.Fatal("an unauthenticated request tripped the switch")
	}
	if _, err := NewHandler(sw, HandlerOptions{Token: "short"}); err == nil {
		t.Error("NewHandler with a short token = nil error")
	}
	if _, err := NewHandler(nil, HandlerOptions{Token: testToken}); err == nil {
		t.Error("NewHandler with a nil Switch = nil error")
	}
}

func TestHandlerTripResumeStatus(t *testing.T) {
	sw := New(Options{})
	sw.OnTrip("revoke", func(ctx context.Context, h *Halt) error {
		if h.Scope.Agent == "b" {
			return errors.New("vault down")
		}
		return nil
	})
	h, err := NewHandler(sw, HandlerOptions{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + testToken

	code, resp, _ := do(t, h, "GET", "/status", auth, "")
	if code != 200 || len(resp.Tripped) != 0 {
		t.Fatalf("status: %d %+v, want 200 and no trips", code, resp)
	}
	ctx, exit, err := sw.Enter(context.Background(), Key{Agent: "a", Tool: "sql"})
	if err != nil {
		t.Fatal(err)
	}
	code, resp, _ = do(t, h, "POST", "/trip", auth, `{"scope":{"agent":"a"},"who":"alice","why":"loop"}`)
	if code != 200 || len(resp.Tripped) != 1 || resp.Tripped[0].Scope != (Scope{Agent: "a"}) || resp.Tripped[0].Who != "alice" || resp.Tripped[0].Why != "loop" {
		t.Fatalf("trip: %d %+v", code, resp)
	}
	if ctx.Err() == nil || exit() {
		t.Error("a trip over HTTP did not halt the call in flight")
	}
	code, resp, _ = do(t, h, "POST", "/trip", auth, `{"scope":{"agent":"b"}}`)
	if code != 200 || !strings.Contains(resp.Error, "vault down") || len(resp.Tripped) != 2 {
		t.Errorf("trip with a failing hook: %d %+v, want 200 with the hook's error", code, resp)
	}
	if hb, _ := sw.Lookup(Scope{Agent: "b"}); hb.Who != "http:192.0.2.1:1234" || hb.Why != "tripped over HTTP" {
		t.Errorf("defaults: %+v", hb)
	}
	code, _, _ = do(t, h, "GET", "/status", "bearer "+testToken, "")
	if code != 200 {
		t.Errorf("status with a lower-case scheme: %d", code)
	}
	code, resp, _ = do(t, h, "POST", "/resume", auth, `{"scope":{"agent":"a"},"who":"alice","why":"fixed"}`)
	if code != 200 || len(resp.Tripped) != 1 || resp.Tripped[0].Scope.Agent != "b" {
		t.Errorf("resume: %d %+v", code, resp)
	}
	code, _, msg := do(t, h, "POST", "/resume", auth, `{"scope":{"agent":"a"}}`)
	if code != http.StatusConflict || !strings.Contains(msg, "not tripped") {
		t.Errorf("resume again: %d %q, want 409", code, msg)
	}
	for _, tt := range []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/trip", `{"scope":{"agnt":"a"}}`, 400},
		{"POST", "/trip", `{"scope":`, 400},
		{"POST", "/trip", `{} {}`, 400},
		{"GET", "/trip", ``, 405},
		{"POST", "/status", ``, 405},
		{"GET", "/nothing", ``, 404},
	} {
		req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.code {
			t.Errorf("%s %s %s: code %d, want %d", tt.method, tt.path, tt.body, rec.Code, tt.code)
		}
	}
	if st := sw.Status(); len(st) != 1 {
		t.Errorf("bad requests changed the switch: %+v", st)
	}
}

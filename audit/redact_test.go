package audit

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func newRedactor(t *testing.T, r Redaction) *Redactor {
	t.Helper()
	red, err := NewRedactor(r)
	if err != nil {
		t.Fatal(err)
	}
	return red
}

func TestRedactArgs(t *testing.T) {
	red := newRedactor(t, Redaction{Keys: []string{"X-Internal-Id"}, HashKey: []byte("k")})
	args := map[string]any{
		"Password":     "hunter22",
		"max_tokens":   100,
		"github_token": "ghp_abc",
		"headers": map[string]any{
			"AUTHORIZATION": "Bearer abc.def",
			"Accept":        "json",
			"Set-Cookie":    []any{"a=1", "b=2"},
		},
		"accounts": []any{
			map[string]any{"user": "bob", "API-Key": "k-123456"},
			map[string]any{"user": "eve", "api_key": "k-123456"},
		},
		"x_internal_id": 42,
		"prompt":        "use sk-abcdefghijklmnopqrstuv please",
		"count_token":   3,
	}
	got, secrets := red.Args(args)
	if args["Password"] != "hunter22" {
		t.Fatal("Args modified its input")
	}
	enc, _ := appendValue(nil, got, 0)
	s := string(enc)
	for _, secret := range []string{"hunter22", "ghp_abc", "abc.def", "a=1", "b=2", "k-123456", "sk-abcdefghijklmnopqrstuv"} {
		if strings.Contains(s, secret) {
			t.Errorf("%q survived redaction: %s", secret, s)
		}
	}
	for _, kept := range []string{`"max_tokens":100`, `"Accept":"json"`, `"user":"bob"`, `"count_token":3`, `use [REDACTED:`} {
		if !strings.Contains(s, kept) {
			t.Errorf("%s missing from %s", kept, s)
		}
	}
	if !strings.Contains(s, `"x_internal_id":"[REDACTED:`) {
		t.Errorf("extra key (another case and separator) not redacted: %s", s)
	}
	// Equal values correlate.
	a0 := got["accounts"].([]any)[0].(map[string]any)["API-Key"]
	a1 := got["accounts"].([]any)[1].(map[string]any)["api_key"]
	if a0 != a1 || !strings.HasPrefix(a0.(string), "[REDACTED:") || len(a0.(string)) != len("[REDACTED:123456789abc]") {
		t.Errorf("equal secrets got marks %v and %v, want the same 12-digit mark", a0, a1)
	}
	if got["Password"] == a0 {
		t.Error("different secrets got the same mark")
	}
	if len(secrets) < 6 {
		t.Errorf("secrets = %q, want the removed values", secrets)
	}
	// Another key gives other marks; the same key the same.
	other := newRedactor(t, Redaction{HashKey: []byte("other")})
	if other.Mark("hunter22") == red.Mark("hunter22") {
		t.Error("marks do not depend on the hash key")
	}
	if newRedactor(t, Redaction{HashKey: []byte("k")}).Mark("hunter22") != red.Mark("hunter22") {
		t.Error("marks differ under the same hash key")
	}
}

func TestRedactText(t *testing.T) {
	red := newRedactor(t, Redaction{Patterns: []string{`acct-\d{6}`}})
	_, secrets := red.Args(map[string]any{"password": "correct horse", "pin": "12"})
	msg := "login failed for password correct horse (Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.sigsigsig) acct-123456 token=abc123 sk-proj-0123456789abcdefghij"
	got := red.Text(msg, secrets)
	for _, secret := range []string{"correct horse", "eyJhbGciOi", "acct-123456", "abc123", "sk-proj-0123456789abcdefghij"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q survived in %q", secret, got)
		}
	}
	if !strings.Contains(got, "login failed for password") {
		t.Errorf("Text removed too much: %q", got)
	}
	if red.Text("pin 12 ok", secrets) != "pin 12 ok" {
		t.Error("a secret shorter than 4 bytes was scrubbed from text")
	}
	if _, err := NewRedactor(Redaction{Patterns: []string{"("}}); err == nil || !strings.Contains(err.Error(), "Patterns[0]") {
		t.Errorf("bad pattern: %v, want an error naming Patterns[0]", err)
	}
	if _, err := NewRedactor(Redaction{Patterns: []string{"a*"}}); err == nil {
		t.Error("a pattern matching the empty string was accepted")
	}
}

func TestTruncate(t *testing.T) {
	red := newRedactor(t, Redaction{MaxString: 10})
	got, _ := red.Args(map[string]any{"body": strings.Repeat("é", 20)})
	s := got["body"].(string)
	if !strings.HasSuffix(s, "…[truncated, 40 bytes]") || !strings.HasPrefix(s, "ééééé…") {
		t.Errorf("truncated to %q", s)
	}
	none := newRedactor(t, Redaction{MaxString: -1})
	long := strings.Repeat("x", 5000)
	if got, _ := none.Args(map[string]any{"b": long}); got["b"] != long {
		t.Error("MaxString -1 truncated")
	}
}

// TestAppendRedacts: secrets in arguments and in the tool's error never
// reach the file.
func TestAppendRedacts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &Record{Kind: KindResult, Tool: "db",
		Args:    map[string]any{"dsn": "postgres://u@h/db", "Credentials": map[string]any{"user": "u", "secret": "s3cr3t-value"}},
		Outcome: "error", Error: "connect: auth failed with secret s3cr3t-value (Bearer abcdefgh12345)"}
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	l.Close()
	data := readFile(t, path)
	for _, secret := range []string{"s3cr3t-value", "abcdefgh12345"} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%q reached the file: %s", secret, data)
		}
	}
	if !bytes.Contains(data, []byte("connect: auth failed")) {
		t.Errorf("error text lost: %s", data)
	}
}

// FuzzRedactHint checks that the cheap clue search never skips a string
// that the default patterns match.
func FuzzRedactHint(f *testing.F) {
	for _, s := range []string{"Bearer abcdefgh1", "BASIC dXNlcjpwYXNz", "sk-0123456789abcdefgh", "ghp_0123456789abcdefghij",
		"xoxb-1234567890", "AKIAABCDEFGHIJKLMNOP", "eyJhbGciOi.eyJzdWIiOi.sigsigsig", "-----BEGIN RSA PRIVATE KEY-----",
		"PassWord=x", "Api-Key: y", "ACCESS_TOKEN=z", "plain text", "pa\u017fsword=x", "\u212aey=1"} {
		f.Add(s)
	}
	red, err := NewRedactor(Redaction{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if red.defaults.MatchString(s) && !hint(s) {
			t.Fatalf("%q matches the default patterns but has no clue", s)
		}
		if got, want := containsFold(s, "token"), strings.Contains(strings.ToLower(s), "token"); got != want && !strings.ContainsAny(s, "\u212a\u017f") {
			t.Fatalf("containsFold(%q, token) = %v, want %v", s, got, want)
		}
	})
}

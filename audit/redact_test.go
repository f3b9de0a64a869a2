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
// that scrub would change, and that redacting twice changes nothing.
func FuzzRedactHint(f *testing.F) {
	for _, s := range []string{"Bearer abcdefgh1", "BASIC dXNlcjpwYXNz", "sk-0123456789abcdefgh", "ghp_0123456789abcdefghij",
		"xoxb-1234567890", "AKIAABCDEFGHIJKLMNOP", "eyJhbGciOi.eyJzdWIiOi.sigsigsig", "-----BEGIN RSA PRIVATE KEY-----",
		"PassWord=x", "Api-Key: y", "ACCESS_TOKEN=z", "plain text", "pa\u017fsword=x", "\u212aey=1",
		"https://u:p@h/", `{"dbPassword":"x"}`, "sk_live_0123456789ab", "AIza0123456789012345678901234567890123x"} {
		f.Add(s)
	}
	red, err := NewRedactor(Redaction{HashKey: []byte("k"), MaxString: -1}) // a cut string is cut again
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !red.hint(s) && red.scrub(s, func(m string) string { return red.Mark(m) }) != s {
			t.Fatalf("scrub changes %q, which has no clue", s)
		}
		if red.SecretKey(s) && !hasKeyClue(s) {
			t.Fatalf("SecretKey(%q) but it has no clue", s)
		}
		once := red.Value(s)
		if twice := red.Value(once); twice != once {
			t.Fatalf("redacting %q twice: %q, then %q", s, once, twice)
		}
	})
}

// TestSecretKey: keys are read the way people name things.
func TestSecretKey(t *testing.T) {
	red := newRedactor(t, Redaction{Keys: []string{"internal id"}})
	secret := []string{
		"password", "Password", "PASSWORD", "passwd", "pwd", "db_password", "dbPassword", "DBPassword", "db-password",
		"db.password", "dbpassword", "user_pass", "password2", "new_password_confirm", "db_pw", "adminPw", "passwordHash",
		"Ocp-Apim-Subscription-Key", "x-amz-security-token", "x-goog-api-key",
		"secret", "clientSecret", "client_secret", "ClientSecret", "CLIENT_SECRET", "client-secret", "webhook.secret",
		"aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "awsSecretAccessKey", "secretKey", "SecretAccessKey",
		"token", "accessToken", "access_token", "AccessToken", "apiToken", "api_token", "refreshToken", "id_token",
		"github_token", "GITHUB_TOKEN", "oauth2Token", "accesstoken", "x-auth-token", "sessionToken",
		"apiKey", "api_key", "ApiKey", "APIKey", "API_KEY", "apikey", "x-api-key", "X-Api-Key", "X-API-KEY",
		"privateKey", "private_key", "PRIVATE_KEY", "private.key", "signingKey", "accessKey", "access_key_id",
		"credential", "credentials", "Credentials", "awsCredentials", "creds",
		"auth", "Authorization", "authorization", "Proxy-Authorization", "bearer",
		"cookie", "Cookie", "Set-Cookie", "cookies",
		"session_id", "sessionId", "SessionID", "sessionid", "session-key",
		"otp", "pin", "ssn", "cvv", "card_number", "cardNumber", "jwt",
		"X-Internal-Id", "customerInternalID",
	}
	plain := []string{
		"max_tokens", "maxTokens", "token_count", "tokenCount", "tokens", "input_tokens", "count_token",
		"token_limit", "tokens_used", "max_token", "tokenizer",
		"secret_name", "password_policy", "auth_type", "auth_url", "password_file", "token_expires_at",
		"author", "authors", "passenger", "pinned", "spin", "keyboard", "key", "primary_key", "sort_key",
		"monkey", "session", "session_start", "secretary", "to", "subject", "body", "url", "amount", "dsn",
		"token_url", "authorization_endpoint", "session_duration", "pwdx", "power",
		"", "_", "internal", "id",
	}
	for _, k := range secret {
		if !red.SecretKey(k) {
			t.Errorf("SecretKey(%q) = false, want true", k)
		}
	}
	for _, k := range plain {
		if red.SecretKey(k) {
			t.Errorf("SecretKey(%q) = true, want false", k)
		}
	}
	// A key of many words is read whole.
	long := strings.Repeat("a_", 40) + "password"
	if !red.SecretKey(long) {
		t.Errorf("SecretKey(%q) = false", long)
	}
}

// TestRedactValues: non-string values under secret keys, JSON inside
// strings, URLs and credential shapes with no telling key.
func TestRedactValues(t *testing.T) {
	red := newRedactor(t, Redaction{HashKey: []byte("k")})
	args := map[string]any{
		"pin":         1234,
		"apiKeys":     []any{"k-1", "k-2"},
		"credentials": map[string]any{"user": "u", "x": "hidden-1"},
		"has_token":   true,
		"password":    nil,
		"body":        `{"user":"bob","password":"hunter2-json","nested":{"accessToken":"tok-json"}}`,
		"url":         "https://admin:pw-url-1@db.example.com:5432/x?api_key=q-key-1&page=2",
		"note":        "use AKIAIOSFODNN7EXAMPLE and ghp_0123456789abcdefghijABCDEF and eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.c2lnbmF0dXJlc2ln",
		"header":      "Authorization: Basic dXNlcjpwYXNzd29yZA==",
		"cfg":         "db_password=cfg-pw-1 user=bob",
	}
	got := red.Value(args).(map[string]any)
	enc, err := appendValue(nil, got, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := string(enc)
	for _, secret := range []string{"1234", "k-1", "k-2", "hidden-1", "hunter2-json", "tok-json", "pw-url-1", "q-key-1",
		"AKIAIOSFODNN7EXAMPLE", "ghp_0123456789abcdefghijABCDEF", "eyJhbGciOiJIUzI1", "dXNlcjpwYXNzd29yZA", "cfg-pw-1"} {
		if strings.Contains(s, secret) {
			t.Errorf("%q survived: %s", secret, s)
		}
	}
	for _, kept := range []string{`"has_token":true`, `"password":null`, `\"user\":\"bob\"`, "https://admin:[REDACTED:", "@db.example.com:5432/x?api_key=[REDACTED:", "&page=2", "user=bob"} {
		if !strings.Contains(s, kept) {
			t.Errorf("%s missing from %s", kept, s)
		}
	}
	if !red.Clean(map[string]any{"to": "bob@example.com", "max_tokens": 100, "has_password": false}) {
		t.Error("Clean: a map with nothing secret is not clean")
	}
	if red.Clean(args) {
		t.Error("Clean: a map with secrets is clean")
	}
	// Equal secrets correlate wherever they are found.
	a := red.Value(map[string]any{"password": "same-secret-1"}).(map[string]any)["password"].(string)
	b := red.Value("password=same-secret-1").(string)
	if !strings.Contains(b, a) {
		t.Errorf("the same secret under a key (%s) and in text (%s) got different marks", a, b)
	}
	if red.Value(got).(map[string]any)["body"] != got["body"] {
		t.Error("redacting twice changed the value")
	}
}

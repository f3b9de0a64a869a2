package agentguard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
)

// secretShape is a credential as people have them. byValue says it is
// recognisable with no telling key around it.
type secretShape struct {
	name    string
	secret  string
	byValue bool
}

var secretCorpus = []secretShape{
	{"plain password", "hunter2-Corpus-pw", false},
	{"aws secret access key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY", false},
	{"aws access key id", "AKIAIOSFODNN7CORPUS1", true},
	{"aws session key id", "ASIAY34FZKBOKMUTVV7A", true},
	{"github classic", "ghp_Abcdefghijklmnopqrstuvwxyz0123456789", true},
	{"github oauth", "gho_16C7e42F292c6912E7710c838347Ae178B4a", true},
	{"github app", "ghs_16C7e42F292c6912E7710c838347Ae178B4a", true},
	{"github fine-grained", "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV", true},
	{"slack", "xoxb-2048-409612-Corpus7abcdefghij", true},
	{"stripe live", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", true},
	{"stripe restricted", "rk_live_51Habcdefghijklmnopqrstu", true},
	{"stripe test", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", true},
	{"openai", "sk-proj-Corpus0123456789abcdefghijKLMN", true},
	{"google api key", "AIzaSyA-Corpus_0123456789abcdefghijklmn", true},
	{"jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjb3JwdXMifQ.c2lnbmF0dXJlLWNvcnB1cw", true},
	{"bearer", "Bearer corpusOpaqueToken12345", true},
	{"basic", "Basic Y29ycHVzOnBhc3N3b3Jk", true},
	{"pem", "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAcorpusKEYmaterial\n-----END RSA PRIVATE KEY-----", true},
}

// secretKeyStyles are the names people give secrets, in every style.
var secretKeyStyles = []string{
	"password", "dbPassword", "DB_PASSWORD", "db-password", "db.password", "clientSecret", "client_secret",
	"Client-Secret", "aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "awsSecretAccessKey", "apiKey", "api_key",
	"X-Api-Key", "X-API-KEY", "apiToken", "accessToken", "ACCESS_TOKEN", "privateKey", "private_key",
	"Authorization", "Proxy-Authorization", "credentials", "sessionId", "Set-Cookie",
}

// corpusArgs places s in every argument position: under each key style
// at the top level and nested in maps and arrays, inside strings that
// hold JSON, inside URLs (userinfo and a query parameter), and, when it is
// recognisable by value, in text with no telling key. It also puts
// numbers, arrays and objects under secret keys, and counts that must
// stay readable.
func corpusArgs(s secretShape) map[string]any {
	args := map[string]any{}
	nested := map[string]any{}
	// A key style equal to an earlier one but for case (X-Api-Key and
	// X-API-KEY) goes into an object of its own: the guard refuses
	// arguments whose keys collide under case folding.
	variants, nestedVariants := map[string]any{}, map[string]any{}
	var list []any
	for i, k := range secretKeyStyles {
		top, nest := args, nested
		for _, prev := range secretKeyStyles[:i] {
			if strings.EqualFold(prev, k) {
				top, nest = variants, nestedVariants
			}
		}
		top[k] = s.secret
		nest[k] = s.secret
		list = append(list, map[string]any{"user": "bob", k: s.secret})
		body, _ := json.Marshal(map[string]any{"user": "bob", k: s.secret, "deep": map[string]any{k: s.secret}})
		top["body_"+k] = string(body)
	}
	args["case_variants"], nested["case_variants"] = variants, nestedVariants
	args["config"] = map[string]any{"db": nested, "servers": list}
	args["dsn"] = "postgres://admin:" + url.PathEscape(s.secret) + "@db.internal:5432/app"
	args["link"] = "https://api.example.com/v1/items?page=2&api_key=" + url.QueryEscape(s.secret) + "&sort=asc"
	args["callback"] = "https://example.com/cb#access_token=" + url.QueryEscape(s.secret)
	args["header_text"] = "X-Api-Key: " + s.secret
	if s.byValue {
		args["note"] = "please use " + s.secret + " for the deploy"
		args["anything"] = s.secret
		args["items"] = []any{"x", s.secret}
	}
	args["pin"] = 482913
	args["apiKeys"] = []any{s.secret, "second-key-Corpus"}
	args["clientCredentials"] = map[string]any{"id": "client-1", "value": s.secret}
	args["max_tokens"] = 777001
	args["token_count"] = 777002
	return args
}

// leaks returns the forms of s found in out: s itself, its URL escapes
// and its JSON escape.
func leaks(out []byte, s secretShape) []string {
	esc, _ := json.Marshal(s.secret)
	var found []string
	for _, form := range []string{s.secret, url.PathEscape(s.secret), url.QueryEscape(s.secret), string(esc[1 : len(esc)-1])} {
		if i := bytes.Index(out, []byte(form)); i >= 0 {
			found = append(found, string(out[max(0, i-80):min(len(out), i+len(form)+20)]))
		}
	}
	for _, other := range []string{"482913", "second-key-Corpus"} {
		if i := bytes.Index(out, []byte(other)); i >= 0 {
			found = append(found, string(out[max(0, i-80):min(len(out), i+len(other)+20)]))
		}
	}
	return found
}

// TestRedactionCorpus: no secret of the corpus, in any argument position,
// appears in the audit log file, the approval card, the webhook body, or
// a denial's Error and JSON, with the log's redaction and with the
// default redaction of a guard that has no audit log.
func TestRedactionCorpus(t *testing.T) {
	pol := mustPolicy(t, `
version: 1
default: deny
rules:
  - name: no-leaks
    match: call.tool == "deny_me"
    effect: deny
    reason: never
  - name: ask
    match: call.tool == "ask"
    effect: approve
`)
	var bodies bytes.Buffer
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies.Write(b)
		bodies.WriteByte('\n')
		w.WriteHeader(http.StatusServiceUnavailable) // no verdict: the call is refused at once
	}))
	defer hook.Close()
	wh, err := approval.NewWebhook(hook.URL, bytes.Repeat([]byte("k"), 32), approval.WebhookOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	withLog, err := agentguard.New(agentguard.WithPolicy(pol), agentguard.WithAuditFile(path), agentguard.WithApprover(wh))
	if err != nil {
		t.Fatal(err)
	}
	var cards bytes.Buffer
	noLog, err := agentguard.New(agentguard.WithPolicy(pol), agentguard.WithApprover(approval.Func(
		func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
			b, err := json.Marshal(r)
			if err != nil {
				t.Error(err)
			}
			cards.Write(b)
			cards.WriteByte('\n')
			return approval.Verdict{Approved: false, By: "carol", Note: "no"}, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	var denials bytes.Buffer
	for _, g := range []*agentguard.Guard{withLog, noLog} {
		run := func(ctx context.Context, a map[string]any) (string, error) { return "ran", nil }
		for _, tool := range []string{"deny_me", "ask"} {
			fn := agentguard.Wrap(g, tool, run)
			for _, s := range secretCorpus {
				_, err := fn(context.Background(), corpusArgs(s))
				var d *agentguard.DeniedError
				if !errors.As(err, &d) {
					t.Fatalf("%s %s: %v, want a denial", tool, s.name, err)
				}
				j, err := json.Marshal(d)
				if err != nil {
					t.Fatal(err)
				}
				denials.WriteString(d.Error() + "\n")
				denials.Write(j)
				denials.WriteByte('\n')
			}
		}
	}
	if err := withLog.Close(); err != nil {
		t.Fatal(err)
	}
	if err := noLog.Close(); err != nil {
		t.Fatal(err)
	}
	logBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string][]byte{"audit log": logBytes, "webhook body": bodies.Bytes(), "approval card": cards.Bytes(), "denials": denials.Bytes()}
	for name, out := range outputs {
		if len(out) == 0 {
			t.Fatalf("%s: empty, the test saw nothing", name)
		}
		for _, s := range secretCorpus {
			for _, l := range leaks(out, s) {
				t.Errorf("%s: %s leaked: …%s…", name, s.name, l)
			}
		}
	}
	// Redaction keeps what is not secret readable.
	for _, out := range [][]byte{logBytes, bodies.Bytes(), cards.Bytes()} {
		for _, kept := range []string{`"max_tokens":777001`, `"token_count":777002`, "db.internal:5432/app", "page=2"} {
			if !bytes.Contains(out, []byte(kept)) && !bytes.Contains(out, []byte(strings.ReplaceAll(kept, `"`, `\"`))) {
				t.Errorf("%s missing from %.300s", kept, out)
			}
		}
	}
}

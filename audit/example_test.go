package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/hardstop-labs/agentguard/audit"
)

func Example() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.jsonl")

	skey, vkey, err := audit.GenerateKey("example")
	if err != nil {
		log.Fatal(err)
	}
	l, err := audit.Open(path, audit.Options{SignerKey: skey})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	d := &audit.Record{Kind: audit.KindDecision, Call: "c1", Tool: "send_email",
		Args: map[string]any{"to": "bob@example.com", "api_key": "sk-live-0123456789abcdef"}, Decision: "allow"}
	if err := l.Append(ctx, d); err != nil {
		log.Fatal(err)
	}
	fmt.Println("seq", d.Seq, "api_key redacted:", d.Args["api_key"] != "sk-live-0123456789abcdef")
	r := &audit.Record{Kind: audit.KindResult, Call: "c1", Tool: "send_email", Outcome: "ok", Duration: 40 * time.Millisecond}
	if err := l.Append(ctx, r); err != nil {
		log.Fatal(err)
	}
	if err := l.Close(); err != nil { // writes a signed checkpoint
		log.Fatal(err)
	}

	rep, err := audit.Verify(audit.VerifyOptions{Key: vkey}, path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d records, %d checkpoint verified\n", rep.Records, rep.Checkpoints)
	// Output:
	// seq 0 api_key redacted: true
	// 3 records, 1 checkpoint verified
}

func ExampleVerify_tampered() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.jsonl")
	l, _ := audit.Open(path, audit.Options{})
	for _, tool := range []string{"read_file", "send_email", "refund"} {
		l.Append(context.Background(), &audit.Record{Kind: audit.KindDecision, Tool: tool, Decision: "allow"})
	}
	l.Close()

	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(string(data[:100])+"X"+string(data[101:])), 0o600)

	_, err := audit.Verify(audit.VerifyOptions{}, path)
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		fmt.Println("bad record: seq", ve.Seq, "line", ve.Line)
	}
	// Output:
	// bad record: seq 0 line 1
}

// ExampleRedactor_Value redacts a value as the log redacts arguments:
// secret keys in any naming style, a JSON body, a URL's password, and a
// credential with no telling key. Marks depend on the hash key.
func ExampleRedactor_Value() {
	red, err := audit.NewRedactor(audit.Redaction{HashKey: []byte("example key")})
	if err != nil {
		log.Fatal(err)
	}
	args := map[string]any{
		"dbPassword": "hunter2",
		"max_tokens": 1024,
		"body":       `{"user":"bob","clientSecret":"s3cr3t"}`,
		"url":        "https://admin:pw@db.example.com/app",
		"note":       "deploy with AKIAIOSFODNN7EXAMPLE",
	}
	fmt.Println(red.Clean(args))
	out := red.Value(args).(map[string]any)
	for _, k := range []string{"dbPassword", "max_tokens", "body", "url", "note"} {
		fmt.Printf("%s: %v\n", k, out[k])
	}
	fmt.Println(red.Clean(map[string]any{"to": "bob@example.com", "max_tokens": 1024}))
	// Output:
	// false
	// dbPassword: [REDACTED:da0217bdfaa5]
	// max_tokens: 1024
	// body: {"clientSecret":"[REDACTED:4b6919f4398d]","user":"bob"}
	// url: https://admin:[REDACTED:5bfd4baffc34]@db.example.com/app
	// note: deploy with [REDACTED:851f0af5cb06]
	// true
}

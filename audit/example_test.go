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

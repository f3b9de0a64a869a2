package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// block returns the lines of the fenced code block of FORMAT.md that
// starts with "```"+info.
func block(t *testing.T, doc, info string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "```"+info+"\n")
	if !ok {
		t.Fatalf("FORMAT.md has no ```%s block", info)
	}
	body, _, _ := strings.Cut(rest, "```")
	return strings.Split(strings.TrimSuffix(body, "\n"), "\n")
}

// TestFormatExample checks the worked examples of FORMAT.md, of versions
// 3, 2 and 1: their hashes are the SHA-256 of their lines, they verify
// with the example key, the Log writes exactly the version 3 lines for
// those records, and a Log continues the logs of versions 1 and 2.
func TestFormatExample(t *testing.T) {
	docBytes, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(docBytes)
	skey, vkey := exampleKeys(t, doc)
	examples := map[string][]byte{}
	for _, v := range []string{"", "-v2", "-v1"} {
		lines := block(t, doc, "jsonl"+v)
		hashes := block(t, doc, "hashes"+v)
		if len(lines) != 3 || len(hashes) != 3 {
			t.Fatalf("example%s has %d lines and %d hashes, want 3 and 3", v, len(lines), len(hashes))
		}
		zero := strings.Repeat("0", 64)
		for i, line := range lines {
			start := `{"log":`
			switch v {
			case "-v2":
				start = `{"time":`
			case "-v1":
				start = fmt.Sprintf(`{"seq":%d,"time":`, i)
			}
			if !strings.HasPrefix(line, start) {
				t.Errorf("line %d of example%s does not start with %s", i+1, v, start)
			}
			sum := HashLine([]byte(line)).String()
			if sum != hashes[i] {
				t.Errorf("sha256 of line %d of example%s = %s, FORMAT.md says %s", i+1, v, sum, hashes[i])
			}
			wantPrev := zero
			if i > 0 {
				wantPrev = HashLine([]byte(lines[i-1])).String()
			}
			if !strings.HasSuffix(line, `"prev":"`+wantPrev+`"}`) {
				t.Errorf("line %d of example%s does not end with prev %s", i+1, v, wantPrev)
			}
		}
		data := []byte(strings.Join(lines, "\n") + "\n")
		rep, err := verifyBytes(data, VerifyOptions{Key: vkey})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Records != 3 || rep.Checkpoints != 1 || rep.Head.String() != hashes[2] {
			t.Errorf("Verify(example%s) = %+v, want 3 records, 1 checkpoint, head %s", v, rep, hashes[2])
		}
		examples[v] = data
	}
	data := examples[""]

	// The Log writes the same bytes for the same records.
	times := []time.Time{
		time.Date(2026, 11, 30, 9, 15, 0, 123456789, time.UTC),
		time.Date(2026, 11, 30, 9, 15, 0, 456000000, time.UTC),
		time.Date(2026, 11, 30, 9, 15, 1, 0, time.UTC),
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{ID: "0193b6c8-7c4e-7000-8000-00000000a001", SignerKey: skey,
		Redaction: Redaction{HashKey: []byte("example-hash-key")},
		Clock: func() time.Time {
			now := times[0]
			if len(times) > 1 {
				times = times[1:]
			}
			return now
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	who := Principal{Agent: "support-bot", Requester: "alice", Tenant: "acme"}
	call := "0193b6c8-7c4e-7000-8000-00000000c001"
	if err := l.Append(ctx, &Record{Kind: KindDecision, Call: call, Principal: who, Tool: "send_email",
		Args:     map[string]any{"to": "bob@example.com", "api_key": "sk-live-123456", "max_tokens": 200},
		Decision: "allow", Rule: "allow-email", Reason: "email to customers", PolicyVersion: "5e1c",
		Estimate: []Cost{{Unit: "USD", Micros: 1500}}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, &Record{Kind: KindResult, Call: call, Principal: who, Tool: "send_email",
		Outcome: "ok", Duration: 42 * time.Millisecond, Actual: []Cost{{Unit: "USD", Micros: 1200}}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); !bytes.Equal(got, data) {
		t.Errorf("the Log wrote\n%s\nFORMAT.md shows\n%s", got, data)
	}

	// A Log continues the logs of versions 1 and 2 in version 3, as one
	// chain that the old checkpoint and the new one cover.
	for _, v := range []string{"-v1", "-v2"} {
		old := examples[v]
		if err := os.WriteFile(path, old, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err = Open(path, Options{SignerKey: skey, Clock: fakeClock()})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, &Record{Kind: KindHalt, Control: &Control{Scope: "all", Who: "ops", Why: "upgrade"}}); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		got := readFile(t, path)
		if !bytes.HasPrefix(got, old) {
			t.Fatalf("the Log changed the lines of example%s:\n%s", v, got)
		}
		added := splitLines(got[len(old):])
		if len(added) != 2 || !bytes.HasPrefix(added[0], []byte(`{"log":`)) ||
			!bytes.HasSuffix(added[0], []byte(`,"seq":3,"prev":"`+HashLine(bytes.TrimSuffix(splitLines(old)[2], []byte("\n"))).String()+"\"}\n")) {
			t.Fatalf("the Log continued the log of example%s with\n%s", v, got[len(old):])
		}
		rep, err := verifyBytes(got, VerifyOptions{Key: vkey, RequireCovered: true})
		if err != nil || rep.Records != 5 || rep.Checkpoints != 2 {
			t.Fatalf("Verify(example%s continued) = %+v, %v; want 5 records, 2 checkpoints", v, rep, err)
		}
	}
}

func exampleKeys(t *testing.T, doc string) (skey, vkey string) {
	t.Helper()
	for _, line := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(line, "PRIVATE+KEY+example+"):
			skey = line
		case strings.HasPrefix(line, "example+"):
			vkey = line
		}
	}
	if skey == "" || vkey == "" {
		t.Fatal("FORMAT.md has no example key pair")
	}
	return skey, vkey
}

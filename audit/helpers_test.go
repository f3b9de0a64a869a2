package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// testKey is a fixed checkpoint key pair for tests.
var testSKey, testVKey = func() (string, string) {
	s, v, err := GenerateKey("test")
	if err != nil {
		panic(err)
	}
	return s, v
}()

// fakeClock returns a clock that advances by one millisecond on each call.
func fakeClock() func() time.Time {
	t := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Millisecond)
		return t
	}
}

func sampleRecord(i int) *Record {
	return &Record{
		Kind:      KindDecision,
		Call:      fmt.Sprintf("call-%04d", i),
		Principal: Principal{Agent: "bot", Tenant: "acme"},
		Tool:      "send_email",
		Args:      map[string]any{"to": "bob@example.com", "n": int64(i), "tags": []any{"a", "b"}},
		Decision:  "allow",
		Rule:      "ok",
	}
}

// writeLog writes n sample records to a new log in a temporary directory
// and closes it (with a final checkpoint when signed).
func writeLog(t testing.TB, n int, signed bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	opts := Options{ID: "log-1", Clock: fakeClock(), Sync: SyncNever}
	if signed {
		opts.SignerKey = testSKey
	}
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustVerifier(t testing.TB) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(testVKey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// encodeLike encodes r in the version of line: version 1 when line starts
// with {"seq":, version 2 otherwise.
func encodeLike(r *Record, line []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(line, []byte(`{"seq":`)):
		return r.appendJSONV1(nil)
	case bytes.HasPrefix(line, []byte(`{"time":`)):
		return r.appendJSONV2(nil)
	}
	return r.AppendJSON(nil)
}

// mixVersions rewrites the log data as a writer of version 1 would have
// written its first v1 records, a writer of version 2 the v1 records
// after them and a writer of version 3 the rest: each record re-encoded
// in its version and chained again, and each checkpoint
// record signed again with testSKey for its new head.
func mixVersions(t testing.TB, data []byte, v1 int) []byte {
	t.Helper()
	return mixVersionsN(t, data, v1, v1)
}

// mixVersionsN is mixVersions with n1 records of version 1, then n2 of
// version 2, then the rest in version 3.
func mixVersionsN(t testing.TB, data []byte, n1, n2 int) []byte {
	t.Helper()
	var out []byte
	var prev Hash
	for i, line := range splitLines(data) {
		r, err := ParseRecord(bytes.TrimSuffix(line, []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		r.Prev = prev
		if r.Kind == KindCheckpoint {
			cp, err := SignCheckpoint(Checkpoint{Log: r.Log, Size: r.Seq, Head: r.Prev, Time: r.Time}, testSKey)
			if err != nil {
				t.Fatal(err)
			}
			r.Checkpoint = string(cp.Note)
		}
		var b []byte
		switch {
		case i < n1:
			b, err = r.appendJSONV1(nil)
		case i < n1+n2:
			b, err = r.appendJSONV2(nil)
		default:
			b, err = r.AppendJSON(nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		prev = HashLine(b)
		out = append(append(out, b...), '\n')
	}
	return out
}

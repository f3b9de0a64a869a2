package audit

import (
	"context"
	"maps"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRedactLabels: a record's labels are redacted as its arguments are,
// with or without a plan (of this log's redactor or another's), and the
// caller's map is left as it was.
// timeKey matches the time key of a line.
var timeKey = regexp.MustCompile(`,"time":"[^"]*"`)

func TestRedactLabels(t *testing.T) {
	labels := map[string]string{"team": "support", "api_key": "sk-live-abcdefghijklmnop", "note": "password=hunter22x"}
	orig := maps.Clone(labels)
	other, err := NewRedactor(Redaction{HashKey: []byte("another key")})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, name := range []string{"no plan", "own plan", "other plan"} {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		l, err := Open(path, Options{ID: "labels", Sync: SyncNever, Redaction: Redaction{HashKey: []byte("key")}})
		if err != nil {
			t.Fatal(err)
		}
		r := sampleRecord(0)
		r.Env, r.Labels = "prod", labels
		switch name {
		case "own plan":
			r.Plan = l.Redactor().Plan("prod", r.Tool, labels, nil)
		case "other plan":
			r.Plan = other.Plan("prod", r.Tool, labels, nil)
		}
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		line := string(readFile(t, path))
		for _, secret := range []string{"sk-live-abcdefghijklmnop", "hunter22x"} {
			if strings.Contains(line, secret) {
				t.Errorf("%s: %q reached the log:\n%s", name, secret, line)
			}
		}
		if !strings.Contains(line, `"team":"support"`) || !strings.Contains(line, `"api_key":"[REDACTED:`) {
			t.Errorf("%s: labels not as expected:\n%s", name, line)
		}
		// The line without its time, which differs.
		lines = append(lines, timeKey.ReplaceAllString(line, ""))
	}
	for i := 1; i < len(lines); i++ {
		if lines[i] != lines[0] {
			t.Errorf("the line differs with a plan:\n%s\nwithout:\n%s", lines[i], lines[0])
		}
	}
	if !maps.Equal(labels, orig) {
		t.Errorf("the caller's labels changed: %v", labels)
	}
	red, _ := NewRedactor(Redaction{})
	if clean := map[string]string{"team": "support"}; !sameMap(red.Labels(clean), clean) {
		t.Error("clean labels were copied")
	}
	// Label by label, what Args makes of the same values as arguments.
	for _, kv := range [][2]string{{"password", ""}, {"password", "hunter22"}, {"api_key", red.Mark("x")},
		{"note", "Bearer abcdefghijklmnopqrstuvwxyz"}, {"note", strings.Repeat("long ", 400)}, {"team", "support"}} {
		args, _ := red.Args(map[string]any{kv[0]: kv[1]})
		if got := red.Labels(map[string]string{kv[0]: kv[1]})[kv[0]]; got != args[kv[0]] {
			t.Errorf("label %s=%.20q redacted to %.40q; as an argument, %.40q", kv[0], kv[1], got, args[kv[0]])
		}
	}
}

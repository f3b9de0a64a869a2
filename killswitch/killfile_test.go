package killswitch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKillFile(t *testing.T) {
	tests := []struct {
		in      string
		want    KillFile
		wantErr string
	}{
		{"", KillFile{}, ""},
		{"runaway refunds", KillFile{Reason: "runaway refunds"}, ""},
		{"  why \r\nagent: a\r\ntool:  t \n\n# note\ntenant: acme\nby: alice\n",
			KillFile{Reason: "why", Scope: Scope{Tenant: "acme", Agent: "a", Tool: "t"}, By: "alice"}, ""},
		{"agent: a", KillFile{Reason: "agent: a"}, ""}, // the first line is always the reason
		{"x\nagent a", KillFile{Reason: "x"}, "line 2"},
		{"x\nagent:", KillFile{Reason: "x"}, "line 2: agent has no value"},
		{"x\nagent: a\nagent: b", KillFile{Reason: "x", Scope: Scope{Agent: "a"}}, "line 3: agent given twice"},
		{"x\nagent: a\tb", KillFile{Reason: "x"}, "line 2: value is not valid UTF-8 text"},
		{"x\nrole: admin", KillFile{Reason: "x"}, `unknown key "role"`},
		{"bell\a and\x00nul", KillFile{Reason: "bell andnul"}, ""},
	}
	for _, tt := range tests {
		got, err := ParseKillFile([]byte(tt.in))
		if got != tt.want {
			t.Errorf("ParseKillFile(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("ParseKillFile(%q) error = %v, want %q", tt.in, err, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrBadKillFile) {
			t.Errorf("ParseKillFile(%q) error %v does not match ErrBadKillFile", tt.in, err)
		}
	}
	long, _ := ParseKillFile([]byte(strings.Repeat("é", MaxReason)))
	if len(long.Reason) > MaxReason || !strings.HasSuffix(long.Reason, "...") || !strings.HasPrefix(long.Reason, "éé") {
		t.Errorf("long reason cut to %d bytes: %q", len(long.Reason), long.Reason[:20])
	}
}

func TestKillFileRoundTrip(t *testing.T) {
	f := KillFile{Reason: "stop", Scope: Scope{Agent: "a", Tool: "t"}, By: "bob"}
	path := filepath.Join(t.TempDir(), "KILL")
	if err := WriteKillFile(path, f); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "stop\nagent: a\ntool: t\nby: bob\n"; string(data) != want {
		t.Errorf("file = %q, want %q", data, want)
	}
	got, err := ParseKillFile(data)
	if err != nil || got != f {
		t.Errorf("round trip = %+v, %v; want %+v", got, err, f)
	}
	for _, bad := range []KillFile{
		{Reason: "two\nlines"},
		{Reason: strings.Repeat("x", MaxReason+1)},
		{Scope: Scope{Agent: "a\nb"}},
		{Scope: Scope{Tool: " t"}},
		{By: "x\ny"},
	} {
		if err := WriteKillFile(path, bad); err == nil {
			t.Errorf("WriteKillFile(%+v) = nil, want an error", bad)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only the kill file", len(entries))
	}
}

func FuzzParseKillFile(f *testing.F) {
	f.Add([]byte("stop\nagent: a\ntool: t\ntenant: x\nby: me\n"))
	f.Add([]byte("x\n# c\n\nagent:a"))
	f.Add([]byte("\xff\xfe\n:"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := ParseKillFile(data)
		if len(kf.Reason) > MaxReason {
			t.Fatalf("reason of %d bytes", len(kf.Reason))
		}
		if err != nil {
			return
		}
		// What parses without error marshals and parses back the same.
		out, merr := kf.Marshal()
		if merr != nil {
			t.Fatalf("Marshal(%+v) = %v", kf, merr)
		}
		back, err := ParseKillFile(out)
		if err != nil || back != kf {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", data, back, err, kf)
		}
	})
}

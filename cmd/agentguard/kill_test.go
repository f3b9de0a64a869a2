package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/killswitch"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestKillResumeStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "KILL")

	code, out, _ := runCmd("status", "--file", path)
	if code != 0 || !strings.Contains(out, "not tripped") {
		t.Fatalf("status with no file: %d %q", code, out)
	}

	code, out, errOut := runCmd("kill", "--file", path, "--agent", "support-bot", "--tool", "refund", "--by", "alice", "--reason", "refund loop")
	if code != 0 || out != "tripped agent=support-bot,tool=refund: refund loop\nkill file: "+path+"\n" {
		t.Fatalf("kill: %d %q %q", code, out, errOut)
	}
	// What the CLI writes is what a trigger acts on.
	sw := killswitch.New(killswitch.Options{})
	tr, err := killswitch.NewFileTrigger(sw, path, killswitch.FileOptions{ResumeOnRemove: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Check(time.Now()); err != nil {
		t.Fatal(err)
	}
	h, ok := sw.Tripped(killswitch.Key{Agent: "support-bot", Tool: "refund"})
	if !ok || h.Why != "refund loop" || !strings.HasPrefix(h.Who, "alice") {
		t.Fatalf("the trigger read %+v, %v", h, ok)
	}
	if _, ok := sw.Tripped(killswitch.Key{Agent: "support-bot", Tool: "email"}); ok {
		t.Error("the tool scope stopped another tool")
	}

	code, out, _ = runCmd("status", "--file", path)
	if code != 1 || out != "tripped agent=support-bot,tool=refund: refund loop\nby: alice\nkill file: "+path+"\n" {
		t.Fatalf("status when tripped: %d %q", code, out)
	}

	code, out, _ = runCmd("resume", "--file", path)
	if code != 0 || !strings.HasPrefix(out, "removed "+path) {
		t.Fatalf("resume: %d %q", code, out)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("resume left the kill file")
	}
	if err := tr.Check(time.Now()); err != nil {
		t.Fatal(err)
	}
	if len(sw.Status()) != 0 {
		t.Error("a ResumeOnRemove trigger did not resume after agentguard resume")
	}
	code, _, errOut = runCmd("resume", "--file", path)
	if code != 1 || !strings.Contains(errOut, "no kill file") {
		t.Errorf("resume with no file: %d %q", code, errOut)
	}
}

func TestKillEverythingDefaultBy(t *testing.T) {
	t.Setenv("USER", "ops")
	path := filepath.Join(t.TempDir(), "KILL")
	if code, out, _ := runCmd("kill", "--file", path, "--reason", "stop all"); code != 0 || !strings.HasPrefix(out, "tripped everything: stop all") {
		t.Fatalf("kill: %d %q", code, out)
	}
	data, _ := os.ReadFile(path)
	kf, err := killswitch.ParseKillFile(data)
	if err != nil || kf.Scope != killswitch.Everything || !strings.HasPrefix(kf.By, "ops") {
		t.Errorf("file = %q: %+v %v", data, kf, err)
	}
}

func TestKillStatusMalformed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "KILL")
	os.WriteFile(path, []byte("halt\nrole: x\n"), 0o644)
	code, out, _ := runCmd("status", "--file", path)
	if code != 1 || !strings.Contains(out, "tripped everything: halt") || !strings.Contains(out, "malformed") {
		t.Errorf("status of a malformed file: %d %q", code, out)
	}
	dir := filepath.Join(t.TempDir(), "dir")
	os.Mkdir(dir, 0o755)
	code, out, _ = runCmd("status", "--file", dir)
	if code != 1 || !strings.Contains(out, "is a directory, not a regular file") {
		t.Errorf("status of a directory: %d %q", code, out)
	}
}

func TestKillUsage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "KILL")
	for _, args := range [][]string{
		{"kill", "--file", path},
		{"kill", "--reason", "x"},
		{"kill", "--file", path, "--reason", "two\nlines"},
		{"kill", "--file", path, "--reason", "x", "extra"},
		{"kill", "--nope"},
		{"resume"},
		{"status"},
	} {
		if code, _, _ := runCmd(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("a usage error wrote the kill file")
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hardstop-labs/agentguard/audit"
)

func auditRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// writeAuditLog writes a log of decisions, signed with the key in skey,
// with its checkpoint also kept in cpFile.
func writeAuditLog(t *testing.T, path, skey, cpFile string) {
	t.Helper()
	opts := audit.Options{SignerKey: skey}
	if cpFile != "" {
		opts.Sinks = []audit.Sink{audit.FileSink(cpFile)}
	}
	l, err := audit.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, r := range []*audit.Record{
		{Kind: audit.KindDecision, Call: "c1", Tool: "read_file", Decision: "allow", Rule: "reads"},
		{Kind: audit.KindResult, Call: "c1", Tool: "read_file", Outcome: "ok"},
		{Kind: audit.KindDecision, Call: "c2", Tool: "refund", Args: map[string]any{"amount": 50}, Decision: "allow", Rule: "refunds"},
		{Kind: audit.KindDecision, Call: "c3", Tool: "refund", Args: map[string]any{"amount": 500}, Decision: "deny", Code: "policy_denied", Stage: "policy", Rule: "big"},
		{Kind: audit.KindDecision, Call: "c4", Tool: "read_file", Decision: "deny", Code: "halted", Stage: "killswitch"},
	} {
		if err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAuditKeygenVerify(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := auditRun(t, "audit", "keygen", "--dir", dir, "ops")
	if code != 0 {
		t.Fatalf("keygen = %d, %s", code, errOut)
	}
	vkey := strings.TrimSpace(out)
	skey, err := os.ReadFile(filepath.Join(dir, "ops.key"))
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(filepath.Join(dir, "ops.key")); info.Mode().Perm() != 0o600 {
		t.Errorf("ops.key mode %v, want 0600", info.Mode().Perm())
	}
	if code, _, _ := auditRun(t, "audit", "keygen", "--dir", dir, "ops"); code != 1 {
		t.Errorf("keygen over an existing key = %d, want 1", code)
	}
	path := filepath.Join(dir, "audit.jsonl")
	cp := filepath.Join(dir, "checkpoint")
	writeAuditLog(t, path, strings.TrimSpace(string(skey)), cp)

	code, out, errOut = auditRun(t, "audit", "verify", "--key", vkey, "--checkpoint", cp, path)
	if code != 0 || !strings.HasPrefix(out, "OK: ") || !strings.Contains(out, "6 records in 1 file,") || !strings.Contains(out, "1 checkpoint verified") {
		t.Fatalf("verify = %d, %q %q", code, out, errOut)
	}
	if code, out, _ := auditRun(t, "audit", "verify", path, "--key-file", filepath.Join(dir, "ops.pub")); code != 0 || !strings.Contains(out, "1 checkpoint verified") {
		t.Errorf("verify --key-file after the log = %d, %q", code, out)
	}

	// Tamper with the refund amount of seq 2.
	data, _ := os.ReadFile(path)
	bad := bytes.Replace(data, []byte(`"amount":50`), []byte(`"amount":5`), 1)
	os.WriteFile(path, bad, 0o600)
	code, out, _ = auditRun(t, "audit", "verify", "--key", vkey, path)
	if code != 1 || !strings.Contains(out, "FAIL: seq 2, "+path+" line 3") {
		t.Errorf("verify of a tampered log = %d, %q; want 1 naming seq 2, line 3", code, out)
	}
	// Truncated: detected against the checkpoint only.
	lines := bytes.SplitAfter(data, []byte("\n"))
	os.WriteFile(path, bytes.Join(lines[:3], nil), 0o600)
	if code, out, _ := auditRun(t, "audit", "verify", "--key", vkey, "--checkpoint", cp, path); code != 1 || !strings.Contains(out, "truncated") {
		t.Errorf("verify of a truncated log = %d, %q; want 1, truncated", code, out)
	}
	if code, out, _ := auditRun(t, "audit", "verify", "--key", vkey, path); code != 1 || !strings.Contains(out, "no checkpoint signed by the key") {
		t.Errorf("verify with a key of a log that lost its only checkpoint = %d, %q; want 1, no checkpoint", code, out)
	}
	if code, out, _ := auditRun(t, "audit", "verify", path); code != 0 || !strings.Contains(out, "prove nothing") {
		t.Errorf("verify without a key of a log without a checkpoint = %d, %q; want 0 saying it proves nothing", code, out)
	}
	// One record reads "1 record", not "1 records".
	os.WriteFile(path, lines[0], 0o600)
	if code, out, _ := auditRun(t, "audit", "verify", path); code != 0 || !strings.Contains(out, ": 1 record in 1 file, ") || !strings.Contains(out, ", 0 checkpoints verified") {
		t.Errorf("verify of a one-record log = %d, %q; want 1 record in 1 file, 0 checkpoints", code, out)
	}
	for _, args := range [][]string{
		{"audit"}, {"audit", "nope"}, {"audit", "verify"}, {"audit", "verify", "--key", "k", "--key-file", "f", path},
		{"audit", "keygen"}, {"audit", "keygen", "a/b"}, {"audit", "replay", path},
	} {
		if code, _, _ := auditRun(t, args...); code != 2 {
			t.Errorf("%q = %d, want 2 (usage)", args, code)
		}
	}
	if code, _, _ := auditRun(t, "audit", "verify", filepath.Join(dir, "missing.jsonl")); code != 1 {
		t.Errorf("verify of a missing log = %d, want 1", code)
	}
}

func TestAuditReplay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	writeAuditLog(t, path, "", "")
	pol := filepath.Join(dir, "new.yaml")
	os.WriteFile(pol, []byte(`
version: 1
default: deny
rules:
  - name: reads
    match: call.tool == "read_file"
    effect: allow
  - name: small-refunds
    match: call.tool == "refund" && call.args.amount < 10.0
    effect: allow
  - name: refunds
    match: call.tool == "refund"
    effect: approve
    reason: refunds need a human
`), 0o600)
	code, out, errOut := auditRun(t, "audit", "replay", "--policy", pol, path)
	if code != 0 {
		t.Fatalf("replay = %d, %s %s", code, out, errOut)
	}
	want := "seq 2 call c2 tool refund: allow (refunds) -> approve (refunds: refunds need a human)\n" +
		"seq 3 call c3 tool refund: deny (big) -> approve (refunds: refunds need a human)\n" +
		"2 of 3 decisions would change under " + pol + " (1 not decided by the policy, skipped)\n"
	if out != want {
		t.Errorf("replay printed\n%s\nwant\n%s", out, want)
	}
	if code, _, _ := auditRun(t, "audit", "replay", "--policy", filepath.Join(dir, "none.yaml"), path); code != 1 {
		t.Errorf("replay with a missing policy = %d, want 1", code)
	}
}

// TestAuditVerifyCoverage: with a key, verify says how many records at the
// end no checkpoint covers, and --require-covered fails on them.
func TestAuditVerifyCoverage(t *testing.T) {
	dir := t.TempDir()
	skey, vkey, err := audit.GenerateKey("ops")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.jsonl")
	l, err := audit.Open(path, audit.Options{SignerKey: skey, CheckpointEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := l.Append(context.Background(), &audit.Record{Kind: audit.KindDecision, Call: "c" + string(rune('0'+i)), Tool: "t", Decision: "allow"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := auditRun(t, "audit", "verify", "--key", vkey, "--require-covered", path); code != 0 || !strings.Contains(out, "every record is covered") {
		t.Fatalf("verify --require-covered of the whole log = %d, %q %q", code, out, errOut)
	}
	// Cut the checkpoint written at Close: seq 4 and 5 are left uncovered.
	data, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(data, []byte("\n"))
	os.WriteFile(path, bytes.Join(lines[:6], nil), 0o600)
	if code, out, _ := auditRun(t, "audit", "verify", "--key", vkey, path); code != 0 || !strings.Contains(out, "the last 2 record(s) are covered by no checkpoint") {
		t.Errorf("verify of a log with an uncovered tail = %d, %q; want 0, saying 2 are uncovered", code, out)
	}
	if code, out, _ := auditRun(t, "audit", "verify", "--require-covered", "--key", vkey, path); code != 1 || !strings.Contains(out, "FAIL: seq 4, "+path+" line 5") || !strings.Contains(out, "not covered") {
		t.Errorf("verify --require-covered of a log with an uncovered tail = %d, %q; want 1 naming seq 4, line 5", code, out)
	}
	if code, _, errOut := auditRun(t, "audit", "verify", "--require-covered", path); code != 2 || !strings.Contains(errOut, "needs --key") {
		t.Errorf("verify --require-covered without a key = %d, %q; want 2", code, errOut)
	}
}

package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hardstop-labs/agentguard/audit"
)

// TestQuickstart runs the quickstart and checks what it prints: the
// decisions of the script, in order, and a verified audit log.
func TestQuickstart(t *testing.T) {
	var out bytes.Buffer
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := run(&out, logPath); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	want := []string{
		"1. model: look up the customer's orders\n   allowed: 2 orders for carol\n",
		"2. model: refund 30 USD\n   allowed: refunded 30.00 USD on A-1001\n",
		"3. model: refund 250 USD\n   allowed: refunded 250.00 USD on A-1002\n",
		"4. model: refund 900 USD\n   denied: agentguard: call to tool \"refund\" with arguments {\"amount\":900,\"order\":\"A-1003\"} was not run (approval_rejected): stopped by \"big-refunds\": rejected by alice@acme.com: too large; escalate to finance.",
		"5. model: clean up the orders table\n   denied: agentguard: call to tool \"db.delete\" with arguments {\"table\":\"orders\"} was not run (policy_denied): stopped by \"no-prod-deletes\"",
		"6. model: email a colleague\n   allowed: sent to dave@acme.com\n",
		"7. model: email the customer's lawyer\n   denied: agentguard: call to tool \"send_email\" with arguments {\"subject\":\"refunds\",\"to\":\"counsel@example.org\"} was not run (policy_denied): stopped by \"external-email\"",
		"8. model: summarise the case again\n   allowed: a summary of the case\n",
		"12. model: summarise the case again\n   allowed: a summary of the case\n",
		"13. model: summarise the case again\n   denied: agentguard: call to tool \"llm.complete\" with arguments {\"text\":\"the case\"} was not run (budget_exceeded): stopped by \"daily-llm-spend\": agent \"support-bot\" has spent 0.05 USD of 0.05 USD per day; this call needs 0.01 USD. It needs budget: a human can raise the cap, or the window must reset. A retry may succeed after 6h0m0s.",
		"audit log: 25 records, hash chain intact, 1 signed checkpoint(s) verified\n",
	}
	last := 0
	for _, w := range want {
		i := strings.Index(got[last:], w)
		if i < 0 {
			t.Fatalf("quickstart output lacks, in order:\n%s\n--- got:\n%s", w, got)
		}
		last += i + len(w)
	}
}

// TestQuickstartKeepsItsLog checks that the log is where the quickstart
// says, and that the command it prints verifies it: with its key, the log
// at its path.
func TestQuickstartKeepsItsLog(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "sub", "audit.jsonl")
	for range 2 { // a second run replaces the first run's log
		var out bytes.Buffer
		if err := run(&out, logPath); err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		got := out.String()
		i := strings.Index(got, "audit verify --key ")
		if i < 0 {
			t.Fatalf("no verify command in:\n%s", got)
		}
		f := strings.Fields(got[i+len("audit verify --key "):])
		if len(f) < 2 || f[1] != logPath || !strings.Contains(got, "kept at "+logPath) {
			t.Fatalf("verify command %q, want the key and %s", f, logPath)
		}
		rep, err := audit.Verify(audit.VerifyOptions{Key: f[0]}, f[1])
		if err != nil || rep.Records != 25 || rep.Checkpoints != 1 {
			t.Fatalf("verify the kept log: %+v, %v", rep, err)
		}
	}
}

// The printed command is read by a real shell as the words it means, even
// when the log's path has a space and a quote in it: pasted, it verifies
// the log.
func TestQuickstartVerifyCommandSurvivesTheShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	logPath := filepath.Join(t.TempDir(), "it's a dir", "a log.jsonl")
	var out bytes.Buffer
	if err := run(&out, logPath); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	const prefix = "  go run ./cmd/agentguard "
	var line string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, prefix) {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no command in:\n%s", out.String())
	}
	// The shell prints each word of the command's arguments on its own line.
	words, err := exec.Command(sh, "-c", `printf '%s\n' `+strings.TrimPrefix(line, prefix)).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	f := strings.Split(strings.TrimSuffix(string(words), "\n"), "\n")
	if len(f) != 5 || f[0] != "audit" || f[1] != "verify" || f[2] != "--key" || f[4] != logPath {
		t.Fatalf("the shell reads %q from %q; want audit verify --key KEY %s", f, line, logPath)
	}
	if rep, err := audit.Verify(audit.VerifyOptions{Key: f[3]}, f[4]); err != nil || rep.Records != 25 {
		t.Fatalf("verify as the shell read it: %+v, %v", rep, err)
	}
}

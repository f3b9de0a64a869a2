package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hardstop-labs/agentguard/killswitch"
)

// TestHelpExitsZero: help, -h and --help print the usage of what they
// follow to stdout and exit 0, wherever they stand, and never act.
func TestHelpExitsZero(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stdout
	}{
		{[]string{"help"}, "usage: agentguard COMMAND"},
		{[]string{"-h"}, "usage: agentguard COMMAND"},
		{[]string{"--help"}, "usage: agentguard COMMAND"},
		{[]string{"help", "policy"}, "agentguard policy check FILE"},
		{[]string{"policy", "--help"}, "agentguard policy check FILE"},
		{[]string{"policy", "check", "--help"}, "agentguard policy check FILE"},
		{[]string{"policy", "check", "-h"}, "agentguard policy check FILE"},
		{[]string{"policy", "test", "policy.yaml", "--help"}, "agentguard policy test FILE CASES"},
		{[]string{"audit", "verify", "--help"}, "agentguard audit verify"},
		{[]string{"approvals", "--help"}, "usage: agentguard approvals"},
		{[]string{"approvals", "list", "-h"}, "usage: agentguard approvals"},
		{[]string{"kill", "--help"}, "usage: agentguard kill"},
		{[]string{"kill", "--file", "/nonexistent/dir/KILL", "--reason", "x", "--help"}, "usage: agentguard kill"},
		{[]string{"status", "-h"}, "usage: agentguard status"},
		{[]string{"mcp-proxy", "--help"}, "usage: agentguard mcp-proxy"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != 0 || !strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), "unknown subcommand") {
			t.Errorf("agentguard %s = %d, stdout %q, stderr %q; want 0 and %q on stdout", strings.Join(tc.args, " "), code, out.String(), errOut.String(), tc.want)
		}
		if strings.Contains(out.String()+errOut.String(), "cannot read") {
			t.Errorf("agentguard %s read a file", strings.Join(tc.args, " "))
		}
	}
	// What follows -- belongs to another program.
	var out, errOut bytes.Buffer
	if code := run([]string{"mcp-proxy", "--", "server", "--help"}, &out, &errOut); code == 0 {
		t.Errorf("mcp-proxy -- server --help = 0, want the proxy's own usage error (no --policy)")
	}
	if code := run(nil, &out, &errOut); code != 2 {
		t.Errorf("no command = %d, want 2", code)
	}
}

// A help word that is a flag's value, or an argument after the first, is
// not a request for help: "kill --reason help" trips the switch. Read as
// help it would print the usage and exit 0, and the operator would believe
// the fleet stopped.
func TestHelpWordAsAValueIsNoHelp(t *testing.T) {
	dir := t.TempDir()
	for i, reason := range []string{"help", "-h", "--help", "-help"} {
		path := filepath.Join(dir, fmt.Sprintf("KILL%d", i))
		code, out, errOut := runCmd("kill", "--file", path, "--reason", reason)
		if code != 0 || strings.Contains(out, "usage") {
			t.Errorf("kill --reason %q = %d, %q %q; want the kill written", reason, code, out, errOut)
		}
		data, err := killswitch.ReadKillFile(path)
		if err != nil {
			t.Errorf("kill --reason %q wrote no kill file: %v", reason, err)
			continue
		}
		if kf, err := killswitch.ParseKillFile(data); err != nil || kf.Reason != reason {
			t.Errorf("kill --reason %q wrote %+v, %v", reason, kf, err)
		}
	}
	// Where it stands as a flag, it is help, and nothing is written.
	path := filepath.Join(dir, "KILL-help")
	for _, args := range [][]string{
		{"kill", "--file", path, "--reason", "x", "--help"},
		{"kill", "--reason=x", "-h", "--file", path},
		{"kill", "help"},
		{"policy", "check", "help"},
		// After a boolean flag, which takes no value, it is help again.
		{"audit", "verify", "--require-covered", "--help"},
		{"approvals", "list", "--json", "-h"},
		{"mcp-proxy", "--hide", "--help"},
	} {
		if code, out, _ := runCmd(args...); code != 0 || !strings.Contains(out, "usage") {
			t.Errorf("%q = %d, %q; want the usage", args, code, out)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("kill --help wrote the kill file")
	}
}

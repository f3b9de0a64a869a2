package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestPolicyCheck(t *testing.T) {
	code, out, errOut := runCLI("policy", "check", "testdata/policy.yaml")
	if code != 0 || errOut != "" {
		t.Fatalf("check good file: exit %d, stderr %q", code, errOut)
	}
	if !strings.HasPrefix(out, "testdata/policy.yaml: ok: 7 rules (1 shadow), 1 limit, 1 budget, version ") || strings.Count(out, "\n") != 1 {
		t.Errorf("check good file: stdout %q", out)
	}

	code, out, errOut = runCLI("policy", "check", "testdata/bad.yaml")
	if code != 1 || out != "" {
		t.Fatalf("check bad file: exit %d, stdout %q", code, out)
	}
	want := []string{
		`policy: testdata/bad.yaml:4:12: rule "x": match: at 1:1: undeclared reference to 'cal'`,
		`policy: testdata/bad.yaml:8:13: rule "y": effect: unknown effect "maybe" (want deny, approve or allow)`,
		`policy: testdata/bad.yaml:10:11: limit #1: rate: bad rate "10/fortnight"`,
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != len(want) {
		t.Fatalf("check bad file: stderr %q, want %d lines", errOut, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i+1, lines[i], w)
		}
	}

	if code, _, errOut := runCLI("policy", "check", "testdata/missing.yaml"); code != 1 || !strings.Contains(errOut, "cannot read") {
		t.Errorf("check missing file: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runCLI("policy", "check"); code != 2 {
		t.Errorf("check without file: exit %d, want 2", code)
	}
	if code, _, _ := runCLI("policy", "frobnicate"); code != 2 {
		t.Errorf("unknown subcommand: exit %d, want 2", code)
	}
}

func TestPolicyTest(t *testing.T) {
	code, out, errOut := runCLI("policy", "test", "testdata/policy.yaml", "testdata/cases.yaml")
	if code != 0 || errOut != "" {
		t.Fatalf("passing cases: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Count(out, "PASS ") != 9 || !strings.HasSuffix(out, "9 passed, 0 failed\n") {
		t.Errorf("passing cases: stdout %q", out)
	}

	code, out, _ = runCLI("policy", "test", "testdata/policy.yaml", "testdata/cases_failing.yaml")
	if code != 1 {
		t.Fatalf("failing cases: exit %d, want 1", code)
	}
	for _, w := range []string{
		"PASS right\n",
		"FAIL wrong effect: got effect approve, want allow\n",
		`FAIL wrong rule: got rule "email", want "external-email"` + "\n",
		"FAIL wrong shadow: got shadow rules [], want [external-email]\n",
		"1 passed, 3 failed\n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("failing cases: stdout %q, want it to contain %q", out, w)
		}
	}

	// A bad cases file and a bad policy are errors, not passes.
	dir := t.TempDir()
	bad := filepath.Join(dir, "cases.yaml")
	if err := os.WriteFile(bad, []byte("- name: x\n  call: {tool: t}\n  expect: {effect: perhaps}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI("policy", "test", "testdata/policy.yaml", bad); code != 1 || !strings.Contains(errOut, `case "x": expect.effect "perhaps"`) {
		t.Errorf("bad cases: exit %d, stderr %q", code, errOut)
	}
	if err := os.WriteFile(bad, []byte("- name: x\n  call: {tool: t, colour: red}\n  expect: {effect: deny}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI("policy", "test", "testdata/policy.yaml", bad); code != 1 || !strings.Contains(errOut, "colour") {
		t.Errorf("unknown field in cases: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI("policy", "test", "testdata/bad.yaml", "testdata/cases.yaml"); code != 1 || !strings.Contains(errOut, `rule "x"`) {
		t.Errorf("bad policy: exit %d, stderr %q", code, errOut)
	}
}

// TestPolicyTestExactIntegers checks that a case's integers reach the
// policy exactly, as the guard delivers them: past 2^53 and above the
// int64 range.
func TestPolicyTestExactIntegers(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	cases := filepath.Join(dir, "cases.yaml")
	if err := os.WriteFile(pol, []byte(`version: 1
default: deny
rules:
  - name: the-account
    match: call.args.account == 9007199254740993 || call.args.account == 18446744073709551615u
    effect: allow
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cases, []byte(`- name: 2^53+1
  call: {tool: pay, args: {account: 9007199254740993}}
  expect: {effect: allow}
- name: 2^53
  call: {tool: pay, args: {account: 9007199254740992}}
  expect: {effect: deny}
- name: 2^64-1
  call: {tool: pay, args: {account: 18446744073709551615}}
  expect: {effect: allow}
- name: 2^64-2
  call: {tool: pay, args: {account: 18446744073709551614}}
  expect: {effect: deny}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI("policy", "test", pol, cases); code != 0 || !strings.HasSuffix(out, "4 passed, 0 failed\n") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestPolicyCheckRefusesWhatNewRefuses: `policy check` passed files that
// New then refused or read otherwise: amounts finer than a micro-unit or
// past int64, a JSON key twice or in another case, a file without its
// version. Each is refused here, with the file and line. Issue 12, item 6.
func TestPolicyCheckRefusesWhatNewRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, src, want string }{
		{"fine.yaml", "version: 1\nbudgets:\n  - {name: b, limit: '1.0000001 USD'}\n", "fine.yaml:3:"},
		{"huge.yaml", "version: 1\nbudgets:\n  - {name: b, limit: '99999999999999999999 USD'}\n", "huge.yaml:3:"},
		{"case.json", "{\"version\": 1,\n \"rules\": [{\"name\": \"r\", \"match\": \"true\", \"effect\": \"deny\", \"EFFECT\": \"allow\"}]}\n", "case.json:2:"},
		{"cut.yaml", "---\n", "cut.yaml:1:"},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.src), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runCLI("policy", "check", path)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("policy check %s: exit %d, stderr %q; want 1 and an error at %s", tc.name, code, errOut, tc.want)
		}
	}
}

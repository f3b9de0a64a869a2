package main

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// want is the output of go run ./examples/killswitch.
const want = `
agent: call 1: report 1
operator: call 2 is in flight; writing the kill file
agent: call 2 halted: agentguard: call to tool "slow_report" with arguments {"value":2} was not run (halted): stopped by "agent=support-bot": refund loop spotted. It needs a human to resume the kill switch. Retrying will not help. Do not try to work around this; tell the user and ask a human to decide.
agent: loop stopped
hook: credentials of agent=support-bot revoked
audit log verified: 6 records, hash chain intact
the calls:
  decision slow_report: allow
  result   slow_report: ok
  decision slow_report: allow
  result   slow_report: halted
the kill switch:
  halt     agent=support-bot by ops (kill-file): refund loop spotted (in-flight calls halted: 1)
  hook     agent=support-bot by ops (kill-file): refund loop spotted (revocation hook revoke-credentials ran)
`

func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	for range 3 { // the output does not depend on timing
		var out strings.Builder
		if err := run(&out); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != strings.TrimPrefix(want, "\n") {
			t.Fatalf("output:\n%s\nwant:\n%s", got, want)
		}
	}
}

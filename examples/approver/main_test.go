package main

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// want is the output of go run ./examples/approver.
const want = `
1. approve
  card: refund map[amount:250 order:A-1], for agent support-bot; rule big-refunds: refunds over 100 need a person
refund A-1: refunded 250.00 on order A-1
2. reject
  card: refund map[amount:5000 order:A-2], for agent support-bot; rule big-refunds: refunds over 100 need a person
refund A-2: denied (approval_rejected): rejected by carol: over 1000 goes to finance
  the model reads: agentguard: call to tool "refund" was not run (approval_rejected): stopped by "big-refunds": rejected by carol: over 1000 goes to finance. It needs a human's approval, which was refused. Retrying will not help. Do not try to work around this; tell the user and ask a human to decide.
3. timeout
  card: refund map[amount:400 order:A-3], for agent support-bot; rule big-refunds: refunds over 100 need a person
refund A-3: denied (approval_timeout): no approval arrived within 100ms
4. always, for 10 minutes
  card: send_email map[subject:your order to:bob@partner.example], for agent support-bot; rule external-email: mail leaves the company
email bob: sent to bob@partner.example
email dan (no card: the grant covers it): sent to dan@partner.example
grant: tool for agent support-bot by carol, until 9:10AM
  card: send_email map[subject:your order to:erin@partner.example], for agent support-bot; rule external-email: mail leaves the company
email erin, 10 minutes later (the grant expired: a new card): sent to erin@partner.example
`

func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != strings.TrimPrefix(want, "\n") {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
}

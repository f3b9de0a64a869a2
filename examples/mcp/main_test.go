package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestExample runs the example and checks what it prints, in order.
func TestExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	want := []string{
		"1. model: look up order A-1\n   allowed: order A-1: 2 items, 250 USD, delivered\n",
		"2. model: delete the customer\n   denied: agentguard: call to tool \"delete_customer\"",
		"(policy_denied)",
		"deleting customer data is never automatic",
		"3. model: refund 250 USD\n   approval card: refund map[amount:250 order:A-1] (refunds over 100 USD need a manager)\n   allowed: refunded 250 USD on A-1\n",
		"audit log: 6 records, hash chain intact\n",
	}
	last := 0
	for _, w := range want {
		i := strings.Index(got[last:], w)
		if i < 0 {
			t.Fatalf("output lacks, in order:\n%s\n--- got:\n%s", w, got)
		}
		last += i + len(w)
	}
}

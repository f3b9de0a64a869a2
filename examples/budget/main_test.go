package main

import (
	"strings"
	"testing"
)

// want is the program's whole output: deterministic, with a fixed clock
// and a scripted model.
const want = `turn 1: 700 tokens in, 250 out: 0.0145 USD (spent 0.0145 USD)
turn 2: 1000 tokens in, 250 out: 0.0175 USD (spent 0.032 USD)
turn 3: 1300 tokens in, 250 out: 0.0205 USD (spent 0.0525 USD)
turn 4: 1600 tokens in, 250 out: 0.0235 USD (spent 0.076 USD)
turn 5: 1900 tokens in, 250 out: 0.0265 USD (spent 0.1025 USD)
turn 6: 2200 tokens in, 250 out: 0.0295 USD (spent 0.132 USD)
turn 7: 2500 tokens in, 250 out: 0.0325 USD (spent 0.1645 USD)
turn 8: 2800 tokens in, 250 out: 0.0355 USD (spent 0.2 USD)
turn 9: 3100 tokens in, 250 out: 0.0385 USD (spent 0.2385 USD)
turn 10: refused by the guard; the model received:
  agentguard: call to tool "llm.complete" was not run (budget_exceeded): stopped by "daily-llm-spend": agent "researcher" has spent 0.2385 USD of 0.25 USD per day; this call needs 0.049 USD. It needs budget: a human can raise the cap, or the window must reset. A retry may succeed after 6h0m0s. Do not try to work around this; tell the user and ask a human to decide.
spent today: 0.2385 USD of the 0.25 USD daily cap
`

func TestRun(t *testing.T) {
	var b strings.Builder
	if err := run(&b); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := b.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	// The loop stopped at the cap: the refused turn is the last, and
	// what was spent is within the cap.
	if !strings.Contains(b.String(), "turn 10: refused by the guard") || strings.Contains(b.String(), "turn 11") {
		t.Errorf("the loop did not stop at turn 10")
	}
}

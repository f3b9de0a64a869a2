package main

import (
	"os"
	"strings"
	"testing"
)

// want is the output of go run ./examples/fleet.
const want = `
3 agent processes share one daily cap of 1.00 USD on llm calls (0.10 USD each) and one kill switch
budget: 10 llm calls ran across the 3 agents, then the shared cap refused each of them
all 3 agents are in the middle of a long_task call
operator: agentguard kill --postgres DSN --reason "fleet demo over"
agent 1: long_task halted mid-call: ErrHalted, stopped by operator: fleet demo over
agent 2: long_task halted mid-call: ErrHalted, stopped by operator: fleet demo over
agent 3: long_task halted mid-call: ErrHalted, stopped by operator: fleet demo over
audit log: 32 records from 3 processes in one hash chain, verified
`

// TestMain runs the agent processes that run starts: they are this test
// binary, run again with agentEnv set.
func TestMain(m *testing.M) {
	if os.Getenv(agentEnv) != "" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestRun(t *testing.T) {
	dsn := os.Getenv("AGENTGUARD_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("AGENTGUARD_TEST_POSTGRES is not set: skipping the fleet example")
	}
	var out strings.Builder
	if err := run(&out, dsn, false); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != strings.TrimPrefix(want, "\n") {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
}

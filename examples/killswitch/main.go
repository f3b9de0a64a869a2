// Command killswitch shows the kill switch stopping an agent mid-call.
//
// An agent runs a slow tool in a loop. After its first call completes,
// while the second is in flight, the program writes a kill file, as
// `agentguard kill --file PATH --agent support-bot --reason "..."` would
// from another shell. The guard watches the file: the call in flight
// returns ErrHalted at once, although the tool ignores its context (it is
// wrapped Preemptive), and the loop stops. The hash-chained audit log shows the trip.
//
//	go run ./examples/killswitch
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "killswitch:", err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	dir, err := os.MkdirTemp("", "agentguard-kill")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	killFile := filepath.Join(dir, "KILL")
	auditFile := filepath.Join(dir, "audit.jsonl")

	pol, err := policy.Parse("policy.yaml", []byte("version: 1\ndefault: allow\n"))
	if err != nil {
		return err
	}
	sw := killswitch.New(killswitch.Options{})
	revoked := make(chan killswitch.Scope, 1)
	sw.OnTrip("revoke-credentials", func(ctx context.Context, h *killswitch.Halt) error {
		revoked <- h.Scope // a real hook would revoke the agent's API keys here
		return nil
	})
	g, err := agentguard.New(
		agentguard.WithPolicy(pol),
		agentguard.WithAuditFile(auditFile), // hash-chained, fsynced
		agentguard.WithKillSwitch(sw),
		agentguard.WithKillFile(killFile, 10*time.Millisecond, killswitch.FileOptions{Who: "kill-file"}),
	)
	if err != nil {
		return err
	}
	defer g.Close()

	// The slow tool ignores its context: only the end of the program
	// releases it. Preemptive runs it on a goroutine of its own, so that
	// the trip still returns to its caller at once.
	started := make(chan int)
	release := make(chan struct{})
	defer close(release)
	report := agentguard.Wrap(g, "slow_report", func(ctx context.Context, n int) (string, error) {
		started <- n
		if n > 1 {
			<-release
		}
		return fmt.Sprintf("report %d", n), nil
	}, agentguard.Preemptive())

	// The operator: once call 2 is in flight, kill the agent from outside.
	operator := make(chan error, 1)
	go func() {
		<-started // call 1
		n := <-started
		fmt.Fprintf(w, "operator: call %d is in flight; writing the kill file\n", n)
		operator <- killswitch.WriteKillFile(killFile, killswitch.KillFile{
			Reason: "refund loop spotted",
			Scope:  killswitch.Scope{Agent: "support-bot"},
			By:     "ops",
		})
	}()

	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "support-bot", Tenant: "acme"})
	for n := 1; ; n++ {
		out, err := report(ctx, n)
		if errors.Is(err, agentguard.ErrHalted) {
			fmt.Fprintf(w, "agent: call %d halted: %v\n", n, err)
			fmt.Fprintln(w, "agent: loop stopped")
			break
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "agent: call %d: %s\n", n, out)
	}
	if err := <-operator; err != nil {
		return err
	}
	fmt.Fprintf(w, "hook: credentials of %s revoked\n", <-revoked)
	if err := g.Close(); err != nil {
		return err
	}

	// The audit trail. The trip is recorded by the switch, the halted
	// call's result by its caller, concurrently: print each kind on its own.
	return printTrail(w, auditFile)
}

func printTrail(w io.Writer, path string) error {
	rep, err := audit.Verify(audit.VerifyOptions{}, path)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "audit log verified: %d records, hash chain intact\n", rep.Records)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var calls, switches []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		r, err := audit.ParseRecord(line)
		if err != nil {
			return err
		}
		switch {
		case r.Kind == audit.KindDecision:
			calls = append(calls, fmt.Sprintf("  decision %s: %s", r.Tool, r.Decision))
		case r.Kind == audit.KindResult:
			calls = append(calls, fmt.Sprintf("  result   %s: %s", r.Tool, r.Outcome))
		case r.Control != nil:
			switches = append(switches, fmt.Sprintf("  %-8s %s by %s: %s (%s)", r.Kind, r.Control.Scope, r.Control.Who, r.Control.Why, r.Reason))
		}
	}
	fmt.Fprintln(w, "the calls:")
	for _, l := range calls {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w, "the kill switch:")
	for _, l := range switches {
		fmt.Fprintln(w, l)
	}
	return nil
}

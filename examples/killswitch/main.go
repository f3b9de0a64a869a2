// Command killswitch shows the kill switch stopping an agent mid-call.
//
// An agent runs a slow tool in a loop. After its first call completes,
// while the second is in flight, the program writes a kill file, as
// `agentguard kill --file PATH --agent support-bot --reason "..."` would
// from another shell. The guard watches the file: the call in flight
// returns ErrHalted at once, although the tool ignores its context, and the
// loop stops. The audit trail shows the trip.
//
//	go run ./examples/killswitch
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "killswitch:", err)
		os.Exit(1)
	}
}

// trail is an in-memory audit stage that keeps what the guard records.
type trail struct {
	mu     sync.Mutex
	events []agentguard.Event
}

func (t *trail) Record(_ context.Context, e *agentguard.Event) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, *e)
	return nil
}

func run(w io.Writer) error {
	dir, err := os.MkdirTemp("", "agentguard-kill")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	killFile := filepath.Join(dir, "KILL")

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
	audit := &trail{}
	g, err := agentguard.New(
		agentguard.WithPolicy(pol),
		agentguard.WithRecorder(audit),
		agentguard.WithKillSwitch(sw),
		agentguard.WithKillFile(killFile, 10*time.Millisecond, killswitch.FileOptions{Who: "kill-file"}),
	)
	if err != nil {
		return err
	}
	defer g.Close()

	// The slow tool ignores its context: only the end of the program
	// releases it.
	started := make(chan int)
	release := make(chan struct{})
	defer close(release)
	report := agentguard.Wrap(g, "slow_report", func(ctx context.Context, n int) (string, error) {
		started <- n
		if n > 1 {
			<-release
		}
		return fmt.Sprintf("report %d", n), nil
	})

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
	// call's result by its caller: print each kind on its own.
	audit.mu.Lock()
	defer audit.mu.Unlock()
	fmt.Fprintln(w, "audit trail of the calls:")
	for _, e := range audit.events {
		switch {
		case e.Kind == agentguard.EventDecision:
			fmt.Fprintf(w, "  decision %s: %s\n", e.Call.Tool, e.Decision)
		case e.Kind == agentguard.EventResult:
			fmt.Fprintf(w, "  result   %s: %s\n", e.Call.Tool, e.Outcome)
		}
	}
	fmt.Fprintln(w, "audit trail of the kill switch:")
	for _, e := range audit.events {
		if e.Control != nil {
			fmt.Fprintf(w, "  %-8s %s by %s: %s (%s)\n", e.Kind, e.Control.Scope, e.Control.Who, e.Control.Why, e.Reason)
		}
	}
	return nil
}

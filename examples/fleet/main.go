// Command fleet shows three agent processes sharing one daily budget cap
// and one kill switch in PostgreSQL.
//
// The program starts three agent processes (itself, run again). Each calls
// an "llm" tool that costs 0.10 USD under one daily cap of 1.00 USD shared
// by the fleet, until the cap refuses it: across the three processes,
// exactly ten calls run. Then each agent starts a long task and waits in
// it; the operator trips the fleet's kill switch, as
//
//	agentguard kill --postgres DSN --reason "..."
//
// does from another shell, and all three calls in flight return ErrHalted
// at once. The three processes recorded into one audit log in the
// database, whose hash chain verifies.
//
//	go run ./examples/fleet                     # against AGENTGUARD_POSTGRES, or the local server
//	go run ./examples/fleet -wait               # wait for your own `agentguard kill --postgres …`
//
// The run uses a schema of its own, dropped at the end.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
	"github.com/hardstop-labs/agentguard/postgres"
)

// The agents find their part in these variables.
const (
	agentEnv  = "AGENTGUARD_FLEET_AGENT" // the agent's number, 1 to 3
	dsnEnv    = "AGENTGUARD_FLEET_DSN"
	schemaEnv = "AGENTGUARD_FLEET_SCHEMA"
)

const agents = 3

func main() {
	if os.Getenv(agentEnv) != "" {
		if err := agent(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "fleet agent:", err)
			os.Exit(1)
		}
		return
	}
	dsn := flag.String("postgres", defaultDSN(), "the PostgreSQL database")
	wait := flag.Bool("wait", false, "wait for a kill from `agentguard kill --postgres` instead of tripping the switch itself")
	flag.Parse()
	if err := run(os.Stdout, *dsn, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

// defaultDSN is $AGENTGUARD_POSTGRES, else the local server.
func defaultDSN() string {
	for _, k := range []string{"AGENTGUARD_POSTGRES", "AGENTGUARD_TEST_POSTGRES"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// run is the operator: it sets up the schema, starts the agents, trips
// the kill switch once all three are mid-call, and checks the audit log.
func run(w io.Writer, dsn string, wait bool) error {
	ctx := context.Background()
	schema := "fleet_example_" + strings.ToLower(rand.Text()[:8])
	db, err := postgres.Open(ctx, dsn, postgres.Options{Schema: schema})
	if err != nil {
		return err
	}
	defer db.Close()
	defer db.DropSchema(context.Background())

	fmt.Fprintf(w, "%d agent processes share one daily cap of 1.00 USD on llm calls (0.10 USD each) and one kill switch\n", agents)
	type proc struct {
		cmd   *exec.Cmd
		lines *bufio.Scanner
		err   bytes.Buffer
	}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			if p.cmd.ProcessState == nil {
				p.cmd.Process.Kill()
				p.cmd.Wait()
			}
		}
	}()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	for i := 1; i <= agents; i++ {
		p := &proc{cmd: exec.Command(exe)}
		p.cmd.Env = append(os.Environ(), agentEnv+"="+strconv.Itoa(i), dsnEnv+"="+dsn, schemaEnv+"="+schema)
		p.cmd.Stderr = &p.err
		out, err := p.cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := p.cmd.Start(); err != nil {
			return err
		}
		p.lines = bufio.NewScanner(out)
		procs = append(procs, p)
	}
	// next reads an agent's next line: "KEY value".
	next := func(i int, key string) (string, error) {
		p := procs[i]
		if !p.lines.Scan() {
			p.cmd.Wait()
			return "", fmt.Errorf("agent %d stopped: %s", i+1, strings.TrimSpace(p.err.String()))
		}
		k, v, _ := strings.Cut(p.lines.Text(), " ")
		if k != key {
			return "", fmt.Errorf("agent %d said %q, want %s", i+1, p.lines.Text(), key)
		}
		return v, nil
	}

	// The cap holds across the processes.
	total := 0
	for i := range procs {
		v, err := next(i, "ran")
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(v)
		total += n
	}
	fmt.Fprintf(w, "budget: %d llm calls ran across the %d agents, then the shared cap refused each of them\n", total, agents)

	// All three are mid-call; one kill stops them all.
	for i := range procs {
		if _, err := next(i, "in-flight"); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "all %d agents are in the middle of a long_task call\n", agents)
	if wait {
		fmt.Fprintf(w, "now run:\n  agentguard kill --postgres '%s' --schema %s --reason \"fleet demo over\"\n", dsn, schema)
	} else {
		fmt.Fprintln(w, `operator: agentguard kill --postgres DSN --reason "fleet demo over"`)
		// What that command does: one row in the fleet's kill switch.
		h := killswitch.Halt{Who: "operator", Why: "fleet demo over", At: time.Now()}
		if err := db.KillStore().Trip(ctx, h); err != nil {
			return err
		}
	}
	var halted []string
	for i := range procs {
		v, err := next(i, "halted")
		if err != nil {
			return err
		}
		halted = append(halted, fmt.Sprintf("agent %d: long_task halted %s", i+1, v))
	}
	sort.Strings(halted)
	for _, h := range halted {
		fmt.Fprintln(w, h)
	}
	for i, p := range procs {
		if err := p.cmd.Wait(); err != nil {
			return fmt.Errorf("agent %d: %v: %s", i+1, err, p.err.String())
		}
	}

	// One audit log, one chain, three writers.
	var buf bytes.Buffer
	if err := audit.Export(ctx, db.AuditStore(), "fleet", 0, &buf); err != nil {
		return err
	}
	rep, err := audit.VerifyReaders(audit.VerifyOptions{}, audit.Source{Name: "fleet", R: &buf})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "audit log: %d records from %d processes in one hash chain, verified\n", rep.Records, agents)
	return nil
}

// agent is one agent process: the guard on the fleet's stores, llm calls
// until the cap refuses, then one long call until the kill switch stops it.
func agent(w io.Writer) error {
	ctx := context.Background()
	db, err := postgres.Open(ctx, os.Getenv(dsnEnv), postgres.Options{Schema: os.Getenv(schemaEnv), MaxConns: 4})
	if err != nil {
		return err
	}
	defer db.Close()
	pol, err := policy.Parse("policy.yaml", []byte("version: 1\ndefault: allow\n"))
	if err != nil {
		return err
	}
	al, err := audit.OpenStore(db.AuditStore(), audit.StoreOptions{ID: "fleet"})
	if err != nil {
		return err
	}
	caps := []budget.Cap{{Name: "daily-llm", Tools: []string{"llm"}, Limit: budget.Amount{Unit: "USD", Micros: 1_000_000}, Window: budget.Day(time.UTC)}}
	g, err := agentguard.New(
		agentguard.WithPolicy(pol),
		agentguard.WithBudget(caps, budget.Options{Store: db.Ledger()}),
		agentguard.WithKillSwitch(killswitch.New(killswitch.Options{})),
		agentguard.WithKillStore(db.KillStore(), time.Second, killswitch.StoreOptions{Stale: 5 * time.Second}),
		agentguard.WithAuditStore(al),
	)
	if err != nil {
		return err
	}
	defer g.Close()
	ctx = agentguard.WithPrincipal(ctx, agentguard.Principal{Agent: "agent-" + os.Getenv(agentEnv), Tenant: "acme"})

	dime := agentguard.Cost{Unit: "USD", Micros: 100_000}
	llm := agentguard.Wrap(g, "llm", func(ctx context.Context, prompt string) (string, error) {
		agentguard.Charge(ctx, dime) // what the model call cost
		return "answer to " + prompt, nil
	}, agentguard.Estimate(dime))
	ran := 0
	for {
		_, err := llm(ctx, "summarize the ticket")
		if errors.Is(err, agentguard.ErrBudgetExceeded) {
			break
		}
		if err != nil {
			return err
		}
		ran++
	}
	fmt.Fprintln(w, "ran", ran)

	inFlight := make(chan struct{})
	long := agentguard.Wrap(g, "long_task", func(ctx context.Context, _ struct{}) (string, error) {
		close(inFlight)
		<-ctx.Done() // works until stopped
		return "", ctx.Err()
	})
	done := make(chan error, 1)
	go func() {
		_, err := long(ctx, struct{}{})
		done <- err
	}()
	<-inFlight
	fmt.Fprintln(w, "in-flight")
	err = <-done
	var h *killswitch.Halt
	if !errors.Is(err, agentguard.ErrHalted) || !errors.As(err, &h) {
		return fmt.Errorf("long_task returned %v, want ErrHalted", err)
	}
	fmt.Fprintf(w, "halted mid-call: ErrHalted, stopped by %s: %s\n", h.Who, h.Why)
	return nil
}

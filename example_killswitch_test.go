package agentguard_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

func ExampleWithKillSwitch() {
	pol, _ := policy.Parse("policy.yaml", []byte("version: 1\ndefault: allow\n"))
	sw := killswitch.New(killswitch.Options{})
	g, err := agentguard.New(agentguard.WithPolicy(pol), agentguard.WithKillSwitch(sw))
	if err != nil {
		panic(err)
	}
	defer g.Close()

	inFlight, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	search := agentguard.Wrap(g, "search", func(ctx context.Context, q string) (string, error) {
		if q == "everything" {
			close(inFlight)
			<-release // a tool that ignores its context
		}
		return "results for " + q, nil
	}, agentguard.Preemptive())
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "research-bot"})

	errc := make(chan error)
	go func() {
		_, err := search(ctx, "everything")
		errc <- err
	}()
	<-inFlight
	sw.Trip(killswitch.Scope{Agent: "research-bot"}, "alice", "stuck in a loop")
	err = <-errc // at once, although the tool is still running
	fmt.Println("in flight:", errors.Is(err, agentguard.ErrHalted))

	_, err = search(ctx, "again")
	var d *agentguard.DeniedError
	if errors.As(err, &d) {
		fmt.Printf("next call: %s at stage %s, rule %q: %s\n", d.Code, d.Stage, d.Rule, d.Reason)
	}
	// Output:
	// in flight: true
	// next call: halted at stage killswitch, rule "agent=research-bot": stuck in a loop
}

func ExampleWithBreaker() {
	pol, _ := policy.Parse("policy.yaml", []byte("version: 1\ndefault: allow\n"))
	sw := killswitch.New(killswitch.Options{})
	g, err := agentguard.New(
		agentguard.WithPolicy(pol),
		agentguard.WithKillSwitch(sw),
		agentguard.WithBreaker(killswitch.Settings{Name: "flaky-db", ConsecutiveFailures: 2}),
	)
	if err != nil {
		panic(err)
	}
	defer g.Close()
	query := agentguard.Wrap(g, "db.query", func(ctx context.Context, sql string) (int, error) {
		return 0, errors.New("connection reset")
	}, agentguard.Cooperative())
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "etl-bot"})
	for i := 1; i <= 3; i++ {
		_, err := query(ctx, "SELECT 1")
		fmt.Printf("call %d: halted=%v\n", i, errors.Is(err, agentguard.ErrHalted))
	}
	h, _ := sw.Lookup(killswitch.Scope{Agent: "etl-bot"})
	fmt.Println(h.Who+":", h.Why)
	// Output:
	// call 1: halted=false
	// call 2: halted=false
	// call 3: halted=true
	// breaker:flaky-db: breaker "flaky-db": 2 consecutive failures (limit 2)
}

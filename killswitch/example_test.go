package killswitch_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hardstop-labs/agentguard/killswitch"
)

func Example() {
	sw := killswitch.New(killswitch.Options{})
	sw.OnTrip("revoke", func(ctx context.Context, h *killswitch.Halt) error {
		fmt.Println("revoking credentials of", h.Scope)
		return nil
	})

	key := killswitch.Key{Tenant: "acme", Agent: "support-bot", Tool: "refund"}
	ctx, exit, err := sw.Enter(context.Background(), key)
	if err != nil {
		panic(err)
	}

	// From elsewhere: stop the agent, now.
	sw.Trip(killswitch.Scope{Agent: "support-bot"}, "alice", "refund loop")

	<-ctx.Done() // the call in flight is cancelled...
	fmt.Println(context.Cause(ctx))
	fmt.Println("result counts:", exit()) // ...and its result is discarded

	_, _, err = sw.Enter(context.Background(), key)
	fmt.Println("new call halted:", errors.Is(err, killswitch.ErrHalted))

	_, exit, err = sw.Enter(context.Background(), killswitch.Key{Agent: "other-bot"})
	fmt.Println("other agent runs:", err == nil && exit())
	// Output:
	// revoking credentials of agent=support-bot
	// killswitch: halted (agent=support-bot) by alice: refund loop
	// result counts: false
	// new call halted: true
	// other agent runs: true
}

func ExampleBreaker() {
	sw := killswitch.New(killswitch.Options{})
	b, err := killswitch.NewBreaker(sw, killswitch.Settings{Name: "errors", ConsecutiveFailures: 3})
	if err != nil {
		panic(err)
	}
	for i := range 3 {
		tripped := b.Observe("support-bot", "refund", killswitch.Failure, 0, time.Unix(int64(i), 0))
		fmt.Println("failure", i+1, "tripped:", tripped)
	}
	h, _ := sw.Tripped(killswitch.Key{Agent: "support-bot"})
	fmt.Println(h)
	// Output:
	// failure 1 tripped: false
	// failure 2 tripped: false
	// failure 3 tripped: true
	// killswitch: halted (agent=support-bot) by breaker:errors: breaker "errors": 3 consecutive failures (limit 3)
}

func ExampleParseKillFile() {
	kf, err := killswitch.ParseKillFile([]byte("Refund loop\nagent: support-bot\nby: alice\n"))
	fmt.Printf("%q %v %q %v\n", kf.Reason, kf.Scope, kf.By, err)
	// Output:
	// "Refund loop" agent=support-bot "alice" <nil>
}

func ExampleFileTrigger() {
	dir, _ := os.MkdirTemp("", "killswitch-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "KILL")

	sw := killswitch.New(killswitch.Options{})
	tr, err := killswitch.NewFileTrigger(sw, path, killswitch.FileOptions{Who: "kill-file", ResumeOnRemove: true})
	if err != nil {
		panic(err)
	}
	// Usually: go tr.Run(ctx, time.Second). Here, one check at a time.
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

	// What `agentguard kill --file PATH --agent support-bot --reason ...` writes.
	killswitch.WriteKillFile(path, killswitch.KillFile{Reason: "refund loop", Scope: killswitch.Scope{Agent: "support-bot"}, By: "alice"})
	tr.Check(now)
	for _, h := range sw.Status() {
		fmt.Printf("tripped %s by %s: %s\n", h.Scope, h.Who, h.Why)
	}

	os.Remove(path) // `agentguard resume --file PATH`
	tr.Check(now.Add(time.Second))
	fmt.Println("trips after removal:", len(sw.Status()))
	// Output:
	// tripped agent=support-bot by alice (kill-file): refund loop
	// trips after removal: 0
}

func ExampleNewHandler() {
	sw := killswitch.New(killswitch.Options{})
	h, err := killswitch.NewHandler(sw, killswitch.HandlerOptions{Token: "a-long-random-secret-token"})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/killswitch/", http.StripPrefix("/killswitch", h))

	req := httptest.NewRequest("POST", "/killswitch/trip", strings.NewReader(`{"scope":{"tenant":"acme"},"who":"alice","why":"incident 42"}`))
	req.Header.Set("Authorization", "Bearer a-long-random-secret-token")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code)

	_, _, err = sw.Enter(context.Background(), killswitch.Key{Tenant: "acme", Agent: "any-bot", Tool: "any"})
	fmt.Println(err)
	// Output:
	// 200
	// killswitch: halted (tenant=acme) by alice: incident 42
}

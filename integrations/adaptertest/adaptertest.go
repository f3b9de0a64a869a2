// Package adaptertest gives the tests of the framework adapters (each a
// module of its own under integrations/) one guard to run against: a
// policy with an allowed, a denied and an approval-needing tool, an
// approver that approves, a kill switch, and a tool body that blocks until
// the switch is tripped. Each adapter's test then shows, against the real
// framework, an allowed call, a denied call whose text the model receives,
// an approval, and a kill in flight.
package adaptertest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

// The tools the policy knows.
const (
	Allowed  = "read_weather" // allowed by rule "reads"
	Denied   = "delete_account"
	Approved = "refund" // needs a human; the Setup's approver approves as Approver
	Slow     = "read_slow"

	DenyRule = "no-deletes"
	Approver = "alice"
	KillWhy  = "runaway agent"
)

// Policy is the policy of every Setup.
const Policy = ReadsPolicy + `  - name: no-deletes
    match: call.tool.startsWith("delete_")
    effect: deny
    reason: deleting accounts is never automatic
  - name: refunds
    match: call.tool == "refund"
    effect: approve
    reason: refunds need a human
`

// Setup is a guard for one test. Safe for concurrent use.
type Setup struct {
	Guard  *agentguard.Guard
	Switch *killswitch.Switch

	approvals atomic.Int32
	mu        sync.Mutex
	events    []agentguard.Event
	started   chan struct{}
	startOnce sync.Once
	release   chan struct{}
}

// New returns a Setup whose guard is closed when the test ends.
func New(t testing.TB) *Setup {
	t.Helper()
	pol, err := policy.Parse("adaptertest.yaml", []byte(Policy))
	if err != nil {
		t.Fatal(err)
	}
	s := &Setup{Switch: killswitch.New(killswitch.Options{}), started: make(chan struct{}), release: make(chan struct{})}
	g, err := agentguard.New(
		agentguard.WithPolicy(pol),
		agentguard.WithKillSwitch(s.Switch),
		agentguard.WithApprover(approval.Func(func(_ context.Context, r *approval.Request) (approval.Verdict, error) {
			s.approvals.Add(1)
			return r.Approve(Approver, "ok"), nil
		})),
		agentguard.WithRecorder(agentguard.RecorderFunc(func(_ context.Context, e *agentguard.Event) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			cp := *e
			if e.Call != nil {
				c := *e.Call
				cp.Call = &c
			}
			s.events = append(s.events, cp)
			return nil
		})),
		agentguard.WithDefaultPrincipal(agentguard.Principal{Agent: "test-agent"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.startOnce.Do(func() { close(s.started) })
		close(s.release)
		g.Close()
	})
	s.Guard = g
	return s
}

// Approvals returns how many approval requests the approver answered.
func (s *Setup) Approvals() int { return int(s.approvals.Load()) }

// Events returns copies of the events recorded so far.
func (s *Setup) Events() []agentguard.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]agentguard.Event(nil), s.events...)
}

// Outcomes returns, per tool, the outcome of its recorded results and the
// code of its recorded denials, in order: "read_weather:ok",
// "delete_account:policy_denied", "read_slow:halted".
func (s *Setup) Outcomes() []string {
	var out []string
	for _, e := range s.Events() {
		if e.Call == nil {
			continue
		}
		switch {
		case e.Kind == agentguard.EventResult:
			out = append(out, e.Call.Tool+":"+string(e.Outcome))
		case e.Code != "":
			out = append(out, e.Call.Tool+":"+string(e.Code))
		}
	}
	return out
}

// Block is the body of the Slow tool: it ignores its context and returns
// only when the test ends, long after the kill.
func (s *Setup) Block() {
	s.startOnce.Do(func() { close(s.started) })
	<-s.release
}

// BlockUntil is the body of a Slow tool that honours its context: it
// returns when ctx is done (or the test ends).
func (s *Setup) BlockUntil(ctx context.Context) {
	s.startOnce.Do(func() { close(s.started) })
	select {
	case <-ctx.Done():
	case <-s.release:
	}
}

// TripWhenStarted trips the kill switch for everything as soon as a tool
// is in Block or BlockUntil. Run it on its own goroutine before the agent runs.
func (s *Setup) TripWhenStarted() {
	<-s.started
	s.Switch.Trip(killswitch.Scope{}, "operator", KillWhy)
}

// ReadsPolicy allows the tools whose names start with read_ and denies the
// rest: the policy of the adapters' runnable examples.
const ReadsPolicy = `version: 1
default: deny
rules:
  - name: reads
    match: call.tool.startsWith("read_")
    effect: allow
`

// ExampleGuard returns a guard with ReadsPolicy, for the adapters'
// runnable examples, which have no testing.T: it panics on error. A real
// program builds its own (agentguard.New with a policy file, an approver,
// an audit log).
func ExampleGuard() *agentguard.Guard {
	pol, err := policy.Parse("policy.yaml", []byte(ReadsPolicy))
	if err != nil {
		panic(err)
	}
	g, err := agentguard.New(agentguard.WithPolicy(pol))
	if err != nil {
		panic(err)
	}
	return g
}

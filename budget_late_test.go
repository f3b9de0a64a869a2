package agentguard_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/policy"
)

// lateClock is a clock the tools and approvers of a test move on.
type lateClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *lateClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *lateClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const lateCapPolicy = `
version: 1
default: deny
rules:
  - name: llm
    match: call.tool == "llm"
    effect: allow
  - name: wire
    match: call.tool == "wire"
    effect: approve
budgets:
  - name: total
    limit: "10 USD"
`

// TestLateSettleIsChargedInFull: five calls estimated at 1 USD that each
// spend 50 USD and outlive the ledger's Hold, under a 10 USD cap. The late
// commit was dropped (ErrExpired: only the estimate counted), so all five
// ran. Now the first is charged its 50 USD, the overrun shuts the cap, and
// the other four are refused. Issue 12, item 4.
func TestLateSettleIsChargedInFull(t *testing.T) {
	clk := &lateClock{now: budgetNow}
	g, err := agentguard.New(agentguard.WithPolicy(budgetPol(t, lateCapPolicy)), agentguard.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ran := 0
	llm := agentguard.Wrap(g, "llm", func(ctx context.Context, _ llmArgs) (string, error) {
		ran++
		clk.Add(budget.DefaultHold + time.Minute) // a long run
		return "ok", agentguard.Charge(ctx, usdCost("50"))
	}, agentguard.Estimate(usdCost("1")))
	for i := range 5 {
		_, err := llm(context.Background(), llmArgs{})
		var d *agentguard.DeniedError
		switch {
		case i == 0 && err != nil:
			t.Fatalf("first call: %v", err)
		case i > 0 && (!errors.As(err, &d) || d.Code != agentguard.CodeBudgetExceeded):
			t.Fatalf("call %d = %v, want refused by the cap", i+1, err)
		case i > 0 && !strings.Contains(d.Reason, "spent 50 USD of 10 USD") || i > 0 && !strings.Contains(d.Reason, "overrun and stays shut"):
			t.Errorf("call %d refused with %q, want the 50 USD overage shown", i+1, d.Reason)
		}
	}
	if ran != 1 {
		t.Errorf("%d calls of 50 USD ran under a 10 USD cap, want 1", ran)
	}
}

// TestApprovalWaitDoesNotExpireTheHold: a call that waits for a human
// longer than the ledger's Hold (within its approval timeout) keeps its
// reservation: it is charged what it cost (1 USD), not its estimate
// (8 USD) by an expiry during the wait, so three such calls fit the
// 10 USD cap. Issue 12, item 4.
func TestApprovalWaitDoesNotExpireTheHold(t *testing.T) {
	clk := &lateClock{now: budgetNow}
	slowHuman := approval.Func(func(_ context.Context, r *approval.Request) (approval.Verdict, error) {
		clk.Add(budget.DefaultHold + 5*time.Minute)
		return r.Approve("alice", "fine"), nil
	})
	g, err := agentguard.New(agentguard.WithPolicy(budgetPol(t, lateCapPolicy)), agentguard.WithClock(clk.Now),
		agentguard.WithApprover(slowHuman), agentguard.WithApprovalTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	wire := agentguard.Wrap(g, "wire", func(ctx context.Context, _ llmArgs) (string, error) {
		return "sent", agentguard.Charge(ctx, usdCost("1"))
	}, agentguard.Estimate(usdCost("8")))
	for i := range 3 {
		if _, err := wire(context.Background(), llmArgs{}); err != nil {
			t.Fatalf("call %d after a 20 minute approval: %v (the first was charged its estimate?)", i+1, err)
		}
	}
	_, err = wire(context.Background(), llmArgs{})
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || !strings.HasPrefix(d.Reason, "spent 3 USD of 10 USD") {
		t.Errorf("fourth call = %v, want refused with 3 USD spent", err)
	}
}

// TestPolicyCheckAgreesWithNew: `agentguard policy check` (policy.Load)
// accepted budget amounts that New then refused; now both refuse them,
// with the same error naming the file and line. Issue 12, item 6.
func TestPolicyCheckAgreesWithNew(t *testing.T) {
	for _, limit := range []string{"1.0000001 USD", "99999999999999999999 USD"} {
		path := filepath.Join(t.TempDir(), "policy.yaml")
		src := "version: 1\ndefault: allow\nbudgets:\n  - name: b\n    limit: \"" + limit + "\"\n"
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		_, checkErr := policy.Load(path)
		g, newErr := agentguard.New(agentguard.WithPolicyFile(path))
		if newErr == nil {
			g.Close()
		}
		at := path + ":5:12"
		if checkErr == nil || newErr == nil || !strings.Contains(checkErr.Error(), at) || !strings.Contains(newErr.Error(), at) {
			t.Errorf("limit %s: policy check = %v; New = %v; want both refused at %s", limit, checkErr, newErr, at)
		}
	}
}

// TestHugeArgumentsAgainstADeadline: indexOf on two 120 KB strings under
// a 50 ms deadline returns a policy denial at once, naming the rule and
// its cost (it ran for seconds before). Issue 12, item 7.
func TestHugeArgumentsAgainstADeadline(t *testing.T) {
	src := "version: 1\ndefault: allow\nrules:\n  - {name: no-echo, match: 'call.args.a.indexOf(call.args.b) >= 0', effect: deny}\n"
	g, err := agentguard.New(agentguard.WithPolicy(budgetPol(t, src)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	echo := agentguard.Wrap(g, "echo", func(context.Context, map[string]any) (string, error) { return "ran", nil })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := echo(ctx, map[string]any{"a": strings.Repeat("a", 120<<10), "b": strings.Repeat("a", 60<<10) + "b"})
		errc <- err
	}()
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not return within 10s")
	}
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Code != agentguard.CodePolicyDenied || d.Rule != "no-echo" || !strings.Contains(d.Reason, "cost limit") {
		t.Errorf("call = %v, want denied by no-echo for its cost", err)
	}
}

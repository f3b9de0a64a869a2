package agentguard_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
)

// settleSpy is a Budgeter whose reservations record how they are settled.
type settleSpy struct {
	mu      sync.Mutex
	settles []spySettle
}

type spySettle struct {
	actual []agentguard.Cost
	known  bool
}

func (s *settleSpy) Reserve(context.Context, *agentguard.Call) (agentguard.Reservation, error) {
	return spyHold{s}, nil
}

func (s *settleSpy) Usage(context.Context, *agentguard.Call) (policy.Usage, error) {
	return policy.Usage{}, nil
}

type spyHold struct{ s *settleSpy }

func (h spyHold) Settle(_ context.Context, actual []agentguard.Cost, known bool) error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	h.s.settles = append(h.s.settles, spySettle{append([]agentguard.Cost(nil), actual...), known})
	return nil
}

// TestResultCostPanicIsRecordedAndSettled: a ResultCost that panics after
// the tool ran is a panic in the caller's code; like a tool's panic it is
// re-raised, but only after the result is recorded with it and the
// reservation is settled, charged what the tool reported plus its
// estimate (the result's own cost is unknown: never less than the worst
// case). Issue 12, item 8.
func TestResultCostPanicIsRecordedAndSettled(t *testing.T) {
	for _, withSwitch := range []bool{false, true} {
		name := "inline"
		if withSwitch {
			name = "own goroutine"
		}
		t.Run(name, func(t *testing.T) {
			spy := &settleSpy{}
			opts := []agentguard.Option{agentguard.WithBudgeter(spy)}
			if withSwitch {
				opts = append(opts, agentguard.WithKillSwitch(killswitch.New(killswitch.Options{})))
			}
			g, rec := newGuard(t, opts...)
			read := agentguard.Wrap(g, "read_file", func(ctx context.Context, _ string) (int, error) {
				if err := agentguard.Charge(ctx, usdCost("0.2")); err != nil {
					return 0, err
				}
				return 7, nil
			}, agentguard.Estimate(usdCost("0.5")), agentguard.ResultCost(func(int) []agentguard.Cost { panic("cost boom") }))
			func() {
				defer func() {
					if v := recover(); v != "cost boom" {
						t.Errorf("recovered %v, want ResultCost's panic", v)
					}
				}()
				read(context.Background(), "x")
				t.Error("the panic was swallowed")
			}()
			if got := rec.kinds(); len(got) != 2 || got[1] != "result:allow:panic" {
				t.Fatalf("recorded %v, want a decision and a panic result", got)
			}
			rec.mu.Lock()
			res := rec.events[1]
			rec.mu.Unlock()
			if res.Err == nil || !strings.Contains(res.Err.Error(), "ResultCost panicked: cost boom") {
				t.Errorf("result error = %v, want the ResultCost panic", res.Err)
			}
			want := []agentguard.Cost{usdCost("0.2"), usdCost("0.5")}
			spy.mu.Lock()
			defer spy.mu.Unlock()
			if len(spy.settles) != 1 || !spy.settles[0].known || !equalCosts(spy.settles[0].actual, want) {
				t.Fatalf("settled %+v, want once with the charge and the estimate %v", spy.settles, want)
			}
			if !equalCosts(res.Actual, want) {
				t.Errorf("result records actual %v, want %v", res.Actual, want)
			}
		})
	}
}

// TestResultCostPanicInDone: the two-step form records and settles too.
func TestResultCostPanicInDone(t *testing.T) {
	spy := &settleSpy{}
	g, rec := newGuard(t, agentguard.WithBudgeter(spy))
	tk, err := g.Check(context.Background(), "read_file", map[string]any{}, agentguard.Estimate(usdCost("0.5")),
		agentguard.ResultCost(func(string) []agentguard.Cost { panic("cost boom") }))
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if v := recover(); v != "cost boom" {
				t.Errorf("recovered %v, want ResultCost's panic", v)
			}
		}()
		tk.Done("out", nil)
	}()
	if got := rec.kinds(); len(got) != 2 || got[1] != "result:allow:panic" {
		t.Fatalf("recorded %v, want a decision and a panic result", got)
	}
	spy.mu.Lock()
	defer spy.mu.Unlock()
	if len(spy.settles) != 1 || !equalCosts(spy.settles[0].actual, []agentguard.Cost{usdCost("0.5")}) {
		t.Fatalf("settled %+v, want once with the estimate", spy.settles)
	}
}

func equalCosts(a, b []agentguard.Cost) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

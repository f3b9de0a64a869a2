package budget_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/budget/storetest"
)

func TestMemConformance(t *testing.T) {
	storetest.Run(t, func() budget.Store { return budget.NewMem() })
}

// TestMemForgetsExpiredHolds: an expired hold stays for a late Settle for
// KeepExpired after its deadline, and no longer, so unsettled holds do not
// pile up.
func TestMemForgetsExpiredHolds(t *testing.T) {
	m := budget.NewMem()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	mk := func(id string) *budget.Hold {
		return &budget.Hold{ID: id, At: t0, Deadline: t0.Add(time.Minute), Entries: []budget.Entry{{Key: "a", Limit: 100, Amount: 5}}}
	}
	h1, h2 := mk("one"), mk("two")
	for _, h := range []*budget.Hold{h1, h2} {
		if err := m.Reserve(bg, h); err != nil {
			t.Fatal(err)
		}
	}
	keep := h1.Deadline.Add(budget.KeepExpired)
	if _, err := m.Usage(bg, keep.Add(-time.Second), []budget.Query{{Key: "a"}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Settle(bg, "one", []int64{9}, keep.Add(-time.Second)); !errors.Is(err, budget.ErrExpired) {
		t.Errorf("Settle just within KeepExpired = %v, want ErrExpired", err)
	}
	if _, err := m.Usage(bg, keep, []budget.Query{{Key: "a"}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Settle(bg, "two", []int64{9}, keep); !errors.Is(err, budget.ErrUnknownHold) {
		t.Errorf("Settle KeepExpired after the deadline = %v, want ErrUnknownHold", err)
	}
}

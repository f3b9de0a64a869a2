package budget_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/quick"
	"time"

	"github.com/hardstop-labs/agentguard/budget"
)

// model is a sequential reference ledger: a list of charges and holds,
// summed from scratch on every question.
type model struct {
	caps    []modelCap
	hold    time.Duration
	charges []modelCharge
	holds   []*modelHold
}

type modelCap struct {
	limit  int64
	window budget.Window
}

type modelCharge struct {
	at     time.Time
	amount int64
	extra  bool // a late commit's rest: part of an expired hold's call
}

type modelHold struct {
	at, deadline time.Time
	amount       int64
	open         bool // in the store
	settled      bool // Commit or Release was called
}

func (m *model) expire(now time.Time) {
	for _, h := range m.holds {
		if h.open && !h.deadline.After(now) {
			h.open = false
			m.charges = append(m.charges, modelCharge{at: h.at, amount: h.amount})
		}
	}
}

// tally returns spent, reserved and calls of cap c at now.
func (m *model) tally(c int, now time.Time) (spent, reserved, calls int64) {
	since := m.caps[c].window.Start(now)
	for _, ch := range m.charges {
		if !ch.at.Before(since) {
			spent += ch.amount
			if !ch.extra {
				calls++
			}
		}
	}
	for _, h := range m.holds {
		if h.open && !h.at.Before(since) {
			reserved += h.amount
		}
	}
	return
}

func (m *model) reserve(now time.Time, amount int64) (*modelHold, int) {
	m.expire(now)
	for c := range m.caps {
		s, r, _ := m.tally(c, now)
		if s+r >= m.caps[c].limit || s+r+amount > m.caps[c].limit {
			return nil, c
		}
	}
	h := &modelHold{at: now, deadline: now.Add(m.hold), amount: amount, open: true}
	m.holds = append(m.holds, h)
	return h, -1
}

// settle returns the error class the ledger must return.
func (m *model) settle(h *modelHold, now time.Time, actual int64, commit bool) error {
	if h.settled {
		return budget.ErrSettled
	}
	h.settled = true
	if h.open && !now.Before(h.deadline) {
		h.open = false
		m.charges = append(m.charges, modelCharge{at: h.at, amount: h.amount})
	} else if h.open {
		h.open = false
		if commit {
			m.charges = append(m.charges, modelCharge{at: h.at, amount: actual})
		}
		return nil
	}
	// Late: expired, charged its estimate; a commit's actual in full.
	if now.Sub(h.deadline) >= budget.KeepExpired {
		return budget.ErrUnknownHold
	}
	if commit && actual > h.amount {
		m.charges = append(m.charges, modelCharge{at: h.at, amount: actual - h.amount, extra: true})
	}
	return budget.ErrExpired
}

// TestLedgerModel checks random sequences of reserve, commit, release and
// expiry (the clock passing deadlines) against the model.
func TestLedgerModel(t *testing.T) {
	// On a Mem, the ledger reserves straight in its accounts; through the
	// Store interface (storeOnly hides the Mem), by the contract.
	for _, generic := range []bool{false, true} {
		t.Run(fmt.Sprintf("generic=%v", generic), func(t *testing.T) { testLedgerModel(t, generic) })
	}
}

// storeOnly hides a store's concrete type.
type storeOnly struct{ budget.Store }

func testLedgerModel(t *testing.T, generic bool) {
	windows := []budget.Window{budget.Total(), budget.Hour(), budget.Rolling(15 * time.Minute), budget.Day(nil)}
	check := func(seed uint64) bool {
		rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
		clk := newClock(time.Date(2026, 6, 1, 23, 0, 0, 0, time.UTC))
		m := &model{hold: 10 * time.Minute}
		var caps []budget.Cap
		for i := range 1 + rng.IntN(3) {
			c := modelCap{limit: int64(5 + rng.IntN(60)), window: windows[rng.IntN(len(windows))]}
			m.caps = append(m.caps, c)
			caps = append(caps, budget.Cap{Name: fmt.Sprint("c", i), Limit: budget.Amount{Micros: c.limit, Unit: "u"}, Window: c.window})
		}
		opts := budget.Options{Clock: clk.Now, Hold: m.hold}
		if generic {
			opts.Store = storeOnly{budget.NewMem()}
		}
		l, err := budget.NewLedger(caps, opts)
		if err != nil {
			t.Errorf("NewLedger: %v", err)
			return false
		}
		type pair struct {
			r *budget.Reservation
			h *modelHold
		}
		var open []pair
		for step := range 300 {
			now := clk.Now()
			switch op := rng.IntN(10); {
			case op < 4: // reserve
				amount := int64(rng.IntN(12))
				r, err := l.Reserve(bg, budget.Request{Estimate: []budget.Amount{{Micros: amount, Unit: "u"}}})
				h, refusedBy := m.reserve(now, amount)
				var ex *budget.ExceededError
				switch {
				case h != nil && err != nil:
					t.Errorf("seed %d step %d: Reserve(%d) = %v, model admits", seed, step, amount, err)
					return false
				case h == nil && (!errors.As(err, &ex) || ex.Cap != caps[refusedBy].Name):
					t.Errorf("seed %d step %d: Reserve(%d) = %v, model refuses by %s", seed, step, amount, err, caps[refusedBy].Name)
					return false
				case h != nil:
					open = append(open, pair{r, h})
				}
			case op < 8 && len(open) > 0: // commit or release, sometimes twice
				i := rng.IntN(len(open))
				p := open[i]
				actual := int64(rng.IntN(16))
				commit := op < 6
				var err error
				if commit {
					err = p.r.CommitAt(bg, now, []budget.Amount{{Micros: actual, Unit: "u"}})
				} else {
					err = p.r.ReleaseAt(bg, now)
				}
				want := m.settle(p.h, now, actual, commit)
				if want == nil && err != nil || want != nil && !errors.Is(err, want) {
					t.Errorf("seed %d step %d: settle(commit=%v) = %v, want %v", seed, step, commit, err, want)
					return false
				}
				if rng.IntN(4) != 0 {
					open = append(open[:i], open[i+1:]...)
				}
			default: // time passes
				clk.Add(time.Duration(1+rng.IntN(400)) * time.Second)
			}
			now = clk.Now()
			us, err := l.Usage(bg, budget.Subject{})
			if err != nil {
				t.Errorf("Usage: %v", err)
				return false
			}
			m.expire(now)
			for c := range m.caps {
				s, r, calls := m.tally(c, now)
				if us[c].Spent.Micros != s || us[c].Reserved.Micros != r || us[c].Calls != calls {
					t.Errorf("seed %d step %d: cap %s (%s) = spent %d reserved %d calls %d, model %d %d %d",
						seed, step, caps[c].Name, caps[c].Window, us[c].Spent.Micros, us[c].Reserved.Micros, us[c].Calls, s, r, calls)
					return false
				}
			}
		}
		return true
	}
	if err := quick.Check(check, &quick.Config{MaxCount: 200}); err != nil {
		t.Error(err)
	}
}

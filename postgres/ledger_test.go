package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/budget/storetest"
)

func TestLedgerConformance(t *testing.T) {
	db := testDB(t)
	storetest.Run(t, func() budget.Store { return db.Ledger() })
}

type reserveResult struct {
	OK, Refused int
	Errors      []string
	Seconds     float64
}

func init() {
	childRoles["reserve"] = func(ctx context.Context, a childArgs) (any, error) {
		var p struct {
			Goroutines int
			Room       int64
			Start      time.Time
		}
		if err := json.Unmarshal(a.Extra, &p); err != nil {
			return nil, err
		}
		db, err := Open(ctx, a.DSN, Options{Schema: a.Schema, MaxConns: 4})
		if err != nil {
			return nil, err
		}
		defer db.Close()
		l := db.Ledger()
		// Warm the pool, then start with the others.
		if _, err := l.Usage(ctx, t0, []budget.Query{{Key: "warm"}}); err != nil {
			return nil, err
		}
		time.Sleep(time.Until(p.Start))
		var res reserveResult
		var mu sync.Mutex
		var wg sync.WaitGroup
		begin := time.Now()
		for g := range p.Goroutines {
			wg.Go(func() {
				h := &budget.Hold{ID: fmt.Sprintf("p%d-g%d", a.Index, g), At: t0, Deadline: t0.Add(time.Hour),
					Entries: []budget.Entry{{Key: "daily", Limit: p.Room * 3, Amount: 3}, {Key: "wide", Limit: 1 << 40, Amount: 3}}}
				err := l.Reserve(ctx, h)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					res.OK++
				case errors.Is(err, budget.ErrExceeded):
					res.Refused++
				default:
					res.Errors = append(res.Errors, err.Error())
				}
			})
		}
		wg.Wait()
		res.Seconds = time.Since(begin).Seconds()
		return res, nil
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Eight processes of 200 goroutines each reserve against one cap: exactly
// the number that fit succeed, and the ledger holds exactly their amounts.
// The log gives the reservations per second across the processes.
func TestLedgerProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the multi-process reserve")
	}
	db := testDB(t)
	const procs, goroutines, room = 8, 200, 611
	// The children start together, once all are connected: 1.5 s from now.
	start := time.Now().Add(1500 * time.Millisecond)
	extra, _ := json.Marshal(map[string]any{"Goroutines": goroutines, "Room": room, "Start": start})
	var cs []*child
	for i := range procs {
		cs = append(cs, startChild(t, "reserve", childArgs{DSN: testDSN(t), Schema: db.Schema(), Index: i, Extra: extra}))
	}
	var ok, refused int
	var slowest float64
	for i, c := range cs {
		var r reserveResult
		c.wait(t, &r)
		if len(r.Errors) > 0 {
			t.Errorf("child %d: %d errors, first: %s", i, len(r.Errors), r.Errors[0])
		}
		ok += r.OK
		refused += r.Refused
		slowest = max(slowest, r.Seconds)
	}
	if ok != room || refused != procs*goroutines-room {
		t.Errorf("%d callers for room %d: %d reserved, %d refused", procs*goroutines, room, ok, refused)
	}
	ts, err := db.Ledger().Usage(context.Background(), t0, []budget.Query{{Key: "daily"}, {Key: "wide"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, tl := range ts {
		if tl != (budget.Tally{Reserved: room * 3}) {
			t.Errorf("account %d: %+v, want {Reserved:%d}", i, tl, room*3)
		}
	}
	t.Logf("%d processes x %d goroutines: %d reservations (%d admitted) in %.2fs: %.0f reserves/s",
		procs, goroutines, procs*goroutines, ok, slowest, float64(procs*goroutines)/slowest)
}

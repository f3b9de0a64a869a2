package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/budget/storetest"
)

func TestLimitsConformance(t *testing.T) {
	db := testDB(t)
	storetest.RunLimits(t, func() budget.LimitStore { return db.Limits() })
}

// sharedLimit is the limit the rate processes share: a burst of 10, then
// one call an hour, so nothing refills during the test.
var sharedLimit = []budget.Limit{{Name: "email", Tools: []string{"send_email"}, Per: budget.PerAgent, Rate: rate.Every(time.Hour), Burst: 10}}

func init() {
	childRoles["rate"] = func(ctx context.Context, a childArgs) (any, error) {
		var start time.Time
		if err := json.Unmarshal(a.Extra, &start); err != nil {
			return nil, err
		}
		db, err := Open(ctx, a.DSN, Options{Schema: a.Schema, MaxConns: 4})
		if err != nil {
			return nil, err
		}
		defer db.Close()
		l, err := budget.NewLimiter(sharedLimit, budget.LimiterOptions{Store: db.Limits()})
		if err != nil {
			return nil, err
		}
		time.Sleep(time.Until(start))
		var ok, limited atomic.Int64
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for range 50 {
			wg.Go(func() {
				err := l.Allow(ctx, budget.Subject{Agent: "bot", Tool: "send_email"})
				var le *budget.LimitedError
				switch {
				case err == nil:
					ok.Add(1)
				case errors.As(err, &le) && le.RetryAfter > 0:
					limited.Add(1)
				default:
					firstErr.CompareAndSwap(nil, err.Error())
				}
			})
		}
		wg.Wait()
		if e := firstErr.Load(); e != nil {
			return nil, errors.New(e.(string))
		}
		return [2]int64{ok.Load(), limited.Load()}, nil
	}
}

// Four processes sharing one limit admit what the limit allows: its burst
// of 10, with no refill during the test, so exactly 10 of 200 calls.
func TestLimitsProcesses(t *testing.T) {
	db := testDB(t)
	start, _ := json.Marshal(time.Now().Add(time.Second))
	var cs []*child
	for i := range 4 {
		cs = append(cs, startChild(t, "rate", childArgs{DSN: testDSN(t), Schema: db.Schema(), Index: i, Extra: start}))
	}
	var ok, limited int64
	for _, c := range cs {
		var r [2]int64
		c.wait(t, &r)
		ok += r[0]
		limited += r[1]
	}
	if ok != 10 || limited != 190 {
		t.Fatalf("4 processes x 50 calls on a burst of 10: %d admitted, %d limited", ok, limited)
	}
}

package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/killswitch/switchtest"
)

func TestKillStoreConformance(t *testing.T) {
	switchtest.Run(t, func(t *testing.T) killswitch.Store { return testDB(t).KillStore() })
}

type haltResult struct {
	Halted   int   // calls in flight whose context was cancelled and whose exit reported false
	CausedBy bool  // every cause was the fleet's trip
	AtNanos  int64 // when the last call was cancelled (Unix nanoseconds)
}

func init() {
	// A follower process: three calls in flight under a switch that
	// follows the store; it reports when they were halted.
	childRoles["follow"] = func(ctx context.Context, a childArgs) (any, error) {
		db, err := Open(ctx, a.DSN, Options{Schema: a.Schema, MaxConns: 2})
		if err != nil {
			return nil, err
		}
		defer db.Close()
		// The trigger runs as in a guard, polling only once an hour: the
		// trip must arrive by push. The store tells us when it listens.
		sw := killswitch.New(killswitch.Options{})
		listening := make(chan struct{})
		st := &signalWatch{KillStore: db.KillStore(), listening: listening}
		tr, err := killswitch.NewStoreTrigger(sw, st, killswitch.StoreOptions{Stale: time.Minute})
		if err != nil {
			return nil, err
		}
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		go tr.Run(rctx, time.Hour)
		<-listening
		type call struct {
			ctx  context.Context
			exit func() bool
		}
		var calls []call
		for i := range 3 {
			c, exit, err := sw.Enter(ctx, killswitch.Key{Agent: "bot", Tool: "t" + string(rune('a'+i))})
			if err != nil {
				return nil, err
			}
			calls = append(calls, call{c, exit})
		}
		if err := os.WriteFile(a.Ready, nil, 0o644); err != nil {
			return nil, err
		}
		var res haltResult
		res.CausedBy = true
		for _, c := range calls {
			<-c.ctx.Done()
			res.AtNanos = max(res.AtNanos, time.Now().UnixNano())
			if !c.exit() {
				res.Halted++
			}
			var h *killswitch.Halt
			if !errors.As(context.Cause(c.ctx), &h) || h.Why != "fleet stop" {
				res.CausedBy = false
			}
		}
		return res, nil
	}
}

// waitFiles waits until every file exists.
func waitFiles(t *testing.T, paths []string, cs []*child) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range paths {
		for {
			if _, err := os.Stat(p); err == nil {
				break
			}
			if time.Now().After(deadline) {
				for _, c := range cs {
					t.Logf("child stderr: %s", c.stderr.String())
				}
				t.Fatalf("%s never appeared", p)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// A kill in this process halts the calls in flight in three others, by
// LISTEN/NOTIFY; the log gives the time from the trip's start to the last
// call halted in the slowest process.
func TestKillPropagates(t *testing.T) {
	db := testDB(t)
	dir := t.TempDir()
	var cs []*child
	var ready []string
	for i := range 3 {
		r := filepath.Join(dir, "ready"+string(rune('0'+i)))
		ready = append(ready, r)
		cs = append(cs, startChild(t, "follow", childArgs{DSN: testDSN(t), Schema: db.Schema(), Index: i, Ready: r}))
	}
	waitFiles(t, ready, cs)
	sw := killswitch.New(killswitch.Options{})
	tr, _ := killswitch.NewStoreTrigger(sw, db.KillStore(), killswitch.StoreOptions{})
	start := time.Now()
	if err := tr.Trip(context.Background(), killswitch.Scope{Agent: "bot"}, "alice", "fleet stop"); err != nil {
		t.Fatal(err)
	}
	var slowest time.Duration
	for i, c := range cs {
		var r haltResult
		c.wait(t, &r)
		if r.Halted != 3 || !r.CausedBy {
			t.Errorf("process %d: %d of 3 calls halted (cause the trip: %v)", i, r.Halted, r.CausedBy)
		}
		slowest = max(slowest, time.Unix(0, r.AtNanos).Sub(start))
	}
	t.Logf("kill propagation to 3 processes: %v (from the trip to the last call halted)", slowest)
}

// A process cut off from the database counts as tripped once its
// staleness bound has passed, and resumes when the database is back.
func TestKillStoreUnreachable(t *testing.T) {
	dsn := testDSN(t)
	schema := testDB(t).Schema()
	proxy, pdsn := newCutProxy(t, dsn)
	db, err := Open(context.Background(), pdsn, Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var now time.Time = time.Now()
	clock := func() time.Time { return now }
	sw := killswitch.New(killswitch.Options{})
	tr, _ := killswitch.NewStoreTrigger(sw, db.KillStore(), killswitch.StoreOptions{Stale: 2 * time.Second, Timeout: time.Second, Clock: clock})
	ctx := context.Background()
	key := killswitch.Key{Agent: "bot"}
	if err := tr.Check(ctx); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	if err := tr.Check(ctx); err == nil {
		t.Fatal("Check through a cut connection succeeded")
	}
	if _, on := sw.Tripped(key); on {
		t.Fatal("tripped before the staleness bound")
	}
	now = now.Add(2 * time.Second)
	tr.Check(ctx)
	if _, on := sw.Tripped(key); !on {
		t.Fatal("not tripped after the staleness bound without the database")
	}
	proxy.Restore()
	if err := tr.Check(ctx); err != nil {
		t.Fatalf("Check after the database came back: %v", err)
	}
	if h, on := sw.Tripped(key); on {
		t.Fatalf("still tripped after the database came back: %v", h)
	}
}

// signalWatch closes listening when its Watch first listens.
type signalWatch struct {
	*KillStore
	listening chan struct{}
	once      sync.Once
}

func (s *signalWatch) Watch(ctx context.Context, changed func()) error {
	return s.KillStore.Watch(ctx, func() {
		changed()
		s.once.Do(func() { close(s.listening) })
	})
}

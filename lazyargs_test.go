package agentguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/killswitch"
)

// mailArgs is a planned struct small enough for a flight's view: a call of
// a guard whose stages are built in and that has no observers of its own
// builds no map of it unless something shows the arguments.
type mailArgs struct {
	To       string `json:"to"`
	Subject  string `json:"subject,omitempty"`
	Password string `json:"password"`
	Count    int    `json:"count"`
	Urgent   bool   `json:"urgent"`
	Body     string `json:"body,omitempty"`
}

const lazyPolicy = `
version: 1
default: deny
rules:
  - name: no-rivals
    match: call.tool == "send" && call.args.to.endsWith("@rival.com")
    effect: deny
    reason: no mail to rivals
  - name: big-batches
    match: call.tool == "send" && call.args.count > 100
    effect: approve
    reason: big batches need a human
  - name: send
    match: call.tool == "send"
    effect: allow
`

// lazyGuard returns a guard with a policy, the kill switch, a budget and
// an audit file (and opts), and the log's path.
func lazyGuard(t testing.TB, opts ...agentguard.Option) (*agentguard.Guard, *killswitch.Switch, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sw := killswitch.New(killswitch.Options{})
	caps := []budget.Cap{{Name: "daily", Per: budget.PerTenant, Limit: budget.Amount{Micros: 1 << 60, Unit: "USD"}, Window: budget.Day(time.UTC)}}
	g, err := agentguard.New(append([]agentguard.Option{
		agentguard.WithPolicy(mustPolicy(t, lazyPolicy)),
		agentguard.WithKillSwitch(sw),
		agentguard.WithBudget(caps, budget.Options{}),
		agentguard.WithAuditFile(path, audit.Options{Sync: audit.SyncNever, Redaction: audit.Redaction{HashKey: []byte("k")}}),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, sw, path
}

var lazyCtx = agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot", Tenant: "acme"})

// TestAllowedCallAllocs: an allowed call of a planned struct tool, with the
// policy, the kill switch, a budget and an audit file, costs one
// allocation (the call's own state): no map of its arguments is built.
func TestAllowedCallAllocs(t *testing.T) {
	if underRace {
		t.Skip("the race detector allocates")
	}
	g, _, path := lazyGuard(t)
	// No secret-named field: a value under one is redacted (even empty),
	// which takes the map.
	send := agentguard.Wrap(g, "send", func(_ context.Context, a memoArgs) (string, error) { return a.To, nil },
		agentguard.Estimate(agentguard.Cost{Unit: "USD", Micros: 10}))
	in := memoArgs{To: "bob@example.com", Subject: "hi", Count: 3, Urgent: true}
	if _, err := send(lazyCtx, in); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(200, func() {
		if _, err := send(lazyCtx, in); err != nil {
			t.Fatal(err)
		}
	})
	if n != 1 {
		t.Errorf("an allowed call allocates %v times, want 1", n)
	}
	// The calls are all in the log, with their arguments.
	g.Close()
	recs := readRecords(t, path)
	if len(recs) != 2*202 {
		t.Fatalf("%d records, want %d", len(recs), 2*202)
	}
	want := map[string]any{"to": "bob@example.com", "subject": "hi", "count": int64(3), "urgent": true}
	for _, r := range recs {
		if r.Kind == audit.KindDecision && !reflect.DeepEqual(r.Args, want) {
			t.Fatalf("decision record's args %#v, want %#v", r.Args, want)
		}
	}
}

// readRecords parses the log at path.
func readRecords(t testing.TB, path string) []*audit.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*audit.Record
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		r, err := audit.ParseRecord([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind == audit.KindDecision || r.Kind == audit.KindResult {
			recs = append(recs, r)
		}
	}
	return recs
}

// lazyCalls are calls of the send tool that take every path: allowed
// (with omitempty fields left out, a secret-named key, a secret-shaped
// value, a long string), denied by the policy, and failing with the
// secret in the tool's error.
var lazyCalls = []mailArgs{
	{To: "bob@example.com", Count: 1},
	{To: "bob@example.com", Subject: "hi", Password: "hunter22", Count: 2, Urgent: true},
	{To: "carol@example.com", Subject: "token", Body: "Authorization: Bearer abcdefghijklmnopqrstuvwxyz", Count: -7},
	{To: "dan@example.com", Body: strings.Repeat("long ", 2000)},
	{To: "eve@rival.com", Password: "hunter22", Count: 5},
	{To: "fail@example.com", Password: "sesame-open-99", Count: 3},
}

// memoArgs has no secret-named field: its records are written from the
// flight's view unless a value needs redaction.
type memoArgs struct {
	To      string `json:"to"`
	Subject string `json:"subject,omitempty"`
	Count   int    `json:"count"`
	Urgent  bool   `json:"urgent"`
}

// memoCalls are calls whose arguments are plain, secret-shaped, long, or
// negative.
var memoCalls = []memoArgs{
	{To: "bob@example.com", Subject: "hi", Count: -3, Urgent: true},
	{To: "bob@example.com"},
	{To: "carol@example.com", Subject: "Authorization: Bearer abcdefghijklmnopqrstuvwxyz"},
	{To: "dan@example.com", Subject: strings.Repeat("long ", 2000), Count: -(1 << 40)},
}

// sendTool fails for fail@example.com with an error that holds the
// password.
func sendTool(_ context.Context, a mailArgs) (string, error) {
	if a.To == "fail@example.com" {
		return "", errors.New("login failed with " + a.Password)
	}
	return "sent", nil
}

// TestLazyArgsSameRecords makes the same calls through a guard whose
// calls build no map (lazy) and one with an observer (which sees every
// call's map, so its calls build it): the records are the same, field by
// field, but for the call IDs (random) and the chain.
func TestLazyArgsSameRecords(t *testing.T) {
	now := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	clock := agentguard.WithClock(func() time.Time { return now })
	var observed []map[string]any
	var mu sync.Mutex
	gl, _, pathL := lazyGuard(t, clock)
	gm, _, pathM := lazyGuard(t, clock, agentguard.WithObserver(observerFunc(func(e *agentguard.Event) {
		if e.Kind == agentguard.EventDecision {
			mu.Lock()
			observed = append(observed, e.Call.Args)
			mu.Unlock()
		}
	})))
	for _, g := range []*agentguard.Guard{gl, gm} {
		send := agentguard.Wrap(g, "send", sendTool)
		memo := agentguard.Wrap(g, "send", func(_ context.Context, m memoArgs) (string, error) { return "", nil })
		for _, a := range lazyCalls {
			send(lazyCtx, a)
		}
		for _, m := range memoCalls {
			memo(lazyCtx, m)
		}
		g.Close()
	}
	lazy, eager := readRecords(t, pathL), readRecords(t, pathM)
	if want := 2*(len(lazyCalls)+len(memoCalls)) - 1; len(lazy) != len(eager) || len(lazy) != want {
		t.Fatalf("%d and %d records, want %d", len(lazy), len(eager), want)
	}
	for i := range lazy {
		l, m := *lazy[i], *eager[i]
		l.Call, l.Log, l.Prev, m.Call, m.Log, m.Prev = "", "", audit.Hash{}, "", "", audit.Hash{}
		if !reflect.DeepEqual(l, m) {
			t.Errorf("record %d:\nlazy  %+v\nmap   %+v", i, l, m)
		}
	}
	// The observer saw each call's arguments.
	if len(observed) != len(lazyCalls)+len(memoCalls) {
		t.Fatalf("the observer saw %d decisions, want %d", len(observed), len(lazyCalls)+len(memoCalls))
	}
	observed = observed[:len(lazyCalls)]
	for i, m := range observed {
		if m["to"] != lazyCalls[i].To || m["count"] != int64(lazyCalls[i].Count) {
			t.Errorf("observer saw %v for call %+v", m, lazyCalls[i])
		}
	}
	// And the log is redacted: no password, no token, in args or errors.
	b, _ := os.ReadFile(pathL)
	for _, secret := range []string{"hunter22", "sesame-open-99", "abcdefghijklmnopqrstuvwxyz"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// TestLazyArgsDenial: a denied call's error shows its arguments,
// redacted, and DeniedError.Args holds them.
func TestLazyArgsDenial(t *testing.T) {
	g, _, _ := lazyGuard(t)
	send := agentguard.Wrap(g, "send", sendTool)
	var got []*agentguard.DeniedError
	for range 2 { // the second time from a pooled flight
		_, err := send(lazyCtx, mailArgs{To: "eve@rival.com", Password: "hunter22", Count: 5})
		var d *agentguard.DeniedError
		if !errors.As(err, &d) || d.Code != agentguard.CodePolicyDenied {
			t.Fatalf("send to a rival: %v", err)
		}
		if d.Args["to"] != "eve@rival.com" || d.Args["count"] != int64(5) || d.Args["urgent"] != false {
			t.Errorf("DeniedError.Args = %v", d.Args)
		}
		if pw, _ := d.Args["password"].(string); pw == "" || strings.Contains(pw, "hunter22") {
			t.Errorf("DeniedError.Args[password] = %q, want it redacted", pw)
		}
		if _, ok := d.Args["subject"]; ok {
			t.Errorf("DeniedError.Args has the empty omitempty subject: %v", d.Args)
		}
		if msg := err.Error(); !strings.Contains(msg, `"to":"eve@rival.com"`) || strings.Contains(msg, "hunter22") {
			t.Errorf("denial text %q: want the arguments, redacted", msg)
		}
		got = append(got, d)
	}
	// Each denial keeps its own arguments once the flight carries other
	// calls.
	if _, err := send(lazyCtx, mailArgs{To: "bob@example.com", Count: 9}); err != nil {
		t.Fatal(err)
	}
	for _, d := range got {
		if d.Args["to"] != "eve@rival.com" || d.Args["count"] != int64(5) {
			t.Errorf("a denial's Args changed after the call: %v", d.Args)
		}
	}
}

// TestLazyArgsCallFrom: a tool sees its call's arguments through
// CallFrom, from its own goroutine and others at once, and what it got
// stays its own after the flight carries the next call.
func TestLazyArgsCallFrom(t *testing.T) {
	g, _, _ := lazyGuard(t)
	var kept []*agentguard.Call
	send := agentguard.Wrap(g, "send", func(ctx context.Context, a mailArgs) (string, error) {
		var wg sync.WaitGroup
		calls := make([]*agentguard.Call, 4)
		for i := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				calls[i], _ = agentguard.CallFrom(ctx)
			}()
		}
		wg.Wait()
		for _, c := range calls {
			if c == nil {
				return "", errors.New("no call in the tool's context")
			}
			want := map[string]any{"to": a.To, "password": a.Password, "count": int64(a.Count), "urgent": a.Urgent}
			if !reflect.DeepEqual(c.Args, want) {
				return "", errors.New("CallFrom's Args differ")
			}
			if reflect.ValueOf(c.Args).UnsafePointer() != reflect.ValueOf(calls[0].Args).UnsafePointer() {
				return "", errors.New("CallFrom built a second map for one call")
			}
		}
		kept = append(kept, calls[0])
		return "ok", nil
	})
	for i := range 3 {
		if _, err := send(lazyCtx, mailArgs{To: "bob@example.com", Count: i}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	for i, c := range kept {
		if c.Args["count"] != int64(i) {
			t.Errorf("call %d's Args became %v", i, c.Args)
		}
	}
}

// approveFirst approves every request and keeps the cards.
type approveFirst struct {
	mu    sync.Mutex
	cards []*approval.Request
}

func (a *approveFirst) Approve(_ context.Context, r *approval.Request) (approval.Verdict, error) {
	a.mu.Lock()
	a.cards = append(a.cards, r)
	a.mu.Unlock()
	return r.Approve("alice", ""), nil
}

// TestLazyArgsApproval: an approver's card shows the arguments, redacted,
// and the approved call runs.
func TestLazyArgsApproval(t *testing.T) {
	a := &approveFirst{}
	g, _, path := lazyGuard(t, agentguard.WithApprover(a))
	send := agentguard.Wrap(g, "send", sendTool)
	if out, err := send(lazyCtx, mailArgs{To: "bob@example.com", Password: "hunter22", Count: 500}); err != nil || out != "sent" {
		t.Fatalf("approved call = %q, %v", out, err)
	}
	if len(a.cards) != 1 {
		t.Fatalf("%d cards", len(a.cards))
	}
	c := a.cards[0].Args
	if c["to"] != "bob@example.com" || c["count"] != int64(500) {
		t.Errorf("card args %v", c)
	}
	if pw, _ := c["password"].(string); pw == "" || strings.Contains(pw, "hunter22") {
		t.Errorf("card shows password %q, want it redacted", pw)
	}
	g.Close()
	for _, r := range readRecords(t, path) {
		if r.Kind == audit.KindDecision && (r.Args["to"] != "bob@example.com" || r.Args["count"] != int64(500)) {
			t.Errorf("decision record's args %v", r.Args)
		}
	}
}

// TestLazyArgsHalted: a call halted while it runs is denied with its
// arguments.
func TestLazyArgsHalted(t *testing.T) {
	g, sw, _ := lazyGuard(t)
	send := agentguard.Wrap(g, "send", func(ctx context.Context, a mailArgs) (string, error) {
		if err := sw.Trip(killswitch.Scope{}, "ops", "stop"); err != nil {
			return "", err
		}
		<-ctx.Done()
		return "late", nil
	})
	_, err := send(lazyCtx, mailArgs{To: "bob@example.com", Count: 4})
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Code != agentguard.CodeHalted {
		t.Fatalf("halted call: %v", err)
	}
	if d.Args["to"] != "bob@example.com" || d.Args["count"] != int64(4) {
		t.Errorf("halted call's DeniedError.Args = %v", d.Args)
	}
	if b, _ := json.Marshal(d.Args); !strings.Contains(err.Error(), string(b)) {
		t.Errorf("denial text %q lacks the arguments %s", err, b)
	}
}

// TestLazyArgsHaltedPreemptive: a Preemptive tool that ignores its
// context reads its call through CallFrom while a trip halts the call, the
// denial builds the arguments' map, and the flight is released and
// carries the next calls: each reader sees its own call's arguments or
// nothing. Run it with -race.
func TestLazyArgsHaltedPreemptive(t *testing.T) {
	g, sw, _ := lazyGuard(t)
	unblock := make(chan struct{})
	var wg sync.WaitGroup
	var bad sync.Map
	send := agentguard.Wrap(g, "send", func(ctx context.Context, a mailArgs) (string, error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Until the call has ended (CallFrom then says so), and 1000
			// times at most.
			for range 1000 {
				c, ok := agentguard.CallFrom(ctx)
				if !ok {
					return
				}
				if c.Args["count"] != int64(a.Count) {
					bad.Store(a.Count, c.Args)
				}
				runtime.Gosched()
			}
		}()
		if a.Count == 0 {
			sw.Trip(killswitch.Scope{Agent: "bot"}, "ops", "stop")
			<-unblock // ignores its context
		}
		return "ok", nil
	}, agentguard.Preemptive())
	defer close(unblock)
	_, err := send(lazyCtx, mailArgs{To: "bob@example.com"})
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Code != agentguard.CodeHalted || d.Args["to"] != "bob@example.com" {
		t.Fatalf("halted call: %v", err)
	}
	sw.Resume(killswitch.Scope{Agent: "bot"}, "ops", "go on")
	for i := 1; i < 20; i++ {
		if _, err := send(lazyCtx, mailArgs{To: "bob@example.com", Count: i}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	wg.Wait()
	bad.Range(func(k, v any) bool {
		t.Errorf("call %v saw arguments %v", k, v)
		return true
	})
}

// TestLazyArgsEstimateFunc: an EstimateFunc is given the call with its
// arguments, and its estimate is the call's.
func TestLazyArgsEstimateFunc(t *testing.T) {
	g, _, path := lazyGuard(t)
	send := agentguard.Wrap(g, "send", sendTool, agentguard.EstimateFunc(func(c *agentguard.Call) ([]agentguard.Cost, error) {
		n, ok := c.Args["count"].(int64)
		if !ok {
			return nil, errors.New("no count in the call's arguments")
		}
		return []agentguard.Cost{{Unit: "USD", Micros: n * 1000}}, nil
	}))
	if _, err := send(lazyCtx, mailArgs{To: "bob@example.com", Count: 7}); err != nil {
		t.Fatal(err)
	}
	g.Close()
	recs := readRecords(t, path)
	if len(recs) == 0 || len(recs[0].Estimate) != 1 || recs[0].Estimate[0].Micros != 7000 {
		t.Fatalf("decision record %+v, want an estimate of 7000 micro-USD", recs[0])
	}
}

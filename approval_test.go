package agentguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/policy"
)

const apprPolicy = `
version: 1
default: deny
rules:
  - name: big-refunds
    match: call.tool == "refund" && call.args.amount > 100.0
    effect: approve
    reason: refunds over 100 need a human
  - name: small-refunds
    match: call.tool == "refund" && call.args.amount <= 100.0
    effect: allow
  - name: quick
    match: call.tool == "quick"
    effect: approve
    timeout: 2s
  - name: logins
    match: call.tool == "login"
    effect: approve
`

type apprArgs struct {
	Order  string  `json:"order"`
	Amount float64 `json:"amount"`
}

// apprRecorder keeps the events it is given and can redact.
type apprRecorder struct {
	mu     sync.Mutex
	events []agentguard.Event
	fail   func(*agentguard.Event) error
}

func (r *apprRecorder) Record(_ context.Context, e *agentguard.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(e); err != nil {
			return err
		}
	}
	r.events = append(r.events, *e)
	return nil
}

func (r *apprRecorder) of(kind agentguard.EventKind) []agentguard.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []agentguard.Event
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (r *apprRecorder) kinds() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, e := range r.events {
		s = append(s, string(e.Kind)+":"+e.Decision.String())
	}
	return strings.Join(s, " ")
}

type redactingRecorder struct{ apprRecorder }

func (*redactingRecorder) RedactArgs(args map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range args {
		if k == "password" {
			v = "[redacted]"
		}
		out[k] = v
	}
	return out
}

func apprGuard(t testing.TB, rec agentguard.Recorder, opts ...agentguard.Option) *agentguard.Guard {
	t.Helper()
	p, err := policy.Parse("approval.yaml", []byte(apprPolicy))
	if err != nil {
		t.Fatal(err)
	}
	g, err := agentguard.New(append([]agentguard.Option{agentguard.WithPolicy(p), agentguard.WithRecorder(rec)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// asking is an approver that hands each card to the test and returns
// the verdict the test sends back.
type asking struct {
	cards chan *approval.Request
	mu    sync.Mutex
	reply map[string]chan approval.Verdict
	asked atomic.Int64
}

func newAsking() *asking {
	return &asking{cards: make(chan *approval.Request, 128), reply: map[string]chan approval.Verdict{}}
}

func (a *asking) Approve(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
	a.asked.Add(1)
	ch := make(chan approval.Verdict, 1)
	a.mu.Lock()
	a.reply[r.ID] = ch
	a.mu.Unlock()
	a.cards <- r
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		return approval.Verdict{}, ctx.Err()
	}
}

func (a *asking) answer(r *approval.Request, v approval.Verdict) {
	a.mu.Lock()
	ch := a.reply[r.ID]
	a.mu.Unlock()
	ch <- v
}

type callResult struct {
	out string
	err error
}

func TestApprovalToolRunsOnlyAfterTheVerdict(t *testing.T) {
	rec := &apprRecorder{}
	a := newAsking()
	g := apprGuard(t, rec, agentguard.WithApprover(a))
	var ran atomic.Int64
	ref := agentguard.Wrap(g, "refund", func(_ context.Context, x apprArgs) (string, error) {
		ran.Add(1)
		return "refunded " + x.Order, nil
	})
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot", Tenant: "acme", Requester: "alice"})
	res := make(chan callResult, 1)
	go func() {
		out, err := ref(ctx, apprArgs{Order: "A1", Amount: 250})
		res <- callResult{out, err}
	}()
	card := <-a.cards
	if ran.Load() != 0 {
		t.Fatal("the tool ran before the verdict")
	}
	if card.Tool != "refund" || card.Rule != "big-refunds" || card.Reason != "refunds over 100 need a human" ||
		card.Args["amount"] != 250.0 || card.Principal.Agent != "bot" || card.Principal.Requester != "alice" || card.Deadline.Sub(card.Created) != approval.DefaultTimeout {
		t.Fatalf("card = %+v", card)
	}
	want, _ := approval.HashCall("refund", map[string]any{"order": "A1", "amount": 250.0}, approval.Principal{Agent: "bot", Tenant: "acme", Requester: "alice"})
	if card.Hash != want {
		t.Fatalf("card hash = %s, want %s", card.Hash, want)
	}
	select {
	case r := <-res:
		t.Fatalf("the call returned before the verdict: %+v", r)
	default:
	}
	a.answer(card, card.Approve("carol", "ok"))
	r := <-res
	if r.err != nil || r.out != "refunded A1" || ran.Load() != 1 {
		t.Fatalf("call = %+v, ran %d", r, ran.Load())
	}
	if got := rec.kinds(); got != "approval:allow decision:allow result:allow" {
		t.Fatalf("events = %s", got)
	}
	ap := rec.of(agentguard.EventApproval)[0]
	if ap.Approver != "carol" || ap.Note != "ok" || ap.Rule != "big-refunds" || ap.Call == nil || ap.Call.ID != card.ID {
		t.Fatalf("approval event = %+v", ap)
	}
	if d := rec.of(agentguard.EventDecision)[0]; d.Approver != "carol" {
		t.Fatalf("decision event approver = %q", d.Approver)
	}
}

func wantDenied(t *testing.T, err error, code agentguard.Code, sentinel error) *agentguard.DeniedError {
	t.Helper()
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Code != code || !errors.Is(err, sentinel) || !errors.Is(err, agentguard.ErrDenied) {
		t.Fatalf("err = %v, want a %s denial", err, code)
	}
	return d
}

func TestApprovalRejectedNeverRuns(t *testing.T) {
	for _, c := range []struct {
		name     string
		answer   func(r *approval.Request) approval.Verdict
		reason   string
		code     agentguard.Code
		sentinel error
	}{
		{"rejected", func(r *approval.Request) approval.Verdict { return r.Reject("bob", "too risky") }, "rejected by bob: too risky",
			agentguard.CodeApprovalRejected, agentguard.ErrApprovalDenied},
		{"hash mismatch", func(r *approval.Request) approval.Verdict {
			v := r.Approve("bob", "")
			v.Hash = strings.Repeat("0", 64)
			return v
		}, "another call's hash", agentguard.CodeApprovalInvalid, approval.ErrForged},
		{"other request", func(r *approval.Request) approval.Verdict {
			v := r.Approve("bob", "")
			v.ID = "someone-else"
			return v
		}, "answers another request", agentguard.CodeApprovalInvalid, approval.ErrMismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &apprRecorder{}
			g := apprGuard(t, rec, agentguard.WithApprover(approval.Func(func(_ context.Context, r *approval.Request) (approval.Verdict, error) {
				return c.answer(r), nil
			})))
			var ran atomic.Int64
			ref := agentguard.Wrap(g, "refund", func(context.Context, apprArgs) (string, error) { ran.Add(1); return "", nil })
			_, err := ref(context.Background(), apprArgs{Order: "A", Amount: 500})
			d := wantDenied(t, err, c.code, c.sentinel)
			if d.Rule != "big-refunds" || !strings.Contains(d.Reason, c.reason) || d.Stage != agentguard.StageApproval {
				t.Fatalf("denial = %+v", d)
			}
			if ran.Load() != 0 {
				t.Fatal("the tool ran after a refusal")
			}
			if got := rec.kinds(); got != "approval:deny decision:deny" {
				t.Fatalf("events = %s", got)
			}
		})
	}
}

func TestApprovalVerdictReusedForAnotherCall(t *testing.T) {
	var mu sync.Mutex
	var saved *approval.Verdict
	g := apprGuard(t, &apprRecorder{}, agentguard.WithApprover(approval.Func(func(_ context.Context, r *approval.Request) (approval.Verdict, error) {
		mu.Lock()
		defer mu.Unlock()
		if saved == nil {
			v := r.Approve("carol", "")
			saved = &v
		}
		return *saved, nil
	})))
	var ran atomic.Int64
	ref := agentguard.Wrap(g, "refund", func(context.Context, apprArgs) (string, error) { ran.Add(1); return "", nil })
	if _, err := ref(context.Background(), apprArgs{Order: "A", Amount: 500}); err != nil {
		t.Fatal(err)
	}
	_, err := ref(context.Background(), apprArgs{Order: "A", Amount: 500}) // same arguments, another call
	d := wantDenied(t, err, agentguard.CodeApprovalInvalid, approval.ErrReused)
	if !strings.Contains(d.Reason, "already used") || !errors.Is(err, agentguard.ErrApprovalInvalid) || ran.Load() != 1 {
		t.Fatalf("denial = %+v, ran %d", d, ran.Load())
	}
}

func TestApprovalTimeoutNeverRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &apprRecorder{}
		never := approval.Func(func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
			<-ctx.Done()
			return r.Approve("late", ""), nil
		})
		g := apprGuard(t, rec, agentguard.WithApprover(never), agentguard.WithApprovalTimeout(time.Minute))
		var ran atomic.Int64
		ref := agentguard.Wrap(g, "refund", func(context.Context, apprArgs) (string, error) { ran.Add(1); return "", nil })
		start := time.Now()
		_, err := ref(context.Background(), apprArgs{Order: "A", Amount: 500})
		d := wantDenied(t, err, agentguard.CodeApprovalTimeout, agentguard.ErrApprovalTimeout)
		if time.Since(start) != time.Minute || !strings.Contains(d.Reason, "1m0s") {
			t.Fatalf("waited %s, denial %+v; want the guard's 1m", time.Since(start), d)
		}
		// The rule's own timeout wins.
		quick := agentguard.Wrap(g, "quick", func(context.Context, struct{}) (string, error) { ran.Add(1); return "", nil })
		start = time.Now()
		_, err = quick(context.Background(), struct{}{})
		wantDenied(t, err, agentguard.CodeApprovalTimeout, agentguard.ErrApprovalTimeout)
		if time.Since(start) != 2*time.Second {
			t.Fatalf("waited %s, want the rule's 2s", time.Since(start))
		}
		if ran.Load() != 0 {
			t.Fatal("the tool ran after a timeout")
		}
		synctest.Wait()
	})
}

func TestApprovalCancelNeverRuns(t *testing.T) {
	a := newAsking()
	g := apprGuard(t, &apprRecorder{}, agentguard.WithApprover(a))
	var ran atomic.Int64
	ref := agentguard.Wrap(g, "refund", func(context.Context, apprArgs) (string, error) { ran.Add(1); return "", nil })
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("user closed the chat")
	res := make(chan error, 1)
	go func() {
		_, err := ref(ctx, apprArgs{Order: "A", Amount: 500})
		res <- err
	}()
	card := <-a.cards
	cancel(stop)
	err := <-res
	if !errors.Is(err, agentguard.ErrDenied) || !errors.Is(err, stop) {
		t.Fatalf("err = %v, want a denial carrying the cause", err)
	}
	a.answer(card, card.Approve("carol", "")) // too late: nobody listens
	if ran.Load() != 0 {
		t.Fatal("the tool ran after a cancel")
	}
}

// apprHalter is a kill switch for one test: trip cancels every call in
// flight with a cause.
type apprHalter struct {
	mu     sync.Mutex
	flying map[*int]context.CancelCauseFunc
}

func (h *apprHalter) Enter(ctx context.Context, _ *agentguard.Call) (context.Context, func() bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	k := new(int)
	h.flying[k] = cancel
	return ctx, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		_, ok := h.flying[k]
		delete(h.flying, k)
		cancel(nil)
		return ok
	}, nil
}

func (h *apprHalter) trip(cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, cancel := range h.flying {
		cancel(cause)
		delete(h.flying, k)
	}
}

func TestApprovalKillSwitchWhileWaitingHalts(t *testing.T) {
	a := newAsking()
	h := &apprHalter{flying: map[*int]context.CancelCauseFunc{}}
	g := apprGuard(t, &apprRecorder{}, agentguard.WithApprover(a), agentguard.WithHalter(h))
	var ran atomic.Int64
	ref := agentguard.Wrap(g, "refund", func(context.Context, apprArgs) (string, error) { ran.Add(1); return "", nil })
	res := make(chan error, 1)
	go func() {
		_, err := ref(context.Background(), apprArgs{Order: "A", Amount: 500})
		res <- err
	}()
	card := <-a.cards
	stop := errors.New("operator pressed stop")
	h.trip(stop)
	err := <-res
	wantDenied(t, err, agentguard.CodeHalted, agentguard.ErrHalted)
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want the trip's cause", err)
	}
	a.answer(card, card.Approve("carol", ""))
	if ran.Load() != 0 {
		t.Fatal("the tool ran after a halt")
	}
}

func TestApprovalGrantSkipsTheWaitAndIsRecorded(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var asked atomic.Int64
	a := approval.Func(func(_ context.Context, r *approval.Request) (approval.Verdict, error) {
		asked.Add(1)
		return r.ApproveFor("carol", "fine for a while", approval.Grant{Scope: approval.ScopeTool, Duration: 10 * time.Minute}), nil
	})
	rec := &apprRecorder{}
	g := apprGuard(t, rec, agentguard.WithApprover(a), agentguard.WithClock(clock))
	var ran atomic.Int64
	ref := agentguard.Wrap(g, "refund", func(context.Context, apprArgs) (string, error) { ran.Add(1); return "", nil })
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot"})
	call := func() {
		t.Helper()
		if _, err := ref(ctx, apprArgs{Order: fmt.Sprint(ran.Load()), Amount: 500}); err != nil {
			t.Fatal(err)
		}
	}
	call()
	grants, err := g.Grants().List(context.Background())
	if err != nil || len(grants) != 1 || grants[0].Scope != approval.ScopeTool || grants[0].By != "carol" {
		t.Fatalf("grants = %+v, %v", grants, err)
	}
	id := grants[0].ID
	if ge := rec.of(agentguard.EventGrant); len(ge) != 1 || ge[0].Grant != id || ge[0].Approver != "carol" {
		t.Fatalf("grant events = %+v", ge)
	}
	call() // covered: no question asked
	if asked.Load() != 1 || ran.Load() != 2 {
		t.Fatalf("asked %d, ran %d; want 1, 2", asked.Load(), ran.Load())
	}
	ap := rec.of(agentguard.EventApproval)
	if len(ap) != 2 || ap[1].Grant != id || !strings.Contains(ap[1].Note, "covered by grant "+id) {
		t.Fatalf("approval events = %+v", ap)
	}
	dec := rec.of(agentguard.EventDecision)
	if dec[1].Grant != id || dec[1].Approver != "carol" {
		t.Fatalf("decision of the covered call = %+v, want grant %s", dec[1], id)
	}
	// Expiry.
	advance(10 * time.Minute)
	call()
	if asked.Load() != 2 {
		t.Fatalf("asked %d after the grant expired, want 2", asked.Load())
	}
	// Revocation takes effect for the next call, and is recorded.
	grants, _ = g.Grants().List(context.Background())
	if len(grants) != 1 {
		t.Fatalf("grants = %+v", grants)
	}
	if err := g.Grants().Revoke(context.Background(), grants[0].ID, "dave"); err != nil {
		t.Fatal(err)
	}
	call()
	if asked.Load() != 3 {
		t.Fatalf("asked %d after revocation, want 3", asked.Load())
	}
	last := rec.of(agentguard.EventGrant)
	if r := last[len(last)-2]; r.Note != "revoked" || r.Grant != grants[0].ID || r.Approver != "dave" {
		t.Fatalf("revocation event = %+v", r)
	}
	if err := g.Grants().Revoke(context.Background(), "nope", "dave"); !errors.Is(err, approval.ErrNoGrant) {
		t.Fatalf("Revoke(unknown) = %v", err)
	}
}

func TestApprovalUnrecordedGrantDenies(t *testing.T) {
	rec := &apprRecorder{fail: func(e *agentguard.Event) error {
		if e.Kind == agentguard.EventGrant {
			return errors.New("disk full")
		}
		return nil
	}}
	a := approval.Func(func(_ context.Context, r *approval.Request) (approval.Verdict, error) {
		return r.ApproveFor("carol", "", approval.Grant{Scope: approval.ScopeAgent, Duration: time.Hour}), nil
	})
	g := apprGuard(t, rec, agentguard.WithApprover(a))
	var ran atomic.Int64
	ref := agentguard.Wrap(g, "refund", func(context.Context, apprArgs) (string, error) { ran.Add(1); return "", nil })
	_, err := ref(context.Background(), apprArgs{Order: "A", Amount: 500})
	wantDenied(t, err, agentguard.CodeAuditUnavailable, agentguard.ErrAuditUnavailable)
	if l, _ := g.Grants().List(context.Background()); len(l) != 0 || ran.Load() != 0 {
		t.Fatalf("grants %+v, ran %d; want the unrecorded grant taken back and no run", l, ran.Load())
	}
}

func TestApprovalCardIsRedactedButHashIsNot(t *testing.T) {
	a := newAsking()
	g := apprGuard(t, &redactingRecorder{}, agentguard.WithApprover(a))
	login := agentguard.Wrap(g, "login", func(context.Context, map[string]any) (string, error) { return "", nil })
	for _, pw := range []string{"hunter2", "letmein"} {
		go login(context.Background(), map[string]any{"user": "root", "password": pw})
	}
	c1, c2 := <-a.cards, <-a.cards
	if c1.Args["password"] != "[redacted]" || c2.Args["password"] != "[redacted]" || c1.Args["user"] != "root" {
		t.Fatalf("cards show %v and %v", c1.Args, c2.Args)
	}
	if c1.Hash == c2.Hash {
		t.Fatal("calls that differ only in a secret have the same hash")
	}
	a.answer(c1, c1.Reject("x", ""))
	a.answer(c2, c2.Reject("x", ""))
}

func TestApprovalParallelCallsGetTheirOwnVerdict(t *testing.T) {
	const n = 100
	a := newAsking()
	g := apprGuard(t, &apprRecorder{}, agentguard.WithApprover(a))
	var ran sync.Map
	ref := agentguard.Wrap(g, "refund", func(_ context.Context, x apprArgs) (string, error) {
		ran.Store(x.Order, true)
		return "refunded " + x.Order, nil
	})
	errs := make([]error, n)
	outs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			outs[i], errs[i] = ref(context.Background(), apprArgs{Order: fmt.Sprint(i), Amount: 101 + float64(i)})
		})
	}
	cards := make([]*approval.Request, 0, n)
	for range n {
		cards = append(cards, <-a.cards)
	}
	rand.Shuffle(n, func(i, j int) { cards[i], cards[j] = cards[j], cards[i] })
	for _, c := range cards {
		var i int
		fmt.Sscan(c.Args["order"].(string), &i)
		if c.Args["amount"] != 101+float64(i) {
			t.Fatalf("card %s shows %v", c.ID, c.Args)
		}
		if i%3 == 0 {
			a.answer(c, c.Reject("bob", c.Args["order"].(string)))
		} else {
			a.answer(c, c.Approve("carol", ""))
		}
	}
	wg.Wait()
	for i := range n {
		_, didRun := ran.Load(fmt.Sprint(i))
		if i%3 == 0 {
			d := wantDenied(t, errs[i], agentguard.CodeApprovalRejected, agentguard.ErrApprovalDenied)
			if !strings.HasSuffix(d.Reason, ": "+fmt.Sprint(i)) || didRun {
				t.Errorf("call %d: %+v, ran %v", i, d, didRun)
			}
		} else if errs[i] != nil || outs[i] != fmt.Sprint("refunded ", i) || !didRun {
			t.Errorf("call %d: %q, %v, ran %v", i, outs[i], errs[i], didRun)
		}
	}
}

func TestApprovalOptions(t *testing.T) {
	p, _ := policy.Parse("p.yaml", []byte(apprPolicy))
	gate, _ := approval.NewGate(approval.AllowAll, approval.Options{})
	for _, opts := range [][]agentguard.Option{
		{agentguard.WithApprover(nil)},
		{agentguard.WithApprovalGate(nil)},
		{agentguard.WithApprover(approval.AllowAll), agentguard.WithApprovalGate(gate)},
		{agentguard.WithApprovalTimeout(time.Minute)},
		{agentguard.WithApprover(approval.AllowAll), agentguard.WithApprovalTimeout(0)},
	} {
		if g, err := agentguard.New(append(opts, agentguard.WithPolicy(p))...); err == nil {
			g.Close()
			t.Errorf("New with %d bad approval options: no error", len(opts))
		}
	}
	g := apprGuard(t, &apprRecorder{}, agentguard.WithApprovalGate(gate), agentguard.WithApprovalTimeout(time.Minute))
	ref := agentguard.Wrap(g, "refund", func(context.Context, apprArgs) (string, error) { return "ok", nil })
	if out, err := ref(context.Background(), apprArgs{Order: "A", Amount: 500}); err != nil || out != "ok" {
		t.Fatalf("with AllowAll: %q, %v", out, err)
	}
	plain := apprGuard(t, &apprRecorder{})
	if _, err := plain.Grants().List(context.Background()); err == nil {
		t.Error("Grants of a guard without approvals: no error")
	}
}

func TestApprovalCardLabelsAreACopy(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	g := apprGuard(t, &apprRecorder{}, agentguard.WithApprover(approval.Func(func(_ context.Context, r *approval.Request) (approval.Verdict, error) {
		mu.Lock()
		seen = append(seen, r.Labels["team"])
		mu.Unlock()
		r.Labels["team"] = "mallory" // a careless approver
		return r.Approve("carol", ""), nil
	})))
	ref := agentguard.Wrap(g, "refund", func(context.Context, apprArgs) (string, error) { return "", nil }, agentguard.Labels("team", "billing"))
	for range 2 {
		if _, err := ref(context.Background(), apprArgs{Order: "A", Amount: 500}); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 2 || seen[0] != "billing" || seen[1] != "billing" {
		t.Fatalf("cards showed labels %v, want billing twice", seen)
	}
}

// TestInboxIdentityInTheAuditChain: the identity an inbox's authenticator
// verifies is the approver the hash-chained audit log records, and a name
// typed in its place is not (issue 11, item 6).
func TestInboxIdentityInTheAuditChain(t *testing.T) {
	in, err := approval.NewInbox(approval.InboxOptions{Token: "inbox-token-0123456789", Authenticate: approval.TrustHeader("X-Forwarded-User")})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	p, err := policy.Parse("approval.yaml", []byte(apprPolicy))
	if err != nil {
		t.Fatal(err)
	}
	g, err := agentguard.New(agentguard.WithPolicy(p), agentguard.WithAuditFile(path), agentguard.WithApprover(in))
	if err != nil {
		t.Fatal(err)
	}
	ref := agentguard.Wrap(g, "refund", func(context.Context, apprArgs) (string, error) { return "ok", nil })
	done := make(chan error, 1)
	go func() {
		_, err := ref(context.Background(), apprArgs{Order: "A", Amount: 500})
		done <- err
	}()
	var pending []approval.Request
	for len(pending) == 0 {
		runtime.Gosched() // the call reaches the inbox
		pending = in.Pending()
	}
	body := fmt.Sprintf(`{"id":%q,"hash":%q,"by":"mallory"}`, pending[0].ID, pending[0].Hash)
	req := httptest.NewRequest("POST", "/api/approve", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer inbox-token-0123456789")
	req.Header.Set("X-Forwarded-User", "alice@acme.com")
	rec := httptest.NewRecorder()
	in.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("approve: %d %s", rec.Code, rec.Body)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for line := range strings.Lines(string(b)) {
		var r struct{ Kind, Approver string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.Approver == "alice@acme.com" {
			kinds = append(kinds, r.Kind)
		}
	}
	if !slices.Contains(kinds, "approval") || !slices.Contains(kinds, "decision") || strings.Contains(string(b), "mallory") {
		t.Fatalf("records approved by alice@acme.com: %v, want the approval and the decision; log:\n%s", kinds, b)
	}
}

// TestApprovalCardLabelsRedacted: a card shows the tool's labels redacted
// as its arguments are, in a map of its own.
func TestApprovalCardLabelsRedacted(t *testing.T) {
	var card *approval.Request
	g := apprGuard(t, &apprRecorder{}, agentguard.WithApprover(approval.Func(func(_ context.Context, r *approval.Request) (approval.Verdict, error) {
		card = r
		r.Labels["team"] = "edited by the approver"
		return r.Approve("bob", ""), nil
	})))
	ref := agentguard.Wrap(g, "refund", func(ctx context.Context, a apprArgs) (string, error) {
		c, _ := agentguard.CallFrom(ctx)
		if c.Labels["team"] != "billing" {
			t.Errorf("the tool's labels = %v after the approver edited its card", c.Labels)
		}
		return "", nil
	}, agentguard.Labels("team", "billing", "api_key", "sk-live-abcdefghijklmnop"))
	if _, err := ref(context.Background(), apprArgs{Order: "A", Amount: 500}); err != nil {
		t.Fatal(err)
	}
	if card == nil || !strings.HasPrefix(card.Labels["api_key"], "[REDACTED:") {
		t.Fatalf("the card's labels = %v, want api_key redacted", card.Labels)
	}
}

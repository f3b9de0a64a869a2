package approval

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func req(id, tool string, args map[string]any) *Request {
	return &Request{ID: id, Tool: tool, Args: args, Principal: Principal{Agent: "bot", Tenant: "acme"}}
}

func newGate(t *testing.T, a Approver, opts Options) *Gate {
	t.Helper()
	g, err := NewGate(a, opts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func wantRefused(t *testing.T, err, reason error) *RefusedError {
	t.Helper()
	if !errors.Is(err, reason) {
		t.Fatalf("err = %v, want %v", err, reason)
	}
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("err = %T, want *RefusedError", err)
	}
	for _, s := range []error{ErrRejected, ErrTimeout, ErrMismatch, ErrForged, ErrReused, ErrCancelled, ErrApprover, ErrInvalid} {
		if s != reason && errors.Is(err, s) {
			t.Fatalf("err = %v matches %v as well as %v", err, s, reason)
		}
	}
	return re
}

// TestCanonicalIntegersExact checks the canonical encoding of integers
// past 2^53: exact digits for every Go integer type and json.Number, and
// different hashes for neighbours.
func TestCanonicalIntegersExact(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{int64(9007199254740993), `9007199254740993`},
		{int64(-9223372036854775808), `-9223372036854775808`},
		{uint64(18446744073709551615), `18446744073709551615`},
		{json.Number("18446744073709551615"), `18446744073709551615`},
		{3.0, `3`},
		{1e21, `1e+21`},
	} {
		got, err := Canonical("t", map[string]any{"n": tc.v}, Principal{})
		if err != nil {
			t.Fatal(err)
		}
		want := `{"args":{"n":` + tc.want + `},"principal":{"agent":"","requester":"","session":"","tenant":""},"tool":"t"}`
		if string(got) != want {
			t.Errorf("Canonical(n: %#v) = %s, want %s", tc.v, got, want)
		}
	}
	seen := map[string]any{}
	for _, v := range []any{int64(9007199254740993), int64(9007199254740992), uint64(18446744073709551615), uint64(18446744073709551614), "9007199254740993"} {
		h, err := HashCall("t", map[string]any{"n": v}, Principal{})
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := seen[h]; ok {
			t.Errorf("HashCall: %#v and %#v have the same hash", prev, v)
		}
		seen[h] = v
	}
}

func TestCanonical(t *testing.T) {
	type inner struct {
		Z int    `json:"z"`
		A string `json:"a"`
	}
	p := Principal{Agent: "bot", Requester: "alice", Tenant: "acme", Session: "s1"}
	got, err := Canonical("send", map[string]any{"to": "<b@x>", "n": 1.5, "in": inner{Z: 2, A: "é"}}, p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"args":{"in":{"a":"é","z":2},"n":1.5,"to":"<b@x>"},"principal":{"agent":"bot","requester":"alice","session":"s1","tenant":"acme"},"tool":"send"}`
	if string(got) != want {
		t.Fatalf("Canonical = %s\nwant        %s", got, want)
	}
	h, err := HashCall("send", map[string]any{"in": map[string]any{"z": 2, "a": "é"}, "to": "<b@x>", "n": 1.5}, p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(want))
	if h != hex.EncodeToString(sum[:]) {
		t.Fatalf("HashCall = %s, want sha256 of the canonical form", h)
	}
	// Any difference in tool, arguments or principal changes the hash.
	for _, c := range []struct {
		tool string
		args map[string]any
		p    Principal
	}{
		{"send2", map[string]any{"in": map[string]any{"z": 2, "a": "é"}, "to": "<b@x>", "n": 1.5}, p},
		{"send", map[string]any{"in": map[string]any{"z": 3, "a": "é"}, "to": "<b@x>", "n": 1.5}, p},
		{"send", map[string]any{"in": map[string]any{"z": 2, "a": "é"}, "to": "<b@x>", "n": 1.5}, Principal{Agent: "bot", Requester: "bob", Tenant: "acme", Session: "s1"}},
	} {
		h2, err := HashCall(c.tool, c.args, c.p)
		if err != nil {
			t.Fatal(err)
		}
		if h2 == h {
			t.Errorf("HashCall(%q, %v, %v) = the same hash as a different call", c.tool, c.args, c.p)
		}
	}
	if _, err := HashCall("t", map[string]any{"f": func() {}}, p); err == nil {
		t.Error("HashCall with a function argument: no error")
	}
	nilArgs, _ := HashCall("t", nil, p)
	emptyArgs, _ := HashCall("t", map[string]any{}, p)
	if nilArgs != emptyArgs {
		t.Error("nil and empty arguments hash differently")
	}
}

func TestAmountString(t *testing.T) {
	for _, c := range []struct {
		a    Amount
		want string
	}{
		{Amount{"USD", 1_500_000}, "1.50 USD"},
		{Amount{"USD", 125}, "0.000125 USD"},
		{Amount{"USD", -2_000_000}, "-2.00 USD"},
		{Amount{"tokens", 12_345_000_000}, "12345.00 tokens"},
	} {
		if got := c.a.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.a, got, c.want)
		}
	}
}

func TestAskVerdicts(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		name string
		a    Func
		want error
	}{
		{"approve", func(_ context.Context, r *Request) (Verdict, error) { return r.Approve("alice", "ok"), nil }, nil},
		{"reject", func(_ context.Context, r *Request) (Verdict, error) { return r.Reject("alice", "too much"), nil }, ErrRejected},
		{"error", func(context.Context, *Request) (Verdict, error) { return Verdict{Approved: true}, boom }, ErrApprover},
		{"panic", func(context.Context, *Request) (Verdict, error) { panic("oops") }, ErrApprover},
		{"other hash", func(_ context.Context, r *Request) (Verdict, error) {
			v := r.Approve("alice", "")
			v.Hash = fmt.Sprintf("%064x", 1)
			return v, nil
		}, ErrForged},
		{"no binding", func(context.Context, *Request) (Verdict, error) { return Verdict{Approved: true, By: "alice"}, nil }, ErrMismatch},
		{"other id", func(_ context.Context, r *Request) (Verdict, error) {
			v := r.Approve("alice", "")
			v.ID = "someone-else"
			return v, nil
		}, ErrMismatch},
		{"approver edits the card", func(_ context.Context, r *Request) (Verdict, error) {
			r.Hash = fmt.Sprintf("%064x", 7)
			return r.Approve("alice", ""), nil
		}, ErrForged},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newGate(t, c.a, Options{})
			out, err := g.Ask(t.Context(), req("r1", "refund", map[string]any{"amount": 120}))
			if c.want == nil {
				if err != nil {
					t.Fatalf("Ask = %v, want approval", err)
				}
				if !out.Verdict.Approved || out.Verdict.By != "alice" || out.Covered || out.Permit != nil {
					t.Fatalf("Ask = %+v, want approved by alice without grant", out)
				}
				return
			}
			re := wantRefused(t, err, c.want)
			if c.want == ErrRejected && (re.By != "alice" || re.Note != "too much") {
				t.Errorf("rejection = %+v, want by alice with note", re)
			}
			if c.want == ErrApprover && c.name == "error" && !errors.Is(err, boom) {
				t.Errorf("err = %v, want it to wrap the approver's error", err)
			}
		})
	}
}

func TestAskInvalid(t *testing.T) {
	g := newGate(t, AllowAll, Options{})
	for _, r := range []*Request{nil, {Tool: "x"}, {ID: "a"}, {ID: "a", Tool: "x", Hash: "ABC"},
		{ID: "b", Tool: "x", Hash: fmt.Sprintf("%064X", 255)}, {ID: "c", Tool: "x", Args: map[string]any{"c": make(chan int)}}} {
		_, err := g.Ask(t.Context(), r)
		wantRefused(t, err, ErrInvalid)
	}
	if _, err := NewGate(nil, Options{}); err == nil {
		t.Error("NewGate(nil) did not fail")
	}
	if _, err := NewGate(AllowAll, Options{Timeout: -1}); err == nil {
		t.Error("NewGate with a negative timeout did not fail")
	}
}

func TestVerdictUsedOnce(t *testing.T) {
	// An approver that remembers its first verdict and hands it out again:
	// the second call has the same arguments, hence the same hash, but is
	// another request.
	var (
		mu    sync.Mutex
		first *Verdict
	)
	a := Func(func(_ context.Context, r *Request) (Verdict, error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			v := r.Approve("alice", "")
			first = &v
		}
		return *first, nil
	})
	g := newGate(t, a, Options{})
	args := map[string]any{"amount": 120}
	if _, err := g.Ask(t.Context(), req("call-1", "refund", args)); err != nil {
		t.Fatalf("first Ask = %v", err)
	}
	_, err := g.Ask(t.Context(), req("call-2", "refund", args))
	wantRefused(t, err, ErrReused)
	// Asking the same request twice is refused without asking anyone.
	_, err = newGate(t, AllowAll, Options{}).Ask(t.Context(), req("call-3", "refund", args))
	if err != nil {
		t.Fatal(err)
	}
	g2 := newGate(t, AllowAll, Options{})
	r := req("call-4", "refund", args)
	if _, err := g2.Ask(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	_, err = g2.Ask(t.Context(), r)
	wantRefused(t, err, ErrReused)
}

func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		asked := make(chan struct{})
		a := Func(func(ctx context.Context, r *Request) (Verdict, error) {
			close(asked)
			<-ctx.Done()
			return r.Approve("late", ""), nil // too late: must not count
		})
		g := newGate(t, a, Options{Timeout: time.Minute})
		start := time.Now()
		_, err := g.Ask(t.Context(), req("r1", "refund", nil))
		re := wantRefused(t, err, ErrTimeout)
		if d := time.Since(start); d != time.Minute {
			t.Errorf("waited %s, want 1m", d)
		}
		if !re.Deadline.Equal(start.Add(time.Minute)) {
			t.Errorf("deadline = %s, want %s", re.Deadline, start.Add(time.Minute))
		}
		<-asked
	})
}

func TestRequestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := Func(func(ctx context.Context, r *Request) (Verdict, error) {
			<-ctx.Done()
			return Verdict{}, ctx.Err()
		})
		g := newGate(t, a, Options{Timeout: time.Hour})
		r := req("r1", "refund", nil)
		r.Deadline = time.Now().Add(3 * time.Second)
		start := time.Now()
		_, err := g.Ask(t.Context(), r)
		wantRefused(t, err, ErrTimeout)
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("waited %s, want the request's 3s", d)
		}
		// A deadline already past is refused at once.
		r2 := req("r2", "refund", nil)
		r2.Deadline = time.Now().Add(-time.Second)
		_, err = g.Ask(t.Context(), r2)
		wantRefused(t, err, ErrTimeout)
	})
}

func TestLateVerdictByClock(t *testing.T) {
	clk := newFakeClock()
	a := Func(func(_ context.Context, r *Request) (Verdict, error) {
		clk.Advance(6 * time.Minute) // the human took longer than the deadline
		return r.Approve("alice", ""), nil
	})
	g := newGate(t, a, Options{Clock: clk.Now})
	_, err := g.Ask(t.Context(), req("r1", "refund", nil))
	wantRefused(t, err, ErrTimeout)
}

func TestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		halt := errors.New("killswitch: tripped")
		ctx, cancel := context.WithCancelCause(t.Context())
		a := Func(func(ctx context.Context, r *Request) (Verdict, error) {
			cancel(halt)
			<-ctx.Done()
			return r.Approve("alice", ""), nil // after the cancel: must not count
		})
		g := newGate(t, a, Options{})
		_, err := g.Ask(ctx, req("r1", "refund", nil))
		wantRefused(t, err, ErrCancelled)
		if !errors.Is(err, halt) {
			t.Fatalf("err = %v, want it to carry the cause", err)
		}
		// An approver that ignores its context does not hold the call.
		ctx2, cancel2 := context.WithCancel(t.Context())
		release := make(chan struct{})
		stuck := Func(func(_ context.Context, r *Request) (Verdict, error) {
			cancel2()
			<-release
			return r.Approve("alice", ""), nil
		})
		_, err = newGate(t, stuck, Options{}).Ask(ctx2, req("r2", "refund", nil))
		wantRefused(t, err, ErrCancelled)
		close(release)
	})
}

func TestParallelVerdictsReachTheirOwnCall(t *testing.T) {
	const n = 100
	type asked struct {
		r *Request
	}
	in := make(chan asked, n)
	answers := make(map[string]chan Verdict, n)
	var mu sync.Mutex
	a := Func(func(ctx context.Context, r *Request) (Verdict, error) {
		ch := make(chan Verdict, 1)
		mu.Lock()
		answers[r.ID] = ch
		mu.Unlock()
		in <- asked{r}
		select {
		case v := <-ch:
			return v, nil
		case <-ctx.Done():
			return Verdict{}, ctx.Err()
		}
	})
	g := newGate(t, a, Options{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([]Outcome, n)
	for i := range n {
		wg.Go(func() {
			outs[i], errs[i] = g.Ask(t.Context(), req(fmt.Sprint("call-", i), "refund", map[string]any{"i": i}))
		})
	}
	// Wait until all n are waiting at once, then answer in random order:
	// even calls approved, odd rejected, each note naming its call.
	reqs := make([]*Request, 0, n)
	for range n {
		reqs = append(reqs, (<-in).r)
	}
	rand.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	for _, r := range reqs {
		var i int
		fmt.Sscanf(r.ID, "call-%d", &i)
		if int(r.Args["i"].(int)) != i {
			t.Fatalf("request %s carries args of call %v", r.ID, r.Args["i"])
		}
		v := r.Reject("bob", r.ID)
		if i%2 == 0 {
			v = r.Approve("alice", r.ID)
		}
		mu.Lock()
		answers[r.ID] <- v
		mu.Unlock()
	}
	wg.Wait()
	for i := range n {
		id := fmt.Sprint("call-", i)
		if i%2 == 0 {
			if errs[i] != nil || outs[i].Verdict.Note != id {
				t.Errorf("call %d: Ask = %+v, %v; want approved with note %s", i, outs[i], errs[i], id)
			}
			continue
		}
		var re *RefusedError
		if !errors.As(errs[i], &re) || !errors.Is(errs[i], ErrRejected) || re.Note != id || re.ID != id {
			t.Errorf("call %d: Ask err = %v; want rejected with note %s", i, errs[i], id)
		}
	}
}

func TestGrants(t *testing.T) {
	clk := newFakeClock()
	var mu sync.Mutex
	var asked []string
	var grant *Grant
	a := Func(func(_ context.Context, r *Request) (Verdict, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, r.ID)
		if grant != nil {
			return r.ApproveFor("alice", "go ahead", *grant), nil
		}
		return r.Approve("alice", ""), nil
	})
	g := newGate(t, a, Options{Clock: clk.Now, MaxGrant: time.Hour})
	n := 0
	ask := func(tool, agent string, args map[string]any) (Outcome, bool) {
		t.Helper()
		n++
		id := fmt.Sprint("c", n)
		mu.Lock()
		before := len(asked)
		mu.Unlock()
		r := &Request{ID: id, Tool: tool, Args: args, Principal: Principal{Agent: agent, Tenant: "acme"}}
		out, err := g.Ask(t.Context(), r)
		if err != nil {
			t.Fatalf("Ask(%s %s %v) = %v", tool, agent, args, err)
		}
		mu.Lock()
		defer mu.Unlock()
		return out, len(asked) > before
	}
	setGrant := func(s Scope, d time.Duration) {
		mu.Lock()
		grant = &Grant{Scope: s, Duration: d}
		mu.Unlock()
	}
	clearGrant := func() { mu.Lock(); grant = nil; mu.Unlock() }

	// Same arguments for 10 minutes.
	setGrant(ScopeSameArgs, 10*time.Minute)
	out, human := ask("refund", "bot", map[string]any{"amount": 120})
	if !human || out.Permit == nil || out.Covered || out.Permit.Scope != ScopeSameArgs {
		t.Fatalf("first call: %+v human=%v, want a new args grant", out, human)
	}
	argsPermit := out.Permit.ID
	clearGrant()
	out, human = ask("refund", "bot", map[string]any{"amount": 120})
	if human || !out.Covered || out.Permit.ID != argsPermit {
		t.Fatalf("same args: %+v human=%v, want covered by %s", out, human, argsPermit)
	}
	if _, human = ask("refund", "bot", map[string]any{"amount": 121}); !human {
		t.Fatal("other args skipped the wait")
	}
	if _, human = ask("refund", "bot2", map[string]any{"amount": 120}); !human {
		t.Fatal("other agent skipped the wait")
	}
	clk.Advance(10 * time.Minute)
	if _, human = ask("refund", "bot", map[string]any{"amount": 120}); !human {
		t.Fatal("expired args grant still skipped the wait")
	}

	// The tool, for this agent, capped at MaxGrant.
	setGrant(ScopeTool, 48*time.Hour)
	out, _ = ask("refund", "bot", map[string]any{"amount": 1})
	if got := out.Permit.Expires.Sub(out.Permit.Created); got != time.Hour {
		t.Fatalf("grant lasts %s, want MaxGrant 1h", got)
	}
	toolPermit := out.Permit.ID
	clearGrant()
	if out, human = ask("refund", "bot", map[string]any{"amount": 999}); human || out.Permit.ID != toolPermit {
		t.Fatal("tool grant did not cover the same tool")
	}
	if _, human = ask("delete", "bot", nil); !human {
		t.Fatal("tool grant covered another tool")
	}
	if _, human = ask("refund", "bot2", nil); !human {
		t.Fatal("tool grant covered another agent")
	}
	list, err := g.Grants(t.Context())
	if err != nil || len(list) != 1 || list[0].ID != toolPermit {
		t.Fatalf("Grants = %+v, %v; want the tool grant only (the args grant expired)", list, err)
	}
	// Revocation takes effect for the next call.
	if err := g.Revoke(t.Context(), toolPermit); err != nil {
		t.Fatal(err)
	}
	if _, human = ask("refund", "bot", nil); !human {
		t.Fatal("revoked grant still skipped the wait")
	}
	if err := g.Revoke(t.Context(), toolPermit); !errors.Is(err, ErrNoGrant) {
		t.Fatalf("second Revoke = %v, want ErrNoGrant", err)
	}

	// Everything for the agent.
	setGrant(ScopeAgent, 5*time.Minute)
	ask("anything", "bot", nil)
	clearGrant()
	for _, tool := range []string{"refund", "delete", "send"} {
		if _, human = ask(tool, "bot", nil); human {
			t.Fatalf("agent grant did not cover %s", tool)
		}
	}
	if _, human = ask("send", "bot2", nil); !human {
		t.Fatal("agent grant covered another agent")
	}
	clk.Advance(5*time.Minute - time.Nanosecond)
	if _, human = ask("send", "bot", nil); human {
		t.Fatal("agent grant expired early")
	}
	clk.Advance(time.Nanosecond)
	if _, human = ask("send", "bot", nil); !human {
		t.Fatal("agent grant outlived its expiry")
	}

	// Call scope and zero durations remember nothing; a rejection grants nothing.
	for _, gr := range []Grant{{ScopeCall, time.Hour}, {ScopeTool, 0}} {
		setGrant(gr.Scope, gr.Duration)
		if out, _ := ask("x", "bot", nil); out.Permit != nil {
			t.Fatalf("grant %+v created %+v", gr, out.Permit)
		}
	}
	g2 := newGate(t, Func(func(_ context.Context, r *Request) (Verdict, error) {
		v := r.Reject("bob", "")
		v.Grant = &Grant{ScopeAgent, time.Hour}
		return v, nil
	}), Options{})
	if _, err := g2.Ask(t.Context(), req("r", "x", nil)); !errors.Is(err, ErrRejected) {
		t.Fatal(err)
	}
	if l, _ := g2.Grants(t.Context()); len(l) != 0 {
		t.Fatalf("a rejection created grants %+v", l)
	}
}

type failingStore struct{ Mem }

func (*failingStore) List(context.Context) ([]Permit, error) { return nil, errors.New("store down") }

func TestStoreFailureRefuses(t *testing.T) {
	g := newGate(t, AllowAll, Options{Store: &failingStore{}})
	_, err := g.Ask(t.Context(), req("r", "x", nil))
	wantRefused(t, err, ErrApprover)
}

func TestChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := Func(func(ctx context.Context, r *Request) (Verdict, error) {
			select {
			case <-time.After(time.Hour):
				return r.Approve("slow", ""), nil
			case <-ctx.Done():
				return Verdict{}, ctx.Err()
			}
		})
		failing := Func(func(context.Context, *Request) (Verdict, error) { return Verdict{}, errors.New("down") })
		fastNo := Func(func(_ context.Context, r *Request) (Verdict, error) {
			time.Sleep(time.Second)
			return r.Reject("fast", "no"), nil
		})
		g := newGate(t, Chain(slow, failing, fastNo), Options{})
		_, err := g.Ask(t.Context(), req("r1", "x", nil))
		if re := wantRefused(t, err, ErrRejected); re.By != "fast" {
			t.Fatalf("rejected by %q, want fast", re.By)
		}
		_, err = newGate(t, Chain(failing, failing), Options{}).Ask(t.Context(), req("r2", "x", nil))
		wantRefused(t, err, ErrApprover)
		_, err = newGate(t, Chain(), Options{}).Ask(t.Context(), req("r3", "x", nil))
		wantRefused(t, err, ErrApprover)
		out, err := newGate(t, Chain(failing, AllowAll), Options{}).Ask(t.Context(), req("r4", "x", nil))
		if err != nil || out.Verdict.By != "allow-all" {
			t.Fatalf("Chain(failing, AllowAll) = %+v, %v", out, err)
		}
		_, err = newGate(t, DenyAll, Options{}).Ask(t.Context(), req("r5", "x", nil))
		wantRefused(t, err, ErrRejected)
	})
}

// TestRequestJSONKeepsIntegers checks that a card read back from JSON (a
// shared store, a webhook receiver) shows its integers exactly.
func TestRequestJSONKeepsIntegers(t *testing.T) {
	r := Request{ID: "c1", Tool: "pay", Hash: strings.Repeat("a", 64), Labels: map[string]string{"team": "billing"},
		Args: map[string]any{
			"account": int64(9007199254740993), "id": uint64(18446744073709551615), "amount": 1.5, "neg": int64(-9223372036854775808),
			"nested": map[string]any{"list": []any{int64(1), 2.25, "x", nil, true, map[string]any{"big": uint64(1 << 63)}}},
		}}
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var got Request
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Args, r.Args) || got.ID != "c1" || got.Tool != "pay" || got.Hash != r.Hash || got.Labels["team"] != "billing" {
		t.Errorf("round trip:\n got %#v\nwant %#v", got, r)
	}
	if err := json.Unmarshal([]byte(`{"id":"c2","args":null}`), &got); err != nil || got.Args != nil || got.ID != "c2" {
		t.Errorf("null args: %v, %#v", err, got)
	}
	if err := json.Unmarshal([]byte(`{"id":"c3","args":[1]}`), &got); err == nil {
		t.Error("args that are no object: no error")
	}
}

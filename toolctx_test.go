package agentguard_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
)

// genkitCtx has the shape of Genkit's *ai.ToolContext: a struct that
// embeds context.Context, passed by pointer.
type genkitCtx struct {
	context.Context
	Resumed map[string]any
}

// adkCtx has the shape of ADK's tool.Context: an interface that embeds
// context.Context, implemented by an unexported pointer type.
type adkCtx interface {
	context.Context
	FunctionCallID() string
}

type adkImpl struct {
	context.Context
	id string
}

func (c *adkImpl) FunctionCallID() string { return c.id }

// inTool is what a tool saw of its guarded call.
type inTool struct {
	charge   error
	call     *agentguard.Call
	fromCall bool
	cause    error         // the guarded context's cause after a trip
	caused   chan struct{} // closed once cause is set
}

// frameworkTool returns a tool body that charges, looks up its call and,
// when block is set, waits for the guarded context to be cancelled.
func frameworkTool(seen *inTool, started chan<- struct{}, guarded func() context.Context) {
	seen.charge = agentguard.Charge(guarded(), agentguard.Cost{Unit: "tokens", Micros: 7e6})
	seen.call, seen.fromCall = agentguard.CallFrom(guarded())
	if started != nil {
		close(started)
		<-guarded().Done()
		seen.cause = context.Cause(guarded())
		close(seen.caused)
	}
}

func TestGuardedContextReachesFrameworkTools(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(g *agentguard.Guard, seen *inTool, started chan struct{}) error
	}{
		{"pointer to a struct embedding context (Genkit)", func(g *agentguard.Guard, seen *inTool, started chan struct{}) error {
			tool := agentguard.Wrap(g, "read_genkit", func(c *genkitCtx, _ string) (string, error) {
				if c.Resumed["k"] != "v" {
					return "", errors.New("the framework value's own fields were lost")
				}
				frameworkTool(seen, started, func() context.Context { return c })
				return "ok", nil
			})
			_, err := tool(&genkitCtx{Context: context.Background(), Resumed: map[string]any{"k": "v"}}, "x")
			return err
		}},
		{"struct embedding context, by value", func(g *agentguard.Guard, seen *inTool, started chan struct{}) error {
			tool := agentguard.Wrap(g, "read_value", func(c genkitCtx, _ string) (string, error) {
				frameworkTool(seen, started, func() context.Context { return c })
				return "ok", nil
			})
			_, err := tool(genkitCtx{Context: context.Background()}, "x")
			return err
		}},
		{"interface (ADK), through Charge(tc) and Context(tc)", func(g *agentguard.Guard, seen *inTool, started chan struct{}) error {
			tool := agentguard.Wrap(g, "read_adk", func(c adkCtx, _ string) (string, error) {
				if c.FunctionCallID() != "fc-1" {
					return "", errors.New("the framework value was replaced")
				}
				seen.charge = agentguard.Charge(c, agentguard.Cost{Unit: "tokens", Micros: 7e6})
				seen.call, seen.fromCall = agentguard.CallFrom(c)
				if started != nil {
					ctx := agentguard.Context(c)
					close(started)
					<-ctx.Done()
					seen.cause = context.Cause(ctx)
					close(seen.caused)
				}
				return "ok", nil
			})
			tc := &adkImpl{Context: context.Background(), id: "fc-1"}
			_, err := tool(tc, "x")
			if err := agentguard.Charge(tc, agentguard.Cost{Unit: "tokens", Micros: 1}); err == nil {
				return errors.New("Charge with the framework value succeeded after the call returned")
			}
			if agentguard.Context(tc) != context.Context(tc) {
				return errors.New("Context(tc) after the call is not tc")
			}
			return err
		}},
	} {
		t.Run(tc.name+"/charge", func(t *testing.T) {
			b := &fakeBudget{}
			g, _ := newGuard(t, agentguard.WithBudgeter(b))
			var seen inTool
			if err := tc.run(g, &seen, nil); err != nil {
				t.Fatal(err)
			}
			if seen.charge != nil {
				t.Fatalf("Charge inside the tool: %v", seen.charge)
			}
			if !seen.fromCall || seen.call.ID == "" || !strings.HasPrefix(seen.call.Tool, "read_") {
				t.Fatalf("CallFrom inside the tool = %+v, %v", seen.call, seen.fromCall)
			}
			if got, want := fmt.Sprint(b.settled), "[[{tokens 7000000}]]"; got != want {
				t.Errorf("settled %s, want %s (the tool's charge)", got, want)
			}
		})
		t.Run(tc.name+"/kill", func(t *testing.T) {
			h := &switchHalter{flying: map[*int]context.CancelCauseFunc{}}
			g, _ := newGuard(t, agentguard.WithHalter(h))
			seen := inTool{caused: make(chan struct{})}
			started := make(chan struct{})
			errc := make(chan error, 1)
			go func() { errc <- tc.run(g, &seen, started) }()
			<-started
			h.trip()
			if err := <-errc; !errors.Is(err, agentguard.ErrHalted) {
				t.Fatalf("call = %v, want ErrHalted", err)
			}
			// The tool saw its context cancelled with the trip's cause (the
			// caller returned at once; the tool may still be running).
			select {
			case <-seen.caused:
			case <-time.After(10 * time.Second):
				t.Fatal("the tool's context was not cancelled")
			}
			if seen.cause == nil || !strings.Contains(seen.cause.Error(), "operator pressed stop") {
				t.Errorf("the tool's context cause = %v", seen.cause)
			}
		})
	}
}

func TestTicketBind(t *testing.T) {
	b := &fakeBudget{}
	g, _ := newGuard(t, agentguard.WithBudgeter(b))
	tc := &adkImpl{Context: context.Background(), id: "fc-9"}
	tk, err := g.Check(tc, "read_x", map[string]any{"q": 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := agentguard.Charge(tc, agentguard.Cost{Unit: "USD", Micros: 1}); err == nil {
		t.Fatal("Charge before Bind succeeded")
	}
	tk.Bind(tc)
	if agentguard.Context(tc) != tk.Context() {
		t.Error("Context(tc) is not the ticket's context")
	}
	if c, ok := agentguard.CallFrom(tc); !ok || c.ID != tk.Call().ID {
		t.Errorf("CallFrom(tc) = %v, %v", c, ok)
	}
	if err := agentguard.Charge(tc, agentguard.Cost{Unit: "USD", Micros: 5}); err != nil {
		t.Fatal(err)
	}
	if err := tk.Done("ok", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := agentguard.CallFrom(tc); ok {
		t.Error("CallFrom(tc) still finds the call after Done")
	}
	if got, want := fmt.Sprint(b.settled), "[[{USD 5}]]"; got != want {
		t.Errorf("settled %s, want %s", got, want)
	}
}

// Nested guarded calls on the same framework value: the inner call's
// binding shadows the outer one's and gives it back when it returns.
func TestBindingNests(t *testing.T) {
	g, _ := newGuard(t)
	var inner, outerAfter string
	innerTool := agentguard.Wrap(g, "read_inner", func(c adkCtx, _ string) (string, error) {
		call, _ := agentguard.CallFrom(c)
		inner = call.Tool
		return "", nil
	})
	outer := agentguard.Wrap(g, "read_outer", func(c adkCtx, _ string) (string, error) {
		if _, err := innerTool(c, ""); err != nil {
			return "", err
		}
		call, _ := agentguard.CallFrom(c)
		outerAfter = call.Tool
		return "", nil
	})
	if _, err := outer(&adkImpl{Context: context.Background()}, ""); err != nil {
		t.Fatal(err)
	}
	if inner != "read_inner" || outerAfter != "read_outer" {
		t.Errorf("inner saw %q, outer after it %q", inner, outerAfter)
	}
}

func TestBindingsInParallel(t *testing.T) {
	g, _ := newGuard(t)
	tool := agentguard.Wrap(g, "read_p", func(c adkCtx, _ string) (string, error) {
		call, ok := agentguard.CallFrom(c)
		if !ok {
			return "", errors.New("no call")
		}
		return call.ID, nil
	}, agentguard.Cooperative())
	var wg sync.WaitGroup
	ids := make([]string, 64)
	errs := make([]error, 64)
	for i := range ids {
		wg.Go(func() { ids[i], errs[i] = tool(&adkImpl{Context: context.Background()}, "") })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, id := range ids {
		if errs[i] != nil || seen[id] {
			t.Fatalf("call %d: %q, %v (duplicate: %v)", i, id, errs[i], seen[id])
		}
		seen[id] = true
	}
}

// Receipt is a struct result, as ADK and Genkit tools commonly return.
type Receipt struct {
	ID    string `json:"id,omitempty"`
	Error string `json:"error,omitempty"`
}

func TestDenyAs(t *testing.T) {
	h := &switchHalter{flying: map[*int]context.CancelCauseFunc{}}
	g, rec := newGuard(t, agentguard.WithHalter(h))
	asReceipt := agentguard.DenyAs(func(d *agentguard.DeniedError) Receipt { return Receipt{Error: d.Error()} })

	write := agentguard.Wrap(g, "write_db", func(context.Context, string) (Receipt, error) { return Receipt{ID: "r1"}, nil }, asReceipt)
	out, err := write(context.Background(), "x")
	if err != nil || !strings.Contains(out.Error, "(policy_denied)") || out.ID != "" {
		t.Fatalf("denied call = %+v, %v; want the denial as the result", out, err)
	}
	if got := rec.kinds(); got[len(got)-1] != "decision:deny:policy_denied" {
		t.Errorf("recorded %v", got)
	}

	read := agentguard.Wrap(g, "read_db", func(_ context.Context, q string) (Receipt, error) {
		if q == "fail" {
			return Receipt{}, errors.New("disk on fire")
		}
		return Receipt{ID: q}, nil
	}, asReceipt)
	if out, err := read(context.Background(), "r2"); err != nil || out.ID != "r2" {
		t.Errorf("allowed call = %+v, %v", out, err)
	}
	if _, err := read(context.Background(), "fail"); err == nil || err.Error() != "disk on fire" {
		t.Errorf("tool error = %v, want it untouched", err)
	}

	// A pointer result: the denial can be a non-nil value too.
	ptr := agentguard.Wrap(g, "write_ptr", func(context.Context, string) (*Receipt, error) { return &Receipt{}, nil },
		agentguard.DenyAs(func(d *agentguard.DeniedError) *Receipt { return &Receipt{Error: string(d.Code)} }))
	if out, err := ptr(context.Background(), ""); err != nil || out == nil || out.Error != "policy_denied" {
		t.Errorf("pointer result = %+v, %v", out, err)
	}

	// Mismatched result type: every call is an invalid call, as an error.
	bad := agentguard.Wrap(g, "read_bad", func(context.Context, string) (string, error) { return "ran", nil }, asReceipt)
	if out, err := bad(context.Background(), ""); !errors.Is(err, agentguard.ErrInvalidCall) || out != "" || !strings.Contains(causeText(err), "DenyAs") {
		t.Errorf("mismatched DenyAs = %q, %v", out, err)
	}
	if _, err := agentguard.Wrap(g, "read_nil", func(context.Context, string) (Receipt, error) { return Receipt{}, nil },
		agentguard.DenyAs[Receipt](nil))(context.Background(), ""); !errors.Is(err, agentguard.ErrInvalidCall) {
		t.Errorf("nil DenyAs = %v", err)
	}

	// A kill in flight comes back as the value too, at once.
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	slow := agentguard.Wrap(g, "read_slow", func(context.Context, string) (Receipt, error) {
		close(started)
		<-release
		return Receipt{ID: "late"}, nil
	}, asReceipt, agentguard.Preemptive())
	type res struct {
		r   Receipt
		err error
	}
	done := make(chan res, 1)
	go func() { r, err := slow(context.Background(), ""); done <- res{r, err} }()
	<-started
	h.trip()
	r := <-done
	if r.err != nil || !strings.Contains(r.r.Error, "(halted)") || r.r.ID != "" {
		t.Errorf("halted call = %+v, %v", r.r, r.err)
	}

	// WrapJSON takes DenyAs as well.
	j := agentguard.WrapJSON(g, "write_json", func(context.Context, string) (Receipt, error) { return Receipt{}, nil }, asReceipt)
	if out, err := j(context.Background(), `{}`); err != nil || !strings.Contains(out.Error, "halted") {
		t.Errorf("WrapJSON DenyAs = %+v, %v", out, err)
	}
}

package bench

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/policy"
)

// agreeCalls is a table of calls with the effect every engine must decide.
var agreeCalls = []struct {
	c    benchCall
	want string
}{
	{emailCall(), "allow"},
	{call("send_email", "support-bot", "to", "eve@competitor.com", "subject", "hi", "body", "x"), "deny"},
	{call("send_email", "sales-bot", "to", "bob@example.com", "subject", "hi", "body", "x"), "deny"},
	{call("refund", "support-bot", "amount", 50.0), "allow"},
	{call("refund", "support-bot", "amount", 500.0), "deny"},
	{call("refund", "support-bot", "amount", 5000.0), "deny"},
	{call("db.query", "support-bot", "sql", "SELECT * FROM orders"), "allow"},
	{call("db.query", "support-bot", "sql", "  DROP TABLE orders"), "deny"},
	{call("db.query", "support-bot", "sql", "update orders set x = 1"), "deny"},
	{call("db.delete", "support-bot", "table", "orders"), "deny"},
	{call("read_file", "support-bot", "path", "/data/report.csv"), "allow"},
	{call("read_file", "support-bot", "path", "/data/secret.key"), "deny"},
	{call("read_file", "support-bot", "path", "/etc/passwd"), "deny"},
	{call("write_file", "support-bot", "path", "/data/out.txt", "content", "abc"), "approve"},
	{call("write_file", "support-bot", "path", "/data/config.yaml", "content", "abc"), "deny"},
	{call("http.get", "support-bot", "url", "https://example.com"), "allow"},
	{call("http.get", "support-bot", "url", "https://localhost/admin"), "deny"},
	{call("http.get", "support-bot", "url", "http://example.com"), "deny"},
	{call("search", "support-bot", "query", "refund policy"), "allow"},
	{call("search", "support-bot", "query", "alice ssn"), "deny"},
	{call("calendar.create", "support-bot", "attendees", 4.0), "allow"},
	{call("calendar.create", "support-bot", "attendees", 400.0), "approve"},
	{call("slack.post", "support-bot", "channel", "#team-support"), "allow"},
	{call("slack.post", "support-bot", "channel", "#general"), "deny"},
	{call("unknown.tool", "support-bot", "x", "y"), "deny"},
}

func call(tool, agent string, kv ...any) benchCall {
	c := emailCall()
	c.Tool, c.Agent, c.Args = tool, agent, map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		c.Args[kv[i].(string)] = kv[i+1]
	}
	return c
}

// TestAgree checks that the Guard's policy, the floor's rules and the OPA
// query decide every call of agreeCalls alike, for the realistic rules and
// for the 1,000 rules, so that the benchmarks compare equals.
func TestAgree(t *testing.T) {
	for _, set := range []struct {
		name  string
		rules []benchRule
	}{{"20rules", realisticRules}, {"1000rules", manyRules()}} {
		t.Run(set.name, func(t *testing.T) {
			pol, err := policy.Compile(policySpec(set.rules))
			if err != nil {
				t.Fatal(err)
			}
			fr, err := newFloorRules(set.rules)
			if err != nil {
				t.Fatal(err)
			}
			q := newOPA(t, set.rules)
			ctx := context.Background()
			calls := agreeCalls
			if set.name == "1000rules" {
				calls = append(calls[:len(calls):len(calls)],
					struct {
						c    benchCall
						want string
					}{call("tool42", "support-bot", "n", 3.0), "deny"},
					struct {
						c    benchCall
						want string
					}{call("tool42", "support-bot", "n", 30.0), "allow"})
				blocked := emailCall()
				blocked.Requester = "blocked-5"
				calls = append(calls, struct {
					c    benchCall
					want string
				}{blocked, "deny"})
			}
			for _, tc := range calls {
				c := tc.c
				in := &policy.Input{Call: policy.Call{Tool: c.Tool, Agent: c.Agent, Requester: c.Requester,
					Tenant: c.Tenant, Env: c.Env, Args: c.Args}}
				d := pol.Decide(ctx, in)
				if got := d.Effect.String(); got != tc.want || d.Err != nil {
					t.Errorf("guard: Decide(%s %v) = %s (rule %q, err %v), want %s", c.Tool, c.Args, got, d.Rule, d.Err, tc.want)
				}
				if got, rule := fr.decide(c.Tool, floorActivation(c)); got != tc.want {
					t.Errorf("floor: decide(%s %v) = %s (rule %q), want %s", c.Tool, c.Args, got, rule, tc.want)
				}
				got, err := q.decide(ctx, &c)
				if err != nil || got != tc.want {
					t.Errorf("opa: decide(%s %v) = %s, %v; want %s", c.Tool, c.Args, got, err, tc.want)
				}
				if set.name == "20rules" {
					if got, rule := newGoRules().decide(&c); got != tc.want {
						t.Errorf("floor in Go: decide(%s %v) = %s (rule %q), want %s", c.Tool, c.Args, got, rule, tc.want)
					}
					if r := newPeer().call(&c); r.Decision != tc.want {
						t.Errorf("peer: call(%s %v) = %s (rule %q), want %s", c.Tool, c.Args, r.Decision, r.Rule, tc.want)
					}
				}
			}
		})
	}
}

// TestPeerReference checks the peer's side effects: each call chains one
// entry on the previous, counts in its window, and moves the agent's score.
func TestPeerReference(t *testing.T) {
	p := newPeer()
	c := emailCall()
	r1, r2 := p.call(&c), p.call(&c)
	if r1.Decision != "allow" || r1.Rule != "support-mail" || r2.Decision != "allow" {
		t.Fatalf("decisions %s/%s (rule %q), want allow (support-mail)", r1.Decision, r2.Decision, r1.Rule)
	}
	if len(p.entries) != 2 || p.entries[1].Prev != p.entries[0].Hash || r2.Entry.Hash != p.entries[1].Hash {
		t.Errorf("entries not chained: %+v", p.entries)
	}
	if n := p.counters["send_email:support-bot:acme"].n; n != 2 {
		t.Errorf("window count %d, want 2", n)
	}
	if r2.Scores[c.Agent] <= r1.Scores[c.Agent] {
		t.Errorf("score did not grow: %v then %v", r1.Scores, r2.Scores)
	}
	p.limit = 2
	if r := p.call(&c); r.Decision != "rate_limited" {
		t.Errorf("third call over a limit of 2: %s, want rate_limited", r.Decision)
	}
}

// TestGroupCommit checks the group-commit floor: every append is in the
// file, whole, after its shared fdatasync.
func TestGroupCommit(t *testing.T) {
	gc := openGroupCommit(t, []byte("line\n"))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if err := gc.append(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st, err := gc.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 80*5 || gc.synced != gc.off {
		t.Errorf("size %d, synced %d of %d; want 400 all synced", st.Size(), gc.synced, gc.off)
	}
}

// TestPipelines runs each benchmarked pipeline once: the benchmarked call
// is allowed and runs, and a call the policy denies does not.
func TestPipelines(t *testing.T) {
	ctx := benchContext()
	g := newGuard(t, realisticRules, audit.SyncNever)
	send := agentguard.Wrap(g, "send_email", sendEmail, agentguard.Estimate(estimate))
	if out, err := send(ctx, emailArgs); err != nil || out != "sent" {
		t.Fatalf("guarded send = %q, %v; want sent", out, err)
	}
	bad := emailArgs
	bad.To = "eve@competitor.com"
	if _, err := send(ctx, bad); !errors.Is(err, agentguard.ErrDenied) {
		t.Fatalf("guarded send to a competitor: err = %v, want ErrDenied", err)
	}

	p := newFloorPipe(t, realisticRules)
	p.openSideEffects(t)
	c := emailCall()
	a := floorActivation(c)
	q := newOPA(t, realisticRules)
	for name, decide := range map[string]func() (string, string, error){
		"floor":     func() (string, string, error) { e, r := p.goRules.decide(&c); return e, r, nil },
		"floor-cel": func() (string, string, error) { e, r := p.rules.decide(c.Tool, a); return e, r, nil },
		"opa":       func() (string, string, error) { e, err := q.decide(ctx, &c); return e, "", err },
	} {
		if out, err := p.run(ctx, &c, emailArgs, decide); err != nil || out != "sent" {
			t.Errorf("%s: run = %q, %v; want sent", name, out, err)
		}
	}
	if p.log.seq != 6 {
		t.Errorf("floor log: %d records, want 6", p.log.seq)
	}
	// The floor writes what the guard writes: its log verifies as one.
	path := p.log.f.f.Name()
	if err := p.log.close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(audit.VerifyOptions{}, path); err != nil || rep.Records != 6 {
		t.Errorf("floor log: Verify = %+v, %v; want 6 records and no error", rep, err)
	}
	if p.led.spent != 3*estimate.Micros || p.led.reserved != 0 {
		t.Errorf("floor ledger: spent %d reserved %d, want %d and 0", p.led.spent, p.led.reserved, 3*estimate.Micros)
	}
}

package audit

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"
)

// TestHeadCacheKeys: a line whose head differs from a kept head in any
// one of the parts it is made of (each key of the head) (each of which the slot's hash may not
// see) gets its own head, encoded and hashed, never the kept one; a head
// is kept from its second line and restored from its third. Every line is
// checked against AppendJSON and its SHA-256.
func TestHeadCacheKeys(t *testing.T) {
	red, err := NewRedactor(Redaction{HashKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"team": "support"}
	plan := red.Plan("prod", "send_email", labels, []string{"to"})
	other := red.Plan("prod", "send_email", labels, []string{"to"})
	base := func() *Record {
		return &Record{Kind: KindDecision, Call: "c1", Env: "prod", Tool: "send_email",
			Principal: Principal{Agent: "support-bot", Requester: "alice", Tenant: "acme", Session: "s1"},
			Labels:    labels, PolicyVersion: "a607da2b172e562cee10ad73d6e2f2794b7c2f10cea91da0853f038bc5b08c52",
			Args: map[string]any{"to": "bob@example.com"}, Decision: "allow", Rule: "support-mail",
			Estimate: []Cost{{Unit: "USD", Micros: 1000}}, Actual: []Cost{{Unit: "USD", Micros: 1000}}, Plan: plan}
	}
	const log = "0193b6c8-7c4e-7000-8000-00000000a001"
	var c midCache
	lb := lineBufs.Get().(*lineBuf)
	defer lb.free()
	seq := uint64(0)
	check := func(name string, r *Record, log string) {
		t.Helper()
		now := time.Date(2026, 12, 8, 4, 0, 0, int(seq), time.UTC)
		if err := lb.prefix(r, now, log, &c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tail, h := lb.line(seq, Hash{byte(seq)})
		got := append(bytes.Clone(lb.b), tail...)
		w := *r
		w.Time, w.Log, w.Seq, w.Prev = now, log, seq, Hash{byte(seq)}
		want, err := w.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the Log's line\n%s\nAppendJSON\n%s", name, got, want)
		}
		if h != sha256.Sum256(want) {
			t.Fatalf("%s: hash %v, want %x", name, h, sha256.Sum256(want))
		}
		seq++
	}
	kept := func() int {
		n := 0
		for i := range c.slots {
			if c.slots[i].kept.Load() != nil {
				n++
			}
		}
		return n
	}
	check("first", base(), log)
	if kept() != 0 {
		t.Fatal("a head seen once was kept")
	}
	check("second", base(), log)
	if kept() != 1 {
		t.Fatalf("%d heads kept after the second line, want 1", kept())
	}
	check("third, restored", base(), log)

	// Each variant three times, so that each is kept and restored in
	// turn, with the base between them taking its slot back.
	variants := map[string]func(r *Record) string{
		"requester":             func(r *Record) string { r.Principal.Requester = "bob"; return log },
		"tenant":                func(r *Record) string { r.Principal.Tenant = "evil"; return log },
		"env":                   func(r *Record) string { r.Env = "staging"; return log },
		"policy":                func(r *Record) string { r.PolicyVersion = "b"; return log },
		"no labels":             func(r *Record) string { r.Labels = nil; return log },
		"log":                   func(r *Record) string { return "0193b6c8-7c4e-7000-8000-00000000a002" },
		"another plan's labels": func(r *Record) string { r.Plan = other; return log },
		"labels not the plan's": func(r *Record) string { r.Labels = map[string]string{"team": "support"}; return log },
		"other labels":          func(r *Record) string { r.Labels = map[string]string{"team": "x"}; return log },
		"kind":                  func(r *Record) string { r.Kind = "decisioN"; return log },
		"no plan":               func(r *Record) string { r.Plan = nil; return log },
		"decision":              func(r *Record) string { r.Decision = "deny"; return log },
		"code":                  func(r *Record) string { r.Code = "policy_denied"; return log },
		"stage":                 func(r *Record) string { r.Stage = "policy"; return log },
		"rule":                  func(r *Record) string { r.Rule = "other"; return log },
		"reason":                func(r *Record) string { r.Reason = "because"; return log },
		"outcome":               func(r *Record) string { r.Outcome = "ok"; return log },
		"estimate":              func(r *Record) string { r.Estimate = []Cost{{Unit: "USD", Micros: 1001}}; return log },
		"estimate's unit":       func(r *Record) string { r.Estimate = []Cost{{Unit: "EUR", Micros: 1000}}; return log },
		"two estimates": func(r *Record) string {
			r.Estimate = []Cost{{Unit: "USD", Micros: 1000}, {Unit: "tokens", Micros: 5}}
			return log
		},
		"no estimate": func(r *Record) string { r.Estimate = nil; return log },
		"actual":      func(r *Record) string { r.Actual = []Cost{{Unit: "USD", Micros: 999}}; return log },
		"two actuals": func(r *Record) string {
			r.Actual = []Cost{{Unit: "USD", Micros: 999}, {Unit: "tokens", Micros: 5}}
			return log
		},
	}
	for name, change := range variants {
		for range 3 {
			r := base()
			l := change(r)
			check(name, r, l)
			check("base after "+name, base(), log)
		}
	}
}

// BenchmarkHead compares a decision's prefix with its head encoded and
// hashed ("encoded") and taken from the cache ("kept").
func BenchmarkHead(b *testing.B) {
	red, err := NewRedactor(Redaction{HashKey: []byte("k")})
	if err != nil {
		b.Fatal(err)
	}
	plan := red.Plan("prod", "send_email", nil, []string{"to", "subject", "body"})
	r := &Record{Kind: KindDecision, Call: "0193b6c8-7c4e-7000-8000-00000000c001", Env: "prod", Tool: "send_email",
		Principal:     Principal{Agent: "support-bot", Requester: "alice", Tenant: "acme", Session: "s1"},
		PolicyVersion: "a607da2b172e562cee10ad73d6e2f2794b7c2f10cea91da0853f038bc5b08c52",
		Args:          map[string]any{"to": "bob@example.com", "subject": "Your refund", "body": "Hello"},
		Decision:      "allow", Rule: "support-mail", Plan: plan}
	now := time.Date(2026, 12, 8, 4, 0, 0, 0, time.UTC)
	lb := lineBufs.Get().(*lineBuf)
	for _, c := range []struct {
		name  string
		heads *midCache
	}{{"encoded", nil}, {"kept", new(midCache)}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := lb.prefix(r, now, "L", c.heads); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package audit

import (
	"testing"
	"time"
)

// benchPair returns the two records the guard writes for one allowed call
// of the bench module's send_email, as its recorder builds them.
func benchPair() (decision, result *Record) {
	p := Principal{Agent: "support-bot", Requester: "alice", Tenant: "acme", Session: "s1"}
	est := []Cost{{Unit: "USD", Micros: 1000}}
	decision = &Record{Kind: KindDecision, Call: "0193b6c8-7c4e-7000-8000-000000000000", Principal: p, Env: "prod", Tool: "send_email",
		Args:     map[string]any{"to": "bob@example.com", "subject": "Your refund", "body": "Hello Bob, your refund of 12.50 USD is on its way."},
		Decision: "allow", Rule: "support-mail", Reason: "support may mail customers",
		PolicyVersion: "2b5f0c4a9d1e3f7a8b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a",
		Estimate:      est}
	result = &Record{Kind: KindResult, Call: decision.Call, Principal: p, Tool: "send_email",
		Outcome: "ok", Duration: 1500 * time.Nanosecond, Actual: est}
	return decision, result
}

// BenchmarkEncodePair redacts, encodes and hashes the two records of one
// guarded call, as Log.Append does, without writing them. plan-nohash
// leaves the hashing out: what redaction and encoding cost.
// With a plan, the records carry the tool's Plan as the guard's
// recorder gives them.
func BenchmarkEncodePair(b *testing.B) {
	b.Run("general", func(b *testing.B) { benchEncodePair(b, false, true) })
	b.Run("plan", func(b *testing.B) { benchEncodePair(b, true, true) })
	b.Run("plan-nohash", func(b *testing.B) { benchEncodePair(b, true, false) })
}

// benchEncodePair runs BenchmarkEncodePair with or without a plan, and
// with or without the hashing.
func benchEncodePair(b *testing.B, plan, hash bool) {
	red, err := NewRedactor(Redaction{HashKey: []byte("k")})
	if err != nil {
		b.Fatal(err)
	}
	d, r := benchPair()
	if plan {
		d.Plan = red.Plan(d.Env, d.Tool, d.Labels, []string{"to", "subject", "body"})
		r.Plan = d.Plan
	}
	now := time.Date(2026, 12, 7, 18, 0, 0, 123456789, time.UTC)
	buf := make([]byte, 0, 4096)
	var prev Hash
	b.ReportAllocs()
	cpu := cpuNanos()
	for b.Loop() {
		buf = buf[:0]
		for _, rec := range [2]*Record{d, r} {
			c := *rec
			if err := red.prepare(&c, "Log"); err != nil {
				b.Fatal(err)
			}
			c.Seq, c.Time, c.Log, c.Prev = 7, now, "0193b6c8-7c4e-7000-8000-00000000abcd", prev
			start := len(buf)
			if buf, err = c.AppendJSON(buf); err != nil {
				b.Fatal(err)
			}
			if hash {
				prev = HashLine(buf[start:])
			}
			buf = append(buf, '\n')
		}
	}
	b.ReportMetric(float64(cpuNanos()-cpu)/float64(b.N), "cpu-ns/op")
	b.SetBytes(int64(len(buf)))
}

// BenchmarkHint runs the redactor's quick test on the benchmarked call's
// argument strings (SetBytes: their length).
func BenchmarkHint(b *testing.B) {
	red, err := NewRedactor(Redaction{HashKey: []byte("k")})
	if err != nil {
		b.Fatal(err)
	}
	ss := []string{"bob@example.com", "Your refund", "Hello Bob, your refund of 12.50 USD is on its way.", "support may mail customers"}
	n := 0
	for _, s := range ss {
		n += len(s)
	}
	b.SetBytes(int64(n))
	for b.Loop() {
		for _, s := range ss {
			if red.hint(s) {
				b.Fatal("hint")
			}
		}
	}
}

package bench

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
)

// BenchmarkCall measures one allowed call of the tool send_email through
// each pipeline. See README.md for how to read the figures.
func BenchmarkCall(b *testing.B) {
	ctx := benchContext()
	check := func(b *testing.B, out string, err error) {
		if err != nil || out != "sent" {
			b.Fatalf("call = %q, %v; want sent", out, err)
		}
	}
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU()
		for b.Loop() {
			out, err := sendEmail(ctx, emailArgs)
			check(b, out, err)
		}
		cpu.stop(b)
	})
	guarded := func(name string, rules []benchRule, parallel bool, opts ...agentguard.ToolOption) {
		b.Run(name, func(b *testing.B) {
			g := newGuard(b, rules, audit.SyncNever)
			send := agentguard.Wrap(g, "send_email", sendEmail, append(opts, agentguard.Estimate(estimate))...)
			b.ReportAllocs()
			cpu := startCPU()
			defer cpu.stop(b)
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						out, err := send(ctx, emailArgs)
						check(b, out, err)
					}
				})
				return
			}
			for b.Loop() {
				out, err := send(ctx, emailArgs)
				check(b, out, err)
			}
		})
	}
	b.Run("peer-reference", func(b *testing.B) {
		p := newPeer()
		c := emailCall()
		b.ReportAllocs()
		cpu := startCPU()
		for b.Loop() {
			if r := p.call(&c); r.Decision != "allow" {
				b.Fatalf("peer: %s, want allow", r.Decision)
			}
		}
		cpu.stop(b)
	})
	guarded("guarded", realisticRules, false)
	guarded("guarded-cooperative", realisticRules, false, agentguard.Cooperative())
	guarded("guarded-parallel", realisticRules, true)

	// The floor and OPA share everything but the policy step.
	pipe := func(name string, parallel bool, decide func(p *floorPipe, c *benchCall) func() (string, string, error)) {
		b.Run(name, func(b *testing.B) {
			p := newFloorPipe(b, realisticRules)
			p.openSideEffects(b)
			b.ReportAllocs()
			cpu := startCPU()
			defer cpu.stop(b)
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					c := emailCall()
					d := decide(p, &c)
					for pb.Next() {
						out, err := p.run(ctx, &c, emailArgs, d)
						check(b, out, err)
					}
				})
				return
			}
			c := emailCall()
			d := decide(p, &c)
			for b.Loop() {
				out, err := p.run(ctx, &c, emailArgs, d)
				check(b, out, err)
			}
		})
	}
	floorDecide := func(p *floorPipe, c *benchCall) func() (string, string, error) {
		return func() (string, string, error) {
			e, r := p.goRules.decide(c)
			return e, r, nil
		}
	}
	pipe("floor", false, floorDecide)
	pipe("floor-parallel", true, floorDecide)
	// The floor as it was before the guard compiled rules to Go: the
	// rules' CEL programs, prebuilt.
	pipe("floor-cel", false, func(p *floorPipe, c *benchCall) func() (string, string, error) {
		a := floorActivation(*c)
		return func() (string, string, error) {
			e, r := p.rules.decide(c.Tool, a)
			return e, r, nil
		}
	})
	q := newOPA(b, realisticRules)
	opaDecide := func(p *floorPipe, c *benchCall) func() (string, string, error) {
		return func() (string, string, error) {
			e, err := q.decide(ctx, c)
			return e, "", err
		}
	}
	pipe("opa", false, opaDecide)
	pipe("opa-parallel", true, opaDecide)

	guarded("guarded-1000rules", manyRules(), false)

	// A call the policy denies, in the default configuration.
	b.Run("denied", func(b *testing.B) {
		g := newGuard(b, realisticRules, audit.SyncNever)
		send := agentguard.Wrap(g, "send_email", sendEmail, agentguard.Estimate(estimate))
		bad := emailArgs
		bad.To = "eve@competitor.com"
		b.ReportAllocs()
		cpu := startCPU()
		for b.Loop() {
			if _, err := send(ctx, bad); !errors.Is(err, agentguard.ErrDenied) {
				b.Fatalf("denied call: %v, want ErrDenied", err)
			}
		}
		cpu.stop(b)
	})
}

// cpuMeter reports the process's CPU time per operation as cpu-ns/op:
// on a machine shared with other work, wall time per operation moves with
// the load, CPU time much less. Call start after the setup and stop after
// the loop.
type cpuMeter struct{ start int64 }

func startCPU() cpuMeter { return cpuMeter{cpuNanos()} }

func (m cpuMeter) stop(b *testing.B) {
	if b.N > 0 && m.start > 0 {
		b.ReportMetric(float64(cpuNanos()-m.start)/float64(b.N), "cpu-ns/op")
	}
}

// writers are the numbers of concurrent callers of BenchmarkDurable and
// BenchmarkAppend.
var writers = []int{1, 8, 64}

// BenchmarkDurable measures guarded calls with the audit log's default,
// durable sync (every record fsynced before the call goes on; concurrent
// callers share fsyncs), from N goroutines. ns/op is per call.
func BenchmarkDurable(b *testing.B) {
	for _, n := range writers {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			g := newGuard(b, realisticRules, audit.SyncEach)
			send := agentguard.Wrap(g, "send_email", sendEmail, agentguard.Estimate(estimate))
			ctx := benchContext()
			b.ReportAllocs()
			runN(b, n, func() error {
				_, err := send(ctx, emailArgs)
				return err
			})
		})
	}
}

// callRecords are the two records the guard appends for one call of
// BenchmarkDurable, as its audit recorder builds them.
func callRecords(id string) (decision, result *audit.Record) {
	p := audit.Principal(benchPrincipal)
	est := []audit.Cost{{Unit: estimate.Unit, Micros: estimate.Micros}}
	decision = &audit.Record{Kind: audit.KindDecision, Call: id, Principal: p, Env: benchEnv, Tool: "send_email",
		Args:     map[string]any{"to": emailArgs.To, "subject": emailArgs.Subject, "body": emailArgs.Body},
		Decision: "allow", Rule: "support-mail", PolicyVersion: "2b5f0c4a9d1e3f7a8b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a",
		Estimate: est}
	result = &audit.Record{Kind: audit.KindResult, Call: id, Principal: p, Tool: "send_email",
		Outcome: "ok", Duration: 1500 * time.Nanosecond, Actual: est}
	return decision, result
}

// BenchmarkAppend appends the same two records per call as
// BenchmarkDurable, with the same durable group commit, and nothing else.
func BenchmarkAppend(b *testing.B) {
	for _, n := range writers {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			l, err := audit.Open(filepath.Join(b.TempDir(), "audit.jsonl"), audit.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			b.ReportAllocs()
			runN(b, n, func() error {
				d, r := callRecords("0193b6c8-7c4e-7000-8000-000000000000")
				if err := l.Append(ctx, d); err != nil {
					return err
				}
				return l.Append(ctx, r)
			})
		})
	}
}

// verifyLog writes a log of the records of 5,000 guarded calls and returns
// its path and bytes.
func verifyLog(b *testing.B) (string, []byte) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "audit.jsonl")
	l, err := audit.Open(path, audit.Options{Sync: audit.SyncNever})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5000 {
		d, r := callRecords(fmt.Sprintf("0193b6c8-7c4e-7000-8000-%012d", i))
		if err := l.Append(ctx, d); err != nil {
			b.Fatal(err)
		}
		if err := l.Append(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return path, data
}

// BenchmarkVerify verifies a log of 10,000 records; MB/s is its
// throughput, next to BenchmarkSHA256's over the same bytes.
func BenchmarkVerify(b *testing.B) {
	path, data := verifyLog(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := audit.Verify(audit.VerifyOptions{}, path)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Records != 10000 {
			b.Fatalf("Verify: %d records, want 10000", rep.Records)
		}
	}
}

// BenchmarkSHA256 hashes the bytes of BenchmarkVerify's log with SHA-256
// alone: the floor of any verification.
func BenchmarkSHA256(b *testing.B) {
	_, data := verifyLog(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		sha256.Sum256(data)
	}
}

package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
)

func benchOptions(p SyncPolicy) Options {
	return Options{Sync: p, ID: "bench", Redaction: Redaction{HashKey: []byte("k")}}
}

// BenchmarkAppendPair appends a decision and its result, as the guard
// does for one call, with each sync policy, from 1 and 64 goroutines.
func BenchmarkAppendPair(b *testing.B) {
	for _, p := range []SyncPolicy{SyncEach, SyncInterval, SyncNever} {
		for _, par := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/%d", p, par), func(b *testing.B) {
				l, err := Open(filepath.Join(b.TempDir(), "audit.jsonl"), benchOptions(p))
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				args := map[string]any{"to": "bob@example.com", "subject": "hello", "max_tokens": 100}
				pair := func() {
					d := &Record{Kind: KindDecision, Call: "0193b6c8-7c4e-7000-8000-000000000000",
						Principal: Principal{Agent: "bot", Tenant: "acme"}, Tool: "send_email",
						Args: args, Decision: "allow", Rule: "allow-email", PolicyVersion: "v1"}
					if err := l.Append(context.Background(), d); err != nil {
						b.Fatal(err)
					}
					r := &Record{Kind: KindResult, Call: d.Call, Tool: "send_email", Outcome: "ok", Duration: 1234}
					if err := l.Append(context.Background(), r); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				if par == 1 {
					for b.Loop() {
						pair()
					}
					return
				}
				// RunParallel runs parallelism × GOMAXPROCS goroutines.
				b.SetParallelism(max(1, par/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						pair()
					}
				})
			})
		}
	}
}

// BenchmarkVerify verifies a signed log of 10000 records; MB/s is
// Verify's throughput.
func BenchmarkVerify(b *testing.B) {
	path := writeLog(b, 10000, true)
	size := int64(len(readFile(b, path)))
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(VerifyOptions{Key: testVKey}, path); err != nil {
			b.Fatal(err)
		}
	}
}

package agentguard_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
)

// BenchmarkWrap measures an allowed call through Wrap: the guard's cost on
// the hot path, next to the bare tool.
//
//	go test -run '^$' -bench Wrap -benchmem .
func BenchmarkWrap(b *testing.B) {
	tool := func(_ context.Context, a RefundArgs) (string, error) { return a.Order, nil }
	args := RefundArgs{Order: "A-1", Amount: 20}
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bench-bot", Tenant: "acme"})

	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tool(ctx, args); err != nil {
				b.Fatal(err)
			}
		}
	})
	bench := func(b *testing.B, opts ...agentguard.Option) {
		g, err := agentguard.New(append([]agentguard.Option{agentguard.WithPolicy(mustPolicy(b, testPolicy))}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		ref := agentguard.Wrap(g, "refund", tool)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ref(ctx, args); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("policy", func(b *testing.B) { bench(b) })
	b.Run("policy+audit-nosync", func(b *testing.B) {
		bench(b, agentguard.WithAuditFile(filepath.Join(b.TempDir(), "audit.jsonl"), audit.Options{Sync: audit.SyncNever}))
	})
	b.Run("denied", func(b *testing.B) {
		g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(b, testPolicy)))
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		write := agentguard.Wrap(g, "write_db", tool)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := write(ctx, args); err == nil {
				b.Fatal("write_db was allowed")
			}
		}
	})
}

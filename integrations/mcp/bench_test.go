package agentguardmcp_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	agentguardmcp "github.com/hardstop-labs/agentguard/integrations/mcp"
	"github.com/hardstop-labs/agentguard/policy"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// BenchmarkCall measures a tools/call from a go-sdk client to a go-sdk
// server in process (in-memory transports), without the middleware and
// with it (audit log without fsync), and reports the median (p50-ns) and
// the 99th percentile (p99-ns) of a call.
func BenchmarkCall(b *testing.B) {
	for _, guarded := range []bool{false, true} {
		name := "plain"
		if guarded {
			name = "guarded"
		}
		b.Run(name, func(b *testing.B) {
			s := mcp.NewServer(&mcp.Implementation{Name: "s"}, nil)
			s.AddTool(&mcp.Tool{Name: "echo", InputSchema: map[string]any{"type": "object"}, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
				func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
				})
			if guarded {
				p, err := policy.Parse("p.yaml", []byte("version: 1\ndefault: deny\nrules:\n  - name: reads\n    match: call.labels.read_only == \"true\"\n    effect: allow\n"))
				if err != nil {
					b.Fatal(err)
				}
				g, err := agentguard.New(agentguard.WithPolicy(p), agentguard.WithAuditFile(filepath.Join(b.TempDir(), "a.jsonl"), audit.Options{Sync: audit.SyncNever}))
				if err != nil {
					b.Fatal(err)
				}
				defer g.Close()
				s.AddReceivingMiddleware(agentguardmcp.Middleware(g, agentguardmcp.Options{}))
			}
			ct, st := mcp.NewInMemoryTransports()
			ss, err := s.Connect(context.Background(), st, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer ss.Close()
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "c"}, nil).Connect(context.Background(), ct, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer cs.Close()
			params := &mcp.CallToolParams{Name: "echo", Arguments: json.RawMessage(`{"q":"x"}`)}
			times := make([]time.Duration, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				res, err := cs.CallTool(context.Background(), params)
				times[i] = time.Since(start)
				if err != nil || res.IsError {
					b.Fatalf("call: %v %+v", err, res)
				}
			}
			b.StopTimer()
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

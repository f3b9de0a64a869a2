package mcpproxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
	"github.com/hardstop-labs/agentguard/policy"
)

// BenchmarkStdioCall measures a tools/call to a server that runs as a
// child process over stdio: "direct" talks to the server, "proxy" goes
// through a Proxy in this process (the server behind it over stdio too),
// with the audit log written without fsync and with one. It reports the
// median (p50-ns) and the 99th percentile (p99-ns) of a call's round trip.
func BenchmarkStdioCall(b *testing.B) {
	for _, mode := range []string{"direct", "proxy", "proxy+audit-fsync"} {
		b.Run(mode, func(b *testing.B) {
			b.Setenv("MCPPROXY_FAKE", "ok")
			child, err := mcpproxy.StartChild(os.Args[0], []string{"-test.run=^$"}, os.Stderr)
			if err != nil {
				b.Fatal(err)
			}
			defer child.Stop(time.Second)
			w, r := child.Stdin(), child.Stdout()
			if mode != "direct" {
				pol, err := policy.Parse("p.yaml", []byte(proxyPolicy))
				if err != nil {
					b.Fatal(err)
				}
				sync := audit.SyncNever
				if mode == "proxy+audit-fsync" {
					sync = audit.SyncEach
				}
				g, err := agentguard.New(agentguard.WithPolicy(pol),
					agentguard.WithAuditFile(filepath.Join(b.TempDir(), "audit.jsonl"), audit.Options{Sync: sync}))
				if err != nil {
					b.Fatal(err)
				}
				defer g.Close()
				p := mcpproxy.New(g, mcpproxy.Options{})
				cinR, cinW := io.Pipe()
				coutR, coutW := io.Pipe()
				go p.Serve(context.Background(), mcpproxy.Streams{ClientIn: cinR, ClientOut: coutW, ServerOut: r, ServerIn: w})
				defer cinW.Close()
				w, r = cinW, coutR
			}
			br := bufio.NewReader(r)
			roundTrip := func(line string) {
				if _, err := io.WriteString(w, line); err != nil {
					b.Fatal(err)
				}
				if _, err := br.ReadBytes('\n'); err != nil {
					b.Fatal(err)
				}
			}
			roundTrip(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}` + "\n")
			lines := make([]string, b.N)
			for i := range lines {
				lines[i] = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"q":"x"}}}`+"\n", i+1)
			}
			roundTrip(lines[0]) // warm: the proxy learns the tools
			times := make([]time.Duration, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				roundTrip(lines[i])
				times[i] = time.Since(start)
			}
			b.StopTimer()
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

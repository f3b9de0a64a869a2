package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

func init() {
	if os.Getenv("AGENTGUARD_TEST_FAKE_MCP") == "1" {
		fakeMCP(os.Stdin, os.Stdout)
		os.Exit(0)
	}
}

// fakeMCP is the smallest MCP server: initialize, tools/list with one
// read-only tool, and tools/call of it.
func fakeMCP(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(sc.Bytes(), &req) != nil || req.ID == nil {
			continue
		}
		var result string
		switch req.Method {
		case "initialize":
			result = `{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"fake","version":"1"}}`
		case "tools/list":
			result = `{"tools":[{"name":"echo","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}]}`
		default:
			result = `{"content":[{"type":"text","text":"ok"}]}`
		}
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`+"\n", req.ID, result)
	}
}

// BenchmarkMCPProxyStart measures what the proxy costs a session: the time
// from starting a process to the answer of initialize, for the server
// alone ("direct") and behind agentguard mcp-proxy ("proxy"), and the
// proxy's resident memory once idle after a call (rss-MiB). Both
// processes are this test binary, so the difference is the proxy's.
func BenchmarkMCPProxyStart(b *testing.B) {
	pol := filepath.Join(b.TempDir(), "p.yaml")
	os.WriteFile(pol, []byte("version: 1\ndefault: deny\nrules:\n  - name: reads\n    match: call.labels.read_only == \"true\"\n    effect: allow\n"), 0o600)
	for _, mode := range []string{"direct", "proxy"} {
		b.Run(mode, func(b *testing.B) {
			var rss float64
			starts := make([]float64, b.N)
			for i := 0; i < b.N; i++ {
				var cmd *exec.Cmd
				if mode == "direct" {
					cmd = exec.Command(os.Args[0])
				} else {
					cmd = exec.Command(os.Args[0], "mcp-proxy", "--policy", pol, "--", os.Args[0])
				}
				cmd.Env = append(os.Environ(), "AGENTGUARD_TEST_FAKE_MCP=1")
				if mode == "proxy" {
					// The proxy runs as the command; its child is the fake server.
					cmd.Env = append(os.Environ(), "AGENTGUARD_TEST_MAIN=1")
					cmd.Args = append(cmd.Args[:len(cmd.Args)-1], "env", "AGENTGUARD_TEST_MAIN=", "AGENTGUARD_TEST_FAKE_MCP=1", os.Args[0])
				}
				in, _ := cmd.StdinPipe()
				out, _ := cmd.StdoutPipe()
				start := time.Now()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				br := bufio.NewReader(out)
				io.WriteString(in, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`+"\n")
				if _, err := br.ReadBytes('\n'); err != nil {
					b.Fatal(err)
				}
				starts[i] = float64(time.Since(start).Microseconds()) / 1000
				if mode == "proxy" && i == b.N-1 {
					io.WriteString(in, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{}}}`+"\n")
					if _, err := br.ReadBytes('\n'); err != nil {
						b.Fatal(err)
					}
					rss = vmRSS(b, cmd.Process.Pid)
				}
				in.Close()
				cmd.Wait()
			}
			slices.Sort(starts)
			b.ReportMetric(starts[len(starts)/2], "p50-start-ms")
			if mode == "proxy" {
				b.ReportMetric(rss, "rss-MiB")
			}
		})
	}
}

// vmRSS returns a process's resident memory in MiB.
func vmRSS(b *testing.B, pid int) float64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range bytes.Split(st, []byte("\n")) {
		if f := bytes.Fields(line); len(f) >= 2 && string(f[0]) == "VmRSS:" {
			kb, _ := strconv.ParseFloat(string(f[1]), 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

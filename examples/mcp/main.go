// Command mcp is a small MCP server (github.com/modelcontextprotocol/go-sdk)
// guarded by agentguard in one line, and a client session in the same
// process playing the model: an allowed call, a denied call, and a call
// that waits for a manager's approval. It needs no network.
//
//	cd examples/mcp && go run .
package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	agentguardmcp "github.com/hardstop-labs/agentguard/integrations/mcp"
	"github.com/hardstop-labs/agentguard/policy"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

//go:embed policy.yaml
var policySrc []byte

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mcp example:", err)
		os.Exit(1)
	}
}

type orderArgs struct {
	Order string `json:"order"`
}

type refundArgs struct {
	Order  string `json:"order"`
	Amount int    `json:"amount"`
}

type customerArgs struct {
	ID string `json:"id"`
}

func run(out io.Writer) error {
	ctx := context.Background()
	pol, err := policy.Parse("policy.yaml", policySrc)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "agentguard-mcp-example")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logPath := filepath.Join(dir, "audit.jsonl")

	// A manager approves refunds up to 500 USD; the card shows the call.
	manager := approval.Func(func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
		fmt.Fprintf(out, "   approval card: %s %v (%s)\n", r.Tool, r.Args, r.Reason)
		if amount, ok := number(r.Args["amount"]); ok && amount <= 500 {
			return r.Approve("manager@acme.com", "ok for a loyal customer"), nil
		}
		return r.Reject("manager@acme.com", "too large"), nil
	})
	g, err := agentguard.New(agentguard.WithPolicy(pol), agentguard.WithAuditFile(logPath), agentguard.WithApprover(manager),
		agentguard.WithDefaultPrincipal(agentguard.Principal{Tenant: "acme"}))
	if err != nil {
		return err
	}
	defer g.Close()

	// The server: three tools, and the one line that guards them all.
	server := mcp.NewServer(&mcp.Implementation{Name: "shop", Version: "1.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "lookup_order", Description: "Look up an order", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest, in orderArgs) (*mcp.CallToolResult, any, error) {
			return text("order " + in.Order + ": 2 items, 250 USD, delivered"), nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "refund", Description: "Refund an order"},
		func(ctx context.Context, req *mcp.CallToolRequest, in refundArgs) (*mcp.CallToolResult, any, error) {
			return text(fmt.Sprintf("refunded %d USD on %s", in.Amount, in.Order)), nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "delete_customer", Description: "Delete a customer"},
		func(ctx context.Context, req *mcp.CallToolRequest, in customerArgs) (*mcp.CallToolResult, any, error) {
			return text("deleted " + in.ID), nil, nil
		})
	server.AddReceivingMiddleware(agentguardmcp.Middleware(g, agentguardmcp.Options{}))

	// The client, as a model's host would run it, over in-memory transports.
	ct, st := mcp.NewInMemoryTransports()
	ss, err := server.Connect(ctx, st, nil)
	if err != nil {
		return err
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "support-bot", Version: "1.0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		return err
	}
	defer cs.Close()

	steps := []struct {
		say  string
		tool string
		args map[string]any
	}{
		{"look up order A-1", "lookup_order", map[string]any{"order": "A-1"}},
		{"delete the customer", "delete_customer", map[string]any{"id": "c-9"}},
		{"refund 250 USD", "refund", map[string]any{"order": "A-1", "amount": 250}},
	}
	for i, s := range steps {
		fmt.Fprintf(out, "%d. model: %s\n", i+1, s.say)
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: s.tool, Arguments: s.args})
		if err != nil {
			return err
		}
		verdict := "allowed"
		if res.IsError {
			verdict = "denied"
		}
		fmt.Fprintf(out, "   %s: %s\n", verdict, firstText(res))
	}

	cs.Close()
	if err := g.Close(); err != nil {
		return err
	}
	rep, err := audit.Verify(audit.VerifyOptions{}, logPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "audit log: %d records, hash chain intact\n", rep.Records)
	return nil
}

// number reads a JSON number as the guard decoded it.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	}
	return 0, false
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func firstText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
			break
		}
	}
	return b.String()
}

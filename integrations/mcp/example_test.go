package agentguardmcp_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hardstop-labs/agentguard"
	agentguardmcp "github.com/hardstop-labs/agentguard/integrations/mcp"
	"github.com/hardstop-labs/agentguard/policy"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// One line guards every tool of a server: the policy allows read-only
// tools, so the delete is refused with a result the model reads.
func ExampleMiddleware() {
	p, _ := policy.Parse("policy.yaml", []byte(`
version: 1
default: deny
rules:
  - name: reads
    match: call.labels.read_only == "true"
    effect: allow
`))
	g, _ := agentguard.New(agentguard.WithPolicy(p))
	defer g.Close()

	s := mcp.NewServer(&mcp.Implementation{Name: "files"}, nil)
	h := func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: req.Params.Name + " done"}}}, nil
	}
	schema := map[string]any{"type": "object"}
	s.AddTool(&mcp.Tool{Name: "read_file", InputSchema: schema, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}}, h)
	s.AddTool(&mcp.Tool{Name: "delete_file", InputSchema: schema}, h)
	s.AddReceivingMiddleware(agentguardmcp.Middleware(g, agentguardmcp.Options{}))

	ct, st := mcp.NewInMemoryTransports()
	ss, _ := s.Connect(context.Background(), st, nil)
	defer ss.Close()
	cs, _ := mcp.NewClient(&mcp.Implementation{Name: "assistant"}, nil).Connect(context.Background(), ct, nil)
	defer cs.Close()
	for _, tool := range []string{"read_file", "delete_file"} {
		res, _ := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: json.RawMessage(`{"path":"a.txt"}`)})
		fmt.Println(tool, "isError:", res.IsError)
	}
	// Output:
	// read_file isError: false
	// delete_file isError: true
}

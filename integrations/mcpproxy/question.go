package mcpproxy

import (
	"encoding/json"
	"fmt"

	"github.com/hardstop-labs/agentguard/approval"
)

// ApprovalQuestion is the form elicitation that asks a client's user
// whether the call of r may run: its message (the tool, its arguments as
// JSON and the policy's reason) and its requested schema (one required
// boolean, approve). The proxy and the mcp-go integration ask with it.
func ApprovalQuestion(r *approval.Request) (message string, schema map[string]any) {
	args, _ := json.Marshal(r.Args)
	message = fmt.Sprintf("The assistant wants to call the tool %q with %s.", r.Tool, args)
	if r.Reason != "" {
		message += " " + r.Reason + "."
	}
	message += " Do you approve this call?"
	schema = map[string]any{"type": "object", "required": []string{"approve"},
		"properties": map[string]any{"approve": map[string]any{"type": "boolean", "title": "Approve this call"}}}
	return message, schema
}

// ApprovalAnswer reports whether an answer to ApprovalQuestion approves:
// the action is accept and the content's approve is the boolean true
// (content decoded from JSON, or a Go value that encodes to such an
// object). Anything else refuses.
func ApprovalAnswer(action string, content any) bool {
	if action != "accept" {
		return false
	}
	m, ok := content.(map[string]any)
	if !ok {
		b, err := json.Marshal(content)
		if err != nil || json.Unmarshal(b, &m) != nil {
			return false
		}
	}
	return m["approve"] == true
}

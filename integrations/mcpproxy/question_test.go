package mcpproxy_test

import (
	"strings"
	"testing"

	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
)

// TestApprovalQuestion: the question names the tool, its arguments and
// the reason, and only an accept whose approve is the boolean true
// approves.
func TestApprovalQuestion(t *testing.T) {
	msg, schema := mcpproxy.ApprovalQuestion(&approval.Request{Tool: "refund", Args: map[string]any{"amount": 400}, Reason: "refunds over 100 need a human"})
	for _, want := range []string{`"refund"`, `{"amount":400}`, "refunds over 100 need a human."} {
		if !strings.Contains(msg, want) {
			t.Errorf("question %q does not name %s", msg, want)
		}
	}
	if req, _ := schema["required"].([]string); len(req) != 1 || req[0] != "approve" {
		t.Errorf("schema %v does not require approve", schema)
	}
	type content struct {
		Approve any `json:"approve"`
	}
	cases := []struct {
		action  string
		content any
		want    bool
	}{
		{"accept", map[string]any{"approve": true}, true},
		{"accept", content{true}, true}, // a Go value that encodes to the object
		{"accept", map[string]any{"approve": false}, false},
		{"accept", map[string]any{"approve": "true"}, false},
		{"accept", map[string]any{"Approve": true}, false},
		{"accept", nil, false},
		{"accept", []any{true}, false},
		{"accept", make(chan int), false}, // cannot be encoded
		{"decline", map[string]any{"approve": true}, false},
		{"cancel", map[string]any{"approve": true}, false},
		{"ACCEPT", map[string]any{"approve": true}, false},
	}
	for _, c := range cases {
		if got := mcpproxy.ApprovalAnswer(c.action, c.content); got != c.want {
			t.Errorf("ApprovalAnswer(%q, %#v) = %v, want %v", c.action, c.content, got, c.want)
		}
	}
}

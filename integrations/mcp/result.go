package agentguardmcp

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/hardstop-labs/agentguard"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// MetaDenial is the key under which a denial's machine-readable form
// (agentguard.DeniedError's JSON) is put in the _meta of the tool result
// the model reads.
const MetaDenial = "agentguard/denial"

// DenialResult returns the tool result of a refused call: IsError, the
// denial's text for the model, and the denial's JSON under MetaDenial in
// _meta. err is what Check or Done returned; an error that is not a
// *agentguard.DeniedError (which the guard never returns) is shown as an
// internal denial without its text.
func DenialResult(err error) *mcp.CallToolResult {
	var d *agentguard.DeniedError
	if !errors.As(err, &d) {
		d = &agentguard.DeniedError{Code: agentguard.CodeInternal, Reason: "the guard failed", Needs: "a human to look at the guard's logs"}
	}
	res := &mcp.CallToolResult{
		Content: []mcp.Content{&mcp.TextContent{Text: d.Error()}},
		IsError: true,
	}
	if j, jerr := json.Marshal(d); jerr == nil {
		res.Meta = mcp.Meta{MetaDenial: json.RawMessage(j)}
	}
	return res
}

// toolError is the error Done records for a result with IsError: its
// first text, bounded.
type toolError struct{ text string }

func (e *toolError) Error() string { return e.text }

// maxErrorText bounds the text of a tool's error result kept for the log.
const maxErrorText = 512

// resultError returns the error a tool result stands for: nil unless
// IsError is set.
func resultError(res *mcp.CallToolResult) error {
	if res == nil || !res.IsError {
		return nil
	}
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
			break
		}
	}
	s := b.String()
	if len(s) > maxErrorText {
		s = s[:maxErrorText] + "..."
	}
	if s == "" {
		s = "the tool returned an error result"
	}
	return &toolError{s}
}

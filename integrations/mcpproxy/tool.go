package mcpproxy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
)

// Tool is a tool's definition as an MCP server announces it in
// tools/list: what the model reads and what the guard pins.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"inputSchema,omitempty"`
	Annotations json.RawMessage `json:"annotations,omitempty"`
}

// Hash returns the lowercase hex SHA-256 of the definition as the model
// sees it: its name, description, input schema and annotations, in
// canonical JSON (object keys sorted, no spaces). A server that changes
// any of them (a new description is how a server smuggles new
// instructions to the model) changes the hash.
func (t *Tool) Hash() string {
	v := map[string]any{"name": t.Name, "description": t.Description}
	for k, raw := range map[string]json.RawMessage{"inputSchema": t.InputSchema, "annotations": t.Annotations} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var x any
		if err := json.Unmarshal(raw, &x); err != nil {
			x = "unparsable:" + string(raw) // still hashed: a change still shows
		}
		v[k] = x
	}
	b, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		b = []byte("unencodable:" + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Labels returns the labels the policy sees (call.labels) for the tool,
// as key/value pairs: read_only, destructive, idempotent and open_world,
// each "true" or "false", from its annotations with the protocol's
// defaults where a hint is absent (not read-only, destructive, not
// idempotent, open world). A read-only tool is never destructive;
// annotations that cannot be read count as absent. The hints are the
// server's word: pin definitions (Pins) so that a server cannot change
// them unnoticed.
func (t *Tool) Labels() []string {
	var a struct {
		ReadOnly    *bool `json:"readOnlyHint"`
		Destructive *bool `json:"destructiveHint"`
		Idempotent  *bool `json:"idempotentHint"`
		OpenWorld   *bool `json:"openWorldHint"`
	}
	if len(t.Annotations) > 0 {
		if err := json.Unmarshal(t.Annotations, &a); err != nil {
			a.ReadOnly, a.Destructive, a.Idempotent, a.OpenWorld = nil, nil, nil, nil
		}
	}
	get := func(p *bool, def bool) bool {
		if p == nil {
			return def
		}
		return *p
	}
	readOnly := get(a.ReadOnly, false)
	destructive := get(a.Destructive, true) && !readOnly
	return []string{
		"read_only", strconv.FormatBool(readOnly),
		"destructive", strconv.FormatBool(destructive),
		"idempotent", strconv.FormatBool(get(a.Idempotent, false)),
		"open_world", strconv.FormatBool(get(a.OpenWorld, true)),
	}
}

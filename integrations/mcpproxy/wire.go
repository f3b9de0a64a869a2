package mcpproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/hardstop-labs/agentguard"
)

// MetaDenial is the key under which a denial's machine-readable form
// (agentguard.DeniedError's JSON) is put in the _meta of the tool result
// the model reads.
const MetaDenial = "agentguard/denial"

// DenialResult returns the JSON of the tool result of a refused call: a
// CallToolResult with isError, the denial's text for the model, and the
// denial's JSON under MetaDenial in _meta. err is what Check or Done
// returned; an error that is not a *agentguard.DeniedError (which the
// guard never returns) is shown as an internal denial without its text.
func DenialResult(err error) json.RawMessage {
	var d *agentguard.DeniedError
	if !errors.As(err, &d) {
		d = &agentguard.DeniedError{Code: agentguard.CodeInternal, Reason: "the guard failed", Needs: "a human to look at the guard's logs"}
	}
	return toolErrorResult(d.Error(), d)
}

// toolErrorResult is a CallToolResult with isError and text, and meta (a
// denial) under MetaDenial when not nil.
func toolErrorResult(text string, meta any) json.RawMessage {
	type content struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	res := struct {
		Content []content      `json:"content"`
		IsError bool           `json:"isError"`
		Meta    map[string]any `json:"_meta,omitempty"`
	}{Content: []content{{"text", text}}, IsError: true}
	if meta != nil {
		res.Meta = map[string]any{MetaDenial: meta}
	}
	b, err := json.Marshal(res)
	if err != nil { // a DeniedError always encodes; keep the text at least
		b, _ = json.Marshal(struct {
			Content []content `json:"content"`
			IsError bool      `json:"isError"`
		}{[]content{{"text", text}}, true})
	}
	return b
}

// object decodes a JSON object into its members, refusing what two JSON
// parsers could read differently: duplicate keys, and keys equal but for
// case (encoding/json matches struct fields case-insensitively, other
// parsers do not). The values are returned raw.
func object(raw []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	out := map[string]json.RawMessage{}
	folded := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		lk := foldKey(key)
		if prev, dup := folded[lk]; dup {
			if prev == key {
				return nil, fmt.Errorf("duplicate key %q", key)
			}
			return nil, fmt.Errorf("keys %q and %q differ only in case", prev, key)
		}
		folded[lk] = key
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if !blank(raw[dec.InputOffset():]) {
		return nil, errors.New("data after the JSON object")
	}
	return out, nil
}

// foldKey maps every rune of s to the smallest rune of its Unicode case
// folding orbit, so that keys equal under any case folding (K, k and the
// Kelvin sign) map to the same string.
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}

// message is one JSON-RPC message, its members checked by object.
type message struct {
	raw    []byte
	m      map[string]json.RawMessage
	id     json.RawMessage // nil for a notification
	method string
}

func (m *message) isRequest() bool  { return m.method != "" && m.id != nil }
func (m *message) isResponse() bool { return m.method == "" && m.id != nil }

// parse reads one JSON-RPC message.
func parse(line []byte) (*message, error) {
	m, err := object(line)
	if err != nil {
		return nil, err
	}
	msg := &message{raw: line, m: m}
	if raw, ok := m["method"]; ok {
		if err := json.Unmarshal(raw, &msg.method); err != nil || msg.method == "" {
			return nil, errors.New("method is not a non-empty string")
		}
	}
	if raw, ok := m["id"]; ok && string(raw) != "null" {
		if raw[0] != '"' && (raw[0] < '0' || raw[0] > '9') && raw[0] != '-' {
			return nil, errors.New("id is neither a string nor a number")
		}
		msg.id = raw
	}
	if msg.method == "" && msg.id == nil {
		return nil, errors.New("neither a request, a notification nor a response")
	}
	return msg, nil
}

// idKey is a request ID as a map key: its JSON text, with a number's
// form normalized (1 and 1.0 are the same ID to a JavaScript peer).
func idKey(id json.RawMessage) string {
	if len(id) > 0 && id[0] != '"' {
		var f float64
		if err := json.Unmarshal(id, &f); err == nil {
			return "n:" + strings.TrimSpace(fmt.Sprint(f))
		}
	}
	return "s:" + string(id)
}

// response builds a JSON-RPC response with a result.
func response(id json.RawMessage, result json.RawMessage) []byte {
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  json.RawMessage `json:"result"`
	}{"2.0", id, result})
	return b
}

// JSON-RPC error codes the proxy answers with.
const (
	codeParse    = -32700
	codeInvalid  = -32600
	codeInternal = -32603
)

// errorResponse builds a JSON-RPC error response.
func errorResponse(id json.RawMessage, code int, msg string) []byte {
	if id == nil {
		id = json.RawMessage("null")
	}
	type rpcErr struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   rpcErr          `json:"error"`
	}{"2.0", id, rpcErr{code, msg}})
	return b
}

package mcpproxy

import (
	"encoding/json"
	"testing"
)

// FuzzObject checks the strict object reader against encoding/json: what
// it accepts, encoding/json reads with the same members, and no two of
// its keys differ only in case; what encoding/json refuses, it refuses.
func FuzzObject(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{}}}`,
		`{"method":"a","Method":"b"}`,
		`{"a":1,"a":2}`,
		`{"a":{"a":1,"a":2}}`,
		`{} {}`,
		`[1]`,
		`{"\u0061":1,"a":2}`,
		`{"K":1,"\u212a":2}`,
		`{"s":1,"\u017f":2}`,
		`{} }`,
		` {"a" : [1, {"b": null}]} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := object(b)
		var std map[string]json.RawMessage
		stdErr := json.Unmarshal(b, &std)
		if err != nil {
			return
		}
		if stdErr != nil {
			t.Fatalf("object accepted %q, which encoding/json refuses: %v", b, stdErr)
		}
		if len(m) != len(std) {
			t.Fatalf("object read %d members of %q, encoding/json %d", len(m), b, len(std))
		}
		seen := map[string]string{}
		for k, v := range m {
			sv, ok := std[k]
			if !ok || string(sv) != string(v) {
				t.Fatalf("member %q of %q: object %s, encoding/json %s", k, b, v, sv)
			}
			lk := foldKey(k)
			if prev, dup := seen[lk]; dup {
				t.Fatalf("object accepted keys %q and %q in %q", prev, k, b)
			}
			seen[lk] = k
		}
		if msg, err := parse(b); err == nil && msg.method != "" {
			var env struct {
				Method string `json:"method"`
			}
			if json.Unmarshal(b, &env) != nil || env.Method != msg.method {
				t.Fatalf("parse read method %q of %q, encoding/json %q", msg.method, b, env.Method)
			}
		}
	})
}

func TestObjectRefuses(t *testing.T) {
	for _, s := range []string{
		`{"a":1,"a":2}`, `{"method":"a","Method":"b"}`, `{"K":1,"\u212a":2}`, `{"s":1,"\u017f":2}`,
		`{} }`, `{}{}`, `[]`, `"x"`, `{"a":1`, ``,
	} {
		if _, err := object([]byte(s)); err == nil {
			t.Errorf("object(%s) = nil error, want a refusal", s)
		}
	}
	for _, s := range []string{`{}`, ` {"a":{"a":1},"b":[1,1]} `, `{"A":1,"b":2}`} {
		if _, err := object([]byte(s)); err != nil {
			t.Errorf("object(%s) = %v, want it read", s, err)
		}
	}
}

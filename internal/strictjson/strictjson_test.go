package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" when accepted; else in the error
		path string
	}{
		{`{}`, "", ""},
		{`[]`, "", ""},
		{`"s"`, "", ""},
		{`{"a": 1, "b": {"a": 2}, "c": [{"a": 1}, {"a": 2}]}`, "", ""},
		{`{"a": 1, "a": 2}`, `duplicate key "a"`, ""},
		{`{"to": 1, "TO": 2}`, `key "TO" differs from key "to" only in case`, ""},
		{"{\"task\": 1, \"tas\u212a\": 2}", "only in case", ""}, // Kelvin sign
		{`{"x": {"y": [0, {"k": 1, "K": 2}]}}`, "only in case", "x.y[1]"},
		{`{"x": [[{"a": 1}], [{"a": 1, "a": 1}]]}`, "duplicate", "x[1][0]"},
		{`{"a": 1`, "unexpected", ""},
		{`{"a": 1} {}`, "data after", ""},
		{`{"a" 1}`, "invalid character", "a"},
	} {
		err := Check([]byte(tc.in), nil)
		if tc.want == "" {
			if err != nil {
				t.Errorf("Check(%s) = %v, want nil", tc.in, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Msg, tc.want) || e.Path != tc.path {
			t.Errorf("Check(%s) = %#v, want %q at %q", tc.in, err, tc.want, tc.path)
		}
	}
}

func TestCheckVisit(t *testing.T) {
	var seen []string
	err := Check([]byte(`{"a": {"b": [{"c": 1}]}, "d": 2}`), func(path []any, key string) error {
		seen = append(seen, pathString(path)+"/"+key)
		if key == "d" {
			return errors.New("no d")
		}
		return nil
	})
	if got := strings.Join(seen, " "); got != "/a a/b a.b[0]/c /d" {
		t.Errorf("visited %s", got)
	}
	var e *Error
	if !errors.As(err, &e) || e.Msg != "no d" || e.Offset != 28 {
		t.Errorf("Check = %#v, want the visitor's refusal at offset 28", err)
	}
}

// FuzzCheck: Check never panics, accepts only valid JSON, and whatever it
// accepts decodes with no key lost (no object has two keys one folds to).
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"A":2}`, `{"a":[1,{"b":null}]}`, `[{"x":1},{"x":1}]`, `{"a":1,"a":1}`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if Check(data, nil) != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("Check accepted invalid JSON %q", data)
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("Unmarshal of accepted %q: %v", data, err)
		}
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				folded := map[string]bool{}
				for k, x := range v {
					if folded[fold(k)] {
						t.Fatalf("accepted %q with keys equal under folding", data)
					}
					folded[fold(k)] = true
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(v)
	})
}

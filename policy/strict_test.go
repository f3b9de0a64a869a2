package policy

import (
	"errors"
	"strings"
	"testing"
)

// TestJSONKeysAreStrict: a JSON policy file with a key twice, two keys
// equal but for case, or a field name in another case was read by
// encoding/json with the last key winning ("effect":"deny","EFFECT":"allow"
// made an allow rule). YAML refuses them; JSON must too, naming the line.
// Issue 12, item 6.
func TestJSONKeysAreStrict(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
		line            int
	}{
		{"case-folded effect", `{"version": 1,
 "rules": [{"name": "r", "match": "true", "effect": "deny", "EFFECT": "allow"}]}`,
			`rules[0]: key "EFFECT" differs from key "effect" only in case`, 2},
		{"duplicate effect", `{"version": 1,
 "rules": [{"name": "r", "match": "true",
   "effect": "deny", "effect": "allow"}]}`, `rules[0]: duplicate key "effect"`, 3},
		{"field in another case", `{"version": 1, "rules": [{"name": "r", "match": "true", "Effect": "allow"}]}`,
			`rules[0]: unknown field "Effect": field names are written in lower case ("effect")`, 1},
		{"top-level case", `{"version": 1, "DEFAULT": "allow"}`, `unknown field "DEFAULT"`, 1},
		{"top-level twice", `{"version": 1, "default": "deny", "default": "allow"}`, `duplicate key "default"`, 1},
		{"long s", "{\"version\": 1, \"rules\": [], \"rule\u017f\": []}", "only in case", 1},
		{"budget limit twice", `{"version": 1, "budgets": [{"name": "b", "limit": "1 USD", "Limit": "1000 USD"}]}`,
			`budgets[0]: key "Limit" differs from key "limit" only in case`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("p.json", []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse accepted it: %v", p.Spec())
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) != 1 || list[0].Line != tc.line || list[0].File != "p.json" {
				t.Fatalf("Parse = %#v, want one error at p.json line %d", err, tc.line)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse = %v, want %q", err, tc.want)
			}
		})
	}
	// Keys inside values are the policy's business only where it reads
	// them: a rule's match may hold any text.
	if _, err := Parse("p.json", []byte(`{"version": 1, "rules": [{"name": "r", "match": "call.args.A == call.args.a", "effect": "allow"}]}`)); err != nil {
		t.Errorf("Parse of a valid JSON policy: %v", err)
	}
}

// TestMissingVersionIsAnError: a file of just "---", "null" or "{}" (a
// file cut short, or emptied by a bad deploy) loaded as a valid policy
// that denies everything, silently halting every agent. A policy file
// must say its version. Issue 12, item 6.
func TestMissingVersionIsAnError(t *testing.T) {
	for _, src := range []string{"---", "---\n", "null", "null\n", "{}", "{ }\n", "~\n", "# only a comment\n---\n",
		"default: deny\n", "rules: []\n", `{"default": "deny"}`, "version: 0\n"} {
		_, err := Parse("p.yaml", []byte(src))
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 || list[0].Field != "version" || list[0].Line == 0 {
			t.Errorf("Parse(%q) = %v, want an error naming the version, with a line", src, err)
		}
	}
	if _, err := Parse("p.yaml", []byte("version: 1\n")); err != nil {
		t.Errorf("Parse of a file with only its version: %v", err)
	}
	// Go code builds policies without a file: Spec's zero version is 1.
	if _, err := Compile(Spec{}); err != nil {
		t.Errorf("Compile(Spec{}) = %v", err)
	}
}

// TestAmountsAsTheBudgetReadsThem: `policy check` accepted amounts the
// budget then refused in New (finer than a micro-unit, past int64), and
// windows shorter than a second; now the policy reads them with the
// budget's parser and rules, and refuses them with the file and line.
// Issue 12, item 6.
func TestAmountsAsTheBudgetReadsThem(t *testing.T) {
	for _, tc := range []struct{ field, want string }{
		{`limit: "1.0000001 USD"`, "finer than a micro-unit"},
		{`limit: "99999999999999999999 USD"`, "too large"},
		{`limit: "9223372036855 USD"`, "too large"},
		{`limit: "1 USD", window: 500ms`, "at least 1s"},
		{`limit: "1 USD", name: "a|b"`, "must not contain '|'"},
	} {
		src := "version: 1\nbudgets:\n  - {name: b, " + tc.field + "}\n"
		if strings.Contains(tc.field, "name:") {
			src = "version: 1\nbudgets:\n  - {" + tc.field + "}\n"
		}
		_, err := Parse("p.yaml", []byte(src))
		var list ErrorList
		if !errors.As(err, &list) || len(list) != 1 || list[0].Line != 3 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want an error at p.yaml:3 saying %q", tc.field, err, tc.want)
		}
	}
	src := "version: 1\nbreakers:\n  - {name: k, spend_per_minute: '0.00000001 USD'}\n"
	if _, err := Parse("p.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "p.yaml:3:") {
		t.Errorf("Parse of a breaker spend finer than a micro-unit = %v, want an error at line 3", err)
	}
}

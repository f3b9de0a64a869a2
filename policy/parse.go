package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/hardstop-labs/agentguard/internal/strictjson"
)

// Parse compiles a policy file's contents: YAML, or JSON when the first
// non-blank character is '{'. name is the file's name, used in errors and
// String. Unknown fields, files over MaxFileSize, YAML expanding to more
// than MaxYAMLNodes nodes (alias bombs), and everything Compile rejects are
// errors: an ErrorList whose entries give the file, line and column, the
// rule or section, the field, and the position inside a CEL expression.
func Parse(name string, data []byte) (*Policy, error) {
	if len(data) > MaxFileSize {
		return nil, ErrorList{{File: name, Msg: fmt.Sprintf("file of %d bytes is larger than the limit of %d", len(data), MaxFileSize)}}
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, ErrorList{{File: name, Msg: "empty file"}}
	}
	var (
		s   Spec
		doc *yaml.Node
	)
	if trimmed[0] == '{' {
		if err := decodeJSON(name, data, &s); err != nil {
			return nil, err
		}
		// Positions come from reading the JSON as YAML, when it can be.
		doc, _ = parseYAMLNode(data)
	} else {
		var err error
		doc, err = parseYAMLNode(data)
		if err != nil {
			return nil, placeSyntaxError(yamlErrors(name, err, nil), data)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&s); err != nil && err != io.EOF {
			return nil, yamlErrors(name, err, doc)
		}
	}
	loc := nodeLocator(doc)
	if child(doc, "version") == nil {
		// No version key: the error is at the top of the file.
		base := loc
		loc = func(path ...any) (int, int) {
			switch {
			case len(path) == 1 && path[0] == "version":
				return 1, 1
			case base == nil:
				return 0, 0
			}
			return base(path...)
		}
	}
	return compile(s, name, loc, true)
}

// readBounded reads r up to MaxFileSize bytes, and fails beyond.
func readBounded(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %v", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file is larger than the limit of %d bytes", MaxFileSize)
	}
	return data, nil
}

// specType is what a JSON policy file decodes into.
var specType = reflect.TypeFor[Spec]()

// jsonFieldCase refuses a key of a policy file that names a field in
// another case ("EFFECT" for "effect"): encoding/json would take it, YAML
// does not, and neither may a policy.
func jsonFieldCase(path []any, key string) error {
	t := specType
	for _, p := range path {
		switch p := p.(type) {
		case string:
			f, ok := jsonField(t, p)
			if !ok {
				return nil // unknown: the decoder reports it
			}
			t = f.Type
		case int:
			if t.Kind() != reflect.Slice {
				return nil
			}
			t = t.Elem()
		}
	}
	if _, ok := jsonField(t, key); ok || t.Kind() != reflect.Struct {
		return nil
	}
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		n := jsonName(t.Field(i))
		if strings.EqualFold(n, key) {
			return fmt.Errorf("unknown field %q: field names are written in lower case (%q)", key, n)
		}
		names = append(names, n)
	}
	if near := nearest(key, names); near != "" {
		return fmt.Errorf("unknown field %q (did you mean %q?)", key, near)
	}
	return nil // unknown, and like no field: the decoder reports it
}

// jsonField returns the field of struct type t whose JSON name is exactly
// name.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		if f := t.Field(i); jsonName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func jsonName(f reflect.StructField) string {
	n, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return n
}

func decodeJSON(name string, data []byte, s *Spec) error {
	// Duplicate keys, keys equal but for case, and field names in another
	// case are refused, as YAML refuses them; encoding/json would let the
	// last win.
	if err := strictjson.Check(data, jsonFieldCase); err != nil {
		var se *strictjson.Error
		if errors.As(err, &se) {
			line, col := offsetPos(data, se.Offset)
			return ErrorList{{File: name, Line: line, Col: col, Msg: se.Error()}}
		}
		return ErrorList{{File: name, Msg: err.Error()}}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(s)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	if err == nil {
		return nil
	}
	off := dec.InputOffset()
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	msg := strings.TrimPrefix(err.Error(), "json: ")
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
		msg = fmt.Sprintf("%s: cannot use a JSON %s as %s", te.Field, te.Value, te.Type)
	}
	line, col := offsetPos(data, off)
	return ErrorList{{File: name, Line: line, Col: col, Msg: msg}}
}

// offsetPos converts a byte offset into a 1-based line and column.
func offsetPos(data []byte, off int64) (line, col int) {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// parseYAMLNode parses one YAML document into a node tree, and rejects it
// when it expands, through aliases, to more than MaxYAMLNodes nodes. The
// tree itself takes memory proportional to the input, whatever aliases it
// holds.
func parseYAMLNode(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, errors.New("more than one YAML document")
	}
	budget := MaxYAMLNodes
	if !countNodes(&doc, &budget, 0) {
		return nil, fmt.Errorf("the document expands to more than %d nodes (aliases count as copies)", MaxYAMLNodes)
	}
	return &doc, nil
}

// countNodes spends one unit of budget per node, following aliases, and
// reports false when the budget runs out or nesting is deeper than any
// policy needs.
func countNodes(n *yaml.Node, budget *int, depth int) bool {
	if n == nil {
		return true
	}
	*budget--
	if *budget < 0 || depth > 100 {
		return false
	}
	if n.Kind == yaml.AliasNode {
		return countNodes(n.Alias, budget, depth+1)
	}
	for _, c := range n.Content {
		if !countNodes(c, budget, depth+1) {
			return false
		}
	}
	return true
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlErrors converts a YAML error into an ErrorList with positions, and
// names the rule an error is in when doc locates it.
func yamlErrors(name string, err error, doc *yaml.Node) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var list ErrorList
	for _, m := range msgs {
		e := &Error{File: name, Msg: m}
		if sub := yamlLine.FindStringSubmatch(m); sub != nil {
			e.Line, _ = strconv.Atoi(sub[1])
			e.Col = 1
			e.Msg = sub[2]
			if f, ok := strings.CutPrefix(e.Msg, "field "); ok {
				if fname, typ, ok := strings.Cut(f, " not found in type "); ok {
					e.Msg = "unknown field " + strconv.Quote(fname)
					if near := nearest(fname, yamlFields()[typ]); near != "" {
						e.Msg += fmt.Sprintf(" (did you mean %q?)", near)
					}
				}
			}
			e.Item, e.Rule = ruleAtLine(doc, e.Line)
		}
		list = append(list, e)
	}
	return list
}

// ruleAtLine returns the rule whose entry holds line, if any.
func ruleAtLine(doc *yaml.Node, line int) (item, rule string) {
	rules := child(doc, "rules")
	if rules == nil || rules.Kind != yaml.SequenceNode {
		return "", ""
	}
	for i, r := range rules.Content {
		next := int(^uint(0) >> 1)
		if i+1 < len(rules.Content) {
			next = rules.Content[i+1].Line
		}
		if r.Line <= line && line < next {
			if n := child(r, "name"); n != nil && n.Kind == yaml.ScalarNode && n.Value != "" {
				return fmt.Sprintf("rule %q", n.Value), n.Value
			}
			return fmt.Sprintf("rule #%d", i+1), ""
		}
	}
	return "", ""
}

// child returns the value of key in a mapping node (or a document holding
// one), following aliases; nil when there is none.
func child(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = deref(n.Content[0])
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return deref(n.Content[i+1])
		}
	}
	return nil
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 10; i++ {
		n = n.Alias
	}
	return n
}

// nodeLocator locates paths such as ("rules", 2, "match") in doc: the
// position of the value, or of the deepest part of the path found.
func nodeLocator(doc *yaml.Node) locator {
	if doc == nil {
		return nil
	}
	return func(path ...any) (int, int) {
		n := deref(doc)
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
			n = deref(n.Content[0])
		}
		line, col := n.Line, n.Column
		for _, p := range path {
			var next *yaml.Node
			switch k := p.(type) {
			case string:
				next = child(n, k)
			case int:
				if n.Kind == yaml.SequenceNode && k >= 0 && k < len(n.Content) {
					next = deref(n.Content[k])
				}
			}
			if next == nil {
				break
			}
			n = next
			line, col = n.Line, n.Column
		}
		return line, col
	}
}

// placeSyntaxError moves a YAML syntax error to the line where the
// document stops reading. yaml.v3 reports an indentation error at the
// line that opened the block ("line 3: did not find expected key" for a
// key mis-indented on line 6); the offending line is the first after the
// longest prefix of whole lines that still reads as YAML. Files larger
// than maxPlaceLines lines or maxPlaceBytes bytes keep the parser's line.
func placeSyntaxError(err error, data []byte) error {
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Line == 0 {
		return err
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > maxPlaceLines || len(data) > maxPlaceBytes {
		return err
	}
	for n := len(lines) - 1; n > 0; n-- {
		var node yaml.Node
		if yaml.Unmarshal(bytes.Join(lines[:n], nil), &node) != nil {
			continue
		}
		e := list[0]
		if n+1 > e.Line && n < len(lines) {
			e.Msg = fmt.Sprintf("%s (in the block that starts at line %d; check the indentation)", e.Msg, e.Line)
			e.Line = n + 1
			e.Col = len(lines[n]) - len(bytes.TrimLeft(lines[n], " \t")) + 1
		}
		break
	}
	return list
}

// maxPlaceLines and maxPlaceBytes bound the files whose syntax errors
// placeSyntaxError places: it parses up to one prefix per line (at most
// about 8 MB of YAML read for a bad file).
const (
	maxPlaceLines = 500
	maxPlaceBytes = 32 << 10
)

// yamlFields returns, per Go type name of the policy file's structs
// ("policy.RuleSpec"), the YAML names of their fields.
var yamlFields = sync.OnceValue(func() map[string][]string {
	m := map[string][]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || m[t.String()] != nil {
			return
		}
		m[t.String()] = []string{}
		for i := range t.NumField() {
			f := t.Field(i)
			n, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if n == "-" || !f.IsExported() {
				continue
			}
			if n == "" {
				n = strings.ToLower(f.Name)
			}
			m[t.String()] = append(m[t.String()], n)
			walk(f.Type)
		}
	}
	walk(specType)
	return m
})

// nearest returns the name among names closest to s, if it is close
// enough to be a typo of it: at most two edits, and fewer than half of s.
func nearest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(s), n); d < bestD && 2*d < len(s) {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

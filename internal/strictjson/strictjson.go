// Package strictjson refuses JSON that different readers read differently:
// an object with a key twice, or with two keys equal under Unicode simple
// case folding ("effect" and "EFFECT", "task" and "tas\u212A" with a Kelvin
// sign), which encoding/json resolves silently (the last wins, matching
// struct fields without regard to case). It validates; decode with
// encoding/json after it.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// Error is a refusal, at byte Offset of the input.
type Error struct {
	Offset int64  // where the offending key ends
	Path   string // where the key is: "rules[2]"; "" for the top level
	Msg    string
}

// Error returns "Path: Msg", or Msg at the top level.
func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Check returns an *Error for the first object in data that has a key
// twice or two keys equal under simple case folding, and the syntax error
// of data that is not one JSON value. visit, when not nil, is called for
// every object key with the path of its object (object keys as string,
// array indexes as int) and may refuse it with an error, returned as an
// *Error at the key.
func Check(data []byte, visit func(path []any, key string) error) error {
	c := checker{dec: json.NewDecoder(bytes.NewReader(data)), visit: visit}
	for read := false; ; read = true {
		tok, err := c.dec.Token()
		if err == io.EOF {
			if len(c.stack) != 0 || !read {
				return c.fail("unexpected end of JSON")
			}
			return nil
		}
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return &Error{Offset: se.Offset, Path: pathString(c.path), Msg: se.Error()}
			}
			return c.fail("%v", err)
		}
		if err := c.step(tok); err != nil {
			return err
		}
		if len(c.stack) == 0 && c.dec.More() {
			// json.Decoder reads a stream; one value is a document.
			return c.fail("data after the JSON value")
		}
	}
}

type checker struct {
	dec   *json.Decoder
	visit func(path []any, key string) error
	stack []frame
	path  []any // object keys (string) and array indexes (int)
}

type frame struct {
	object bool
	key    bool              // the next token of an object is a key
	seen   map[string]string // fold key → the key as written
	index  int               // the next index of an array
}

func (c *checker) fail(format string, a ...any) error {
	return &Error{Offset: c.dec.InputOffset(), Path: pathString(c.path), Msg: fmt.Sprintf(format, a...)}
}

// valueStart names the value about to be read in the path.
func (c *checker) valueStart() {
	if n := len(c.stack); n > 0 && !c.stack[n-1].object {
		c.path = append(c.path, c.stack[n-1].index)
	}
}

// valueDone ends a value in the enclosing container.
func (c *checker) valueDone() {
	n := len(c.stack)
	if n == 0 {
		return
	}
	if top := &c.stack[n-1]; top.object {
		top.key = true
	} else {
		top.index++
	}
	c.path = c.path[:len(c.path)-1]
}

// step reads one token.
func (c *checker) step(tok json.Token) error {
	n := len(c.stack)
	if n > 0 && c.stack[n-1].object && c.stack[n-1].key {
		if d, ok := tok.(json.Delim); ok && d == '}' {
			c.stack = c.stack[:n-1]
			c.valueDone()
			return nil
		}
		key, _ := tok.(string)
		top := &c.stack[n-1]
		f := fold(key)
		if prev, dup := top.seen[f]; dup {
			if prev == key {
				return c.fail("duplicate key %q", key)
			}
			return c.fail("key %q differs from key %q only in case", key, prev)
		}
		if top.seen == nil {
			top.seen = make(map[string]string)
		}
		top.seen[f] = key
		if c.visit != nil {
			if err := c.visit(c.path, key); err != nil {
				return c.fail("%v", err)
			}
		}
		top.key = false
		c.path = append(c.path, key)
		return nil
	}
	switch d, _ := tok.(json.Delim); d {
	case '{':
		c.valueStart()
		c.stack = append(c.stack, frame{object: true, key: true})
	case '[':
		c.valueStart()
		c.stack = append(c.stack, frame{})
	case ']':
		c.stack = c.stack[:n-1]
		c.valueDone()
	default:
		c.valueStart()
		c.valueDone()
	}
	return nil
}

// fold maps s to one representative of its class under simple case
// folding, so that strings.EqualFold(a, b) iff fold(a) == fold(b).
func fold(s string) string {
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

func pathString(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case int:
			b.WriteString("[" + strconv.Itoa(p) + "]")
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		}
	}
	return b.String()
}

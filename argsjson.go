package agentguard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxArgsDepth is how deeply arguments may nest (objects and arrays); the
// audit log refuses deeper values, so the guard refuses them first.
const maxArgsDepth = 48

// ambiguity says which raw JSON the decoder refuses beyond the grammar.
type ambiguity uint8

const (
	// strictRaw: JSON from outside the program (a model's tool call).
	// Keys equal under simple case folding, invalid UTF-8 and lone
	// surrogates are refused, and so are integers that do not fit in 64
	// bits: each is read differently by different decoders.
	strictRaw ambiguity = iota
	// fromGo: JSON that encoding/json wrote for a Go value. Its map keys
	// are distinct Go strings, and a whole float64 of 1e20 is written as
	// digits: such integers read as the float64 they came from.
	fromGo
)

// decodeArgs decodes b, JSON arguments, into call.args: an object's
// fields; a value that is not an object is seen as {"value": v}; empty
// input and null as {}.
//
// Values are nil, bool, string, int64, uint64, float64, []any and
// map[string]any. A number written as an integer (no fraction, no
// exponent) is an int64, or a uint64 above the int64 range, exactly; one
// that fits in neither is refused. Any other number is a float64, and only
// when it is written as the shortest decimal of that float64 (as Go,
// JavaScript and Python write floats): a number with more digits than a
// double holds would be rounded, and is refused.
//
// Duplicate keys are always refused; under strictRaw, so are keys that
// are equal under Unicode simple case folding (strings.EqualFold: "to" and
// "TO", "task" and "tas\u212A" with a Kelvin sign), and invalid UTF-8 in
// strings or keys, raw or as a lone surrogate escape, which encoding/json
// would replace with U+FFFD.
func decodeArgs(b []byte, mode ambiguity) (map[string]any, error) {
	if len(b) == 0 {
		return map[string]any{}, nil
	}
	v, err := decodeValue(b, mode)
	if err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case map[string]any:
		return v, nil
	case nil:
		return map[string]any{}, nil
	default:
		return map[string]any{"value": v}, nil
	}
}

// decodeValue decodes one JSON value as decodeArgs reads values.
func decodeValue(b []byte, mode ambiguity) (any, error) {
	d := argsDecoder{b: b, mode: mode}
	d.skipSpace()
	v := d.value(0)
	if d.err == nil {
		d.skipSpace()
		if d.pos < len(d.b) {
			d.syntax("data after the arguments")
		}
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return v, nil
}

// argsDecoder reads one JSON value. It stops at the first error.
type argsDecoder struct {
	b    []byte
	pos  int
	mode ambiguity
	err  *argsError
	// numbers is set by folded when it meets a json.Number.
	numbers bool
	// path is where an error is. It is built as the error returns through
	// the objects and arrays around it, innermost first (finish turns it
	// around), so that a call that passes spends nothing on it.
	path []pathElem
}

// here stands for the error's path among the arguments of a message: the
// path is known only once the error has returned to the top.
type whereMark struct{}

var here whereMark

// at records, as an error returns through it, the key or index it came
// through; it passes the error on.
func (d *argsDecoder) at(p pathElem) {
	if d.err != nil {
		d.path = append(d.path, p)
	}
}

// finish formats the error, if any, with its path, and returns it.
func (d *argsDecoder) finish() error {
	if d.err == nil {
		return nil
	}
	slices.Reverse(d.path)
	w := d.where()
	for i, a := range d.err.args {
		if _, ok := a.(whereMark); ok {
			d.err.args[i] = w
		}
	}
	d.err.msg = fmt.Sprintf(d.err.format, d.err.args...)
	return d.err
}

// pathElem is a step of a path in the arguments: an object's key (idx
// -1) or an array's index.
type pathElem struct {
	key string
	idx int
}

// argsError says why arguments were refused and where (args.to,
// args.items[2]); the guard denies the call with CodeInvalidCall and the
// message as its reason, which quotes keys (cut to 64 bytes) but never a
// value.
type argsError struct {
	msg string
	err error // the decoder's own error, if any: never shown to the model

	format string // msg before the path is known (see finish)
	args   []any
}

func (e *argsError) Error() string {
	if e.err != nil {
		return "agentguard: arguments: " + e.msg + ": " + e.err.Error()
	}
	return "agentguard: arguments: " + e.msg
}

func (e *argsError) Unwrap() error { return e.err }

func (d *argsDecoder) fail(format string, a ...any) {
	if d.err == nil {
		d.err = &argsError{format: format, args: a}
	}
}

// quoteKey quotes a key for a message, cut to 64 bytes.
func quoteKey(k string) string {
	if c := cutText(k, 64); c != k {
		return strconv.Quote(c) + "…"
	}
	return strconv.Quote(k)
}

// cutText returns s cut to at most n bytes, at a character boundary.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (d *argsDecoder) syntax(what string) {
	if d.pos < len(d.b) {
		d.fail("not valid JSON: %s at byte %d (%q) in %s", what, d.pos, d.b[d.pos], here)
	} else {
		d.fail("not valid JSON: %s at the end (byte %d) in %s", what, d.pos, here)
	}
}

// where returns the decoder's path as args.a.b[2]["odd key"].
func (d *argsDecoder) where() string {
	var sb strings.Builder
	sb.WriteString("args")
	for _, p := range d.path {
		switch {
		case p.idx >= 0:
			sb.WriteString("[" + strconv.Itoa(p.idx) + "]")
		case identKey(p.key) && len(p.key) <= 64:
			sb.WriteString("." + p.key)
		default:
			sb.WriteString("[" + quoteKey(p.key) + "]")
		}
		if sb.Len() > 512 {
			return cutText(sb.String(), 512) + "…"
		}
	}
	return sb.String()
}

// identKey reports whether k can be written after a dot in a path.
func identKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func (d *argsDecoder) skipSpace() {
	for d.pos < len(d.b) {
		switch d.b[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *argsDecoder) value(depth int) any {
	if d.pos >= len(d.b) {
		d.syntax("a value expected")
		return nil
	}
	switch c := d.b[d.pos]; {
	case c == '{':
		if depth >= maxArgsDepth {
			d.fail("nested more than %d levels deep at %s", maxArgsDepth, here)
			return nil
		}
		return d.object(depth)
	case c == '[':
		if depth >= maxArgsDepth {
			d.fail("nested more than %d levels deep at %s", maxArgsDepth, here)
			return nil
		}
		return d.array(depth)
	case c == '"':
		s, _ := d.str(false)
		return s
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	case c == 't':
		return d.literal("true", true)
	case c == 'f':
		return d.literal("false", false)
	case c == 'n':
		return d.literal("null", nil)
	}
	d.syntax("a value expected")
	return nil
}

func (d *argsDecoder) literal(word string, v any) any {
	if !bytes.HasPrefix(d.b[d.pos:], []byte(word)) {
		d.syntax("a value expected")
		return nil
	}
	d.pos += len(word)
	return v
}

func (d *argsDecoder) object(depth int) any {
	d.pos++ // {
	m := make(map[string]any)
	var arr [16]string // this object's keys, while there are few
	keys := arr[:0]
	var folded map[string]string // fold key -> key, for large objects
	d.skipSpace()
	if d.pos < len(d.b) && d.b[d.pos] == '}' {
		d.pos++
		return m
	}
	for d.err == nil {
		if d.pos >= len(d.b) || d.b[d.pos] != '"' {
			d.syntax("a key expected")
			return nil
		}
		k, _ := d.str(true)
		if d.err != nil {
			return nil
		}
		// Refuse a key another key of this object already claims.
		if n := len(keys); n < len(arr) {
			for _, prev := range keys {
				if prev == k || d.mode == strictRaw && strings.EqualFold(prev, k) {
					d.duplicate(prev, k)
					return nil
				}
			}
		} else {
			if folded == nil {
				folded = make(map[string]string, 2*n)
				for _, prev := range keys {
					folded[d.foldKey(prev)] = prev
				}
			}
			fk := d.foldKey(k)
			if prev, ok := folded[fk]; ok {
				d.duplicate(prev, k)
				return nil
			}
			folded[fk] = k
		}
		if folded == nil {
			keys = append(keys, k)
		}
		d.skipSpace()
		if d.pos >= len(d.b) || d.b[d.pos] != ':' {
			d.syntax("':' expected")
			return nil
		}
		d.pos++
		d.skipSpace()
		v := d.value(depth + 1)
		if d.err != nil {
			d.at(pathElem{key: k, idx: -1})
			return nil
		}
		m[k] = v
		d.skipSpace()
		if d.pos < len(d.b) && d.b[d.pos] == ',' {
			d.pos++
			d.skipSpace()
			continue
		}
		if d.pos < len(d.b) && d.b[d.pos] == '}' {
			d.pos++
			return m
		}
		d.syntax("',' or '}' expected")
	}
	return nil
}

// duplicate refuses key b of an object that already has key a, equal to
// it or equal under case folding.
func (d *argsDecoder) duplicate(a, b string) {
	if a == b {
		d.fail("duplicate key %s in %s: decoders disagree on which one counts", quoteKey(b), here)
		return
	}
	d.fail("keys %s and %s in %s differ only in letter case: a tool decoding into a struct would read either one", quoteKey(a), quoteKey(b), here)
}

// foldKey returns k with every rune replaced by the smallest rune of its
// simple case folding orbit: two keys have the same fold key exactly when
// strings.EqualFold says they are equal. Under fromGo only exact
// duplicates count, so the key is k itself.
func (d *argsDecoder) foldKey(k string) string {
	if d.mode != strictRaw {
		return k
	}
	var sb strings.Builder
	for _, r := range k {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		sb.WriteRune(least)
	}
	return sb.String()
}

func (d *argsDecoder) array(depth int) any {
	d.pos++ // [
	a := []any{}
	d.skipSpace()
	if d.pos < len(d.b) && d.b[d.pos] == ']' {
		d.pos++
		return a
	}
	for d.err == nil {
		v := d.value(depth + 1)
		if d.err != nil {
			d.at(pathElem{idx: len(a)})
			return nil
		}
		a = append(a, v)
		d.skipSpace()
		if d.pos < len(d.b) && d.b[d.pos] == ',' {
			d.pos++
			d.skipSpace()
			continue
		}
		if d.pos < len(d.b) && d.b[d.pos] == ']' {
			d.pos++
			return a
		}
		d.syntax("',' or ']' expected")
	}
	return nil
}

// str reads a string at d.pos (a '"'). key says whether it is an object's
// key, for errors.
func (d *argsDecoder) str(key bool) (string, bool) {
	what := "a string"
	if key {
		what = "a key"
	}
	d.pos++ // "
	start := d.pos
	// Fast path: no escapes.
	for d.pos < len(d.b) {
		c := d.b[d.pos]
		if c == '"' {
			s := string(d.b[start:d.pos])
			d.pos++
			return s, true
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			d.syntax("a control character in " + what)
			return "", false
		}
		if c < utf8.RuneSelf {
			d.pos++
			continue
		}
		r, size := utf8.DecodeRune(d.b[d.pos:])
		if r == utf8.RuneError && size == 1 {
			d.invalidUTF8(what, key)
			return "", false
		}
		d.pos += size
	}
	var room [64]byte
	buf := append(room[:0], d.b[start:d.pos]...)
	for d.pos < len(d.b) {
		c := d.b[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(buf), true
		case c == '\\':
			if d.pos+1 >= len(d.b) {
				d.pos++
				d.syntax("an unfinished escape in " + what)
				return "", false
			}
			e := d.b[d.pos+1]
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := d.hex4(d.pos + 2)
				if !ok {
					d.pos += 2
					d.syntax("a bad \\u escape in " + what)
					return "", false
				}
				n := 6
				if utf16.IsSurrogate(r) {
					r2, ok2 := rune(0), false
					if d.pos+n+1 < len(d.b) && d.b[d.pos+n] == '\\' && d.b[d.pos+n+1] == 'u' {
						r2, ok2 = d.hex4(d.pos + n + 2)
					}
					pair := utf16.DecodeRune(r, r2)
					if !ok2 || pair == unicode.ReplacementChar {
						d.fail("%s in %s has a lone surrogate escape (\\u%04x at byte %d), which is no character: decoders replace it with U+FFFD", what, here, r, d.pos)
						return "", false
					}
					r = pair
					n += 6
				}
				buf = utf8.AppendRune(buf, r)
				d.pos += n
				continue
			default:
				d.pos++
				d.syntax("a bad escape in " + what)
				return "", false
			}
			d.pos += 2
		case c < 0x20:
			d.syntax("a control character in " + what)
			return "", false
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.b[d.pos:])
			if r == utf8.RuneError && size == 1 {
				d.invalidUTF8(what, key)
				return "", false
			}
			buf = append(buf, d.b[d.pos:d.pos+size]...)
			d.pos += size
		}
	}
	d.syntax("an unterminated " + what[2:])
	return "", false
}

func (d *argsDecoder) invalidUTF8(what string, key bool) {
	if key {
		d.fail("a key in %s is not valid UTF-8 (byte %d): decoders replace it with U+FFFD", here, d.pos)
		return
	}
	d.fail("%s at %s is not valid UTF-8 (byte %d): decoders replace it with U+FFFD", what, here, d.pos)
}

// hex4 reads four hex digits at i.
func (d *argsDecoder) hex4(i int) (rune, bool) {
	if i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads a number: an int64 or uint64 when written as an integer,
// else a float64 written as its shortest decimal.
func (d *argsDecoder) number() any {
	start := d.pos
	if d.b[d.pos] == '-' {
		d.pos++
	}
	digits := func() int {
		n := 0
		for d.pos < len(d.b) && '0' <= d.b[d.pos] && d.b[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	intStart := d.pos
	if n := digits(); n == 0 {
		d.syntax("a digit expected")
		return nil
	} else if n > 1 && d.b[intStart] == '0' {
		d.pos = intStart + 1
		d.syntax("a number with a leading zero")
		return nil
	}
	integer := true
	if d.pos < len(d.b) && d.b[d.pos] == '.' {
		integer = false
		d.pos++
		if digits() == 0 {
			d.syntax("a digit expected")
			return nil
		}
	}
	if d.pos < len(d.b) && (d.b[d.pos] == 'e' || d.b[d.pos] == 'E') {
		integer = false
		d.pos++
		if d.pos < len(d.b) && (d.b[d.pos] == '+' || d.b[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			d.syntax("a digit expected")
			return nil
		}
	}
	text := string(d.b[start:d.pos])
	if integer {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return n
		}
		if text[0] != '-' {
			if n, err := strconv.ParseUint(text, 10, 64); err == nil {
				return n
			}
		}
		if d.mode != fromGo {
			d.fail("an integer at %s does not fit in 64 bits, so it cannot be read exactly", here)
			return nil
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) {
		d.fail("a number at %s is out of the range of a double", here)
		return nil
	}
	if !shortest(text, f) {
		d.fail("a number at %s has more digits than a double holds, so it would be rounded", here)
		return nil
	}
	return f
}

// shortest reports whether the JSON number text has the same decimal
// value as the shortest decimal that reads back as f: whether f holds text
// exactly, as far as any JSON reader can tell.
func shortest(text string, f float64) bool {
	var a, b [24]byte
	ad, ae, ok := decimal(text, a[:0])
	if !ok {
		return false
	}
	var s [32]byte
	bd, be, _ := decimal(string(strconv.AppendFloat(s[:0], f, 'e', -1, 64)), b[:0])
	if len(ad) == 0 || len(bd) == 0 {
		return len(ad) == len(bd) // zero is zero, whatever its sign
	}
	return (text[0] == '-') == (f < 0) && ae == be && string(ad) == string(bd)
}

// decimal returns the significant digits of a JSON number (without
// leading and trailing zeros) and its exponent e such that the number is
// 0.DIGITS × 10^e. ok is false when there are more than 20 significant
// digits (no float64's shortest form has more than 17) or the exponent is
// absurd.
func decimal(text string, buf []byte) (digits []byte, exp int, ok bool) {
	i := 0
	if i < len(text) && text[i] == '-' {
		i++
	}
	point := -1 // digits before the point
	n := 0      // digits seen, including leading zeros
	lead := 0   // leading zeros
	for ; i < len(text); i++ {
		c := text[i]
		if c == '.' {
			point = n
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		n++
		if len(buf) == 0 && c == '0' {
			lead++
			continue
		}
		if len(buf) == cap(buf) {
			// Only zeros may follow beyond the buffer.
			if c != '0' {
				return nil, 0, false
			}
			continue
		}
		buf = append(buf, c)
	}
	if point < 0 {
		point = n
	}
	e := 0
	if i < len(text) && (text[i] == 'e' || text[i] == 'E') {
		i++
		neg := false
		if text[i] == '+' || text[i] == '-' {
			neg = text[i] == '-'
			i++
		}
		for ; i < len(text); i++ {
			e = e*10 + int(text[i]-'0')
			if e > 1_000_000 {
				return nil, 0, false
			}
		}
		if neg {
			e = -e
		}
	}
	for len(buf) > 0 && buf[len(buf)-1] == '0' {
		buf = buf[:len(buf)-1]
	}
	if len(buf) > 20 {
		return nil, 0, false
	}
	return buf, point - lead + e, true
}

// decodeInto decodes raw arguments into In for WrapJSONAs, and returns the
// call.args built from the decoded value (with plan, In's, when it has
// one). The JSON is checked strictly first, then decoded by encoding/json
// with unknown fields refused and numbers in interfaces kept as
// json.Number; a number that the decoded value holds other than exactly
// (rounded into a float field) is refused.
func decodeInto[In any](raw []byte, plan *argsPlan) (In, map[string]any, error) {
	var in In
	m, err := decodeArgs(raw, strictRaw)
	if err != nil {
		return in, nil, err
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		dec.UseNumber()
		if err := dec.Decode(&in); err != nil {
			// The reason names the field and the types, never the value
			// (encoding/json's message quotes numbers).
			msg := fmt.Sprintf("they do not fit the tool's input type %v", reflect.TypeFor[In]())
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				kind, _, _ := strings.Cut(te.Value, " ")
				field := "args"
				if te.Field != "" {
					field += "." + te.Field
				}
				msg += fmt.Sprintf(": %s is a JSON %s where the tool takes %v", cutText(field, 256), kind, te.Type)
			} else {
				msg += " (a field it does not have, or a value it refuses)"
			}
			return in, nil, &argsError{msg: msg, err: err}
		}
	}
	args, err := toArgs(in, plan)
	if err != nil {
		return in, nil, err
	}
	d := argsDecoder{}
	if !d.sameNumbers(m, args) {
		return in, nil, &argsError{msg: fmt.Sprintf("a number at %s does not fit the tool's input type %v exactly, so it would be rounded", d.where(), reflect.TypeFor[In]())}
	}
	return in, args, nil
}

// sameNumbers reports whether every number in raw (the JSON as sent) that
// has a counterpart in view (the decoded value's call.args, its keys
// matched as encoding/json matches them) is equal to it exactly. On false,
// d.path is where they differ.
func (d *argsDecoder) sameNumbers(raw, view any) bool {
	switch r := raw.(type) {
	case map[string]any:
		v, ok := view.(map[string]any)
		if !ok {
			return true
		}
		for k, rv := range r {
			vv, ok := v[k]
			if !ok {
				for vk, x := range v {
					if strings.EqualFold(vk, k) {
						vv, ok = x, true
						break
					}
				}
			}
			if !ok {
				continue
			}
			d.path = append(d.path, pathElem{key: k, idx: -1})
			if !d.sameNumbers(rv, vv) {
				return false
			}
			d.path = d.path[:len(d.path)-1]
		}
	case []any:
		v, ok := view.([]any)
		if !ok {
			return true
		}
		for i := range min(len(r), len(v)) {
			d.path = append(d.path, pathElem{idx: i})
			if !d.sameNumbers(r[i], v[i]) {
				return false
			}
			d.path = d.path[:len(d.path)-1]
		}
	case int64, uint64, float64:
		switch view.(type) {
		case int64, uint64, float64:
			return numEqual(r, view)
		}
	}
	return true
}

// numEqual reports whether two numbers of call.args (int64, uint64,
// float64) are equal exactly.
func numEqual(a, b any) bool {
	switch x := a.(type) {
	case int64:
		switch y := b.(type) {
		case int64:
			return x == y
		case uint64:
			return x >= 0 && uint64(x) == y
		case float64:
			return y >= -(1<<63) && y < 1<<63 && y == math.Trunc(y) && int64(y) == x
		}
	case uint64:
		switch y := b.(type) {
		case uint64:
			return x == y
		case float64:
			return y >= 0 && y < 1<<64 && y == math.Trunc(y) && uint64(y) == x
		default:
			return numEqual(b, a)
		}
	case float64:
		if y, ok := b.(float64); ok {
			return x == y
		}
		return numEqual(b, a)
	}
	return false
}

// checkFolded checks a map of arguments that a framework decoded from
// JSON (Check or Wrap with a map[string]any): no object in it, at any
// depth, may have two keys equal under simple case folding, since a tool
// that turns the map into a struct through encoding/json reads either
// one; nesting is bounded as for raw JSON. It allocates nothing for a map
// that passes, unless an object in it has more than 32 keys. numbers
// reports whether the map holds a json.Number (a framework's decoder with
// UseNumber, or WrapJSONAs), which the policy cannot compare: see
// exactCopy.
func checkFolded(m map[string]any) (numbers bool, err error) {
	d := argsDecoder{}
	d.folded(m, 0)
	return d.numbers, d.finish()
}

// exactCopy returns v with every json.Number in it read as decodeArgs
// reads a number: an int64, a uint64 or a float64, exactly, or an error
// naming where. It copies the maps and slices on the way, so that the
// caller's map keeps its own values.
func exactCopy(v any) (any, error) {
	d := argsDecoder{}
	out := d.exact(v)
	return out, d.finish()
}

func (d *argsDecoder) exact(v any) any {
	switch v := v.(type) {
	case json.Number:
		n, err := decodeValue([]byte(v), strictRaw)
		switch n.(type) {
		case int64, uint64, float64:
			if err == nil {
				return n
			}
		}
		d.fail("a number at %s is not one that a 64-bit integer or a double holds exactly", here)
		return nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = d.exact(e)
			if d.err != nil {
				d.at(pathElem{key: k, idx: -1})
				return nil
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = d.exact(e)
			if d.err != nil {
				d.at(pathElem{idx: i})
				return nil
			}
		}
		return out
	}
	return v
}

func (d *argsDecoder) folded(v any, depth int) {
	switch v := v.(type) {
	case map[string]any:
		if depth >= maxArgsDepth {
			d.fail("nested more than %d levels deep at %s", maxArgsDepth, here)
			return
		}
		if len(v) > 1 && len(v) <= 32 {
			var arr [32]string
			keys := arr[:0]
			for k := range v {
				for _, prev := range keys {
					if strings.EqualFold(prev, k) {
						d.duplicate(min(prev, k), max(prev, k)) // the same message on every run
						return
					}
				}
				keys = append(keys, k)
			}
		} else if len(v) > 32 {
			seen := make(map[string]string, len(v))
			d.mode = strictRaw
			for k := range v {
				fk := d.foldKey(k)
				if prev, ok := seen[fk]; ok {
					d.duplicate(min(prev, k), max(prev, k))
					return
				}
				seen[fk] = k
			}
		}
		for k, e := range v {
			switch e.(type) {
			case json.Number:
				d.numbers = true
			case map[string]any, []any:
				d.folded(e, depth+1)
				if d.err != nil {
					d.at(pathElem{key: k, idx: -1})
					return
				}
			}
		}
	case []any:
		if depth >= maxArgsDepth {
			d.fail("nested more than %d levels deep at %s", maxArgsDepth, here)
			return
		}
		for i, e := range v {
			switch e.(type) {
			case json.Number:
				d.numbers = true
			case map[string]any, []any:
				d.folded(e, depth+1)
				if d.err != nil {
					d.at(pathElem{idx: i})
					return
				}
			}
		}
	}
}

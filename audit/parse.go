package audit

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// ParseRecord parses one line of the log (without its newline), of any
// version of FORMAT.md: a line that starts with {"seq": is of version 1,
// one that starts with {"time": of version 2, one that starts with
// {"log": of version 3. It is strict: the line must be exactly what
// AppendJSON writes for the record it holds (for a line of version 1 or
// 2, what that version wrote), so keys in another
// order, unknown or duplicate keys, other escapes, spaces, or numbers in
// another form are errors. Errors wrap ErrSyntax.
func ParseRecord(line []byte) (*Record, error) {
	r := &Record{}
	if err := parseRecord(line, r, nil); err != nil {
		return nil, err
	}
	return r, nil
}

// parseState is what a reader of many lines keeps between them: the
// buffer of the re-encoding, the strings seen (log IDs, kinds, tools and
// keys repeat from line to line), and the last args map, for reuse.
type parseState struct {
	scratch []byte
	intern  map[string]string
	args    map[string]any
}

// parser reads the canonical form of a record. It reads what AppendJSON
// writes and little else; whatever it accepts is then re-encoded and
// compared with the line, so only canonical lines pass.
type parser struct {
	b      []byte
	pos    int
	err    error
	intern map[string]string
}

func (p *parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: byte %d: %s", ErrSyntax, p.pos, fmt.Sprintf(format, args...))
	}
	p.pos = len(p.b)
}

// lit consumes s, or fails.
func (p *parser) lit(s string) {
	if p.err != nil {
		return
	}
	if !bytes.HasPrefix(p.b[p.pos:], []byte(s)) {
		p.fail("want %s", s)
		return
	}
	p.pos += len(s)
}

// key reports whether the next bytes are ,"name": and consumes them.
func (p *parser) key(name string) bool {
	if p.err != nil {
		return false
	}
	rest := p.b[p.pos:]
	if len(rest) < len(name)+4 || rest[0] != ',' || rest[1] != '"' ||
		string(rest[2:2+len(name)]) != name || rest[2+len(name)] != '"' || rest[3+len(name)] != ':' {
		return false
	}
	p.pos += len(name) + 4
	return true
}

func (p *parser) str() string {
	if p.err != nil {
		return ""
	}
	if p.pos >= len(p.b) || p.b[p.pos] != '"' {
		p.fail("want a string")
		return ""
	}
	p.pos++
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		if c == '"' {
			raw := p.b[start:p.pos]
			p.pos++
			if p.intern == nil || len(raw) > 64 {
				return string(raw)
			}
			if s, ok := p.intern[string(raw)]; ok {
				return s
			}
			s := string(raw)
			if len(p.intern) < 4096 {
				p.intern[s] = s
			}
			return s
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	buf := append([]byte(nil), p.b[start:p.pos]...)
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf)
		case c < 0x20:
			p.fail("control character in string")
			return ""
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		if p.pos+1 >= len(p.b) {
			break
		}
		e := p.b[p.pos+1]
		p.pos += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'u':
			r := p.hex4()
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if bytes.HasPrefix(p.b[p.pos:], []byte(`\u`)) {
					p.pos += 2
					r2 = p.hex4()
				}
				r = utf16.DecodeRune(r, r2)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			p.fail("bad escape")
			return ""
		}
	}
	p.fail("unterminated string")
	return ""
}

func (p *parser) hex4() rune {
	if p.pos+4 > len(p.b) {
		p.fail("short \\u escape")
		return 0
	}
	n, err := strconv.ParseUint(string(p.b[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		p.fail("bad \\u escape")
		return 0
	}
	p.pos += 4
	return rune(n)
}

// number consumes a JSON number and returns its text.
func (p *parser) number() []byte {
	start := p.pos
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		if '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.pos++
			continue
		}
		break
	}
	if p.pos == start {
		p.fail("want a number")
	}
	return p.b[start:p.pos]
}

func (p *parser) int64() int64 {
	t := p.number()
	if p.err != nil {
		return 0
	}
	n, err := strconv.ParseInt(string(t), 10, 64)
	if err != nil {
		p.fail("want an integer")
	}
	return n
}

func (p *parser) uint64() uint64 {
	t := p.number()
	if p.err != nil {
		return 0
	}
	n, err := strconv.ParseUint(string(t), 10, 64)
	if err != nil {
		p.fail("want an unsigned integer")
	}
	return n
}

// value reads any JSON value as a JSON-like Go value.
func (p *parser) value(depth int) any {
	if p.err != nil {
		return nil
	}
	if depth > maxDepth {
		p.fail("nested too deeply")
		return nil
	}
	if p.pos >= len(p.b) {
		p.fail("want a value")
		return nil
	}
	switch c := p.b[p.pos]; {
	case c == '"':
		return p.str()
	case c == '{':
		return p.object(nil, depth)
	case c == '[':
		p.pos++
		a := []any{}
		if p.pos < len(p.b) && p.b[p.pos] == ']' {
			p.pos++
			return a
		}
		for p.err == nil {
			a = append(a, p.value(depth+1))
			if p.pos < len(p.b) && p.b[p.pos] == ',' {
				p.pos++
				continue
			}
			p.lit("]")
			break
		}
		return a
	case c == 't':
		p.lit("true")
		return true
	case c == 'f':
		p.lit("false")
		return false
	case c == 'n':
		p.lit("null")
		return nil
	}
	return p.num()
}

// object reads a JSON object into m (a new map when m is nil).
func (p *parser) object(m map[string]any, depth int) map[string]any {
	if p.err != nil {
		return nil
	}
	if p.pos >= len(p.b) || p.b[p.pos] != '{' {
		p.fail("want an object")
		return nil
	}
	p.pos++
	if m == nil {
		m = map[string]any{}
	}
	if p.pos < len(p.b) && p.b[p.pos] == '}' {
		p.pos++
		return m
	}
	for p.err == nil {
		k := p.str()
		p.lit(":")
		m[k] = p.value(depth + 1)
		if p.pos < len(p.b) && p.b[p.pos] == ',' {
			p.pos++
			continue
		}
		p.lit("}")
		break
	}
	return m
}

// num reads a number of args: an int64 when it is an integer that fits,
// a uint64 when it is a larger integer that fits, a float64 otherwise.
func (p *parser) num() any {
	t := p.number()
	if p.err != nil {
		return nil
	}
	if n, err := strconv.ParseInt(string(t), 10, 64); err == nil {
		return n
	}
	if n, err := strconv.ParseUint(string(t), 10, 64); err == nil {
		return n
	}
	f, err := strconv.ParseFloat(string(t), 64)
	if err != nil {
		p.fail("bad number %q", t)
		return nil
	}
	return f
}

func (p *parser) costs() []Cost {
	p.lit("[")
	var cs []Cost
	for p.err == nil {
		var c Cost
		p.lit(`{"unit":`)
		c.Unit = p.str()
		p.lit(`,"micros":`)
		c.Micros = p.int64()
		p.lit("}")
		cs = append(cs, c)
		if p.pos < len(p.b) && p.b[p.pos] == ',' {
			p.pos++
			continue
		}
		p.lit("]")
		break
	}
	return cs
}

// parseRecord parses line into r (which it resets) and checks that the
// line is canonical. st, when not nil, carries state between lines; r then
// reuses st's args map, so r must not be kept past the next call.
func parseRecord(line []byte, r *Record, st *parseState) error {
	p := &parser{b: line}
	*r = Record{}
	var reuse map[string]any
	if st != nil {
		if st.intern == nil {
			st.intern = map[string]string{}
		}
		p.intern = st.intern
		reuse = st.args
	}
	// Version 1 starts with seq; version 2 with time and has seq just
	// before prev; version 3 starts with log, has time after policy and
	// seq just before prev.
	v1 := bytes.HasPrefix(line, []byte(`{"seq":`))
	v3 := bytes.HasPrefix(line, []byte(`{"log":`))
	switch {
	case v1:
		p.pos = len(`{"seq":`)
		r.Seq = p.uint64()
		p.lit(`,"time":"`)
		p.time(r)
		p.lit(`,"log":`)
	case v3:
		p.pos = len(`{"log":`)
	default:
		p.lit(`{"time":"`)
		p.time(r)
		p.lit(`,"log":`)
	}
	r.Log = p.str()
	p.lit(`,"kind":`)
	r.Kind = Kind(p.str())
	if p.err == nil && r.Kind == "" {
		p.fail("empty kind")
	}
	if v3 {
		p.who(r)
		p.labels(r)
		p.strField("policy", &r.PolicyVersion)
		p.verdict(r)
		p.costsField("estimate", &r.Estimate)
		p.strField("outcome", &r.Outcome)
		p.costsField("actual", &r.Actual)
		p.lit(`,"time":"`)
		p.time(r)
		p.strField("call", &r.Call)
		p.args(r, st, reuse)
		p.shadow(r)
		p.approval(r)
	} else {
		p.strField("call", &r.Call)
		p.who(r)
		p.args(r, st, reuse)
		p.labels(r)
		p.verdict(r)
		p.shadow(r)
		p.strField("policy", &r.PolicyVersion)
		p.approval(r)
		p.costsField("estimate", &r.Estimate)
		p.costsField("actual", &r.Actual)
		p.strField("outcome", &r.Outcome)
	}
	p.strField("error", &r.Error)
	p.end(r)
	if !v1 {
		p.lit(seqKey)
		r.Seq = p.uint64()
	}
	p.lit(`,"prev":"`)
	if p.err == nil {
		if p.pos+66 != len(line) || line[p.pos+64] != '"' || line[p.pos+65] != '}' {
			p.fail("prev: want 64 lowercase hex digits and the end of the record")
		} else {
			for _, c := range line[p.pos : p.pos+64] {
				if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
					p.fail("prev: want 64 lowercase hex digits")
					break
				}
			}
		}
	}
	if p.err != nil {
		return p.err
	}
	hex.Decode(r.Prev[:], line[p.pos:p.pos+64])
	// The line must be the canonical encoding of what it holds.
	var buf []byte
	if st != nil {
		buf = st.scratch[:0]
	}
	var err error
	switch {
	case v1:
		buf, err = r.appendJSONV1(buf)
	case v3:
		buf, err = r.AppendJSON(buf)
	default:
		buf, err = r.appendJSONV2(buf)
	}
	if st != nil {
		st.scratch = buf
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if !bytes.Equal(buf, line) {
		return fmt.Errorf("%w: not in canonical form at byte %d", ErrSyntax, mismatch(buf, line))
	}
	return nil
}

func mismatch(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// strField reads the string of the key name into *dst when the key is
// next.
func (p *parser) strField(name string, dst *string) {
	if p.key(name) {
		*dst = p.str()
	}
}

// costsField reads the costs of the key name into *dst when the key is
// next.
func (p *parser) costsField(name string, dst *[]Cost) {
	if p.key(name) {
		*dst = p.costs()
	}
}

// time reads the digits of a record's time and its closing quote.
func (p *parser) time(r *Record) {
	if p.err != nil {
		return
	}
	line := p.b
	end := p.pos + len(timeLayout)
	t, ok := time.Time{}, false
	if end < len(line) && line[end] == '"' {
		t, ok = parseTime(line[p.pos:end])
	}
	if !ok {
		p.fail("time: want %s", timeLayout)
		return
	}
	r.Time = t
	p.pos = end + 1
}

// who reads the principal, env and tool keys that are there.
func (p *parser) who(r *Record) {
	if p.key("principal") {
		p.lit("{")
		first := true
		field := func(name string, dst *string) {
			if first {
				if bytes.HasPrefix(p.b[p.pos:], []byte(`"`+name+`":`)) {
					p.pos += len(name) + 3
					*dst = p.str()
					first = false
				}
				return
			}
			if p.key(name) {
				*dst = p.str()
			}
		}
		field("agent", &r.Principal.Agent)
		field("requester", &r.Principal.Requester)
		field("tenant", &r.Principal.Tenant)
		field("session", &r.Principal.Session)
		p.lit("}")
	}
	if p.key("env") {
		r.Env = p.str()
	}
	if p.key("tool") {
		r.Tool = p.str()
	}
}

// args reads the args key when it is there, into reuse when not nil.
func (p *parser) args(r *Record, st *parseState, reuse map[string]any) {
	if !p.key("args") {
		return
	}
	if reuse != nil {
		clear(reuse)
	}
	r.Args = p.object(reuse, 0)
	if st != nil && r.Args != nil {
		st.args = r.Args
	}
}

// labels reads the labels key when it is there.
func (p *parser) labels(r *Record) {
	if !p.key("labels") {
		return
	}
	m := p.object(nil, 0)
	r.Labels = make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s, ok := m[k].(string)
		if !ok {
			p.fail("label %q is not a string", k)
		}
		r.Labels[k] = s
	}
}

// verdict reads the keys from decision to reason that are there.
func (p *parser) verdict(r *Record) {
	if p.key("decision") {
		r.Decision = p.str()
	}
	if p.key("code") {
		r.Code = p.str()
	}
	if p.key("stage") {
		r.Stage = p.str()
	}
	if p.key("rule") {
		r.Rule = p.str()
	}
	if p.key("reason") {
		r.Reason = p.str()
	}
}

// shadow reads the shadow key when it is there.
func (p *parser) shadow(r *Record) {
	if !p.key("shadow") {
		return
	}
	p.lit("[")
	for p.err == nil {
		var s Shadow
		p.lit(`{"rule":`)
		s.Rule = p.str()
		p.lit(`,"effect":`)
		s.Effect = p.str()
		if p.key("reason") {
			s.Reason = p.str()
		}
		p.lit("}")
		r.Shadow = append(r.Shadow, s)
		if p.pos < len(p.b) && p.b[p.pos] == ',' {
			p.pos++
			continue
		}
		p.lit("]")
		break
	}
}

// approval reads the approver, grant and note keys that are there.
func (p *parser) approval(r *Record) {
	if p.key("approver") {
		r.Approver = p.str()
	}
	if p.key("grant") {
		r.Grant = p.str()
	}
	if p.key("note") {
		r.Note = p.str()
	}
}

// end reads the keys from duration_ns to checkpoint that are there.
func (p *parser) end(r *Record) {
	if p.key("duration_ns") {
		r.Duration = time.Duration(p.int64())
	}
	if p.key("control") {
		c := &Control{}
		p.lit(`{"scope":`)
		c.Scope = p.str()
		p.lit(`,"who":`)
		c.Who = p.str()
		p.lit(`,"why":`)
		c.Why = p.str()
		p.lit("}")
		r.Control = c
	}
	if p.key("checkpoint") {
		r.Checkpoint = p.str()
	}
}

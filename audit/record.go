package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Hash is the SHA-256 of one line of the log, without its newline.
type Hash [32]byte

// String returns the lowercase hex form of h, as written in prev.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses the lowercase hex form of a Hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("audit: hash %q: want 64 lowercase hex digits", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return h, fmt.Errorf("audit: hash %q: want 64 lowercase hex digits", s)
		}
	}
	hex.Decode(h[:], []byte(s))
	return h, nil
}

// HashLine returns the hash of one line of the log; line must not include
// its newline.
func HashLine(line []byte) Hash { return sha256.Sum256(line) }

// Kind says what a Record records.
type Kind string

// The record kinds. Records of the root package's events use the event's
// kind; KindCheckpoint records are written by the Log itself.
const (
	KindDecision   Kind = "decision"
	KindResult     Kind = "result"
	KindApproval   Kind = "approval"
	KindGrant      Kind = "grant"
	KindHalt       Kind = "halt"
	KindResume     Kind = "resume"
	KindHook       Kind = "hook"
	KindCheckpoint Kind = "checkpoint"
)

// Principal is who a call was made for.
type Principal struct {
	Agent     string
	Requester string
	Tenant    string
	Session   string
}

// Shadow is a shadow rule that matched: what it would have decided.
type Shadow struct {
	Rule   string
	Effect string
	Reason string
}

// Cost is an amount of a unit in millionths (micro-units).
type Cost struct {
	Unit   string
	Micros int64
}

// Control is a kill-switch action: its scope, who did it, why.
type Control struct {
	Scope string
	Who   string
	Why   string
}

// Record is one line of the audit log. Seq, Time, Log and Prev are assigned
// by Log.Append; the other fields are what the caller records. Fields that
// do not apply to a kind are left zero and are not written.
//
// The line is written in a fixed key order, described in FORMAT.md and the
// package documentation.
type Record struct {
	Seq  uint64    // position in the log, from 0, without gaps
	Time time.Time // when the record was appended (the Log's clock as Append began, unless the caller set Time: the guard gives its calls' own times), UTC, nanoseconds
	Log  string    // the log's ID
	Kind Kind

	Call      string // the call's ID
	Principal Principal
	Env       string
	Tool      string
	// Args are the call's arguments as JSON-like values (nil, bool,
	// float64, int64, uint64, string, []any, map[string]any), after
	// redaction. Integers are written exactly.
	Args map[string]any
	// Reader, when Args is nil, gives the arguments without a map (see
	// ArgReader): the record is redacted and written as with Args set to
	// Reader.Args(). Append sets Args when the arguments need redaction.
	Reader ArgReader
	Labels map[string]string

	Decision      string // "allow", "deny" or "approve"
	Code          string // a denial's code
	Stage         string // where a denial stopped the call
	Rule          string
	Reason        string
	Shadow        []Shadow
	PolicyVersion string

	Approver string
	Grant    string
	Note     string

	Estimate []Cost
	Actual   []Cost

	Outcome  string
	Error    string // redacted error text
	Duration time.Duration

	Control *Control

	// Checkpoint is the signed note of a KindCheckpoint record.
	Checkpoint string

	Prev Hash // the hash of the previous line; zero for seq 0

	// Plan, when set, is the tool's plan made by the log's Redactor
	// (Redactor.Plan): it makes redacting and encoding the record
	// cheaper and never changes its line. It is not written.
	Plan *Plan
}

// Errors of the record format.
var (
	// ErrSyntax is wrapped by every error of ParseRecord.
	ErrSyntax = errors.New("audit: malformed record")
)

const timeLayout = "2006-01-02T15:04:05.000000000Z"

// AppendJSON appends the line of r, without its newline, to b, in the
// format the Log writes (version 3 of FORMAT.md: the keys that a tool's
// calls share first, then time, then the rest, seq just before prev).
// It fails only for an argument value that has no JSON form (a NaN, a
// channel).
func (r *Record) AppendJSON(b []byte) ([]byte, error) {
	b = r.appendHead3(b, r.Log)
	b, err := r.appendBody3(b, r.Time)
	if err != nil {
		return b, err
	}
	b = append(b, seqKey...)
	return appendTail(b, r.Seq, r.Prev), nil
}

// appendJSONV2 appends the line of r as version 2 of the format wrote it,
// time first and seq just before prev.
func (r *Record) appendJSONV2(b []byte) ([]byte, error) {
	b = appendHead(b, r.Time, r.Log)
	b, err := r.appendBody(b)
	if err != nil {
		return b, err
	}
	b = append(b, seqKey...)
	return appendTail(b, r.Seq, r.Prev), nil
}

// appendJSONV1 appends the line of r as version 1 of the format wrote it,
// seq first: {"seq":…,"time":"…","log":"…",<body>,"prev":"…"}.
func (r *Record) appendJSONV1(b []byte) ([]byte, error) {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"time":"`...)
	b = appendTime(b, r.Time)
	b = append(b, `","log":`...)
	b = appendString(b, r.Log)
	b, err := r.appendBody(b)
	if err != nil {
		return b, err
	}
	return appendPrev(b, r.Prev), nil
}

// A line of version 3 (as one of version 2) is its prefix, up to and
// including ,"seq":, which depends on the record, its time and the log's
// ID alone, and its tail, the seq's digits and ,"prev":"…"}, which depend
// on its place in the chain. The Log encodes the prefix and hashes it
// before it takes its lock; under the lock it appends the tail and
// finishes the hash. In version 3 the prefix starts with its head
// (appendHead3), which the records of a tool's calls share: the Log keeps
// the SHA-256 state after a head and starts the next line with the same
// head from there.

// seqKey ends the prefix of a line.
const seqKey = `,"seq":`

// maxTail is the length of the longest tail: 20 digits and the prev.
const maxTail = 20 + len(`,"prev":"`) + 2*len(Hash{}) + len(`"}`)

// appendHead appends the start of a line: {"time":"…","log":"…".
func appendHead(b []byte, t time.Time, log string) []byte {
	b = append(b, `{"time":"`...)
	b = appendTime(b, t)
	b = append(b, `","log":`...)
	return appendString(b, log)
}

// appendTail appends the end of a line after its prefix: the digits of
// seq and ,"prev":"…"}.
func appendTail(b []byte, seq uint64, prev Hash) []byte {
	b = strconv.AppendUint(b, seq, 10)
	return appendPrev(b, prev)
}

// appendPrev appends ,"prev":"…"}. It runs under the log's lock: the hex
// digits go two at a time.
func appendPrev(b []byte, prev Hash) []byte {
	const key = `,"prev":"`
	var a [len(key) + 2*len(prev) + len(`"}`)]byte
	copy(a[:], key)
	for i, v := range prev {
		*(*[2]byte)(a[len(key)+2*i:]) = hexPairs[v]
	}
	a[len(a)-2], a[len(a)-1] = '"', '}'
	return append(b, a[:]...)
}

// hexPairs holds the two lowercase hex digits of each byte.
var hexPairs = func() (t [256][2]byte) {
	for i := range t {
		t[i] = [2]byte{hexDigits[i>>4], hexDigits[i&0xf]}
	}
	return t
}()

// appendBody appends the body of r's line in versions 1 and 2, from
// ,"kind" up to the last key before seq (version 2) or prev (version 1):
// everything that does not depend on the log's state (seq, time, log ID
// and prev are not read). It is a pure function of r (and of r.Plan's
// encodings, which never change the bytes), so it can run outside the
// log's lock. On an error b may hold part of the body.
func (r *Record) appendBody(b []byte) ([]byte, error) {
	b = r.appendKind(b)
	b = appendField(b, `,"call":`, r.Call)
	b = r.appendWho(b)
	b, err := r.appendArgs(b)
	if err != nil {
		return b, err
	}
	b = r.appendLabelsField(b)
	b = r.appendVerdict(b)
	b = r.appendShadow(b)
	b = appendField(b, `,"policy":`, r.PolicyVersion)
	return r.appendRest(b), nil
}

// appendHead3 appends the head of r's line in version 3, in the log of
// the ID log: {"log":…,"kind":…, then principal, env, tool, labels,
// policy, decision, code, stage, rule, reason, estimate, outcome and
// actual.
// These are the keys that a tool's calls by one principal mostly share,
// so that the head of one call's record is the head of the next one's,
// and the Log hashes it once (see midCache).
func (r *Record) appendHead3(b []byte, log string) []byte {
	b = append(b, `{"log":`...)
	b = appendString(b, log)
	b = r.appendKind(b)
	b = r.appendWho(b)
	b = r.appendLabelsField(b)
	b = appendField(b, `,"policy":`, r.PolicyVersion)
	b = r.appendVerdict(b)
	b = appendCosts(b, `,"estimate":[`, r.Estimate)
	b = appendField(b, `,"outcome":`, r.Outcome)
	return appendCosts(b, `,"actual":[`, r.Actual)
}

// appendBody3 appends the rest of r's line in version 3 after its head,
// at time t, up to the last key before seq: time, call, args, shadow,
// approver, grant, note, error, duration_ns, control and checkpoint. On
// an error b may hold part of it.
func (r *Record) appendBody3(b []byte, t time.Time) ([]byte, error) {
	b = append(b, `,"time":"`...)
	b = appendTime(b, t)
	b = append(b, '"')
	b = appendField(b, `,"call":`, r.Call)
	b, err := r.appendArgs(b)
	if err != nil {
		return b, err
	}
	b = r.appendShadow(b)
	b = appendField(b, `,"approver":`, r.Approver)
	b = appendField(b, `,"grant":`, r.Grant)
	b = appendField(b, `,"note":`, r.Note)
	b = appendField(b, `,"error":`, r.Error)
	return r.appendEnd(b), nil
}

// appendKind appends ,"kind":….
func (r *Record) appendKind(b []byte) []byte {
	switch r.Kind {
	case KindDecision:
		return append(b, `,"kind":"decision"`...)
	case KindResult:
		return append(b, `,"kind":"result"`...)
	}
	b = append(b, `,"kind":`...)
	return appendString(b, string(r.Kind))
}

// appendWho appends the principal, env and tool keys that are set.
func (r *Record) appendWho(b []byte) []byte {
	pl := r.Plan
	if r.Principal != (Principal{}) {
		if pl != nil {
			b = pl.appendPrincipal(b, r.Principal)
		} else {
			b = appendPrincipal(b, r.Principal)
		}
	}
	done := false
	if pl != nil {
		b, done = pl.appendEnvTool(b, r.Env, r.Tool)
	}
	if !done {
		b = appendField(b, `,"env":`, r.Env)
		b = appendField(b, `,"tool":`, r.Tool)
	}
	return b
}

// appendArgs appends ,"args":{…} when r has arguments.
func (r *Record) appendArgs(b []byte) ([]byte, error) {
	var args ArgReader
	switch {
	case r.Args != nil:
		args = mapArgs(r.Args)
	case r.Reader != nil:
		args = r.Reader
	}
	if args == nil || args.Len() == 0 {
		return b, nil
	}
	if pl := r.Plan; pl != nil {
		if b, done := pl.appendArgs(b, args); done {
			return b, nil
		}
	}
	b = append(b, `,"args":`...)
	return appendValue(b, args.Args(), 0)
}

// appendLabelsField appends ,"labels":{…} when r has labels.
func (r *Record) appendLabelsField(b []byte) []byte {
	if len(r.Labels) == 0 {
		return b
	}
	if pl := r.Plan; pl != nil && pl.sameLabels(r.Labels) {
		return append(b, pl.labels...)
	}
	return appendLabels(b, r.Labels)
}

// appendVerdict appends the keys from decision to reason that are set.
func (r *Record) appendVerdict(b []byte) []byte {
	b = appendField(b, `,"decision":`, r.Decision)
	b = appendField(b, `,"code":`, r.Code)
	b = appendField(b, `,"stage":`, r.Stage)
	b = appendField(b, `,"rule":`, r.Rule)
	return appendField(b, `,"reason":`, r.Reason)
}

// appendShadow appends ,"shadow":[…] when r has shadow matches.
func (r *Record) appendShadow(b []byte) []byte {
	if len(r.Shadow) == 0 {
		return b
	}
	b = append(b, `,"shadow":[`...)
	for i, s := range r.Shadow {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"rule":`...)
		b = appendString(b, s.Rule)
		b = append(b, `,"effect":`...)
		b = appendString(b, s.Effect)
		b = appendField(b, `,"reason":`, s.Reason)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendRest appends, in versions 1 and 2, the keys from approver to
// checkpoint that are set.
func (r *Record) appendRest(b []byte) []byte {
	b = appendField(b, `,"approver":`, r.Approver)
	b = appendField(b, `,"grant":`, r.Grant)
	b = appendField(b, `,"note":`, r.Note)
	b = appendCosts(b, `,"estimate":[`, r.Estimate)
	b = appendCosts(b, `,"actual":[`, r.Actual)
	b = appendField(b, `,"outcome":`, r.Outcome)
	b = appendField(b, `,"error":`, r.Error)
	return r.appendEnd(b)
}

// appendEnd appends the keys from duration_ns to checkpoint that are set.
func (r *Record) appendEnd(b []byte) []byte {
	if r.Duration != 0 {
		b = append(b, `,"duration_ns":`...)
		b = strconv.AppendInt(b, int64(r.Duration), 10)
	}
	if r.Control != nil {
		b = append(b, `,"control":{"scope":`...)
		b = appendString(b, r.Control.Scope)
		b = append(b, `,"who":`...)
		b = appendString(b, r.Control.Who)
		b = append(b, `,"why":`...)
		b = appendString(b, r.Control.Why)
		b = append(b, '}')
	}
	return appendField(b, `,"checkpoint":`, r.Checkpoint)
}

// appendPrincipal appends ,"principal":{…} for a principal that is not
// zero.
func appendPrincipal(b []byte, p Principal) []byte {
	b = append(b, `,"principal":{`...)
	n := len(b)
	b = appendField(b, `,"agent":`, p.Agent)
	b = appendField(b, `,"requester":`, p.Requester)
	b = appendField(b, `,"tenant":`, p.Tenant)
	b = appendField(b, `,"session":`, p.Session)
	b = fixComma(b, n)
	return append(b, '}')
}

// appendLabels appends ,"labels":{…} for labels that are not empty,
// keys sorted.
func appendLabels(b []byte, labels map[string]string) []byte {
	b = append(b, `,"labels":{`...)
	var arr [16]string
	keys := arr[:0]
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, labels[k])
	}
	return append(b, '}')
}

// fixComma removes the comma that appendField put after the opening
// brace at b[n-1], if any.
func fixComma(b []byte, n int) []byte {
	if len(b) > n && b[n] == ',' {
		copy(b[n:], b[n+1:])
		b = b[:len(b)-1]
	}
	return b
}

// appendField appends key (the encoded ,"name": of a field) and v, unless
// v is empty.
func appendField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, key...)
	return appendString(b, v)
}

// appendCosts appends key (the encoded ,"name":[ of the field) and the
// costs cs, unless there are none.
func appendCosts(b []byte, key string, cs []Cost) []byte {
	if len(cs) == 0 {
		return b
	}
	b = append(b, key...)
	for i, c := range cs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"unit":`...)
		b = appendString(b, c.Unit)
		b = append(b, `,"micros":`...)
		b = strconv.AppendInt(b, c.Micros, 10)
		b = append(b, '}')
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string: each invalid UTF-8 byte becomes
// U+FFFD; control characters, '"', '\\', U+2028 and U+2029 are escaped;
// nothing else is. Runs of plain ASCII are skipped eight bytes at a time.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && !special8(load64(s[i:i+8])) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// load64 returns the eight bytes of s (len(s) == 8) as a little-endian
// word; the compiler makes it one load.
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// special8 reports whether one of the eight bytes in x is not plain
// ASCII that a JSON string keeps as it is: below 0x20, '"', '\\', or
// 0x80 and above.
func special8(x uint64) bool {
	q := x ^ (lsb8 * '"')
	bs := x ^ (lsb8 * '\\')
	return ((x-lsb8*0x20)&^x|(q-lsb8)&^q|(bs-lsb8)&^bs|x)&msb8 != 0
}

const maxDepth = 64

// appendValue appends a JSON-like value. Map keys are sorted; integers
// (of any Go integer type, up to uint64) are written exactly; other
// numbers as encoding/json writes float64.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return b, errors.New("audit: argument nested too deeply")
	}
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		return appendString(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case float32:
		return appendFloat(b, float64(v))
	case float64:
		return appendFloat(b, v)
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return strconv.AppendInt(b, i, 10), nil
		}
		if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return strconv.AppendUint(b, u, 10), nil
		}
		f, err := v.Float64()
		if err != nil {
			return b, fmt.Errorf("audit: argument: bad number %q", string(v))
		}
		return appendFloat(b, f)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case []string:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, e)
		}
		return append(b, ']'), nil
	case map[string]any:
		var arr [16]string
		keys := arr[:0]
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, v[k], depth+1); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case map[string]string:
		m := make(map[string]any, len(v))
		for k, s := range v {
			m[k] = s
		}
		return appendValue(b, m, depth)
	}
	// Anything else goes through its JSON form, normalised.
	data, err := json.Marshal(v)
	if err != nil {
		return b, fmt.Errorf("audit: argument of type %T: %v", v, err)
	}
	var norm any
	if err := unmarshalNumber(data, &norm); err != nil {
		return b, fmt.Errorf("audit: argument of type %T: %v", v, err)
	}
	return appendValue(b, norm, depth)
}

// appendFloat writes f as an integer when it is one (and fits in int64),
// otherwise as encoding/json does.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fmt.Errorf("audit: argument: unsupported number %v", f)
	}
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		return strconv.AppendInt(b, int64(f), 10), nil
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

func unmarshalNumber(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

// appendTime appends t in the record time format,
// 2006-01-02T15:04:05.000000000Z, in UTC.
func appendTime(b []byte, t time.Time) []byte {
	sec := t.Unix()
	if sec < 0 || sec >= maxFastTime {
		return appendTimeSlow(b, t)
	}
	// Days to a civil date: Howard Hinnant's days_from_civil inverted,
	// for dates from 1970 on (so no negative eras).
	days, rem := sec/86400, int(sec%86400)
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day := int(doy - (153*mp+2)/5 + 1)
	month := int(mp + 3)
	if mp >= 10 {
		month = int(mp - 9)
	}
	year := int(yoe + era*400)
	if month <= 2 {
		year++
	}
	var a [len(timeLayout)]byte
	put2 := func(at, v int) {
		a[at], a[at+1] = digitPairs[2*v], digitPairs[2*v+1]
	}
	put2(0, year/100)
	put2(2, year%100)
	a[4] = '-'
	put2(5, month)
	a[7] = '-'
	put2(8, day)
	a[10] = 'T'
	put2(11, rem/3600)
	a[13] = ':'
	put2(14, rem/60%60)
	a[16] = ':'
	put2(17, rem%60)
	a[19] = '.'
	ns := t.Nanosecond()
	put2(20, ns/10000000)
	put2(22, ns/100000%100)
	put2(24, ns/1000%100)
	put2(26, ns/10%100)
	a[28] = byte('0' + ns%10)
	a[29] = 'Z'
	return append(b, a[:]...)
}

// digitPairs holds the two decimal digits of 0 to 99 in turn.
const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// maxFastTime is 10000-01-01T00:00:00Z in Unix seconds: appendTime
// computes dates before it from the seconds, others with package time.
const maxFastTime = 253402300800

// appendTimeSlow is appendTime through package time, for any year.
func appendTimeSlow(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, timeLayout)
	}
	hour, min, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, min, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond(), 9)
	return append(b, 'Z')
}

func appendDigits(b []byte, v, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, 0)
	}
	for i := len(b) - 1; i >= len(b)-n; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}

// parseTime parses the record time format. It does not check ranges:
// callers compare the re-encoding with the input, which rejects any
// time that does not print back the same.
func parseTime(s []byte) (time.Time, bool) {
	if len(s) != len(timeLayout) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
		s[16] != ':' || s[19] != '.' || s[29] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range s[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	var f [7]int
	for i, spec := range [7][2]int{{0, 4}, {5, 2}, {8, 2}, {11, 2}, {14, 2}, {17, 2}, {20, 9}} {
		v, ok := num(spec[0], spec[1])
		if !ok {
			return time.Time{}, false
		}
		f[i] = v
	}
	return time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], f[6], time.UTC), true
}

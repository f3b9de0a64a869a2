package audit

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// The scanner is Verify's fast path. It accepts a line exactly when
// parseRecord does (the strict parser and the canonical re-encoding),
// in one pass over the line and without building a Record: it checks the
// canonical grammar of FORMAT.md byte by byte and keeps only what
// verification needs. TestScanMatchesStrict and FuzzScanMatchesStrict
// hold the two to the same answers.

// scanned is what the scanner keeps of a line; log and kind are slices
// of it.
type scanned struct {
	seq        uint64
	log        []byte // the log ID as written, without its quotes
	logAt      int    // where log is in the line
	kind       []byte // the kind as written, without its quotes
	prev       Hash
	checkpoint bool // the line has a checkpoint key
}

// scanner checks lines; its scratch buffers are reused from line to line.
type scanner struct {
	b    []byte
	pos  int
	keyA []byte // decoded keys, to compare keys that hold escapes
	keyB []byte
	num  []byte // a re-encoded number
}

// strPlain marks the bytes that stand for themselves in a canonical
// string and need no further check: printable ASCII but '"' and '\\'.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// hexDigit is the value of each lowercase hex digit, and 0xff for the
// other bytes.
var hexDigit = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		default:
			t[c] = 0xff
		}
	}
	return t
}()

// numByte marks the bytes the strict parser takes into a number.
var numByte = func() (t [256]bool) {
	for _, c := range []byte("0123456789+-.eE") {
		t[c] = true
	}
	return t
}()

// scan reports whether line is a canonical record, and fills out.
func (s *scanner) scan(line []byte, out *scanned) bool {
	s.b, s.pos = line, 0
	*out = scanned{}
	// Version 1 starts with seq; version 2 with time and has seq just
	// before prev; version 3 starts with log, has time after policy and
	// seq just before prev.
	v1, v3 := s.lit(`{"seq":`), false
	switch {
	case v1:
		seq, ok := s.uint64()
		if !ok || !s.lit(`,"time":"`) {
			return false
		}
		out.seq = seq
	case s.lit(`{"log":`):
		v3 = true
	case !s.lit(`{"time":"`):
		return false
	}
	if !v3 && (!s.time() || !s.lit(`","log":`)) {
		return false
	}
	start, end, _, ok := s.str()
	if !ok || !s.lit(`,"kind":`) {
		return false
	}
	out.log, out.logAt = line[start:end], start
	if start, end, ok = s.text(); !ok {
		return false
	}
	out.kind = line[start:end]
	// The other keys, each at most once, in the order of the version.
	rank := &rankV2
	if v3 {
		rank = &rankV3
	}
	last, sawSeq, sawTime := -1, false, !v3
	for {
		rest := line[s.pos:]
		if len(rest) < 2 || rest[0] != ',' || rest[1] != '"' {
			return false
		}
		j := 2
		for j < len(rest) && rest[j] != '"' {
			j++
		}
		if j+1 >= len(rest) || rest[j+1] != ':' {
			return false
		}
		f := fieldOf(rest[2:j])
		if f < 0 || rank[f] <= last {
			return false
		}
		last = rank[f]
		s.pos += j + 2
		ok := true
		switch f {
		case fCall, fEnv, fTool, fDecision, fCode, fStage, fRule, fReason, fPolicy,
			fApprover, fGrant, fNote, fOutcome, fError:
			ok = s.field()
		case fPrincipal:
			ok = s.principal()
		case fArgs:
			ok = s.object(0, false)
		case fLabels:
			ok = s.object(0, true)
		case fShadow:
			ok = s.shadow()
		case fEstimate, fActual:
			ok = s.costs()
		case fDuration:
			t := s.number()
			ok = canonicalInt(t) && string(t) != "0"
		case fControl:
			ok = s.lit(`{"scope":`) && s.skipStr() && s.lit(`,"who":`) && s.skipStr() &&
				s.lit(`,"why":`) && s.skipStr() && s.is('}')
		case fCheckpoint:
			ok = s.field()
			out.checkpoint = true
		case fSeq:
			// In versions 2 and 3 only, and there always.
			var seq uint64
			seq, ok = s.uint64()
			ok = ok && !v1
			out.seq, sawSeq = seq, true
		case fTime:
			ok = s.is('"') && s.time() && s.is('"')
			sawTime = true
		case fPrev:
			if !v1 && !sawSeq || !sawTime {
				return false
			}
			// "<64 lowercase hex digits>"} and the end of the line.
			if s.pos+67 != len(line) || line[s.pos] != '"' || line[s.pos+65] != '"' || line[s.pos+66] != '}' {
				return false
			}
			h := line[s.pos+1 : s.pos+65]
			for i := range out.prev {
				hi, lo := hexDigit[h[2*i]], hexDigit[h[2*i+1]]
				if hi|lo > 0xf {
					return false
				}
				out.prev[i] = hi<<4 | lo
			}
			return true
		}
		if !ok {
			return false
		}
	}
}

// The keys after kind, in their order in versions 1 and 2 (seq only in
// version 2; time, which is before kind there, last). rankV3 orders them
// for version 3.
const (
	fCall = iota
	fPrincipal
	fEnv
	fTool
	fArgs
	fLabels
	fDecision
	fCode
	fStage
	fRule
	fReason
	fShadow
	fPolicy
	fApprover
	fGrant
	fNote
	fEstimate
	fActual
	fOutcome
	fError
	fDuration
	fControl
	fCheckpoint
	fSeq // version 2
	fPrev
	fTime // after kind in version 3 only
	nFields
)

// rankV2 and rankV3 are the places of the keys after kind in versions
// 1 and 2 and in version 3; -1 for a key that is not after kind.
var rankV2, rankV3 = func() (v2, v3 [nFields]int) {
	for f := range v2 {
		v2[f] = f
	}
	v2[fTime] = -1
	for i, f := range []int{fPrincipal, fEnv, fTool, fLabels, fPolicy,
		fDecision, fCode, fStage, fRule, fReason, fEstimate, fOutcome, fActual, fTime, fCall, fArgs,
		fShadow, fApprover, fGrant, fNote, fError, fDuration, fControl, fCheckpoint, fSeq, fPrev} {
		v3[f] = i
	}
	return v2, v3
}()

// fieldOf returns the place of a key after kind in the order of the
// keys, or -1.
func fieldOf(name []byte) int {
	switch string(name) {
	case "call":
		return fCall
	case "principal":
		return fPrincipal
	case "env":
		return fEnv
	case "tool":
		return fTool
	case "args":
		return fArgs
	case "labels":
		return fLabels
	case "decision":
		return fDecision
	case "code":
		return fCode
	case "stage":
		return fStage
	case "rule":
		return fRule
	case "reason":
		return fReason
	case "shadow":
		return fShadow
	case "policy":
		return fPolicy
	case "approver":
		return fApprover
	case "grant":
		return fGrant
	case "note":
		return fNote
	case "estimate":
		return fEstimate
	case "actual":
		return fActual
	case "outcome":
		return fOutcome
	case "error":
		return fError
	case "duration_ns":
		return fDuration
	case "control":
		return fControl
	case "checkpoint":
		return fCheckpoint
	case "seq":
		return fSeq
	case "prev":
		return fPrev
	case "time":
		return fTime
	}
	return -1
}

// lit consumes lit.
func (s *scanner) lit(lit string) bool {
	if !bytes.HasPrefix(s.b[s.pos:], []byte(lit)) {
		return false
	}
	s.pos += len(lit)
	return true
}

// is consumes c.
func (s *scanner) is(c byte) bool {
	if s.pos < len(s.b) && s.b[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// key reports whether the next bytes are ,"name": and consumes them.
func (s *scanner) key(name string) bool {
	rest := s.b[s.pos:]
	if len(rest) < len(name)+4 || rest[0] != ',' || rest[1] != '"' ||
		string(rest[2:2+len(name)]) != name || rest[2+len(name)] != '"' || rest[3+len(name)] != ':' {
		return false
	}
	s.pos += len(name) + 4
	return true
}

// field consumes a canonical string that is not empty.
func (s *scanner) field() bool {
	_, _, ok := s.text()
	return ok
}

// text consumes a canonical string that is not empty and returns where
// its contents are.
func (s *scanner) text() (start, end int, ok bool) {
	start, end, _, ok = s.str()
	return start, end, ok && end > start
}

// skipStr consumes a canonical string.
func (s *scanner) skipStr() bool {
	_, _, _, ok := s.str()
	return ok
}

// str consumes a string in the form appendString writes and returns where
// its contents are and whether they hold an escape.
func (s *scanner) str() (start, end int, esc, ok bool) {
	b := s.b
	i := s.pos
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false, false
	}
	i++
	start = i
	for {
		// Eight bytes at a time while none needs a look.
		if i+8 <= len(b) {
			m := special(binary.LittleEndian.Uint64(b[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else {
			for i < len(b) && strPlain[b[i]] {
				i++
			}
			if i >= len(b) {
				return 0, 0, false, false
			}
		}
		switch c := b[i]; {
		case c == '"':
			s.pos = i + 1
			return start, i, esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', 'n', 'r', 't':
				i += 2
				continue
			case 'u':
			default:
				return 0, 0, false, false
			}
			if i+6 > len(b) {
				return 0, 0, false, false
			}
			u := b[i+2 : i+6]
			switch {
			case u[0] == '0' && u[1] == '0' && (u[2] == '0' || u[2] == '1') && isLowerHex(u[3]):
				// \u00XX for a control character without a short escape.
				if v := (u[2]-'0')<<4 | hexValue(u[3]); v == '\n' || v == '\r' || v == '\t' {
					return 0, 0, false, false
				}
			case u[0] == '2' && u[1] == '0' && u[2] == '2' && (u[3] == '8' || u[3] == '9'):
			default:
				return 0, 0, false, false
			}
			i += 6
		case c < 0x20:
			return 0, 0, false, false
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
				return 0, 0, false, false
			}
			i += size
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special returns the high bits of the bytes of x (in little-endian
// order) that are not strPlain: '"', '\\', below 0x20, or not ASCII. Bits
// above the lowest may be wrong; the lowest is right: below it, no byte
// borrows in the subtractions, and an ASCII byte gets its high bit from
// x-0x20 only when it is below 0x20, and from (x^c)-1 only when it is c.
func special(x uint64) uint64 {
	return ((x - ones*0x20) | (x ^ ones*'"' - ones) | (x ^ ones*'\\' - ones) | x) & highs
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

func hexValue(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// decode appends the contents of a canonical string, its escapes
// decoded, to dst.
func decode(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if raw[i+1] == '0' {
				dst = append(dst, (raw[i+3]-'0')<<4|hexValue(raw[i+4]))
			} else {
				dst = utf8.AppendRune(dst, 0x2020|rune(hexValue(raw[i+4])))
			}
			i += 4
		default: // '"' or '\\'
			dst = append(dst, raw[i])
		}
	}
	return dst
}

// number consumes what the strict parser takes for a number.
func (s *scanner) number() []byte {
	start := s.pos
	for s.pos < len(s.b) && numByte[s.b[s.pos]] {
		s.pos++
	}
	return s.b[start:s.pos]
}

// uint64 consumes a canonical unsigned integer.
func (s *scanner) uint64() (uint64, bool) {
	t := s.number()
	if len(t) == 0 || len(t) > 19 || t[0] == '0' && len(t) > 1 {
		n, err := strconv.ParseUint(string(t), 10, 64)
		return n, err == nil && string(strconv.AppendUint(s.num[:0], n, 10)) == string(t)
	}
	var n uint64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// canonicalInt reports whether t is an int64 as strconv.AppendInt writes
// it.
func canonicalInt(t []byte) bool {
	d := t
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 18 || d[0] == '0' && (len(d) > 1 || len(t) > 1) {
		n, err := strconv.ParseInt(string(t), 10, 64)
		return err == nil && strconv.FormatInt(n, 10) == string(t)
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// argNumber reports whether t is a number of args as appendValue writes
// what the strict parser reads from it.
func (s *scanner) argNumber(t []byte) bool {
	if canonicalInt(t) {
		return true
	}
	if _, err := strconv.ParseInt(string(t), 10, 64); err == nil {
		return false // an integer in another form
	}
	if n, err := strconv.ParseUint(string(t), 10, 64); err == nil {
		s.num = strconv.AppendUint(s.num[:0], n, 10)
		return bytes.Equal(s.num, t) // above the int64 range
	}
	f, err := strconv.ParseFloat(string(t), 64)
	if err != nil {
		return false
	}
	s.num, err = appendFloat(s.num[:0], f)
	return err == nil && bytes.Equal(s.num, t)
}

// time checks the 30 bytes of a record time and the quote after them:
// a date and time that appendTime writes back the same.
func (s *scanner) time() bool {
	b := s.b[s.pos:]
	if len(b) < len(timeLayout)+1 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' ||
		b[16] != ':' || b[19] != '.' || b[29] != 'Z' || b[30] != '"' {
		return false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28} {
		if b[i] < '0' || b[i] > '9' {
			return false
		}
	}
	two := func(i int) int { return int(b[i]-'0')*10 + int(b[i+1]-'0') }
	year := two(0)*100 + two(2)
	month, day := two(5), two(8)
	if month < 1 || month > 12 || day < 1 || two(11) > 23 || two(14) > 59 || two(17) > 59 {
		return false
	}
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month-1]
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		days = 29
	}
	if day > days {
		return false
	}
	s.pos += len(timeLayout)
	return true
}

// principal consumes the object of principal: its fields in order, each
// present only when not empty, at least one.
func (s *scanner) principal() bool {
	if !s.is('{') {
		return false
	}
	last := -1
	for {
		rest := s.b[s.pos:]
		j := 1
		for j < len(rest) && rest[j] != '"' {
			j++
		}
		if len(rest) == 0 || rest[0] != '"' || j+1 >= len(rest) || rest[j+1] != ':' {
			return false
		}
		f := -1
		switch string(rest[1:j]) {
		case "agent":
			f = 0
		case "requester":
			f = 1
		case "tenant":
			f = 2
		case "session":
			f = 3
		}
		if f <= last {
			return false
		}
		last = f
		s.pos += j + 2
		if !s.field() {
			return false
		}
		if !s.is(',') {
			return s.is('}')
		}
	}
}

// shadow consumes the array of shadow: at least one {"rule","effect"[,"reason"]}.
func (s *scanner) shadow() bool {
	if !s.is('[') {
		return false
	}
	for {
		if !s.lit(`{"rule":`) || !s.skipStr() || !s.lit(`,"effect":`) || !s.skipStr() {
			return false
		}
		if s.key("reason") && !s.field() {
			return false
		}
		if !s.is('}') {
			return false
		}
		if !s.is(',') {
			return s.is(']')
		}
	}
}

// costs consumes an array of costs: at least one.
func (s *scanner) costs() bool {
	if !s.is('[') {
		return false
	}
	for {
		if !s.lit(`{"unit":`) || !s.skipStr() || !s.lit(`,"micros":`) || !canonicalInt(s.number()) || !s.is('}') {
			return false
		}
		if !s.is(',') {
			return s.is(']')
		}
	}
}

// object consumes an object of args (labels: of labels, string values
// only) at depth, with keys in increasing order. At depth 0 it must not
// be empty.
func (s *scanner) object(depth int, labels bool) bool {
	if !s.is('{') {
		return false
	}
	if s.is('}') {
		return depth > 0
	}
	prevStart, prevEnd, prevEsc := -1, -1, false
	for {
		start, end, esc, ok := s.str()
		if !ok || !s.is(':') {
			return false
		}
		if prevStart >= 0 && !s.less(prevStart, prevEnd, prevEsc, start, end, esc) {
			return false
		}
		prevStart, prevEnd, prevEsc = start, end, esc
		if labels {
			if !s.skipStr() {
				return false
			}
		} else if !s.value(depth + 1) {
			return false
		}
		if !s.is(',') {
			return s.is('}')
		}
	}
}

// less reports whether the key at b[as:ae] sorts before the one at
// b[bs:be], comparing the decoded keys.
func (s *scanner) less(as, ae int, aEsc bool, bs, be int, bEsc bool) bool {
	a, b := s.b[as:ae], s.b[bs:be]
	if aEsc || bEsc {
		s.keyA = decode(s.keyA[:0], a)
		s.keyB = decode(s.keyB[:0], b)
		a, b = s.keyA, s.keyB
	}
	return bytes.Compare(a, b) < 0
}

// value consumes a value of args at depth.
func (s *scanner) value(depth int) bool {
	if depth > maxDepth || s.pos >= len(s.b) {
		return false
	}
	switch s.b[s.pos] {
	case '"':
		return s.skipStr()
	case '{':
		return s.object(depth, false)
	case '[':
		s.pos++
		if s.is(']') {
			return true
		}
		for {
			if !s.value(depth + 1) {
				return false
			}
			if !s.is(',') {
				return s.is(']')
			}
		}
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	}
	return s.argNumber(s.number())
}

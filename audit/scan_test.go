package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// scanLog writes a log with every kind of record and every kind of value
// (escapes, unicode, invalid UTF-8, redacted and truncated strings,
// numbers of every form, deep nesting, keys that sort differently
// escaped, checkpoints) and returns its bytes.
func scanLog(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{ID: "log-\"é\\1", Clock: fakeClock(), Sync: SyncNever, SignerKey: testSKey,
		CheckpointEvery: 5, Redaction: Redaction{HashKey: []byte("k"), MaxString: 48}})
	if err != nil {
		t.Fatal(err)
	}
	deep := any("bottom")
	for range maxDepth - 2 {
		deep = []any{deep}
	}
	full := fullRecord()
	full.Seq, full.Time, full.Log, full.Prev = 0, time.Time{}, "", Hash{}
	recs := []*Record{
		full,
		sampleRecord(1),
		{Kind: KindDecision, Call: "c\u2029", Tool: "t\tab", Principal: Principal{Session: "s"},
			Args: map[string]any{
				"\n": int64(1), "A": int64(2), "é": int64(3), "\u2028": int64(4), "\x01": int64(5), "": int64(6),
				"a\"b": "q\"\\/", "z": []any{}, "zz": map[string]any{"\\": nil, "[": true, "]": false},
			}},
		{Kind: KindDecision, Tool: "numbers", Args: map[string]any{
			"i": []any{int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), int64(10), int64(-10)},
			"f": []any{1e21, -1e21, 1e-7, 1e-6, 0.1, -2.5e-300, 123456.789, 5e-324, math.MaxFloat64,
				uint64(math.MaxUint64), 1e20, 0.5, -0.000001},
		}},
		{Kind: KindDecision, Tool: "secrets", Args: map[string]any{
			"api_key": "sk-live-1234567890", "password": map[string]any{"x": int64(1)},
			"body": strings.Repeat("long ", 30) + "é",
			"bad":  "a\xffb\xc3", "ctl": "\x00\x1f\x7f\u2028\u2029\r\n\t\b\f", "emoji": "héllo 😀 \uFFFD",
			"deep": deep,
		}, Error: "token=abcdef0123456789abcdef0123456789"},
		{Kind: KindResult, Call: "c", Outcome: "ok", Duration: -5, Estimate: []Cost{{Unit: "", Micros: 0}},
			Actual: []Cost{{Unit: "USD", Micros: math.MaxInt64}, {Unit: "t", Micros: math.MinInt64}}},
		{Kind: KindApproval, Call: "c", Approver: "bob", Grant: "g-1", Note: "fine \"by\" me", Decision: "approve"},
		{Kind: KindGrant, Grant: "g-2", Labels: map[string]string{"b": "", "a": "x", "é": "y", "\n": "z"}},
		{Kind: KindHalt, Control: &Control{Scope: "agent:a", Who: "ops", Why: "test"}},
		{Kind: KindResume, Control: &Control{}},
		{Kind: KindHook, Shadow: []Shadow{{}, {Rule: "r", Effect: "deny", Reason: "why"}}, Reason: "r", Code: "c", Stage: "s", Rule: "x", Env: "prod"},
		{Kind: "x-custom", PolicyVersion: "v9", Error: "plain"},
	}
	for _, r := range recs {
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return readFile(t, path)
}

// strictAccepts is the reference: the strict parser and the canonical
// re-encoding.
func strictAccepts(line []byte) (*Record, bool) {
	var r Record
	if err := parseRecord(line, &r, nil); err != nil {
		return nil, false
	}
	return &r, true
}

// sameAnswer reports how the scanner and the strict parser disagree on
// line, or "".
func sameAnswer(sc *scanner, line []byte) string {
	var s scanned
	ok := sc.scan(line, &s)
	r, want := strictAccepts(line)
	if ok != want {
		return fmt.Sprintf("scan = %v, strict = %v", ok, want)
	}
	if !ok {
		return ""
	}
	if s.seq != r.Seq || string(decode(nil, s.log)) != r.Log || string(decode(nil, s.kind)) != string(r.Kind) ||
		s.prev != r.Prev || s.checkpoint != (r.Checkpoint != "") {
		return fmt.Sprintf("scan kept seq %d log %q kind %q prev %v checkpoint %v; strict: %d %q %q %v %q",
			s.seq, s.log, s.kind, s.prev, s.checkpoint, r.Seq, r.Log, r.Kind, r.Prev, r.Checkpoint)
	}
	return ""
}

// TestScanMatchesStrict runs the scanner and the strict parser on the
// lines of a real log and on mutations of them: every byte replaced by
// each byte that differs from it in one bit and by each byte of the
// grammar, every byte deleted or doubled, and grammar bytes inserted
// everywhere. They must give the same answer on every one. It mutates
// every 3rd byte (the fuzz target covers the rest); under -short or
// the race detector, every 17th. The lines are those of version 2 and
// the same records in version 1.
func TestScanMatchesStrict(t *testing.T) {
	data := scanLog(t)
	lines := splitLines(data)
	lines = append(lines, splitLines(mixVersions(t, data, len(lines)))...)
	step := 3
	if testing.Short() || raceEnabled {
		step = 17
	}
	subst := []byte("\"\\,:{}[]0129-+.eEuntfalsr \x00\x1f\x7f\x80\xc3\xe2\xa8\xff")
	insert := []byte("\"\\,:{}0-.e \x01\xe2")
	var sc scanner
	checks, accepted := 0, 0
	buf := make([]byte, 0, 4096)
	check := func(what string, line []byte) {
		t.Helper()
		checks++
		if d := sameAnswer(&sc, line); d != "" {
			t.Fatalf("%s: %s\n%q", what, d, line)
		}
		if _, ok := strictAccepts(line); ok {
			accepted++
		}
	}
	kinds := map[string]bool{}
	versions := map[bool]int{}
	for k, line := range lines {
		line = line[:len(line)-1]
		r, ok := strictAccepts(line)
		if !ok {
			t.Fatalf("line %d does not parse: %s", k+1, line)
		}
		kinds[string(r.Kind)] = true
		versions[bytes.HasPrefix(line, []byte(`{"seq":`))]++
		check(fmt.Sprintf("line %d", k+1), line)
		for i := 0; i < len(line); i += step {
			for bit := range 8 {
				buf = append(buf[:0], line...)
				buf[i] ^= 1 << bit
				check(fmt.Sprintf("line %d byte %d bit %d", k+1, i, bit), buf)
			}
			for _, c := range subst {
				buf = append(buf[:0], line...)
				buf[i] = c
				check(fmt.Sprintf("line %d byte %d = %q", k+1, i, c), buf)
			}
			buf = append(append(buf[:0], line[:i]...), line[i+1:]...)
			check(fmt.Sprintf("line %d without byte %d", k+1, i), buf)
			buf = append(append(buf[:0], line[:i+1]...), line[i:]...)
			check(fmt.Sprintf("line %d with byte %d twice", k+1, i), buf)
			for _, c := range insert {
				buf = append(append(append(buf[:0], line[:i]...), c), line[i:]...)
				check(fmt.Sprintf("line %d with %q before byte %d", k+1, c, i), buf)
			}
		}
	}
	for _, k := range []Kind{KindDecision, KindResult, KindApproval, KindGrant, KindHalt, KindResume, KindHook, KindCheckpoint, "x-custom"} {
		if !kinds[string(k)] {
			t.Errorf("the log has no %s record", k)
		}
	}
	if versions[true] != versions[false] {
		t.Errorf("%d lines of version 1, %d of version 2; want as many", versions[true], versions[false])
	}
	t.Logf("%d lines, %d checks, %d accepted", len(lines), checks, accepted)
}

// TestScanValues puts values of args in a line and compares the answers
// of the scanner and the strict parser, for values at the edges of the
// grammar: numbers, escapes, nesting, key order.
func TestScanValues(t *testing.T) {
	good, err := (&Record{Kind: KindDecision, Log: "L", Args: map[string]any{"v": int64(1)}}).AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	nest := func(n int, open, close, inner string) string {
		return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
	}
	var sc scanner
	accepted := 0
	for _, v := range []string{
		"0", "-0", "00", "01", "1", "-1", "+1", "1.0", "1.5", "1e5", "1E5", "1e+21", "1e21", "1e-7", "1e-07",
		"0.000001", "0.0000001", "1e-6", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"-9223372036854775809", "18446744073709551615", "18446744073709552000", "1e400", "-1e400", "5e-324",
		"1.7976931348623157e+308", "123456789012345678", "1234567890123456789", "12345678901234567890",
		".5", "0.5", "-.5", "5.", "1e", "e1", "-", "--1", "1-", "0x10", "Infinity", "NaN", "1_000",
		"100000000000000000000", "1e+20", "123456.789", "1.5e-300", "-2.5e-300", "1.0e-7",
		`""`, `"\u0000"`, `"\u001f"`, `"\u001F"`, `"\u0009"`, `"\t"`, `"\u000a"`, `"\u0020"`, `"\u0041"`,
		`"\u2028"`, `"\u2029"`, `"\u202a"`, `"\u2027"`, "\"\u2028\"", `"\/"`, `"\b"`, `"\f"`, `"\ud83d\ude00"`,
		"\"😀\"", `"\ud800"`, "\"\xed\xa0\x80\"", "\"\xff\"", "\"\uFFFD\"", "\"\x7f\"", "\"\x1f\"", `"\x"`, `"\u12"`,
		`"\`, `"abc`, "true", "false", "null", "tru", "nul", "True", "[]", "[ ]", "[1,]", "[,1]", "[1,2]", "{}",
		`{"a":1}`, `{"a":1,}`, `{"b":1,"a":2}`, `{"a":1,"a":2}`, `{"a":1,"b":2}`, `{"":1,"a":2}`, `{"a":1,"":2}`,
		`{"\n":1,"A":2}`, `{"A":1,"\n":2}`, `{"\u0001":1,"\n":2}`, `{"\n":1,"\u0001":2}`, `{"\u2028":1,"é":2}`,
		`{"é":1,"\u2028":2}`, `{"\\":1,"]":2}`, `{"]":1,"\\":2}`, `{"\"":1,"#":2}`, `{"a":1,"a\"":2}`,
		`{"a\"":1,"a":2}`, `{a:1}`, `{"a"1}`, `{"a":}`,
		nest(maxDepth-1, "[", "]", "1"), nest(maxDepth, "[", "]", "1"), nest(maxDepth+1, "[", "]", "1"),
		nest(maxDepth-1, "[", "]", ""), nest(maxDepth, "[", "]", ""), nest(maxDepth+1, "[", "]", ""),
		nest(maxDepth-1, `{"a":`, "}", "1"), nest(maxDepth, `{"a":`, "}", "1"), nest(maxDepth, `{"a":`, "}", "{}"),
		nest(maxDepth-1, `{"a":`, "}", "{}"),
	} {
		line := bytes.Replace(good, []byte(`"v":1`), []byte(`"v":`+v), 1)
		if d := sameAnswer(&sc, line); d != "" {
			t.Errorf("args value %s: %s", v, d)
		}
		if _, ok := strictAccepts(line); ok {
			accepted++
		}
	}
	for _, args := range []string{`{}`, `[]`, `{"v":1}`, `{"v":1}}`, `null`} {
		line := bytes.Replace(good, []byte(`{"v":1}`), []byte(args), 1)
		if d := sameAnswer(&sc, line); d != "" {
			t.Errorf("args %s: %s", args, d)
		}
	}
	if accepted < 30 {
		t.Errorf("only %d values accepted: the test lost its good cases", accepted)
	}
}

// TestScanTime compares the scanner's check of the record time with the
// strict parser's (parse, then print back the same) over every month,
// day, hour, minute and second at the edges, in leap and common years.
func TestScanTime(t *testing.T) {
	var sc scanner
	n := 0
	for _, year := range []int{0, 1, 4, 100, 400, 1900, 1970, 2000, 2024, 2026, 2100, 9999} {
		for month := 0; month <= 13; month++ {
			for day := 0; day <= 32; day++ {
				for _, hms := range [][3]int{{0, 0, 0}, {23, 59, 59}, {24, 0, 0}, {0, 60, 0}, {0, 0, 60}, {99, 99, 99}} {
					s := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d.123456789Z", year, month, day, hms[0], hms[1], hms[2])
					tm, ok := parseTime([]byte(s))
					want := ok && string(appendTime(nil, tm)) == s
					sc.b, sc.pos = []byte(s+`"`), 0
					if got := sc.time(); got != want {
						t.Fatalf("time %s: scan = %v, strict = %v", s, got, want)
					}
					n++
				}
			}
		}
	}
	for _, s := range []string{"2026-01-02T03:04:05.12345678Z", "2026-01-02 03:04:05.123456789Z", "2026-01-02T03:04:05.123456789z",
		"2026-0a-02T03:04:05.123456789Z", "-026-01-02T03:04:05.123456789Z", "2026-01-02T03:04:05,123456789Z"} {
		sc.b, sc.pos = []byte(s+`"`), 0
		if sc.time() {
			t.Errorf("time %s: scan accepts it", s)
		}
	}
	t.Logf("%d times", n)
}

// strictReaders keep the buffered readers of verifyStrict: readLines
// uses a *bufio.Reader of its size as it is, and a fuzzer's inputs then
// cost no allocation of its buffer each.
var strictReaders = make(chan *bufio.Reader, 4)

func strictReader(r io.Reader) *bufio.Reader {
	select {
	case br := <-strictReaders:
		br.Reset(r)
		return br
	default:
		return bufio.NewReaderSize(r, blockSize)
	}
}

// verifyStrict is VerifyReaders as it was before the scanner: every line
// through the strict parser, read by readLines. TestVerifyMatchesStrict
// holds VerifyReaders to its answers.
func verifyStrict(opts VerifyOptions, srcs ...Source) (*Report, error) {
	var ext *Checkpoint
	v := newVerifier(nil)
	if opts.Key != "" {
		nv, err := note.NewVerifier(opts.Key)
		if err != nil {
			return nil, err
		}
		v.key = nv
	}
	if opts.Checkpoint != nil {
		var err error
		if ext, err = ParseCheckpoint(opts.Checkpoint, v.key); err != nil {
			return nil, fmt.Errorf("audit: verify: checkpoint: %w", err)
		}
	}
	v.ext = ext
	rep := &Report{Files: len(srcs)}
	var lastName string
	var lastLine int
	var lastOff int64
	for _, s := range srcs {
		lineNo := 0
		lastName = s.Name
		br := strictReader(s.R)
		err := readLines(br, func(line []byte, off int64, complete bool) error {
			lineNo++
			lastLine, lastOff = lineNo, off
			if !complete {
				return &VerifyError{Seq: v.seq, File: s.Name, Line: lineNo, Offset: off, Err: ErrTorn}
			}
			rep.Bytes += int64(len(line)) + 1
			if _, err := v.line(line, s.Name, lineNo, off); err != nil {
				return v.fail(err, s.Name, lineNo, off)
			}
			return nil
		})
		select {
		case strictReaders <- br:
		default:
		}
		if err != nil {
			var ve *VerifyError
			if errors.As(err, &ve) && ve.File == "" {
				ve.File, ve.Seq, ve.Line = s.Name, v.seq, lineNo+1
			}
			return nil, err
		}
	}
	if err := v.finish(); err != nil {
		return nil, v.fail(err, lastName, lastLine+1, lastOff)
	}
	if err := v.end(rep, opts.RequireCovered, srcs); err != nil {
		return nil, err
	}
	return rep, nil
}

// verifyModes are the ways verifyReaders is run by the tests: inline
// alone in a fuzzing engine's worker, where the goroutines and the pool of
// the other way make coverage depend on timing (each such false "new
// coverage" costs a minimization, which stalls the worker), and both ways
// otherwise (the seed corpus, the differential tests).
func verifyModes() []bool {
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return []bool{true}
	}
	return []bool{false, true}
}

// boundMinimizing caps at 3s the time the fuzzing engine spends
// minimizing one input, unless -fuzzminimizetime was given. The engine
// minimizes every input that finds new coverage, and minimizing a []byte
// tries O(n²) candidates: on the kilobyte logs these targets take, the
// default 60s is spent whole each time, with the worker reporting
// nothing, and a 60s run fuzzes for a few seconds.
func boundMinimizing() {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.fuzzminimizetime" })
	if !set {
		flag.Set("test.fuzzminimizetime", "3s")
	}
}

// sameVerify runs VerifyReaders and verifyStrict on the same files
// (split into sources at cuts) and reports how they differ, or "".
func sameVerify(data []byte, opts VerifyOptions, cuts ...int) string {
	srcs := func(wrap func(io.Reader) io.Reader) []Source {
		var out []Source
		start := 0
		for i, c := range append(cuts, len(data)) {
			out = append(out, Source{Name: fmt.Sprintf("f%d", i), R: wrap(bytes.NewReader(data[start:c]))})
			start = c
		}
		return out
	}
	plain := func(r io.Reader) io.Reader { return r }
	wantRep, wantErr := verifyStrict(opts, srcs(plain)...)
	for _, wrap := range []func(io.Reader) io.Reader{plain, iotest.OneByteReader, iotest.HalfReader, iotest.DataErrReader} {
		for _, inline := range verifyModes() {
			rep, err := verifyReaders(opts, srcs(wrap), inline)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(rep, wantRep) {
				return fmt.Sprintf("VerifyReaders (inline %v) = %+v, %v; strict: %+v, %v", inline, rep, err, wantRep, wantErr)
			}
			var ve, wve *VerifyError
			if errors.As(err, &ve) != errors.As(wantErr, &wve) || ve != nil &&
				(ve.Seq != wve.Seq || ve.File != wve.File || ve.Line != wve.Line || ve.Offset != wve.Offset || ve.Err.Error() != wve.Err.Error()) {
				return fmt.Sprintf("VerifyReaders error %#v; strict %#v", ve, wve)
			}
		}
		if len(data) > 4096 {
			break // small reads of a large log add nothing but time
		}
	}
	return ""
}

// TestVerifyMatchesStrict holds VerifyReaders to the answers (reports and
// errors, byte for byte) of the strict verifier it replaced, on a real
// log and on damaged copies: lines deleted, doubled, swapped, cut,
// changed; files split at every line; readers that return a byte at a
// time or an error with the data.
func TestVerifyMatchesStrict(t *testing.T) {
	// A log of version 1 continued in version 2.
	v2 := scanLog(t)
	data := mixVersions(t, v2, len(splitLines(v2))/2)
	lines := splitLines(data)
	rep, err := verifyStrict(VerifyOptions{Key: testVKey}, Source{Name: "f", R: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := SignCheckpoint(Checkpoint{Log: rep.Log, Size: rep.Records - 2, Head: headOf(lines[:len(lines)-2])}, testSKey)
	if err != nil {
		t.Fatal(err)
	}
	optss := []VerifyOptions{{}, {Key: testVKey}, {Key: testVKey, Checkpoint: cp.Note}}
	if testing.Short() || raceEnabled {
		optss = optss[2:]
	}
	join := func(ls [][]byte) []byte { return bytes.Join(ls, nil) }
	check := func(what string, data []byte, cuts ...int) {
		t.Helper()
		for i, opts := range optss {
			if d := sameVerify(data, opts, cuts...); d != "" {
				t.Fatalf("%s, options %d: %s", what, i, d)
			}
		}
	}
	checkOne := func(what string, data []byte, cuts ...int) {
		t.Helper()
		if d := sameVerify(data, VerifyOptions{Checkpoint: cp.Note}, cuts...); d != "" {
			t.Fatalf("%s: %s", what, d)
		}
	}
	check("the log", data)
	check("the log in version 2", v2)
	check("the log in version 1", mixVersions(t, v2, len(lines)))
	check("nothing", nil)
	check("two empty files", nil, 0)
	if rep, err := VerifyReaders(VerifyOptions{}); err != nil || !reflect.DeepEqual(rep, &Report{}) {
		t.Errorf("VerifyReaders of no sources = %+v, %v", rep, err)
	}
	off := 0
	for k := range lines {
		checkOne(fmt.Sprintf("split before line %d", k+1), data, off)
		checkOne(fmt.Sprintf("split inside line %d", k+1), data, off+len(lines[k])/2)
		checkOne(fmt.Sprintf("split before line %d, empty file after", k+1), data, off, off)
		off += len(lines[k])
		var ls [][]byte
		ls = append(append(ls, lines[:k]...), lines[k+1:]...)
		check(fmt.Sprintf("delete line %d", k+1), join(ls))
		ls = append(append(append([][]byte{}, lines[:k+1]...), lines[k]), lines[k+1:]...)
		check(fmt.Sprintf("double line %d", k+1), join(ls))
		if k+1 < len(lines) {
			ls = append([][]byte{}, lines...)
			ls[k], ls[k+1] = ls[k+1], ls[k]
			check(fmt.Sprintf("swap lines %d and %d", k+1, k+2), join(ls))
		}
		check(fmt.Sprintf("cut after line %d", k+1), join(lines[:k+1]))
		check(fmt.Sprintf("cut inside line %d", k+1), data[:off-len(lines[k])/2])
		check(fmt.Sprintf("cut before the newline of line %d", k+1), data[:off-1])
	}
	// Changes to single bytes, a sample (TestScanMatchesStrict covers
	// more of them line by line).
	step := 7
	if testing.Short() || raceEnabled {
		step = 53
	}
	for i := 0; i < len(data); i += step {
		for _, c := range []byte{data[i] ^ 1, data[i] ^ 0x20, '"', '\\', '\n', 0x80} {
			if c == data[i] {
				continue
			}
			damaged := bytes.Clone(data)
			damaged[i] = c
			checkOne(fmt.Sprintf("byte %d = %q", i, c), damaged)
		}
	}
	// A log whose ID holds escapes is checked line by line by the
	// scanner, not sent to the strict parser, in either version.
	for _, lines := range [][][]byte{lines, splitLines(v2)} {
		var sc scanner
		var s scanned
		if !sc.scan(lines[1][:len(lines[1])-1], &s) || !bytes.Contains(s.log, []byte(`\"`)) {
			t.Fatalf("scan of line 2: %v, log %q", sc.scan(lines[1][:len(lines[1])-1], &s), s.log)
		}
		v := newVerifier(nil)
		if _, err := v.line(lines[0][:len(lines[0])-1], "f", 1, 0); err != nil {
			t.Fatal(err)
		}
		if !v.advance(s.seq, s.prev, s.log, HashLine(lines[1][:len(lines[1])-1]), "f", 2, int64(len(lines[0]))) {
			t.Errorf("the fast path refused line 2: %s", lines[1])
		}
	}
}

func headOf(lines [][]byte) Hash {
	last := lines[len(lines)-1]
	return HashLine(last[:len(last)-1])
}

// TestVerifyLargeMatchesStrict checks a log of many blocks, and a line
// that spans blocks, against the strict verifier.
func TestVerifyLargeMatchesStrict(t *testing.T) {
	n := 3000
	if testing.Short() || raceEnabled {
		n = 2000
	}
	data := readFile(t, writeLog(t, n, true))
	if len(data) < 2*blockSize {
		t.Fatalf("the log has %d bytes, want at least two blocks", len(data))
	}
	if d := sameVerify(data, VerifyOptions{Key: testVKey}); d != "" {
		t.Fatal(d)
	}
	// A long line (a string of 3 blocks) in the middle.
	lines := splitLines(data)
	long := bytes.Replace(lines[10], []byte(`"to":"bob@example.com"`), []byte(`"to":"`+strings.Repeat("x", 3*blockSize)+`"`), 1)
	damaged := bytes.Join(append(append(append([][]byte{}, lines[:10]...), long), lines[11:]...), nil)
	if d := sameVerify(damaged, VerifyOptions{}); d != "" {
		t.Fatal(d)
	}
	// More lines than a block takes (all but the first bad), with the
	// end of the file read with the last of them.
	many := append(bytes.Clone(lines[0]), bytes.Repeat([]byte("\n"), 3*maxBlockLines)...)
	for _, d := range [][]byte{many, many[:len(many)-1], bytes.Repeat([]byte("\n"), 3*maxBlockLines)} {
		if d := sameVerify(d, VerifyOptions{}); d != "" {
			t.Fatal(d)
		}
		rep, err := VerifyReaders(VerifyOptions{}, Source{Name: "f0", R: iotest.DataErrReader(bytes.NewReader(d))})
		wantRep, wantErr := verifyStrict(VerifyOptions{}, Source{Name: "f0", R: bytes.NewReader(d)})
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(rep, wantRep) {
			t.Fatalf("%d bytes, EOF with the data: VerifyReaders = %v, strict %v", len(d), err, wantErr)
		}
	}
	// Damage at the end of the first block, and past it.
	for _, i := range []int{blockSize - 1, blockSize, blockSize + 1, len(data) - 2} {
		damaged := bytes.Clone(data)
		damaged[i] ^= 1
		if d := sameVerify(damaged, VerifyOptions{}); d != "" {
			t.Fatalf("byte %d: %s", i, d)
		}
	}
}

// TestVerifyReadError checks that a read error is returned after the
// lines before it are checked, as before.
func TestVerifyReadError(t *testing.T) {
	data := scanLog(t)
	boom := errors.New("boom")
	for _, n := range []int{0, 10, len(data) / 2, len(data)} {
		r := io.MultiReader(bytes.NewReader(data[:n]), iotest.ErrReader(boom))
		_, err := VerifyReaders(VerifyOptions{}, Source{Name: "f", R: r})
		_, want := verifyStrict(VerifyOptions{}, Source{Name: "f", R: io.MultiReader(bytes.NewReader(data[:n]), iotest.ErrReader(boom))})
		if fmt.Sprint(err) != fmt.Sprint(want) {
			t.Errorf("error after %d bytes: VerifyReaders = %v, strict %v", n, err, want)
		}
		if !errors.Is(err, boom) {
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Errorf("error after %d bytes: %v, want boom or a *VerifyError", n, err)
			}
		}
	}
	// Bad lines come before the read error.
	bad := append(bytes.Clone(data[:20]), '\n')
	_, err := VerifyReaders(VerifyOptions{}, Source{Name: "f", R: io.MultiReader(bytes.NewReader(bad), iotest.ErrReader(boom))})
	if !errors.Is(err, ErrSyntax) {
		t.Errorf("a bad line, then a read error: %v, want ErrSyntax", err)
	}
}

// FuzzScanMatchesStrict checks that the scanner and the strict parser
// accept the same lines, and that the scanner keeps the right fields.
func FuzzScanMatchesStrict(f *testing.F) {
	data := scanLog(f)
	for _, line := range splitLines(data) {
		f.Add(line[:len(line)-1])
	}
	for _, line := range splitLines(mixVersions(f, data, 3))[:3] {
		f.Add(line[:len(line)-1])
	}
	f.Add([]byte(`{"time":"2026-01-01T00:00:00.000000000Z","log":"","kind":"x","seq":0,"prev":"` + strings.Repeat("0", 64) + `"}`))
	f.Add([]byte(`{"seq":0,"time":"2026-01-01T00:00:00.000000000Z","log":"","kind":"x","prev":"` + strings.Repeat("0", 64) + `"}`))
	var sc scanner
	f.Fuzz(func(t *testing.T, line []byte) {
		if d := sameAnswer(&sc, line); d != "" {
			t.Fatalf("%s\n%q", d, line)
		}
	})
}

// BenchmarkScan scans the lines of a guarded call (a decision and its
// result) as the guard writes them; MB/s is the scanner's throughput on
// one goroutine.
func BenchmarkScan(b *testing.B) {
	p := Principal{Agent: "support-bot", Requester: "alice", Tenant: "acme", Session: "s1"}
	est := []Cost{{Unit: "USD", Micros: 1000}}
	policy := "2b5f0c4a9d1e3f7a8b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a"
	recs := []*Record{
		{Kind: KindDecision, Call: "0193b6c8-7c4e-7000-8000-000000000001", Principal: p, Env: "prod", Tool: "send_email",
			Args:     map[string]any{"to": "bob@example.com", "subject": "Your refund", "body": "Hello Bob, your refund of 12.50 USD is on its way."},
			Decision: "allow", Rule: "support-mail", PolicyVersion: policy, Estimate: est},
		{Kind: KindResult, Call: "0193b6c8-7c4e-7000-8000-000000000001", Principal: p, Env: "prod", Tool: "send_email",
			Rule: "support-mail", PolicyVersion: policy, Outcome: "ok", Duration: 1500, Estimate: est, Actual: est},
	}
	var lines [][]byte
	size := 0
	for i, r := range recs {
		r.Seq, r.Log, r.Time, r.Prev = uint64(i), "0193b6c8-7c4e-7000-8000-00000000a001", time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), HashLine(nil)
		line, err := r.AppendJSON(nil)
		if err != nil {
			b.Fatal(err)
		}
		lines = append(lines, line)
		size += len(line)
	}
	var sc scanner
	var s scanned
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for _, line := range lines {
			if !sc.scan(line, &s) {
				b.Fatal("scan refused a line")
			}
		}
	}
}

// TestSpecial checks that special finds the first byte of a word that is
// not strPlain, for words with every byte value at every place over a
// background of each kind of byte.
func TestSpecial(t *testing.T) {
	first := func(w [8]byte) int {
		for i, c := range w {
			if !strPlain[c] {
				return i
			}
		}
		return 8
	}
	for _, bg := range []byte{'a', ' ', '~', 0x7f, '"', '\\', 0x00, 0x1f, 0x80, 0xff, '!', '#', '[', ']'} {
		for at := range 8 {
			for c := range 256 {
				var w [8]byte
				for i := range w {
					w[i] = 'a'
				}
				for i := at + 1; i < 8; i++ {
					w[i] = bg
				}
				w[at] = byte(c)
				got := 8
				if m := special(binary.LittleEndian.Uint64(w[:])); m != 0 {
					got = bits.TrailingZeros64(m) >> 3
				}
				if want := first(w); got != want {
					t.Fatalf("special(%q) finds byte %d, want %d", w, got, want)
				}
			}
		}
	}
}

// TestVerifyLongLine checks lines at the length limit against the strict
// verifier: one just short of it (read whole, then refused by the
// parser), and ones at and past it, complete or torn. It needs some
// 300 MB, so -short and the race detector skip it.
func TestVerifyLongLine(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("large")
	}
	first := splitLines(scanLog(t))[0]
	for _, c := range []struct {
		n       int
		newline bool
	}{{longLine - 1, true}, {longLine, true}, {longLine, false}, {longLine + 10, false}} {
		data := append(bytes.Clone(first), bytes.Repeat([]byte("x"), c.n)...)
		if c.newline {
			data = append(data, '\n')
		}
		if d := sameVerify(data, VerifyOptions{}); d != "" {
			t.Errorf("a line of %d bytes (newline %v): %s", c.n, c.newline, d)
		}
	}
}

// FuzzVerifyMatchesStrict holds VerifyReaders to the strict verifier's
// answers on arbitrary files, whole and split in two. Verify's goroutines
// make coverage vary from run to run, so the fuzzer finds most inputs
// new and minimizes them (for a minute each by default): run it with
// -fuzzminimizetime 10x.
func FuzzVerifyMatchesStrict(f *testing.F) {
	boundMinimizing()
	lines := splitLines(scanLog(f))
	data := bytes.Join(lines[:3], nil)
	f.Add(data, 0)
	mixed := splitLines(mixVersions(f, bytes.Join(lines, nil), 2))
	f.Add(bytes.Join(mixed[:4], nil), len(mixed[0])+len(mixed[1])) // version 1, then 2
	f.Add(data, len(lines[0]))
	f.Add(bytes.Join(lines[8:11], nil), 0) // a checkpoint in the middle
	f.Add([]byte("{}\n"), 1)
	f.Add(append(bytes.Clone(data), make([]byte, 300)...), len(data)+100) // a zero tail, split
	f.Add(append(append(bytes.Clone(data), make([]byte, 30)...), 'x'), 0)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		if d := sameVerify(data, VerifyOptions{}); d != "" {
			t.Fatal(d)
		}
		if cut >= 0 && cut <= len(data) {
			if d := sameVerify(data, VerifyOptions{}, cut); d != "" {
				t.Fatalf("split at %d: %s", cut, d)
			}
		}
	})
}

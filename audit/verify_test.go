package audit

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// witness signs a checkpoint over the whole log at path.
func witness(t testing.TB, path string) []byte {
	t.Helper()
	rep, err := Verify(VerifyOptions{Key: testVKey}, path)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := SignCheckpoint(Checkpoint{Log: rep.Log, Size: rep.Records, Head: rep.Head}, testSKey)
	if err != nil {
		t.Fatal(err)
	}
	return cp.Note
}

func splitLines(data []byte) [][]byte {
	return bytes.SplitAfter(data, []byte("\n"))[:bytes.Count(data, []byte("\n"))]
}

func verifyBytes(data []byte, opts VerifyOptions) (*Report, error) {
	return VerifyReaders(opts, Source{Name: "audit.jsonl", R: bytes.NewReader(data)})
}

// wantFailAt checks that err is a *VerifyError naming seq, or one of
// alt when it is a chain error.
func wantFailAt(t *testing.T, what string, err error, seq uint64, alt ...uint64) {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("%s: Verify = %v, want a *VerifyError at seq %d", what, err, seq)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: %v does not wrap ErrCorrupt", what, err)
	}
	if ve.Seq == seq {
		return
	}
	for _, a := range alt {
		if ve.Seq == a && errors.Is(err, ErrChain) {
			return
		}
	}
	t.Fatalf("%s: Verify = %v, want seq %d", what, err, seq)
}

// TestBitFlips flips every bit of a 200-record log in turn. Each flip
// must fail verification naming the record that holds the bit (or, for a
// bit in a prev hash that still parses, the record before, since the
// chain cannot tell which of the two changed).
//
// Verification of a line depends only on the state after the line
// before, so the test keeps the verifier's state after each line and
// checks each flipped line from there, then the line after it and the
// end of the log, exactly as Verify does. A sample of flips also runs
// through Verify on the whole file. With -short or the race detector, it
// flips every 7th bit.
func TestBitFlips(t *testing.T) {
	path := writeLog(t, 199, true)
	data := readFile(t, path)
	cpNote := witness(t, path)
	lines := splitLines(data)
	if len(lines) != 200 {
		t.Fatalf("%d lines, want 200", len(lines))
	}
	key, err := note.NewVerifier(testVKey)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := ParseCheckpoint(cpNote, key)
	if err != nil {
		t.Fatal(err)
	}
	opts := VerifyOptions{Key: testVKey, Checkpoint: cpNote}
	if _, err := verifyBytes(data, opts); err != nil {
		t.Fatal(err)
	}
	// states[k] is the verifier before line k.
	states := make([]verifier, len(lines)+1)
	v := newVerifier(key)
	v.ext = ext
	offs := make([]int64, len(lines)+1)
	for k, line := range lines {
		states[k] = *v
		offs[k+1] = offs[k] + int64(len(line))
		if _, err := v.line(line[:len(line)-1], "f", k+1, offs[k]); err != nil {
			t.Fatal(err)
		}
	}
	step := 1
	if testing.Short() || raceEnabled {
		step = 7
	}
	flips := 0
	buf := make([]byte, 0, 1024)
	for k, line := range lines {
		prevAt := bytes.LastIndex(line, []byte(`"prev":"`)) + len(`"prev":"`)
		for bit := 0; bit < len(line)*8; bit += step {
			i := bit / 8
			flips++
			what := fmt.Sprintf("line %d byte %d bit %d", k+1, i, bit%8)
			var alt []uint64
			if i >= prevAt && i < prevAt+64 && k > 0 {
				alt = []uint64{uint64(k - 1)}
			}
			if i == len(line)-1 || flips%997 == 0 {
				// The newline, and a sample of the rest: the whole file
				// through Verify.
				damaged := bytes.Clone(data)
				damaged[offs[k]+int64(i)] ^= 1 << (bit % 8)
				_, err := verifyBytes(damaged, opts)
				wantFailAt(t, what, err, uint64(k), alt...)
				continue
			}
			buf = append(buf[:0], line[:len(line)-1]...)
			buf[i] ^= 1 << (bit % 8)
			st := states[k]
			_, err := st.line(buf, "f", k+1, offs[k])
			if err == nil && k+1 < len(lines) {
				_, err = st.line(lines[k+1][:len(lines[k+1])-1], "f", k+2, offs[k+1])
			}
			if err == nil && k+1 == len(lines) {
				err = st.finish()
			}
			if err == nil {
				t.Fatalf("%s: the flip was not detected", what)
			}
			wantFailAt(t, what, st.fail(err, "f", k+1, offs[k]), uint64(k), alt...)
		}
	}
	t.Logf("%d flips detected", flips)
}

// TestBitFlipsLarge flips a sample of bits of a large log and verifies
// the whole file each time.
func TestBitFlipsLarge(t *testing.T) {
	n := 5000
	if testing.Short() || raceEnabled {
		n = 1000
	}
	path := writeLog(t, n, true)
	data := readFile(t, path)
	opts := VerifyOptions{Key: testVKey, Checkpoint: witness(t, path)}
	lines := splitLines(data)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 30 {
		k := rng.IntN(len(lines))
		off := 0
		for _, l := range lines[:k] {
			off += len(l)
		}
		i := rng.IntN(len(lines[k]) - 1) // not the newline
		prevAt := bytes.LastIndex(lines[k], []byte(`"prev":"`)) + len(`"prev":"`)
		var alt []uint64
		if i >= prevAt && k > 0 {
			alt = []uint64{uint64(k - 1)}
		}
		damaged := bytes.Clone(data)
		damaged[off+i] ^= 1 << rng.IntN(8)
		_, err := verifyBytes(damaged, opts)
		wantFailAt(t, fmt.Sprintf("line %d byte %d", k+1, i), err, uint64(k), alt...)
	}
}

func TestDeleteDuplicateSwap(t *testing.T) {
	path := writeLog(t, 49, true)
	data := readFile(t, path)
	opts := VerifyOptions{Key: testVKey, Checkpoint: witness(t, path)}
	lines := splitLines(data)
	join := func(ls [][]byte) []byte { return bytes.Join(ls, nil) }
	for k := range lines {
		// delete line k
		var ls [][]byte
		ls = append(ls, lines[:k]...)
		ls = append(ls, lines[k+1:]...)
		_, err := verifyBytes(join(ls), opts)
		if k == len(lines)-1 {
			if !errors.Is(err, ErrTruncated) {
				t.Errorf("delete the last line: Verify = %v, want ErrTruncated", err)
			}
		} else {
			wantFailAt(t, fmt.Sprintf("delete line %d", k+1), err, uint64(k))
		}
		// duplicate line k
		ls = append(append(append([][]byte{}, lines[:k+1]...), lines[k]), lines[k+1:]...)
		_, err = verifyBytes(join(ls), opts)
		wantFailAt(t, fmt.Sprintf("duplicate line %d", k+1), err, uint64(k+1))
		// swap lines k and k+1
		if k+1 < len(lines) {
			ls = append([][]byte{}, lines...)
			ls[k], ls[k+1] = ls[k+1], ls[k]
			_, err = verifyBytes(join(ls), opts)
			wantFailAt(t, fmt.Sprintf("swap lines %d and %d", k+1, k+2), err, uint64(k))
		}
	}
}

// TestTruncation cuts whole records off the tail of a log. Against a
// checkpoint kept elsewhere the cut is detected; without one the log
// still verifies, which is why checkpoints must be kept elsewhere.
func TestTruncation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	cpFile := filepath.Join(dir, "checkpoint")
	l, err := Open(path, Options{ID: "log-1", Clock: fakeClock(), SignerKey: testSKey,
		CheckpointEvery: 10, Sinks: []Sink{FileSink(cpFile)}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if err := l.Append(t.Context(), sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cpNote := readFile(t, cpFile)
	cp, err := ParseCheckpoint(cpNote, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := readFile(t, path)
	lines := splitLines(data)
	if cp.Size != uint64(len(lines)-1) {
		t.Fatalf("the kept checkpoint covers %d records, want %d (all but its own record)", cp.Size, len(lines)-1)
	}
	opts := VerifyOptions{Key: testVKey, Checkpoint: cpNote}
	if rep, err := verifyBytes(data, opts); err != nil || rep.Covered != cp.Size {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	size := int(cp.Size)
	for _, cut := range []int{1, 2, size / 2, size} {
		kept := bytes.Join(lines[:size-cut], nil)
		_, err := verifyBytes(kept, opts)
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("cut %d records: Verify = %v, want ErrTruncated", cut, err)
		}
		var ve *VerifyError
		if errors.As(err, &ve) && ve.Seq != uint64(size-cut) {
			t.Errorf("cut %d records: error names seq %d, want the first missing, %d", cut, ve.Seq, size-cut)
		}
		if _, err := verifyBytes(kept, VerifyOptions{}); err != nil {
			t.Errorf("cut %d records, no checkpoint, no key: Verify = %v; truncation is undetectable without them", cut, err)
		}
		// With the key: the checkpoints left in the log verify, and the
		// report says how many records at the end none covers.
		last := -1
		for i, line := range lines[:size-cut] {
			if bytes.Contains(line, []byte(`"kind":"checkpoint"`)) {
				last = i
			}
		}
		rep, err := verifyBytes(kept, VerifyOptions{Key: testVKey})
		if last < 0 {
			if !errors.Is(err, ErrNoCheckpoint) {
				t.Errorf("cut %d records, no checkpoint left, with a key: Verify = %v, want ErrNoCheckpoint", cut, err)
			}
			continue
		}
		if err != nil || rep.Uncovered != uint64(size-cut-last-1) {
			t.Errorf("cut %d records, with a key: Verify = %+v, %v; want %d uncovered", cut, rep, err, size-cut-last-1)
		}
		_, err = verifyBytes(kept, VerifyOptions{Key: testVKey, RequireCovered: true})
		if want := size-cut-last-1 > 0; errors.Is(err, ErrUncovered) != want {
			t.Errorf("cut %d records, RequireCovered: Verify = %v, want ErrUncovered: %v", cut, err, want)
		}
	}
	// A rewritten log (same length, new chain) is detected too.
	other := writeLog(t, size, true)
	if _, err := Verify(opts, other); !errors.Is(err, ErrMismatch) {
		t.Errorf("rewritten log: Verify = %v, want ErrMismatch", err)
	}
}

func TestVerifyWrongKey(t *testing.T) {
	path := writeLog(t, 3, true)
	_, other, err := GenerateKey("other")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(VerifyOptions{Key: other}, path); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("Verify with another key = %v, want ErrCheckpoint", err)
	}
}

func TestVerifyTorn(t *testing.T) {
	data := readFile(t, writeLog(t, 3, false))
	_, err := verifyBytes(data[:len(data)-1], VerifyOptions{})
	if !errors.Is(err, ErrTorn) {
		t.Fatalf("Verify = %v, want ErrTorn", err)
	}
	wantFailAt(t, "torn", err, 2)
}

func TestVerifyMissing(t *testing.T) {
	if _, err := Verify(VerifyOptions{}, filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Verify of a missing file = %v, want ErrNotExist", err)
	}
}

func FuzzVerify(f *testing.F) {
	boundMinimizing()
	data := readFile(f, writeLog(f, 3, true))
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(mixVersions(f, data, 2)) // version 1, then 2
	f.Add([]byte("{}\n"))
	f.Add(append(bytes.Clone(data), make([]byte, 100)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		var rep *Report
		var err error
		for i, inline := range verifyModes() {
			r, e := verifyReaders(VerifyOptions{Key: testVKey}, []Source{{Name: "audit.jsonl", R: bytes.NewReader(data)}}, inline)
			if i > 0 && (fmt.Sprint(e) != fmt.Sprint(err) || !reflect.DeepEqual(r, rep)) {
				t.Fatalf("inline: %+v, %v; with goroutines: %+v, %v", r, e, rep, err)
			}
			rep, err = r, e
		}
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %v, not a *VerifyError", err)
			}
			return
		}
		// The bytes of the log: all but a zero tail.
		if want := int64(bytes.LastIndexByte(data, '\n') + 1); rep.Bytes != want || !allNUL(data[want:]) {
			t.Fatalf("Verify read %d bytes of %d", rep.Bytes, len(data))
		}
		// A log that verifies re-encodes to itself, line by line.
		for _, line := range splitLines(data) {
			r, err := ParseRecord(line[:len(line)-1])
			if err != nil {
				t.Fatal(err)
			}
			b, _ := encodeLike(r, line)
			if !bytes.Equal(b, line[:len(line)-1]) {
				t.Fatalf("re-encoded %s as %s", line, b)
			}
		}
	})
}

// forge rewrites the log data as someone who can write the file would:
// edit (which may change a record, and says whether to keep it) sees each
// record in order, and the kept records are renumbered and chained again.
func forge(t *testing.T, data []byte, edit func(r *Record) bool) []byte {
	t.Helper()
	var out []byte
	var prev Hash
	var seq uint64
	for _, line := range splitLines(data) {
		r, err := ParseRecord(bytes.TrimSuffix(line, []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		if !edit(r) {
			continue
		}
		r.Seq, r.Prev = seq, prev
		b, err := r.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		prev, seq = HashLine(b), seq+1
		out = append(append(out, b...), '\n')
	}
	return out
}

// TestVerifyForgedLog: with a key, a log must carry a signed checkpoint,
// and the report says how many records at the end none covers; an edit
// there is caught only when full coverage is required.
func TestVerifyForgedLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l, err := Open(path, Options{ID: "log-1", Clock: fakeClock(), SignerKey: testSKey, CheckpointEvery: 10, Sync: SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		if err := l.Append(t.Context(), sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, path)
	if rep, err := verifyBytes(data, VerifyOptions{Key: testVKey, RequireCovered: true}); err != nil || rep.Uncovered != 0 || rep.Checkpoints != 3 {
		t.Fatalf("the log as written: %+v, %v; want 3 checkpoints, every record covered", rep, err)
	}
	setAmount := func(r *Record) {
		if r.Call == "call-0007" || r.Call == "call-0023" {
			r.Args = map[string]any{"to": "eve@evil.example", "n": int64(1)}
		}
	}

	// Every checkpoint dropped, a record edited, the chain rebuilt.
	noCps := forge(t, data, func(r *Record) bool { setAmount(r); return r.Kind != KindCheckpoint })
	if !bytes.Contains(noCps, []byte("eve@evil.example")) {
		t.Fatal("forge did not edit")
	}
	if _, err := verifyBytes(noCps, VerifyOptions{}); err != nil {
		t.Fatalf("without a key the forged log is well formed and chained: %v", err)
	}
	_, err = verifyBytes(noCps, VerifyOptions{Key: testVKey})
	var ve *VerifyError
	if !errors.Is(err, ErrNoCheckpoint) || !errors.Is(err, ErrCorrupt) || !errors.As(err, &ve) || ve.Seq != 0 || ve.Line != 1 {
		t.Fatalf("forged log without checkpoints, with a key: %v, want ErrNoCheckpoint at seq 0, line 1", err)
	}

	// The last checkpoint dropped, a record after the one before it
	// edited: the checkpoints left verify, and the report counts the
	// records after them.
	cps := 0
	tail := forge(t, data, func(r *Record) bool {
		if r.Kind == KindCheckpoint {
			cps++
			return cps < 3
		}
		setAmount(r)
		return r.Call != "call-0007"
	})
	if _, err := verifyBytes(tail, VerifyOptions{Key: testVKey}); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("a record before a checkpoint removed: %v, want ErrCheckpoint (its head no longer matches)", err)
	}
	cps = 0
	tail = forge(t, data, func(r *Record) bool {
		if r.Kind == KindCheckpoint {
			cps++
			return cps < 3
		}
		if r.Call == "call-0023" {
			setAmount(r)
		}
		return true
	})
	rep, err := verifyBytes(tail, VerifyOptions{Key: testVKey})
	// 25 records and 2 checkpoints: the second covers seq 0 to 21
	// (20 records, 2 checkpoints); seq 22 to 26 (call-0020 to 0024) are not.
	if err != nil || rep.Records != 27 || rep.Uncovered != 5 || rep.Checkpoints != 2 {
		t.Fatalf("edited tail: %+v, %v; want 27 records, 5 uncovered, 2 checkpoints", rep, err)
	}
	_, err = verifyBytes(tail, VerifyOptions{Key: testVKey, RequireCovered: true})
	if !errors.Is(err, ErrUncovered) || !errors.As(err, &ve) || ve.Seq != 22 || ve.Line != 23 || ve.File != "audit.jsonl" {
		t.Fatalf("edited tail, RequireCovered: %v, want ErrUncovered at seq 22, line 23", err)
	}
	if _, err := verifyBytes(tail, VerifyOptions{RequireCovered: true}); err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("RequireCovered without a key: %v, want an error about the options", err)
	}
	// An empty file carries no checkpoint either.
	if _, err := verifyBytes(nil, VerifyOptions{Key: testVKey}); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("empty log with a key: %v, want ErrNoCheckpoint", err)
	}
}

package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hardstop-labs/agentguard/policy"
)

// replayPolicy is a policy for the readers' tests: every call allowed.
var replayPolicy = sync.OnceValue(func() *policy.Policy {
	pol, err := policy.Parse("p.yaml", []byte("version: 1\ndefault: allow\n"))
	if err != nil {
		panic(err)
	}
	return pol
})

// readersOn writes data as a file and reads it with each reader: Verify
// (blocks and workers), the strict verifier (readLines), Replay. It
// fails the test when Verify and the strict verifier disagree, or when
// Replay accepts what Verify refuses or the other way round, and returns
// Verify's answer.
func readersOn(t *testing.T, data []byte) (*Report, error) {
	t.Helper()
	if d := sameVerify(data, VerifyOptions{}); d != "" {
		t.Fatal(d)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(VerifyOptions{}, path)
	_, rerr := Replay(context.Background(), replayPolicy(), path)
	if err == nil && rerr != nil {
		t.Fatalf("Verify accepts the log, Replay = %v", rerr)
	}
	if err != nil && rerr == nil && !errors.Is(err, ErrSeq) && !errors.Is(err, ErrChain) && !errors.Is(err, ErrLogID) {
		// Replay does not check the chain; it must refuse the rest.
		t.Fatalf("Verify = %v; Replay accepts the log", err)
	}
	return rep, err
}

// TestZeroTailReaders: a tail of NUL bytes after the last newline is
// space the writer has not used: every reader accepts it and counts
// neither records nor bytes in it. NUL bytes anywhere else, or any other
// byte after them, are damage.
func TestZeroTailReaders(t *testing.T) {
	log := readFile(t, writeLog(t, 5, false))
	zeros := func(n int) []byte { return make([]byte, n) }
	for _, n := range []int{0, 1, 7, 8, 4096, blockSize - 1, blockSize, blockSize + 3, 3 * blockSize} {
		rep, err := readersOn(t, append(bytes.Clone(log), zeros(n)...))
		if err != nil || rep.Records != 5 || rep.Bytes != int64(len(log)) {
			t.Errorf("log + %d NUL bytes: Verify = %+v, %v; want 5 records of %d bytes", n, rep, err, len(log))
		}
	}
	if rep, err := readersOn(t, zeros(100)); err != nil || rep.Records != 0 {
		t.Errorf("a file of NUL bytes: Verify = %+v, %v; want an empty log", rep, err)
	}
	lines := splitLines(log)
	last := lines[len(lines)-1]
	body := bytes.Join(lines[:len(lines)-1], nil)
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"NUL bytes then a byte", append(append(bytes.Clone(log), zeros(100)...), 'x'), ErrTorn},
		{"NUL bytes then a line", append(append(bytes.Clone(log), zeros(10)...), last...), ErrSyntax},
		{"NUL bytes then a newline", append(append(bytes.Clone(log), zeros(10)...), '\n'), ErrSyntax},
		{"a partial record then NUL bytes", append(append(bytes.Clone(body), last[:40]...), zeros(blockSize)...), ErrTorn},
		{"a NUL byte in a line", bytes.Replace(bytes.Clone(log), []byte(`"bot"`), []byte("\"b\x00t\""), 1), ErrSyntax},
		{"a line of NUL bytes", append(append(bytes.Clone(body), bytes.Repeat([]byte{0}, len(last)-1)...), '\n'), ErrSyntax},
		{"a line of NUL bytes before the last", append(append(append(bytes.Clone(lines[0]), zeros(20)...), '\n'), bytes.Join(lines[1:], nil)...), ErrSyntax},
	} {
		_, err := readersOn(t, c.data)
		if !errors.Is(err, c.want) || !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

// TestOpenCutsZeroTail: Open cuts a zero tail without reporting a
// recovery, and cuts a torn record among NUL bytes (a copy into the
// mapping that a kill interrupted, or pages lost with the machine) into
// the .broken file, without its zeros.
func TestOpenCutsZeroTail(t *testing.T) {
	log := readFile(t, writeLog(t, 5, false))
	lines := splitLines(log)
	last := lines[len(lines)-1]
	body := bytes.Join(lines[:len(lines)-1], nil)
	holed := bytes.Clone(last[:len(last)-1])
	clear(holed[10:30]) // the middle of the record never reached the page
	for _, c := range []struct {
		name  string
		data  []byte
		keep  []byte // the log after Open
		saved []byte // the bytes cut, the .broken file without its last newline; nil for none
	}{
		{"zero tail", append(bytes.Clone(log), make([]byte, 3*blockSize)...), log, nil},
		{"torn record, zero tail", append(append(bytes.Clone(body), last[:50]...), make([]byte, 5000)...), body, last[:50]},
		{"record with a hole", append(bytes.Clone(body), holed...), body, holed},
		{"record with a hole and its newline", append(append(bytes.Clone(body), holed...), '\n'), body, append(bytes.Clone(holed), '\n')},
		{"lost page, then records", append(append(append(bytes.Clone(lines[0]), make([]byte, 100)...), '\n'), bytes.Join(lines[2:], nil)...),
			lines[0], append(append(make([]byte, 100), '\n'), bytes.Join(lines[2:], nil)...)},
		{"lost page, then records, zero tail", append(append(append(bytes.Clone(lines[0]), make([]byte, 100)...), '\n'), append(bytes.Join(lines[2:], nil), make([]byte, 9000)...)...),
			lines[0], append(append(make([]byte, 100), '\n'), bytes.Join(lines[2:], nil)...)},
	} {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		if err := os.WriteFile(path, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(path, Options{Sync: SyncNever, Clock: fakeClock()})
		if err != nil {
			t.Fatalf("%s: Open = %v", c.name, err)
		}
		rec := l.Recovered()
		size, _ := l.Head()
		if want := uint64(bytes.Count(c.keep, []byte("\n"))); size != want {
			t.Errorf("%s: %d records after Open, want %d", c.name, size, want)
		}
		if err := l.Append(context.Background(), sampleRecord(9)); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		got := readFile(t, path)
		if !bytes.HasPrefix(got, c.keep) || bytes.Count(got[len(c.keep):], []byte("\n")) != 1 || got[len(got)-1] != '\n' {
			t.Errorf("%s: the file after Open, Append and Close is %q, want %d bytes and one record", c.name, got, len(c.keep))
		}
		if _, err := Verify(VerifyOptions{}, path); err != nil {
			t.Errorf("%s: Verify after Open, Append and Close = %v", c.name, err)
		}
		switch {
		case c.saved == nil && rec != nil:
			t.Errorf("%s: Recovered = %+v, want nil", c.name, rec)
		case c.saved != nil && (rec == nil || rec.Offset != int64(len(c.keep)) || rec.Bytes != int64(len(c.saved))):
			t.Errorf("%s: Recovered = %+v, want offset %d and %d bytes", c.name, rec, len(c.keep), len(c.saved))
		case c.saved != nil:
			want := c.saved
			if want[len(want)-1] != '\n' {
				want = append(bytes.Clone(want), '\n')
			}
			if b := readFile(t, rec.Broken); !bytes.Equal(b, want) {
				t.Errorf("%s: .broken holds %q, want %q", c.name, b, c.saved)
			}
		}
	}
}

// FuzzZeroTail appends a tail to a log: NUL bytes with other bytes in
// them, or not. Verify, the strict verifier and Replay agree on it; when
// Verify accepts it, Open recovers nothing; either way, a log that Open
// accepts verifies after Close and keeps every record Verify read before
// the tail.
func FuzzZeroTail(f *testing.F) {
	boundMinimizing()
	log := readFile(f, writeLog(f, 4, false))
	f.Add(uint16(100), []byte(nil), uint16(0))
	f.Add(uint16(5000), []byte("x"), uint16(4000))
	f.Add(uint16(10), []byte("\n"), uint16(5))
	f.Add(uint16(0), []byte(`{"seq":4`), uint16(0))
	f.Add(uint16(0), []byte(`{"time":"2026-11-30T12:00:00.005000000Z"`), uint16(0))
	f.Add(uint16(300), log[:100], uint16(0))
	f.Fuzz(func(t *testing.T, zeros uint16, garbage []byte, at uint16) {
		tail := make([]byte, int(zeros))
		pos := min(int(at), len(tail))
		tail = append(tail[:pos], append(bytes.Clone(garbage), tail[pos:]...)...)
		data := append(bytes.Clone(log), tail...)
		rep, err := readersOn(t, data)
		if (err == nil) != allNUL(tail) {
			t.Fatalf("tail %q: Verify = %v", tail, err)
		}
		if err == nil && (rep.Records != 4 || rep.Bytes != int64(len(log))) {
			t.Fatalf("tail %q: Verify = %+v", tail, rep)
		}
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, oerr := Open(path, Options{Sync: SyncNever, FS: &faultFS{FS: OS, noSync: true}})
		if oerr != nil {
			var ve *VerifyError
			if !errors.As(oerr, &ve) || err == nil {
				t.Fatalf("tail %q: Open = %v (Verify = %v)", tail, oerr, err)
			}
			return
		}
		if err == nil && l.Recovered() != nil {
			t.Errorf("tail %q: Recovered = %+v for a zero tail", tail, l.Recovered())
		}
		if size, _ := l.Head(); size < 4 {
			t.Errorf("tail %q: %d records after Open, want at least 4", tail, size)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(VerifyOptions{}, path); err != nil {
			t.Errorf("tail %q: Verify after Open and Close = %v", tail, err)
		}
		if got := readFile(t, path); !bytes.HasPrefix(got, log) {
			t.Errorf("tail %q: the log lost records", tail)
		}
	})
}

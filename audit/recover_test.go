package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestTornTail cuts the log at every byte offset inside its last two
// records: Open keeps exactly the complete lines, saves the rest in the
// .broken file, and the next append verifies.
func TestTornTail(t *testing.T) {
	orig := readFile(t, writeLog(t, 10, false))
	lines := splitLines(orig)
	start := len(orig) - len(lines[len(lines)-1]) - len(lines[len(lines)-2])
	dir := t.TempDir()
	for cut := start; cut < len(orig); cut++ {
		path := filepath.Join(dir, fmt.Sprintf("cut-%d.jsonl", cut))
		if err := os.WriteFile(path, orig[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		complete := bytes.LastIndexByte(orig[:cut], '\n') + 1
		l, err := Open(path, Options{Sync: SyncNever, Clock: fakeClock(), FS: &faultFS{FS: OS, noSync: true}})
		if err != nil {
			t.Fatalf("cut at %d: Open = %v", cut, err)
		}
		rec := l.Recovered()
		if cut == complete {
			if rec != nil {
				t.Errorf("cut at %d (a line boundary): Recovered = %+v, want nil", cut, rec)
			}
		} else {
			if rec == nil || rec.Offset != int64(complete) || rec.Bytes != int64(cut-complete) {
				t.Fatalf("cut at %d: Recovered = %+v, want offset %d, %d bytes", cut, rec, complete, cut-complete)
			}
			if got := readFile(t, rec.Broken); !bytes.Equal(got, append(bytes.Clone(orig[complete:cut]), '\n')) {
				t.Errorf("cut at %d: .broken holds %q", cut, got)
			}
		}
		if got := readFile(t, path); !bytes.Equal(got, orig[:complete]) {
			t.Fatalf("cut at %d: file after Open is %d bytes, want the %d bytes of complete lines", cut, len(got), complete)
		}
		size, _ := l.Head()
		if want := uint64(bytes.Count(orig[:complete], []byte("\n"))); size != want {
			t.Errorf("cut at %d: %d records, want %d", cut, size, want)
		}
		if err := l.Append(context.Background(), sampleRecord(99)); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(VerifyOptions{}, path); err != nil {
			t.Errorf("cut at %d: Verify after the next append = %v", cut, err)
		}
	}
}

// TestDamageBeforeLastLine: Open refuses a log damaged before its last
// line, names the seq and byte offset, and cuts nothing.
func TestDamageBeforeLastLine(t *testing.T) {
	path := writeLog(t, 10, false)
	orig := readFile(t, path)
	lines := splitLines(orig)
	off := len(lines[0]) + len(lines[1]) + len(lines[2])
	damaged := bytes.Clone(orig)
	damaged[off+len(`{"time":"2026-11-30T12:00:00.00`)] = '9' // a digit of its time
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{})
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("Open = %v, want a *VerifyError", err)
	}
	if ve.Seq != 3 || ve.Offset != int64(off) || ve.Line != 4 {
		t.Errorf("Open = %v, want seq 3 at byte %d, line 4", err, off)
	}
	if got := readFile(t, path); !bytes.Equal(got, damaged) {
		t.Error("Open changed a damaged log")
	}
	// A torn tail after damage is not cut either.
	if err := os.WriteFile(path, append(bytes.Clone(damaged), `{"time":"2026`...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); !errors.As(err, &ve) || ve.Seq != 3 {
		t.Errorf("Open = %v, want the damage at seq 3", err)
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	opts := Options{ID: "rot", Clock: fakeClock(), MaxSize: 1000, SignerKey: testSKey}
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen continues the chain in the active file.
	if l, err = Open(path, opts); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), sampleRecord(30)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Segments(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("Segments = %v, want several files", files)
	}
	if files[len(files)-1] != path || files[0] != SegmentName(path, 0) {
		t.Errorf("Segments = %v, want %s first and the active file last", files, SegmentName(path, 0))
	}
	rep, err := Verify(VerifyOptions{Key: testVKey}, files...)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 33 || rep.Files != len(files) || rep.Checkpoints != 2 {
		t.Errorf("Verify = %+v, want 33 records (31 + 2 checkpoints) in %d files", rep, len(files))
	}
	for _, f := range files[:len(files)-1] {
		if info, _ := os.Stat(f); info.Size() > 1000+400 {
			t.Errorf("%s is %d bytes, over MaxSize by more than a record", f, info.Size())
		}
	}
	// Without its first file the log does not verify.
	if _, err := Verify(VerifyOptions{}, files[1:]...); !errors.Is(err, ErrSeq) {
		t.Errorf("Verify without the first file = %v, want ErrSeq", err)
	}
	// Rotation by age.
	path2 := filepath.Join(dir, "age.jsonl")
	l, err = Open(path2, Options{Clock: fakeClock(), MaxAge: 5 * 1e6})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	files, _ = Segments(path2)
	if len(files) != 3 {
		t.Errorf("age rotation: files %v, want 3 (5 ms of records each)", files)
	}
	if _, err := Verify(VerifyOptions{}, files...); err != nil {
		t.Error(err)
	}
}

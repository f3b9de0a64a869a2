package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func countLines(t *testing.T, path string) int {
	t.Helper()
	return bytes.Count(readFile(t, path), []byte("\n"))
}

// TestAppendLaterRidesTheNextAppend: a lazy record stays in the process
// until the next Append, which writes both in order with one write.
func TestAppendLaterRidesTheNextAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writes := 0
	ffs := &faultFS{FS: OS, write: func([]byte) (int, error) { writes++; return 0, nil }}
	l, err := Open(path, Options{FS: ffs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lazy := sampleRecord(0)
	lazy.Kind = KindResult
	if err := l.AppendLater(ctx, lazy); err != nil {
		t.Fatal(err)
	}
	if lazy.Seq != 0 || writes != 0 || countLines(t, path) != 0 {
		t.Fatalf("after AppendLater: seq %d, %d writes, %d lines; want seq 0 and nothing written", lazy.Seq, writes, countLines(t, path))
	}
	next := sampleRecord(1)
	if err := l.Append(ctx, next); err != nil {
		t.Fatal(err)
	}
	if next.Seq != 1 || writes != 1 || countLines(t, path) != 2 {
		t.Fatalf("after Append: seq %d, %d writes, %d lines; want seq 1, one write, 2 lines", next.Seq, writes, countLines(t, path))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(VerifyOptions{}, path)
	if err != nil || rep.Records != 2 {
		t.Fatalf("Verify = %+v, %v; want 2 records", rep, err)
	}
}

// TestAppendLaterWrittenBy: Sync, Head, Checkpoint and Close each write
// the records that wait (written with write(2): through the mapping, a
// record is in the file at once, see TestMappedAppendLater).
func TestAppendLaterWrittenBy(t *testing.T) {
	ctx := context.Background()
	for name, op := range map[string]func(*Log) error{
		"Sync":       func(l *Log) error { return l.Sync() },
		"Head":       func(l *Log) error { l.Head(); return nil },
		"Checkpoint": func(l *Log) error { _, err := l.Checkpoint(ctx); return err },
		"Close":      func(l *Log) error { return l.Close() },
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			l, err := Open(path, Options{SignerKey: testSKey, NoMap: true})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			for i := range 3 {
				if err := l.AppendLater(ctx, sampleRecord(i)); err != nil {
					t.Fatal(err)
				}
			}
			if n := countLines(t, path); n != 0 {
				t.Fatalf("%d lines before %s, want 0", n, name)
			}
			if err := op(l); err != nil {
				t.Fatal(err)
			}
			if n := countLines(t, path); n < 3 {
				t.Fatalf("%d lines after %s, want the 3 lazy records", n, name)
			}
			if size, _ := l.Head(); size < 3 {
				t.Errorf("Head size %d, want at least 3", size)
			}
		})
	}
}

// TestAppendLaterFlushedInTime: with nothing else appended, a lazy record
// is written (and, under SyncEach, synced) within lazyDelay.
func TestAppendLaterFlushedInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		ffs := &faultFS{FS: OS}
		l, err := Open(path, Options{FS: ffs})
		if err != nil {
			t.Fatal(err)
		}
		syncs := ffs.syncs.Load()
		if err := l.AppendLater(context.Background(), sampleRecord(0)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(lazyDelay - time.Millisecond)
		synctest.Wait()
		if n := countLines(t, path); n != 0 {
			t.Fatalf("%d lines before lazyDelay, want 0", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if n := countLines(t, path); n != 1 {
			t.Fatalf("%d lines after lazyDelay, want 1", n)
		}
		if got := ffs.syncs.Load(); got != syncs+1 {
			t.Errorf("%d syncs after lazyDelay, want 1 (SyncEach)", got-syncs)
		}
		// Armed again by the next lazy record.
		if err := l.AppendLater(context.Background(), sampleRecord(1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(lazyDelay)
		synctest.Wait()
		if n := countLines(t, path); n != 2 {
			t.Fatalf("%d lines after the second lazyDelay, want 2", n)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestAppendLaterLostWithAFailedWrite: the write that takes lazy records
// along fails: the log latches, the file keeps no part of them, and the
// chain goes on from what is in the file after a reopen.
func TestAppendLaterLostWithAFailedWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ffs := &faultFS{FS: OS}
	l, err := Open(path, Options{FS: ffs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Append(ctx, sampleRecord(0)); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, path)
	if err := l.AppendLater(ctx, sampleRecord(1)); err != nil {
		t.Fatal(err)
	}
	ffs.write = func(p []byte) (int, error) { return len(p) / 3, syscall.ENOSPC }
	if err := l.Append(ctx, sampleRecord(2)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append = %v, want ErrUnavailable", err)
	}
	if got := readFile(t, path); !bytes.Equal(got, before) {
		t.Errorf("a partial write is visible: %d bytes, want %d", len(got), len(before))
	}
	if size, _ := l.Head(); size != 1 {
		t.Errorf("Head size %d after the failure, want 1", size)
	}
	if err := l.AppendLater(ctx, sampleRecord(3)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("AppendLater on a latched log = %v, want ErrUnavailable", err)
	}
	l.Close()
	ffs.write = nil
	l, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, sampleRecord(4)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep, err := Verify(VerifyOptions{}, path); err != nil || rep.Records != 2 {
		t.Errorf("Verify = %+v, %v; want 2 records", rep, err)
	}
}

// TestAppendLaterRotates: lazy records go to the file they were appended
// to before the log rotates.
func TestAppendLaterRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l, err := Open(path, Options{MaxSize: 600, Sync: SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 20 {
		rec := sampleRecord(i)
		if i%2 == 1 {
			err = l.AppendLater(ctx, rec)
		} else {
			err = l.Append(ctx, rec)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := Segments(path)
	if err != nil || len(segs) < 3 {
		t.Fatalf("Segments = %v, %v; want rotated files", segs, err)
	}
	rep, err := Verify(VerifyOptions{}, segs...)
	if err != nil || rep.Records != 20 {
		t.Fatalf("Verify = %+v, %v; want 20 records", rep, err)
	}
	for _, s := range segs[:len(segs)-1] {
		if st, err := os.Stat(s); err != nil || st.Size() > 600+400 {
			t.Errorf("segment %s: %v, %v bytes", s, err, st.Size())
		}
	}
}

//go:build linux

package audit

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// heldSys is the operating system's mapping calls with 64 KiB chunks,
// counting allocs and fills, whose fill number hold (the first is the
// reservation at Open) closes reached and then waits for release. A fill
// that fails (on a file descriptor closed under it) sets fillErr.
func heldSys(allocs, fills *atomic.Int64, hold int64, reached, release chan struct{}) mapSys {
	sys := osMapSys
	sys.chunk = 64 << 10
	sys.alloc = func(fd int, off, n int64) error {
		allocs.Add(1)
		return osMapSys.alloc(fd, off, n)
	}
	sys.fill = func(fd int, off, n, piece int64) error {
		if fills.Add(1) == hold {
			close(reached)
			<-release
		}
		err := osMapSys.fill(fd, off, n, piece)
		if err != nil {
			fillErr.Store(&err)
		}
		return err
	}
	return sys
}

// fillErr is the last error of a fill of heldSys.
var fillErr atomic.Pointer[error]

// prepGoroutines counts the goroutines preparing a chunk.
func prepGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "audit.(*prep).prepare")
}

// fileEndsAtRecords fails t unless the file at path ends exactly at its
// last record, with no zero tail.
func fileEndsAtRecords(t *testing.T, path string) {
	t.Helper()
	data := readFile(t, path)
	if len(data) == 0 || data[len(data)-1] != '\n' || bytes.IndexByte(data, 0) >= 0 {
		end := bytes.LastIndexByte(data, '\n') + 1
		t.Fatalf("%s is %d bytes, its records end at %d: want no tail", path, len(data), end)
	}
}

// TestMappedPrepareAhead: the next chunk is reserved and filled on a
// goroutine of its own once the records pass half of the current one,
// not by an Append: Appends go on while the preparation is held; the
// Append that crosses into the chunk waits for it, then copies its record
// into the prepared window with no reservation of its own.
func TestMappedPrepareAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		var allocs, fills atomic.Int64
		reached, release := make(chan struct{}), make(chan struct{})
		l, err := open(path, Options{Sync: SyncNever}, heldSys(&allocs, &fills, 2, reached, release))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		i := 0
		var last int64 // the length of the last line, without its newline
		appendOne := func() {
			t.Helper()
			before := l.off
			if err := l.Append(ctx, sampleRecord(i)); err != nil {
				t.Fatal(err)
			}
			last = l.off - before - 1
			i++
		}
		// Up to half the chunk: no preparation.
		for l.off < 30<<10 {
			appendOne()
		}
		synctest.Wait()
		if n := prepGoroutines(); n != 0 || allocs.Load() != 1 {
			t.Fatalf("at %d bytes: %d preparations, %d allocs; want none yet", l.off, n, allocs.Load())
		}
		for {
			appendOne()
			synctest.Wait()
			select {
			case <-reached:
			default:
				if l.off > 40<<10 {
					t.Fatalf("no preparation started at %d bytes of a 64 KiB chunk", l.off)
				}
				continue
			}
			break
		}
		// The preparation is held in its fill; Appends up to the end of
		// the chunk do not wait for it.
		for l.off+2*last < l.mm.size {
			appendOne()
		}
		if n := prepGoroutines(); n != 1 {
			t.Fatalf("%d preparations in flight, want 1", n)
		}
		done := make(chan error)
		go func() {
			for l.off+last+1 <= 64<<10 {
				before := l.off
				if err := l.Append(ctx, sampleRecord(i)); err != nil {
					done <- err
					return
				}
				last = l.off - before - 1
				i++
			}
			done <- l.Append(ctx, sampleRecord(i)) // past the chunk's end
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("the Append into the next chunk returned (%v) before its preparation", err)
		default:
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		i++
		if a, f := allocs.Load(), fills.Load(); a != 2 || f != 2 {
			t.Errorf("%d allocs, %d fills after the first chunk; want 2 each: the Append reserved inline", a, f)
		}
		if l.mm == nil || l.mm.size != 128<<10 || l.off <= 64<<10 {
			t.Fatalf("after crossing: mapped %v, off %d; want the prepared chunk", l.mm != nil, l.off)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := prepGoroutines(); n != 0 {
			t.Errorf("%d preparations after Close", n)
		}
		fileEndsAtRecords(t, path)
		if rep, err := Verify(VerifyOptions{}, path); err != nil || rep.Records != uint64(i) {
			t.Errorf("Verify = %+v, %v; want %d records", rep, err, i)
		}
	})
}

// TestMappedPrepareClose: Close while a preparation is in flight waits
// for it before it cuts the file: a preparation that finished after the
// cut would grow the file again. No preparation goroutine remains.
func TestMappedPrepareClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		var allocs, fills atomic.Int64
		reached, release := make(chan struct{}), make(chan struct{})
		l, err := open(path, Options{Sync: SyncNever}, heldSys(&allocs, &fills, 2, reached, release))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ; ; n++ {
			if err := l.Append(context.Background(), sampleRecord(n)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			select {
			case <-reached:
			default:
				continue
			}
			n++
			break
		}
		closed := make(chan error)
		go func() { closed <- l.Close() }()
		synctest.Wait()
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) while a preparation was in flight", err)
		default:
		}
		close(release)
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if g := prepGoroutines(); g != 0 {
			t.Errorf("%d preparations after Close", g)
		}
		fileEndsAtRecords(t, path)
		if rep, err := Verify(VerifyOptions{}, path); err != nil || rep.Records != uint64(n) {
			t.Errorf("Verify = %+v, %v; want %d records", rep, err, n)
		}
	})
}

// TestMappedPrepareRotate: a rotation (here by MaxAge) while the next
// chunk is being prepared waits for the preparation before it cuts and
// renames the file: the rotated file ends at its last record, and the new
// file is written through a mapping of its own.
func TestMappedPrepareRotate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		var allocs, fills atomic.Int64
		reached, release := make(chan struct{}), make(chan struct{})
		fillErr.Store(nil)
		l, err := open(path, Options{Sync: SyncNever, MaxAge: time.Hour, Clock: time.Now},
			heldSys(&allocs, &fills, 2, reached, release))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		n := 0
		for ; ; n++ {
			if err := l.Append(ctx, sampleRecord(n)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			select {
			case <-reached:
			default:
				continue
			}
			n++
			break
		}
		time.Sleep(time.Hour) // the next Append rotates
		done := make(chan error)
		go func() { done <- l.Append(ctx, sampleRecord(n)) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("the rotating Append returned (%v) while a preparation was in flight", err)
		default:
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		n++
		synctest.Wait()
		if g := prepGoroutines(); g != 0 {
			t.Errorf("%d preparations after the rotation", g)
		}
		files, err := Segments(path)
		if err != nil || len(files) != 2 {
			t.Fatalf("Segments = %v, %v; want 2 files", files, err)
		}
		fileEndsAtRecords(t, files[0])
		if err := fillErr.Swap(nil); err != nil {
			t.Errorf("the preparation failed: %v; want it to finish before the old file is closed", *err)
		}
		if l.mm == nil {
			t.Error("the new file is not mapped")
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		fileEndsAtRecords(t, path)
		if rep, err := Verify(VerifyOptions{}, files...); err != nil || rep.Records != uint64(n) {
			t.Errorf("Verify = %+v, %v; want %d records", rep, err, n)
		}
	})
}

// TestMappedPrepareMapFails: when mapping the prepared chunk fails, the
// Append that needs it falls back to write(2), as when the reservation
// fails; no record is lost and the file ends at its last record.
func TestMappedPrepareMapFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sys := osMapSys
	sys.chunk = 64 << 10
	var maps atomic.Int64
	sys.mmap = func(fd int, off int64, n int) ([]byte, error) {
		if maps.Add(1) > 1 {
			return nil, syscall.ENOMEM
		}
		return osMapSys.mmap(fd, off, n)
	}
	l, err := open(path, Options{Sync: SyncNever}, sys)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 600 {
		if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if l.mm != nil || maps.Load() != 2 {
		t.Fatalf("mapped %v after %d mmaps; want write(2) after the prepared chunk failed to map", l.mm != nil, maps.Load())
	}
	fileEndsAtRecords(t, path)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(VerifyOptions{}, path); err != nil || rep.Records != 600 {
		t.Errorf("Verify = %+v, %v; want 600 records", rep, err)
	}
}

// TestMappedPrepareParallel: appends from several goroutines across many
// chunks and rotations (run it with -race): every record is in the log,
// every file ends at its last record, and no preparation outlives Close.
func TestMappedPrepareParallel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sys := osMapSys
	sys.chunk = 64 << 10
	l, err := open(path, Options{Sync: SyncNever, MaxSize: 300 << 10}, sys)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := l.Append(context.Background(), sampleRecord(w*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if prepGoroutines() == 0 {
			break
		}
		runtime.Gosched() // a preparation that closed done may not have exited yet
	}
	if n := prepGoroutines(); n != 0 {
		t.Errorf("%d preparations after Close", n)
	}
	files, err := Segments(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		fileEndsAtRecords(t, f)
	}
	if rep, err := Verify(VerifyOptions{}, files...); err != nil || rep.Records != workers*each || rep.Files < 2 {
		t.Errorf("Verify = %+v, %v; want %d records in 2+ files", rep, err, workers*each)
	}
}

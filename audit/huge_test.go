//go:build linux

package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestFillPiece: a chunk is filled a huge page at a time only when the
// log syncs no more often than hugeFill, its windows are aligned for huge
// pages, and the chunk before it filled within hugeFill.
func TestFillPiece(t *testing.T) {
	m := &mapping{align: hugeSize, hugeFill: time.Second}
	if p := m.fillPiece(); p != smallPiece {
		t.Errorf("first preparation: piece %d, want %d (no rate known yet)", p, smallPiece)
	}
	if p := m.fillPiece(); p != hugeSize {
		t.Errorf("a chunk filled at once: piece %d, want %d", p, hugeSize)
	}
	m.lastPrep = time.Now().Add(-2 * time.Second)
	if p := m.fillPiece(); p != smallPiece {
		t.Errorf("a chunk filled in 2s, hugeFill 1s: piece %d, want %d", p, smallPiece)
	}
	for _, m := range []*mapping{
		{align: hugeSize},                        // SyncEach
		{align: pageSize, hugeFill: time.Second}, // small chunks (MaxSize)
	} {
		m.fillPiece()
		if p := m.fillPiece(); p != smallPiece {
			t.Errorf("align %d, hugeFill %v: piece %d, want %d", m.align, m.hugeFill, p, smallPiece)
		}
	}
	for _, c := range []struct {
		o    Options
		want time.Duration
	}{
		{Options{}, 0},
		{Options{Sync: SyncEach}, 0},
		{Options{Sync: SyncNever}, 5 * time.Second},
		{Options{Sync: SyncInterval}, time.Second},
		{Options{Sync: SyncInterval, SyncInterval: time.Minute}, time.Minute},
	} {
		if got := hugeFill(c.o); got != c.want {
			t.Errorf("hugeFill(Sync %v, every %v) = %v, want %v", c.o.Sync, c.o.SyncInterval, got, c.want)
		}
	}
}

// TestMappedHugeChunks: a SyncNever log appending fast fills its chunks
// a huge page at a time from the second preparation on, with windows
// that start on a huge page; a SyncEach log never does. Either way the
// records verify.
func TestMappedHugeChunks(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncNever, SyncEach} {
		t.Run(policy.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			var mu sync.Mutex
			var pieces []int64
			sys := osMapSys
			sys.mapEach = true // a SyncEach log writes with write(2) unless told
			sys.fill = func(fd int, off, n, piece int64) error {
				mu.Lock()
				pieces = append(pieces, piece)
				mu.Unlock()
				return osMapSys.fill(fd, off, n, piece)
			}
			l, err := open(path, Options{Sync: policy}, sys)
			if err != nil {
				t.Fatal(err)
			}
			if l.mm == nil {
				t.Fatal("the log does not write through a mapping")
			}
			ctx := context.Background()
			n := 0
			for l.off < 3*mapChunk+mapChunk/2 {
				r := sampleRecord(n)
				n++
				if policy == SyncEach {
					err = l.AppendLater(ctx, r) // no fsync per record: the test needs 7 MiB
				} else {
					err = l.Append(ctx, r)
				}
				if err != nil {
					t.Fatal(err)
				}
				if l.mm != nil && l.mm.base%hugeSize != 0 {
					t.Fatalf("window at %d: not on a huge page", l.mm.base)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(pieces) < 3 {
				t.Fatalf("%d fills for %d bytes of records; want 3 or more", len(pieces), l.off)
			}
			for i, p := range pieces {
				want := int64(smallPiece)
				if policy == SyncNever && i >= 2 { // Open's, then the first preparation's
					want = hugeSize
				}
				if p != want {
					t.Errorf("fill %d of %v: piece %d, want %d", i, pieces, p, want)
				}
			}
			if rep, err := Verify(VerifyOptions{}, path); err != nil || rep.Records != uint64(n) {
				t.Errorf("Verify = %+v, %v; want %d records", rep, err, n)
			}
		})
	}
}

// TestTouchFault: touch of a window whose file was cut under it returns
// errFault rather than crashing the process with SIGBUS.
func TestTouchFault(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(4 * pageSize); err != nil {
		t.Fatal(err)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(4*pageSize), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(b)
	if err := touch(b); err != nil {
		t.Fatalf("touch of a whole file: %v", err)
	}
	if err := f.Truncate(pageSize); err != nil {
		t.Fatal(err)
	}
	if err := touch(b); !errors.Is(err, errFault) {
		t.Fatalf("touch past the file's end = %v, want errFault", err)
	}
}

// TestMappedRecycle: each preparation starts the writeback of the chunk
// before the records' and drops the two before that from the page cache:
// after a sync has made them clean, they are no longer resident.
func TestMappedRecycle(t *testing.T) {
	if osRecycle == nil {
		t.Skip("no recycling on this platform")
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	type call struct{ wbOff, wbN, dropOff, dropN int64 }
	var mu sync.Mutex
	var calls []call
	sys := osMapSys
	sys.chunk = 256 << 10
	sys.recycle = func(fd int, wbOff, wbN, dropOff, dropN int64) {
		mu.Lock()
		calls = append(calls, call{wbOff, wbN, dropOff, dropN})
		mu.Unlock()
		osRecycle(fd, wbOff, wbN, dropOff, dropN)
	}
	l, err := open(path, Options{Sync: SyncNever}, sys)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	n := 0
	appendTo := func(off int64) {
		for l.off < off {
			if err := l.Append(ctx, sampleRecord(n)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	const c = 256 << 10
	appendTo(5*c + c/4)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	appendTo(8*c + c/4)
	l.mu.Lock()
	l.mm.wait() // the last preparation has recycled
	l.mu.Unlock()
	mu.Lock()
	got := append([]call(nil), calls...)
	mu.Unlock()
	// The preparation of chunk k (records at half of k-1) writes back
	// chunk k-2 and drops k-4 and k-3.
	for _, cl := range got {
		k := cl.wbOff/c + 2
		want := call{(k - 2) * c, c, max(0, k-4) * c, (k-2)*c - max(0, k-4)*c}
		if cl != want {
			t.Errorf("recycle(%+v), want %+v", cl, want)
		}
	}
	if len(got) < 6 {
		t.Fatalf("%d recycles for %d bytes of records in chunks of %d; want 6 or more", len(got), l.off, c)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := syscall.Mmap(int(f.Fd()), 0, 8*c, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(b)
	vec := make([]byte, 8*c/pageSize)
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	resident := func(from, to int64) (r int) {
		for _, v := range vec[from/pageSize : to/pageSize] {
			r += int(v & 1)
		}
		return r
	}
	// Chunks 3 and 4 were clean (synced) when the preparations of chunks
	// 7 and 8 dropped them; chunk 7, where the records are, is resident.
	if r := resident(3*c, 5*c); r > 0 {
		t.Errorf("%d of %d pages of chunks 3 and 4 resident after they were dropped", r, 2*c/pageSize)
	}
	if r := resident(7*c, 8*c); r == 0 {
		t.Error("no page of the records' chunk is resident: mincore does not report residency here")
	}
	if rep, err := Verify(VerifyOptions{}, path); err != nil || rep.Records != uint64(n) {
		t.Errorf("Verify = %+v, %v; want %d records", rep, err, n)
	}
}

// TestSyncEachWrites: a SyncEach log writes its records with write(2),
// with no zero tail; SyncNever and SyncInterval logs map their file.
func TestSyncEachWrites(t *testing.T) {
	for _, c := range []struct {
		sync   SyncPolicy
		mapped bool
	}{{SyncEach, false}, {SyncInterval, true}, {SyncNever, true}} {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		l, err := Open(path, Options{Sync: c.sync})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Append(context.Background(), sampleRecord(0)); err != nil {
			t.Fatal(err)
		}
		if (l.mm != nil) != c.mapped {
			t.Errorf("Sync %v: mapped %v, want %v", c.sync, l.mm != nil, c.mapped)
		}
		if data := readFile(t, path); (int64(len(data)) == l.off) == c.mapped {
			t.Errorf("Sync %v: the open file is %d bytes for %d of records; want a zero tail only when mapped", c.sync, len(data), l.off)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

//go:build linux

package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// TestMappedAppend: by default a Log on Linux copies its records into a
// mapping of the file: the file has a zero tail while the Log is open,
// its records are readable (and verify) as they are appended, and Close
// cuts the tail. Rotated files end at their last record.
func TestMappedAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{Sync: SyncNever, MaxSize: 100 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if l.mm == nil {
		t.Fatal("the log does not write through a mapping")
	}
	ctx := context.Background()
	for i := range 10 {
		if err := l.Append(ctx, sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	data := readFile(t, path)
	end := bytes.LastIndexByte(data, '\n') + 1
	if int64(end) != l.off || len(data) <= end || !allNUL(data[end:]) {
		t.Fatalf("the open log is %d bytes, records end at %d (Log: %d); want a zero tail after them", len(data), end, l.off)
	}
	if rep, err := Verify(VerifyOptions{}, path); err != nil || rep.Records != 10 {
		t.Fatalf("Verify of the open log = %+v, %v; want 10 records", rep, err)
	}
	// Past a chunk, and past MaxSize many times.
	for i := range 2000 {
		if err := l.Append(ctx, sampleRecord(10+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Segments(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if b := readFile(t, f); len(b) == 0 || b[len(b)-1] != '\n' {
			t.Errorf("%s does not end at its last record after Close", f)
		}
	}
	rep, err := Verify(VerifyOptions{}, files...)
	if err != nil || rep.Records != 2010 || rep.Files < 5 {
		t.Errorf("Verify = %+v, %v; want 2010 records in 5+ files", rep, err)
	}
}

// countingSys is the operating system's mapping calls, counting syncs;
// alloc, when set, replaces fallocate.
func countingSys(syncs *atomic.Int64, alloc func(fd int, off, n int64) error) mapSys {
	sys := osMapSys
	sys.mapEach = true
	sys.sync = func(fd int) error {
		syncs.Add(1)
		return osMapSys.sync(fd)
	}
	if alloc != nil {
		sys.alloc = alloc
	}
	return sys
}

// TestMappedAppendLater: through the mapping, a record appended with
// AppendLater is in the file at once; under SyncEach it is synced within
// lazyDelay.
func TestMappedAppendLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		var syncs atomic.Int64
		l, err := open(path, Options{}, countingSys(&syncs, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.AppendLater(context.Background(), sampleRecord(0)); err != nil {
			t.Fatal(err)
		}
		if n := countLines(t, path); n != 1 {
			t.Fatalf("%d lines after AppendLater, want 1", n)
		}
		time.Sleep(lazyDelay - time.Millisecond)
		synctest.Wait()
		if n := syncs.Load(); n != 0 {
			t.Fatalf("%d syncs before lazyDelay, want 0", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if n := syncs.Load(); n != 1 {
			t.Fatalf("%d syncs after lazyDelay, want 1 (SyncEach)", n)
		}
	})
}

// TestMappedReserveFails: when fallocate fails (a full disk, or a file
// system without it), or writing the zeros does, or prefaulting the pages
// does (MADV_POPULATE_WRITE's report of what a store would raise as
// SIGBUS), the Log cuts the file at its last record and writes with
// write(2) from then on; no record is lost. At Open (call 0, the first
// chunk, reserved inline), it never maps.
func TestMappedReserveFails(t *testing.T) {
	for _, c := range []struct {
		call   string // the call that fails
		failAt int    // after this many calls succeed
	}{
		{"alloc", 0}, {"alloc", 1}, {"alloc", 3}, {"fill", 0}, {"fill", 2},
		{"populate", 0}, {"populate", 1}, {"populate", 3},
	} {
		failAt := c.failAt
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		calls := 0
		fails := func() bool { calls++; return calls > failAt }
		fail := func(real func(fd int, off, n int64) error) func(fd int, off, n int64) error {
			return func(fd int, off, n int64) error {
				if fails() {
					return syscall.ENOSPC
				}
				return real(fd, off, n)
			}
		}
		var syncs atomic.Int64
		sys := countingSys(&syncs, nil)
		switch c.call {
		case "alloc":
			sys.alloc = fail(osMapSys.alloc)
		case "fill":
			sys.fill = func(fd int, off, n, piece int64) error {
				if fails() {
					return syscall.ENOSPC
				}
				return osMapSys.fill(fd, off, n, piece)
			}
		case "populate":
			sys.populate = func(b []byte) error {
				if fails() {
					return syscall.EFAULT
				}
				return osMapSys.populate(b)
			}
		}
		sys.chunk = 64 << 10 // about 200 records
		l, err := open(path, Options{Sync: SyncNever}, sys)
		if err != nil {
			t.Fatal(err)
		}
		if (l.mm != nil) != (failAt > 0) {
			t.Fatalf("%s fails at %d: mapped %v after Open", c.call, failAt, l.mm != nil)
		}
		for i := range 1000 {
			if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
				t.Fatal(err)
			}
		}
		if l.mm != nil {
			t.Fatalf("%s fails at %d: still mapped after the reservation failed", c.call, failAt)
		}
		if data := readFile(t, path); !bytes.HasSuffix(data, []byte("\n")) || int64(len(data)) != l.off {
			t.Errorf("%s fails at %d: the file is %d bytes, records end at %d", c.call, failAt, len(data), l.off)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if rep, err := Verify(VerifyOptions{}, path); err != nil || rep.Records != 1000 {
			t.Errorf("%s fails at %d: Verify = %+v, %v; want 1000 records", c.call, failAt, rep, err)
		}
	}
}

// TestMappedFullDisk fills a real file system, a tmpfs of 1 MiB mounted
// for the test (it needs the privilege to mount; skipped without it), in
// chunks of 384 KiB: the reservation of the third chunk fails with ENOSPC
// rather than a store into the mapping raising SIGBUS; the Log goes on
// with write(2) in the space left until the disk is full, then latches. Every record acknowledged is in the file,
// which ends at the last of them, and verifies.
func TestMappedFullDisk(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (%v): the full-disk path is tested by TestMappedReserveFails only", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	path := filepath.Join(dir, "audit.jsonl")
	var syncs atomic.Int64
	sys := countingSys(&syncs, nil)
	sys.chunk = 384 << 10
	l, err := open(path, Options{Sync: SyncNever}, sys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() }) // before the unmount
	if l.mm == nil {
		t.Fatal("the log does not write through a mapping")
	}
	ctx := context.Background()
	acked, unmappedAt := 0, -1
	for ; acked < 100000; acked++ {
		if err := l.Append(ctx, sampleRecord(acked)); err != nil {
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Append on a full disk = %v, want ErrUnavailable and ENOSPC", err)
			}
			break
		}
		if l.mm == nil && unmappedAt < 0 {
			unmappedAt = acked
		}
	}
	if unmappedAt < 0 || unmappedAt == acked {
		t.Fatalf("%d records appended, written with write(2) from record %d: want a failed reservation, then write(2), then a full disk", acked, unmappedAt)
	}
	if err := l.Close(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Close = %v, want the latched error", err)
	}
	fileEndsAtRecords(t, path)
	if rep, err := Verify(VerifyOptions{}, path); err != nil || rep.Records != uint64(acked) {
		t.Errorf("Verify = %+v, %v; want the %d records acknowledged", rep, err, acked)
	}
	t.Logf("%d records, the last %d with write(2)", acked, acked-unmappedAt)
}

// TestMappedPopulateUnsupported: on a kernel without MADV_POPULATE_WRITE
// (before Linux 5.14, EINVAL) the chunks are still used: the stores
// fault their pages in.
func TestMappedPopulateUnsupported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var syncs atomic.Int64
	var populates atomic.Int64
	sys := countingSys(&syncs, nil)
	sys.chunk = 64 << 10
	sys.populate = func(b []byte) error {
		populates.Add(1)
		return nil // what osMapSys.populate makes of EINVAL
	}
	l, err := open(path, Options{Sync: SyncNever}, sys)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if l.mm == nil || populates.Load() < 2 {
		t.Fatalf("mapped %v after %d prefaults; want mapped, past a chunk", l.mm != nil, populates.Load())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(VerifyOptions{}, path); err != nil || rep.Records != 1000 {
		t.Errorf("Verify = %+v, %v; want 1000 records", rep, err)
	}
}

// TestMappedFileCut: when the file is cut under the Log's mapping, the
// next copy faults; the Append fails and latches the log instead of
// crashing the process with SIGBUS.
func TestMappedFileCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{Sync: SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Append(ctx, sampleRecord(0)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	err = l.Append(ctx, sampleRecord(1))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errFault) {
		t.Fatalf("Append to a file cut under the mapping = %v, want ErrUnavailable and the fault", err)
	}
	if err := l.Append(ctx, sampleRecord(2)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Append after the fault = %v, want ErrUnavailable", err)
	}
	if err := l.Close(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Close = %v, want the latched error", err)
	}
}

// dirtyKB returns the kilobytes of dirty pages of the mapping of path in
// this process, from /proc/self/smaps.
func dirtyKB(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in, kb, found := false, 0, false
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && strings.Contains(fields[0], "-") && len(fields[1]) == 4 {
			// A mapping's header: address range, perms, offset, device,
			// inode, and the path of a file's.
			in = len(fields) >= 6 && fields[5] == path
			found = found || in
			continue
		}
		if !in {
			continue
		}
		for _, k := range []string{"Shared_Dirty:", "Private_Dirty:"} {
			if rest, ok := strings.CutPrefix(line, k); ok {
				n, _ := strconv.Atoi(strings.Fields(rest)[0])
				kb += n
			}
		}
	}
	if !found {
		t.Fatalf("no mapping of %s in /proc/self/smaps", path)
	}
	return kb
}

// TestDatasyncCleansMapping: fdatasync of the file writes the pages that
// stores into the shared mapping dirtied, as it writes those of write(2):
// after the Log's sync the mapping holds no dirty page. (On a file system
// without writeback, tmpfs, pages stay dirty: nothing to check.)
func TestDatasyncCleansMapping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err == nil && st.Type == 0x01021994 {
		t.Skip("tmpfs has no writeback")
	}
	l, err := Open(path, Options{Sync: SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 20 {
		if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if kb := dirtyKB(t, path); kb == 0 {
		t.Skip("no dirty page after the appends: the kernel wrote them back already")
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if kb := dirtyKB(t, path); kb != 0 {
		t.Errorf("%d KiB of the mapping dirty after Sync (fdatasync), want 0", kb)
	}
}

const crashMapEnv = "AGENTGUARD_AUDIT_CRASH_MAP"

// crashMapChild appends to the log at path with SyncNever until it is
// killed, and prints "mapped" (or not) and then the seq of each record
// once Append has returned: nothing syncs, and the records must survive
// the kill in the page cache.
func crashMapChild(path string) {
	l, err := Open(path, Options{Sync: SyncNever})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Printf("mapped %v\n", l.mm != nil)
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		r := sampleRecord(i)
		if err := l.Append(context.Background(), r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
		w.WriteString(strconv.FormatUint(r.Seq, 10) + "\n")
		w.Flush()
	}
}

func init() {
	if path := os.Getenv(crashMapEnv); path != "" {
		crashMapChild(path)
	}
}

// TestCrashMapped kills a child that appends through the mapping, without
// any sync, with SIGKILL right after an Append returns: after each kill
// the log reopens with every record the child acknowledged, cuts the zero
// tail, and verifies.
func TestCrashMapped(t *testing.T) {
	kills := 20
	if testing.Short() {
		kills = 5
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	maxAck := int64(-1)
	for k := range kills {
		cmd, sc := startChild(t, crashMapEnv, path)
		if !sc.Scan() || sc.Text() != "mapped true" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the child says %q, want \"mapped true\"", sc.Text())
		}
		// Kill right after an acknowledgement: the child is blocked in
		// its write to the pipe, or appending the next record.
		want := 1 + k*7
		for seen := 0; seen < want && sc.Scan(); seen++ {
			n, err := strconv.ParseInt(sc.Text(), 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			maxAck = max(maxAck, n)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() { // acknowledged before the kill landed
			if n, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
				maxAck = max(maxAck, n)
			}
		}
		cmd.Wait()

		l, err := Open(path, Options{Sync: SyncNever})
		if err != nil {
			t.Fatalf("kill %d: reopen = %v", k, err)
		}
		size, _ := l.Head()
		if int64(size) <= maxAck {
			t.Fatalf("kill %d: the log has %d records; seq %d was acknowledged", k, size, maxAck)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if data := readFile(t, path); len(data) > 0 && data[len(data)-1] != '\n' {
			t.Fatalf("kill %d: the log does not end at a record after Close", k)
		}
		rep, err := Verify(VerifyOptions{}, path)
		if err != nil || int64(rep.Records) <= maxAck {
			t.Fatalf("kill %d: Verify = %+v, %v; seq %d was acknowledged", k, rep, err, maxAck)
		}
	}
	t.Logf("%d kills, %d records acknowledged", kills, maxAck+1)
}

// TestMappedAppendLaterDuringSync: a record appended with AppendLater
// while a sync is being led gets no sync of its own in the middle of it
// (which would split the group's batch); it is made durable after that
// sync, within lazyDelay.
func TestMappedAppendLaterDuringSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		var syncs atomic.Int64
		release := make(chan struct{})
		var first atomic.Bool
		sys := countingSys(&syncs, nil)
		count := sys.sync
		sys.sync = func(fd int) error {
			if first.CompareAndSwap(false, true) {
				<-release
			}
			return count(fd)
		}
		l, err := open(path, Options{}, sys)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- l.Append(ctx, sampleRecord(0)) }()
		synctest.Wait() // its sync waits for release
		if err := l.AppendLater(ctx, sampleRecord(1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * lazyDelay)
		synctest.Wait()
		if n := syncs.Load(); n != 0 {
			t.Fatalf("%d syncs finished while the first was held, want 0", n)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := syncs.Load(); n != 1 {
			t.Fatalf("%d syncs right after the first, want 1: the flusher led one at once", n)
		}
		time.Sleep(lazyDelay)
		synctest.Wait()
		if n := syncs.Load(); n != 2 {
			t.Errorf("%d syncs, want 2: the Append's, then one for the lazy record", n)
		}
		l.mu.Lock()
		synced, written := l.synced, l.written
		l.mu.Unlock()
		if synced != written {
			t.Errorf("synced %d of %d records", synced, written)
		}
	})
}

package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
)

// TestGroupCommitWritesOnce: under SyncEach, the records of the appends
// that wait for one sync go out in one write, by the sync's leader, and
// no Append returns before a sync that covers its record has returned.
func TestGroupCommitWritesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, ffs, path := openFaultLog(t)
		var writes, lines atomic.Int64
		ffs.write = func(p []byte) (int, error) {
			writes.Add(1)
			lines.Add(int64(bytes.Count(p, []byte{'\n'})))
			return len(p), nil
		}
		// durable is the number of lines a completed sync covers: those
		// in the file when it started.
		var durable atomic.Int64
		release := make(chan struct{})
		var first atomic.Bool
		ffs.sync = func() error {
			n := lines.Load()
			if first.CompareAndSwap(false, true) {
				<-release
			}
			durable.Store(n)
			return nil
		}
		ctx := context.Background()
		const n = 16
		var wg sync.WaitGroup
		check := func(r *Record) {
			if err := l.Append(ctx, r); err != nil {
				t.Error(err)
				return
			}
			if d := durable.Load(); uint64(d) <= r.Seq {
				t.Errorf("Append of seq %d returned with %d lines synced", r.Seq, d)
			}
		}
		wg.Go(func() { check(sampleRecord(0)) }) // leads the first sync
		synctest.Wait()                          // which waits for release
		for i := 1; i <= n; i++ {
			wg.Go(func() { check(sampleRecord(i)) })
		}
		synctest.Wait() // all wait for the next sync, their records unwritten
		if got := writes.Load(); got != 1 {
			t.Errorf("%d writes while %d appends wait for a sync, want 1 (the first record's)", got, n)
		}
		close(release)
		wg.Wait()
		if got := writes.Load(); got != 2 {
			t.Errorf("%d writes for %d appends, want 2 (the first, then one for the batch)", got, n+1)
		}
		if got := ffs.syncs.Load(); got != 2 {
			t.Errorf("%d syncs for %d appends, want 2", got, n+1)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if rep, err := Verify(VerifyOptions{}, path); err != nil || rep.Records != n+1 {
			t.Errorf("Verify = %+v, %v; want %d records", rep, err, n+1)
		}
	})
}

// TestGroupCommitBatchWriteFails: when the write of a batch fails, every
// append of the batch fails with ErrUnavailable, none of its records is
// in the file, and the records before it are intact.
func TestGroupCommitBatchWriteFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, ffs, path := openFaultLog(t)
		var fail atomic.Bool
		ffs.write = func(p []byte) (int, error) {
			if fail.Load() {
				return len(p) / 2, syscall.ENOSPC // half the batch reaches the file
			}
			return len(p), nil
		}
		release := make(chan struct{})
		var first atomic.Bool
		ffs.sync = func() error {
			if first.CompareAndSwap(false, true) {
				<-release
			}
			return nil
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := l.Append(ctx, sampleRecord(0)); err != nil {
				t.Error(err)
			}
		})
		synctest.Wait()
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		const n = 8
		for i := 1; i <= n; i++ {
			wg.Go(func() {
				err := l.Append(ctx, sampleRecord(i))
				if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
					t.Errorf("Append %d in a batch whose write failed = %v, want ErrUnavailable and ENOSPC", i, err)
				}
			})
		}
		synctest.Wait()
		fail.Store(true)
		close(release)
		wg.Wait()
		after, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(after, before) {
			t.Errorf("the file holds %d bytes after the failed batch, want the %d before it", len(after), len(before))
		}
		if rep, err := Verify(VerifyOptions{}, path); err != nil || rep.Records != 1 {
			t.Errorf("Verify = %+v, %v; want the one record before the batch", rep, err)
		}
	})
}

// openFaultLog opens a SyncEach log on a faultFS that does not sync (for
// tests of who syncs, not of the disk), closed when t ends, with the
// syncs of Open not counted.
func openFaultLog(t *testing.T) (*Log, *faultFS, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ffs := &faultFS{FS: OS, noSync: true}
	l, err := Open(path, Options{FS: ffs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ffs.syncs.Store(0)
	return l, ffs, path
}

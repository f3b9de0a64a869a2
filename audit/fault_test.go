package audit

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// faultFS is the OS file layer with hooks that make writes and syncs of
// the log file fail or block.
type faultFS struct {
	FS
	// write, when set, is called before each write to a file; a non-nil
	// error fails it after writing the first n bytes.
	write func(p []byte) (n int, err error)
	sync  func() error
	syncs atomic.Int64
	// noSync makes Sync do nothing, for tests of recovery rather than
	// durability.
	noSync bool
}

type faultFile struct {
	File
	fs *faultFS
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFile) Write(p []byte) (int, error) {
	if f.fs.write != nil {
		if n, err := f.fs.write(p); err != nil {
			f.File.Write(p[:n])
			return n, err
		}
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	f.fs.syncs.Add(1)
	if f.fs.sync != nil {
		if err := f.fs.sync(); err != nil {
			return err
		}
	}
	if f.fs.noSync {
		return nil
	}
	return f.File.Sync()
}

func TestWriteFailureLatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ffs := &faultFS{FS: OS}
	l, err := Open(path, Options{FS: ffs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		if err := l.Append(ctx, sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	before := readFile(t, path)
	// A full disk: half the record is written, then ENOSPC.
	ffs.write = func(p []byte) (int, error) { return len(p) / 2, syscall.ENOSPC }
	err = l.Append(ctx, sampleRecord(3))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk = %v, want ErrUnavailable and ENOSPC", err)
	}
	if got := readFile(t, path); string(got) != string(before) {
		t.Errorf("a partial record is visible: %d bytes, want %d", len(got), len(before))
	}
	// The log stays latched even when the disk has room again.
	ffs.write = nil
	if err := l.Append(ctx, sampleRecord(4)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Append after the failure = %v, want ErrUnavailable", err)
	}
	if _, err := l.Checkpoint(ctx); err == nil {
		t.Error("Checkpoint on a latched log succeeded")
	}
	if err := l.Close(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Close = %v, want the latched error", err)
	}
	// Reopened, the log verifies and continues.
	l, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, sampleRecord(5)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep, err := Verify(VerifyOptions{}, path); err != nil || rep.Records != 4 {
		t.Errorf("Verify = %+v, %v; want 4 records", rep, err)
	}
}

func TestSyncFailureLatches(t *testing.T) {
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
	ffs.sync = func() error { return syscall.EIO }
	if err := l.Append(ctx, sampleRecord(1)); !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append with a failing fsync = %v, want ErrUnavailable and EIO", err)
	}
	if got := readFile(t, path); string(got) != string(before) {
		t.Error("the record whose fsync failed is still in the file")
	}
	ffs.sync = nil
	if err := l.Append(ctx, sampleRecord(2)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Append after the failure = %v, want ErrUnavailable (never retry and report success)", err)
	}
	if err := l.Err(); !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EIO) {
		t.Errorf("Err() = %v on a latched log, want ErrUnavailable and EIO, as Append says", err)
	}
	l.Close()
}

// TestGroupCommit: appends that arrive while an fsync runs share the next
// one.
func TestGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ffs := &faultFS{FS: OS}
	l, err := Open(path, Options{FS: ffs})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ffs.syncs.Store(0)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ffs.sync = func() error {
		once.Do(func() {
			close(entered)
			<-release
		})
		return nil
	}
	ctx := context.Background()
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n+1)
	wg.Go(func() { errs <- l.Append(ctx, sampleRecord(0)) })
	<-entered // the first append is in its fsync
	for i := 1; i <= n; i++ {
		wg.Go(func() { errs <- l.Append(ctx, sampleRecord(i)) })
	}
	for {
		if size, _ := l.Head(); size == n+1 {
			break // all written, all waiting
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := ffs.syncs.Load(); got != 2 {
		t.Errorf("%d fsyncs for %d appends, want 2 (one, then one shared by the rest)", got, n+1)
	}
}

// TestConcurrentAppends appends from many goroutines under every policy:
// every record is there once and the chain verifies.
func TestConcurrentAppends(t *testing.T) {
	for _, p := range []SyncPolicy{SyncEach, SyncInterval, SyncNever} {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		l, err := Open(path, Options{Sync: p, SignerKey: testSKey, CheckpointEvery: 50})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 25 {
					if err := l.Append(context.Background(), sampleRecord(g*100+i)); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(VerifyOptions{Key: testVKey}, path)
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		if rep.Records-uint64(rep.CheckpointRecords) != 400 || rep.Checkpoints < 8 {
			t.Errorf("%v: Verify = %+v, want 400 records and 8+ checkpoints", p, rep)
		}
	}
}

// TestCloseWhileAppending: every Append that returned nil is in the log;
// the others failed with ErrClosed.
func TestCloseWhileAppending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{SignerKey: testSKey})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok atomic.Int64
	start := make(chan struct{})
	for g := range 8 {
		wg.Go(func() {
			<-start
			for i := range 50 {
				err := l.Append(context.Background(), sampleRecord(g*100+i))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrClosed):
					return
				default:
					t.Error(err)
					return
				}
			}
		})
	}
	close(start)
	for {
		if size, _ := l.Head(); size >= 20 {
			break
		}
		runtime.Gosched()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	rep, err := Verify(VerifyOptions{Key: testVKey}, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := int64(rep.Records) - int64(rep.CheckpointRecords); got != ok.Load() {
		t.Errorf("%d records in the log, %d appends returned nil", got, ok.Load())
	}
}

// TestConcurrentRotation appends from many goroutines to a log that
// rotates often, under group commit: every record is there once, in a
// chain that runs through the files.
func TestConcurrentRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{MaxSize: 2000, SignerKey: testSKey, CheckpointEvery: 30})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 25 {
				if err := l.Append(context.Background(), sampleRecord(g*100+i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Segments(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(VerifyOptions{Key: testVKey}, files...)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records-uint64(rep.CheckpointRecords) != 400 || rep.Files < 20 {
		t.Errorf("Verify = %+v, want 400 records in 20+ files", rep)
	}
}

// TestGroupCommitGathers: after a sync that released some appends while
// others waited for the next, the next sync's leader waits (up to about
// one sync's time) for the released callers to append again, so that one
// sync covers them all, rather than syncing at once for those that
// waited and once more for the rest.
func TestGroupCommitGathers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		ffs := &faultFS{FS: OS, noSync: true}
		l, err := Open(path, Options{FS: ffs})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ffs.syncs.Store(0)
		release := make(chan struct{})
		var first atomic.Bool
		ffs.sync = func() error {
			if first.CompareAndSwap(false, true) {
				<-release
			}
			time.Sleep(time.Millisecond) // each sync takes 1ms
			return nil
		}
		ctx := context.Background()
		const n = 9
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := l.Append(ctx, sampleRecord(0)); err != nil { // leads the first sync
				t.Error(err)
			}
			time.Sleep(100 * time.Microsecond) // the caller's own work
			if err := l.Append(ctx, sampleRecord(100)); err != nil {
				t.Error(err)
			}
		})
		synctest.Wait() // the first sync waits for release
		for i := 1; i <= n; i++ {
			wg.Go(func() {
				if err := l.Append(ctx, sampleRecord(i)); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait() // all wait for the next sync
		close(release)
		wg.Wait()
		if got := ffs.syncs.Load(); got != 2 {
			t.Errorf("%d syncs for %d appends, want 2 (the second for all the rest)", got, n+2)
		}
		if size, _ := l.Head(); size != n+2 {
			t.Errorf("%d records, want %d", size, n+2)
		}
	})
}

// TestCheckpointSyncRace: records appended while a checkpoint waits for
// its sync (which lets go of the log's lock) come after the checkpoint,
// which does not cover them: Close writes one that does.
func TestCheckpointSyncRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ffs := &faultFS{FS: OS, noSync: true}
	l, err := Open(path, Options{FS: ffs, Sync: SyncNever, SignerKey: testSKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Append(ctx, sampleRecord(0)); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ffs.sync = func() error {
		once.Do(func() {
			close(entered)
			<-release
		})
		return nil
	}
	done := make(chan error)
	go func() {
		_, err := l.Checkpoint(ctx)
		done <- err
	}()
	<-entered
	if err := l.Append(ctx, sampleRecord(1)); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(VerifyOptions{Key: testVKey, RequireCovered: true}, path)
	if err != nil || rep.Records != 4 || rep.Checkpoints != 2 {
		t.Fatalf("Verify = %+v, %v; want 4 records (the last a checkpoint that covers the record appended during the sync)", rep, err)
	}
}

package agentguard_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
)

// hangFS is the OS's files (as fullDisk is), but a file's Sync, once hang
// is set, signals entered and waits for release.
type hangFS struct {
	audit.FS
	hang     atomic.Bool
	entered  chan struct{}
	release  chan struct{}
	released atomic.Bool
}

type hangFile struct {
	audit.File
	fs *hangFS
}

func (h *hangFS) OpenFile(name string, flag int, perm fs.FileMode) (audit.File, error) {
	f, err := audit.OS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return hangFile{f, h}, nil
}

func (h *hangFS) Rename(o, n string) error                   { return audit.OS.Rename(o, n) }
func (h *hangFS) ReadDir(name string) ([]fs.DirEntry, error) { return audit.OS.ReadDir(name) }

func (f hangFile) Sync() error {
	if f.fs.hang.Load() {
		select {
		case f.fs.entered <- struct{}{}:
		default:
		}
		<-f.fs.release
	}
	return f.File.Sync()
}

// TestGuardedCallLeavesAHungSync: with the durable default and a disk
// whose sync hangs, a guarded call whose context ends while its decision
// (or its denial) waits for that sync is denied as cancelled, and its
// tool does not run; it does not hang with the disk. Once the sync
// returns, the call that led it runs.
func TestGuardedCallLeavesAHungSync(t *testing.T) {
	hfs := &hangFS{FS: audit.OS, entered: make(chan struct{}, 1), release: make(chan struct{})}
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)),
		agentguard.WithAuditFile(filepath.Join(t.TempDir(), "audit.jsonl"), audit.Options{FS: hfs}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if hfs.released.CompareAndSwap(false, true) {
			close(hfs.release)
		}
		g.Close()
	}()
	var ran atomic.Int32
	read := agentguard.Wrap(g, "read_file", func(context.Context, struct{ Path string }) (string, error) {
		ran.Add(1)
		return "ok", nil
	})
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot"})
	if _, err := read(ctx, struct{ Path string }{"/data/a"}); err != nil {
		t.Fatal(err)
	}
	hfs.hang.Store(true)
	first := make(chan error, 1)
	go func() { _, err := read(ctx, struct{ Path string }{"/data/b"}); first <- err }()
	<-hfs.entered // the first call's decision is in a sync that hangs

	cctx, cancel := context.WithCancel(ctx)
	second := make(chan error, 1)
	go func() { _, err := read(cctx, struct{ Path string }{"/data/c"}); second <- err }()
	runtime.Gosched() // most often the call is waiting for the sync by now; either way it must not hang
	cancel()
	err = <-second
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Code != agentguard.CodeCancelled || !errors.Is(err, context.Canceled) {
		t.Fatalf("a call whose decision waits for a hung sync, its context cancelled: %v, want a cancelled denial", err)
	}
	if n := ran.Load(); n != 1 {
		t.Fatalf("the tool ran %d times, want once (the call before the sync hung)", n)
	}
	hfs.hang.Store(false)
	hfs.released.Store(true)
	close(hfs.release)
	if err := <-first; err != nil {
		t.Fatalf("the call that led the sync, once it returned: %v", err)
	}
	if n := ran.Load(); n != 2 {
		t.Fatalf("the tool ran %d times, want twice", n)
	}
}

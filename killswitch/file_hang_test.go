package killswitch

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// bounded runs check on its own goroutine and fails the test when it has
// not returned within a generous bound: a check that blocks on the file
// system must not take the test down with it. It returns check's error.
func bounded(t *testing.T, what string, check func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- check() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not return within 20s: the kill file blocked it", what)
		return nil
	}
}

// mkfifo makes a named pipe at path, and on cleanup frees any reader left
// blocked opening it (a writer's non-blocking open lets it through).
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	t.Cleanup(func() {
		if fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			syscall.Close(fd)
		}
	})
}

// TestFileTriggerFIFOTripsAtOnce: a named pipe at the kill path blocked the
// trigger's open until a writer came, forever: the stop button wedged. It
// is not a regular file, so it trips, at once, and the check returns.
// Issue 12, item 2.
func TestFileTriggerFIFOTripsAtOnce(t *testing.T) {
	sw := New(Options{})
	path := filepath.Join(t.TempDir(), "KILL")
	mkfifo(t, path)
	tr, err := NewFileTrigger(sw, path, FileOptions{Stale: time.Hour, Scope: Scope{Tenant: "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	err = bounded(t, "Check of a named pipe", func() error { return tr.Check(time.Now()) })
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "named pipe") {
		t.Errorf("Check = %v, want ErrNotRegular naming a named pipe", err)
	}
	h, ok := sw.Lookup(Scope{Tenant: "acme"})
	if !ok || !strings.Contains(h.Why, "not a regular file") {
		t.Fatalf("Lookup = %+v, %v; want the trigger's scope tripped at once, well within Stale", h, ok)
	}
}

// TestFileTriggerDisappearsAndReappears walks a kill path through a
// regular file, nothing, a named pipe, nothing, and a regular file again:
// each appearance trips, each removal resumes (ResumeOnRemove), and no
// check blocks.
func TestFileTriggerDisappearsAndReappears(t *testing.T) {
	clk := newFakeClock()
	sw := New(Options{Clock: clk.Now})
	path := filepath.Join(t.TempDir(), "KILL")
	tr, err := NewFileTrigger(sw, path, FileOptions{ResumeOnRemove: true, Stale: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	check := func(step string) error {
		t.Helper()
		clk.Advance(time.Second)
		return bounded(t, step, func() error { return tr.Check(clk.Now()) })
	}
	tripped := func(step, why string) {
		t.Helper()
		h, ok := sw.Lookup(Everything)
		if !ok || !strings.Contains(h.Why, why) {
			t.Fatalf("%s: Lookup = %+v, %v; want tripped with %q", step, h, ok, why)
		}
	}
	resumed := func(step string) {
		t.Helper()
		if st := sw.Status(); len(st) != 0 {
			t.Fatalf("%s: Status = %+v, want nothing tripped", step, st)
		}
	}
	remove := func() {
		t.Helper()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}

	writeFile(t, path, "first stop\n")
	if err := check("file"); err != nil {
		t.Fatal(err)
	}
	tripped("file", "first stop")
	remove()
	if err := check("gone"); err != nil {
		t.Fatal(err)
	}
	resumed("gone")

	mkfifo(t, path)
	if err := check("named pipe"); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("named pipe: Check = %v, want ErrNotRegular", err)
	}
	tripped("named pipe", "not a regular file")
	remove()
	if err := check("gone again"); err != nil {
		t.Fatal(err)
	}
	resumed("gone again")

	writeFile(t, path, "second stop\n")
	if err := check("back"); err != nil {
		t.Fatal(err)
	}
	tripped("back", "second stop")
	remove()
	if err := check("gone for good"); err != nil {
		t.Fatal(err)
	}
	resumed("gone for good")
}

// TestFileTriggerHungFileSystem: a read that never answers (a hung network
// mount) counts as unreadable after Timeout, so each check returns, and
// once it has lasted Stale the trigger trips. While it hangs no second read
// is started; once it answers, the next check reads afresh.
func TestFileTriggerHungFileSystem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := New(Options{})
		path := filepath.Join(t.TempDir(), "KILL")
		tr, err := NewFileTrigger(sw, path, FileOptions{Stale: 30 * time.Second, Scope: Scope{Agent: "a"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Check(time.Now()); err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		var reads atomic.Int32
		tr.read = func(string) ([]byte, error) {
			reads.Add(1)
			<-release
			return nil, fs.ErrNotExist
		}
		start := time.Now()
		err = tr.Check(start)
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("a hung check waited %v, want the default Timeout of 1s", waited)
		}
		if err == nil || !strings.Contains(err.Error(), "did not answer within 1s") {
			t.Fatalf("Check = %v, want the timeout", err)
		}
		if _, ok := sw.Lookup(Scope{Agent: "a"}); ok {
			t.Fatal("tripped within the staleness bound")
		}
		for range 40 {
			tr.Check(time.Now())
		}
		h, ok := sw.Lookup(Scope{Agent: "a"})
		if !ok || !strings.Contains(h.Why, "did not answer") {
			t.Fatalf("a read hung past Stale: Lookup = %+v, %v; want a trip", h, ok)
		}
		if n := reads.Load(); n != 1 {
			t.Errorf("%d reads started while the first hung, want 1", n)
		}
		// The file system answers: its late answer is not taken for the
		// file's state now; a fresh read is.
		close(release)
		tr.read = func(string) ([]byte, error) { reads.Add(1); return []byte("stop\n"), nil }
		if err := tr.Check(time.Now()); err != nil {
			t.Fatalf("Check after the file system answered = %v", err)
		}
		if n := reads.Load(); n != 2 {
			t.Errorf("%d reads, want 2", n)
		}
	})
}

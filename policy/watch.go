package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// WatchOptions configures a Watcher. The zero value is valid: changes are
// applied silently and errors dropped (the last good policy stays).
type WatchOptions struct {
	// OnChange is called, on the goroutine that ran Check, with each new
	// policy once it is in place. A file that changes without changing the
	// policy's version (a comment, the key order) does not call it.
	OnChange func(*Policy)
	// OnError is called with each new problem reading or compiling the
	// file; the last good policy stays in place. The same problem is
	// reported once until the file changes.
	OnError func(error)
}

// Watcher keeps the policy of a file current: Check re-reads the file and
// swaps in the new policy when it compiles, and keeps the old one when it
// does not. It polls rather than relying on file-system events, so it
// works on every platform and in tests without sleeping (call Check). It
// is safe for concurrent use.
type Watcher struct {
	path string
	opts WatchOptions
	cur  atomic.Pointer[Policy]

	mu      sync.Mutex // serializes Check
	lastSum [sha256.Size]byte
	lastErr string
}

// NewWatcher loads the policy at path. It fails, with Load's error, when
// that first load fails: a watcher always has a good policy.
func NewWatcher(path string, opts WatchOptions) (*Watcher, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	p, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	w := &Watcher{path: path, opts: opts, lastSum: sha256.Sum256(data)}
	w.cur.Store(p)
	return w, nil
}

// Policy returns the current policy.
func (w *Watcher) Policy() *Policy { return w.cur.Load() }

// Check reads the file once. When its contents changed and compile, the
// new policy replaces the current one (changed is true when its version
// differs); when they do not compile, or the file cannot be read, err
// says why and the current policy stays.
func (w *Watcher) Check() (changed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := readFile(w.path)
	if err != nil {
		w.report(err)
		return false, err
	}
	sum := sha256.Sum256(data)
	if sum == w.lastSum {
		return false, nil
	}
	p, err := Parse(w.path, data)
	if err != nil {
		w.report(err)
		return false, err
	}
	w.lastSum, w.lastErr = sum, ""
	old := w.cur.Swap(p)
	if old != nil && old.Version() == p.Version() {
		return false, nil
	}
	if w.opts.OnChange != nil {
		w.opts.OnChange(p)
	}
	return true, nil
}

// report calls OnError once per distinct problem.
func (w *Watcher) report(err error) {
	if msg := err.Error(); msg != w.lastErr {
		w.lastErr = msg
		if w.opts.OnError != nil {
			w.opts.OnError(err)
		}
	}
}

// Run calls Check every interval until ctx ends, and returns
// context.Cause(ctx). interval must be positive.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("policy: watch interval %v is not positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
			w.Check() // problems go to OnError
		}
	}
}

// Watch loads the policy at path, calls onChange with it, then checks the
// file every interval until ctx ends, calling onChange with each new
// policy and onError with each problem (the last good policy stays). It
// returns the first load's error, or context.Cause(ctx) at the end.
// Either function may be nil.
func Watch(ctx context.Context, path string, interval time.Duration, onChange func(*Policy), onError func(error)) error {
	if interval <= 0 {
		return fmt.Errorf("policy: watch interval %v is not positive", interval)
	}
	w, err := NewWatcher(path, WatchOptions{OnChange: onChange, OnError: onError})
	if err != nil {
		return err
	}
	if onChange != nil {
		onChange(w.Policy())
	}
	return w.Run(ctx, interval)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, ErrorList{{File: path, Msg: "cannot read: " + err.Error()}}
	}
	defer f.Close()
	data, err := readBounded(f)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: err.Error()}}
	}
	return data, nil
}

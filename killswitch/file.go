package killswitch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"
)

// FileOptions configure a FileTrigger. The zero value trips everything,
// names the trigger "file:PATH", keeps trips after the file is removed, and
// trips at the first check that cannot read the file.
type FileOptions struct {
	// Scope is the scope a kill file trips; the file's own tenant, agent
	// and tool lines narrow it. The zero Scope is everything.
	Scope Scope
	// Who names the trigger in trips whose file has no "by:" line; empty
	// means "file:" followed by the path.
	Who string
	// ResumeOnRemove makes the removal of the file resume what it tripped
	// (and a change of the file's scope resume the old scope). Without it,
	// trips stay until resumed some other way.
	ResumeOnRemove bool
	// Stale is how long the file may be unreadable (other than absent)
	// before the trigger trips Scope: an unreadable trigger fails closed.
	// The time counts from the last successful check, or from the first
	// check. Zero trips at the first check that cannot read it.
	Stale time.Duration
	// Timeout bounds how long one check waits for the file system: a path
	// that blocks (a hung network mount) counts as unreadable once it has
	// not answered within Timeout, so that a check, and New and Close of a
	// Guard watching the file, return in bounded time. Zero means one
	// second, or Stale when that is shorter and not zero.
	Timeout time.Duration
	// OnError receives the errors of the checks that Run makes. The
	// trigger acts on them itself (see Stale); OnError is for logging.
	OnError func(error)
	// Clock gives Run the time of each check; nil means time.Now.
	Clock func() time.Time
}

// FileTrigger trips a Switch while a kill file exists. The file's first
// line is the reason; later lines may narrow the scope (see the package
// documentation). A FileTrigger is safe for concurrent use.
type FileTrigger struct {
	sw   *Switch
	path string
	opts FileOptions

	read func(path string) ([]byte, error) // ReadKillFile; replaced in tests

	mu       sync.Mutex
	lastGood time.Time       // the last check that read the file or saw it absent
	tripped  *Halt           // what this trigger last tripped, nil if nothing
	pending  chan readResult // a read that has not answered yet, nil if none
}

type readResult struct {
	data []byte
	err  error
}

// ErrNotRegular is matched by the error of a kill file that is not a
// regular file (a named pipe, a device, a directory, a socket): such a
// file trips the trigger's scope at once.
var ErrNotRegular = errors.New("not a regular file")

// errTimeout is the error of a read that did not answer within Timeout.
type errTimeout time.Duration

func (e errTimeout) Error() string {
	return fmt.Sprintf("the file system did not answer within %v", time.Duration(e))
}

// NewFileTrigger returns a trigger that trips sw from the kill file at
// path. Nothing happens until Check or Run.
func NewFileTrigger(sw *Switch, path string, opts FileOptions) (*FileTrigger, error) {
	if sw == nil {
		return nil, errors.New("killswitch: file trigger: nil Switch")
	}
	if path == "" {
		return nil, errors.New("killswitch: file trigger: empty path")
	}
	if opts.Stale < 0 {
		return nil, fmt.Errorf("killswitch: file trigger: negative Stale %v", opts.Stale)
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("killswitch: file trigger: negative Timeout %v", opts.Timeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
		if opts.Stale > 0 && opts.Stale < opts.Timeout {
			opts.Timeout = opts.Stale
		}
	}
	if opts.Who == "" {
		opts.Who = "file:" + path
	}
	return &FileTrigger{sw: sw, path: path, opts: opts, read: ReadKillFile}, nil
}

// Path returns the kill file's path.
func (t *FileTrigger) Path() string { return t.path }

// Check reads the kill file once, at time now, and acts on it:
//   - present: trips the file's scope with its reason, unless that exact
//     trip is already in force;
//   - absent: nothing, or with ResumeOnRemove resumes what the file tripped;
//   - unreadable, or not answering within Timeout: returns the error, and
//     trips Scope once the file has been unreadable for Stale or longer;
//   - not a regular file (a named pipe, a device, a directory): trips
//     Scope, and returns an error matching ErrNotRegular;
//   - malformed: trips Scope (the broadest the trigger may) with the first
//     line as reason, and returns the parse error.
//
// It returns the errors of reading, parsing and tripping (hooks included).
// It waits at most Timeout for the file system (plus the time hooks take).
// A read that does not answer is left running: the trigger starts no other
// until it has answered, and checks meanwhile count as unreadable.
func (t *FileTrigger) Check(now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastGood.IsZero() {
		t.lastGood = now
	}
	data, err := t.readFile()
	switch {
	case errors.Is(err, ErrNotRegular):
		t.lastGood = now
		err = fmt.Errorf("killswitch: kill file %s: %w", t.path, err)
		why := fmt.Sprintf("kill file %s present [%v]", t.path, err)
		return errors.Join(err, t.trip(t.opts.Scope, t.opts.Who, why, false))
	case errors.Is(err, fs.ErrNotExist):
		t.lastGood = now
		if t.tripped != nil && t.opts.ResumeOnRemove {
			old := t.tripped
			t.tripped = nil
			if err := t.sw.Resume(old.Scope, t.opts.Who, "kill file "+t.path+" removed"); err != nil && !errors.Is(err, ErrNotTripped) {
				return err
			}
		}
		// Forget the file, so that writing it again trips again.
		t.tripped = nil
		return nil
	case err != nil:
		err = fmt.Errorf("killswitch: kill file %s: %w", t.path, err)
		if since := now.Sub(t.lastGood); since >= t.opts.Stale {
			why := fmt.Sprintf("kill file %s unreadable for %v (%v)", t.path, since, err)
			if terr := t.trip(t.opts.Scope, t.opts.Who, why, true); terr != nil {
				return errors.Join(err, terr)
			}
		}
		return err
	}
	t.lastGood = now
	kf, perr := ParseKillFile(data)
	scope, serr := narrow(t.opts.Scope, kf.Scope)
	who := t.opts.Who
	if kf.By != "" {
		who = kf.By + " (" + t.opts.Who + ")"
	}
	why := kf.Reason
	if why == "" {
		why = "kill file " + t.path + " present"
	}
	if perr != nil || serr != nil {
		scope = t.opts.Scope
		why = fmt.Sprintf("%s [%v]", why, errors.Join(perr, serr))
	}
	terr := t.trip(scope, who, why, false)
	return errors.Join(perr, serr, terr)
}

// trip trips scope unless it is tripped already: with sticky (the file is
// unreadable) by anyone, for any reason; otherwise with this who and why.
func (t *FileTrigger) trip(scope Scope, who, why string, sticky bool) error {
	if cur, on := t.sw.Lookup(scope); on && (sticky || cur.Who == who && cur.Why == why) {
		if t.tripped == nil || t.tripped.Scope == scope {
			t.tripped = cur
		}
		return nil
	}
	if !sticky && t.opts.ResumeOnRemove && t.tripped != nil && t.tripped.Scope != scope {
		if err := t.sw.Resume(t.tripped.Scope, who, "kill file "+t.path+" changed"); err != nil && !errors.Is(err, ErrNotTripped) {
			return err
		}
	}
	err := t.sw.Trip(scope, who, why)
	t.tripped, _ = t.sw.Lookup(scope)
	return err
}

// narrow returns base with the fields of by set, or an error when by
// contradicts base.
func narrow(base, by Scope) (Scope, error) {
	set := func(name string, dst *string, v string) error {
		if v == "" {
			return nil
		}
		if *dst != "" && *dst != v {
			return fmt.Errorf("killswitch: kill file %s %q is outside the trigger's %s %q", name, v, name, *dst)
		}
		*dst = v
		return nil
	}
	return base, errors.Join(
		set("tenant", &base.Tenant, by.Tenant),
		set("agent", &base.Agent, by.Agent),
		set("tool", &base.Tool, by.Tool))
}

// readFile reads the kill file, waiting at most Timeout. A read still
// running from an earlier check is waited for first; as it began before
// this check, its answer only frees the way for a fresh read.
func (t *FileTrigger) readFile() ([]byte, error) {
	timer := time.NewTimer(t.opts.Timeout)
	defer timer.Stop()
	for fresh := false; ; fresh = true {
		if t.pending == nil {
			ch := make(chan readResult, 1)
			go func(read func(string) ([]byte, error), path string) {
				data, err := read(path)
				ch <- readResult{data, err}
			}(t.read, t.path)
			t.pending, fresh = ch, true
		}
		select {
		case r := <-t.pending:
			t.pending = nil
			if fresh {
				return r.data, r.err
			}
		case <-timer.C:
			return nil, errTimeout(t.opts.Timeout)
		}
	}
}

// ReadKillFile reads the kill file at path, at most MaxKillFileSize+1
// bytes, without blocking on what is not a regular file: it checks the
// file's type before opening it, opens it non-blocking and checks the
// opened file's type again, so that a named pipe or a device put in its
// place returns an error matching ErrNotRegular instead of waiting for a
// writer. A file system that does not answer (a hung network mount) can
// still block it: FileTrigger bounds that with its Timeout.
func ReadKillFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := regular(fi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := regular(fi); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, MaxKillFileSize+1))
}

func regular(fi fs.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	kind := "special file"
	switch m := fi.Mode(); {
	case m&fs.ModeNamedPipe != 0:
		kind = "named pipe"
	case m.IsDir():
		kind = "directory"
	case m&fs.ModeSocket != 0:
		kind = "socket"
	case m&fs.ModeDevice != 0:
		kind = "device"
	}
	return fmt.Errorf("a %s, %w", kind, ErrNotRegular)
}

// Run checks the kill file every interval until ctx is done, and returns
// ctx's error. The first check happens at once.
func (t *FileTrigger) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("killswitch: file trigger: interval %v is not positive", interval)
	}
	now := time.Now
	if t.opts.Clock != nil {
		now = t.opts.Clock
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := t.Check(now()); err != nil && t.opts.OnError != nil {
			t.opts.OnError(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

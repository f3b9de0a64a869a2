package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"golang.org/x/mod/sumdb/note"
)

// SyncPolicy says when appended records are made durable with fsync.
type SyncPolicy uint8

// The sync policies.
const (
	// SyncEach makes every record durable before Append returns.
	// Concurrent appends share one fsync (group commit): the append that
	// leads a sync first waits, up to about as long as the last sync
	// took (at most 2ms), until as many appends wait as there were when
	// that sync ended, so that the callers it released, who are likely
	// on their way back, share the next one. The leader writes the
	// records of every append that waits with one write(2), then syncs:
	// a record is out of the process, and on disk, before its Append
	// returns, and a batch costs one system call for its records, not
	// one per record. It is the default.
	SyncEach SyncPolicy = iota
	// SyncInterval syncs in the background every Options.SyncInterval: a
	// crash loses at most that much of the log.
	SyncInterval
	// SyncNever leaves syncing to the operating system.
	SyncNever
)

// String returns "each", "interval" or "never".
func (p SyncPolicy) String() string {
	switch p {
	case SyncEach:
		return "each"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return "SyncPolicy(" + strconv.Itoa(int(p)) + ")"
}

// Options configure a Log. The zero value is the durable default: a new
// random log ID, SyncEach, no rotation, no checkpoints (they need a
// SignerKey), default redaction, the system clock, no operational logging
// and no mirror, on the operating system's files with mode 0600.
type Options struct {
	// ID is the ID of a new log. For an existing log it must be empty or
	// equal to the log's ID. Empty means a new UUIDv7.
	ID string

	Sync SyncPolicy
	// SyncInterval is the period of SyncInterval; zero means 1s.
	SyncInterval time.Duration

	// MaxSize rotates the file when it has reached this many bytes; zero
	// means never.
	MaxSize int64
	// MaxAge rotates the file when its first record is this old; zero
	// means never.
	MaxAge time.Duration

	// SignerKey is a note signer key (see GenerateKey) that signs
	// checkpoints. Empty means no checkpoints.
	SignerKey string
	// CheckpointEvery writes a checkpoint after this many records; zero
	// means none by count.
	CheckpointEvery int
	// CheckpointInterval writes a checkpoint this often when records were
	// appended since the last; zero means none by time. Close always
	// writes one when records were appended since the last.
	CheckpointInterval time.Duration
	// Sinks receive every checkpoint, after it is in the log.
	Sinks []Sink

	// Redaction says what is removed from arguments and error text.
	Redaction Redaction

	// Clock gives the time of records; nil means time.Now.
	Clock func() time.Time
	// Logger receives operational messages (recovery, background sync
	// failures, sink failures); nil means none. It never replaces the log.
	Logger *zap.Logger
	// Mirror, when set, receives a copy of every record at info level.
	Mirror *zap.Logger

	// NoMap writes each record into the file with write(2). By default,
	// on Linux, a Log whose Sync is SyncNever or SyncInterval copies its
	// records into a shared mapping of the file (MAP_SHARED) and makes no
	// system call per record; the file then ends with a zero tail of
	// reserved space while the Log is open (see FORMAT.md), which Close
	// cuts. Set NoMap for programs that follow the file as it grows and
	// do not skip the zero tail. A SyncEach Log, a Log on an FS other
	// than OS, and one whose file cannot be reserved (fallocate) or
	// mapped write with write(2): under SyncEach every batch of records
	// is synced, and each fdatasync of a mapped file write-protects the
	// pages it cleans, so that the next record into one takes a page
	// fault (measured: Durable/N=64 at 22 µs a call mapped, 16 µs by
	// write(2) one record at a time; a batch's records now go out in one
	// write, see SyncEach).
	NoMap bool

	// FS is the file layer; nil means OS.
	FS FS
	// Perm is the mode of new files; zero means 0600.
	Perm fs.FileMode
}

// Errors of a Log.
var (
	// ErrUnavailable is returned by Append and Checkpoint once a write or
	// an fsync has failed: the log is latched until it is reopened.
	ErrUnavailable = errors.New("audit: log unavailable")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrLocked is returned by Open when another Log, in this process or
	// another, has the file open.
	ErrLocked = errors.New("audit: log in use")
)

// Recovery describes a torn last line that Open cut off: a record that a
// crash interrupted, or, in a file written through a shared mapping, the
// damaged end that a crash left (a line holding NUL bytes and what
// follows it).
type Recovery struct {
	File   string // the log file
	Offset int64  // where the torn line started: the file's new size
	Bytes  int64  // how many bytes were cut, without the zero tail after them
	Broken string // the file the cut bytes were appended to
}

// Log is an append-only, hash-chained audit log in JSON lines. It is safe
// for concurrent use.
type Log struct {
	path   string
	opts   Options
	fsys   FS
	red    *Redactor
	signer note.Signer
	clock  func() time.Time
	logger *zap.Logger
	heads  midCache // the SHA-256 states after the heads of recent lines

	mu        sync.Mutex
	cond      sync.Cond
	f         File
	id        string
	seq       uint64 // the next record's seq
	prev      Hash   // the hash of the last line
	off       int64  // the size of the complete records in f
	fileSeq   uint64 // the first seq in f
	fileStart time.Time
	synced    uint64 // records with seq below are durable
	syncedOff int64
	syncing   bool // a waiter leads a sync: gathering records, or syncing

	// Group commit: a leader waits, before it syncs, until as many
	// appends wait for it as there were when the last sync ended, those
	// it covered and those that came during it (expect), up to about as
	// long as that sync lasted (lastSync): the callers that sync released
	// are likely on their way back, and one sync for all of them costs
	// less than one for the first to come back and one for the rest.
	joined    int // appends waiting since the last sync took its records
	expect    int
	lastSync  time.Duration
	gathering bool          // the leader waits for records
	gathered  chan struct{} // tells it that they are in
	gatherT   *time.Timer
	err       error // the latched failure
	closed    bool
	cpSeq     uint64 // seq just after the last checkpoint record
	since     int    // records since the last checkpoint
	recovery  *Recovery

	// mm is the mapping records are copied into; nil when they are
	// written with write(2). msys are its system calls.
	mm   *mapping
	msys mapSys

	// pend holds the encoded lines of records appended with AppendLater
	// and not yet written (each with its newline), followed, while a
	// record is being written, by that record's line: one write(2) takes
	// them all. written and wprev are seq and prev as far as f holds.
	pend     []byte
	written  uint64
	wprev    Hash
	lazyOn   bool          // the flusher runs
	lazyWait bool          // the flusher will write pend within lazyDelay
	kick     chan struct{} // wakes the flusher
	stopping bool          // Close has begun: no new flusher

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// lazyDelay bounds how long a record appended with AppendLater waits for
// a write that takes it along.
const lazyDelay = 10 * time.Millisecond

// maxPend is how many bytes of lazy records are held before they are
// written without waiting.
const maxPend = 64 << 10

// Open opens the log at path, creating it if needed, and recovers it: a
// zero tail (NUL bytes after the last line, see FORMAT.md) is cut off; a
// torn last line (one without its newline, left by a crash in the middle
// of a write), or a line holding NUL bytes and everything after it (left
// by a crash while records were copied into the file's mapping), is cut
// off, appended to path+".broken" and reported by Recovered; any other
// damage in the file is a *VerifyError naming the seq, line and byte
// offset, and nothing is cut. When rotated files exist
// (see Segments), the chain continues from the last one.
func Open(path string, opts Options) (*Log, error) {
	return open(path, opts, osMapSys)
}

// open is Open with the system calls of the mapping.
func open(path string, opts Options, msys mapSys) (*Log, error) {
	l := &Log{path: path, opts: opts, fsys: opts.FS, clock: opts.Clock, logger: opts.Logger, msys: msys}
	if err := l.validate(); err != nil {
		return nil, err
	}
	l.cond.L = &l.mu
	l.gathered = make(chan struct{}, 1)
	if err := l.open(); err != nil {
		return nil, err
	}
	l.written, l.wprev = l.seq, l.prev
	l.stop = make(chan struct{})
	if opts.Sync == SyncInterval || opts.CheckpointInterval > 0 {
		l.wg.Add(1)
		go l.background()
	}
	return l, nil
}

func (l *Log) validate() error {
	o := &l.opts
	switch {
	case o.Sync > SyncNever:
		return fmt.Errorf("audit: Options.Sync: unknown policy %d", o.Sync)
	case o.SyncInterval < 0:
		return fmt.Errorf("audit: Options.SyncInterval %v is negative", o.SyncInterval)
	case o.MaxSize < 0:
		return fmt.Errorf("audit: Options.MaxSize %d is negative", o.MaxSize)
	case o.MaxAge < 0:
		return fmt.Errorf("audit: Options.MaxAge %v is negative", o.MaxAge)
	case o.CheckpointEvery < 0:
		return fmt.Errorf("audit: Options.CheckpointEvery %d is negative", o.CheckpointEvery)
	case o.CheckpointInterval < 0:
		return fmt.Errorf("audit: Options.CheckpointInterval %v is negative", o.CheckpointInterval)
	case (o.CheckpointEvery > 0 || o.CheckpointInterval > 0 || len(o.Sinks) > 0) && o.SignerKey == "":
		return errors.New("audit: checkpoints or sinks configured without Options.SignerKey")
	case strings.ContainsAny(o.ID, "\n\x00"):
		return errors.New("audit: Options.ID contains a newline or NUL")
	}
	for i, s := range o.Sinks {
		if s == nil {
			return fmt.Errorf("audit: Options.Sinks[%d] is nil", i)
		}
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = time.Second
	}
	if o.Perm == 0 {
		o.Perm = 0o600
	}
	if l.fsys == nil {
		l.fsys = OS
	}
	if l.clock == nil {
		l.clock = time.Now
	}
	if l.logger == nil {
		l.logger = zap.NewNop()
	}
	if o.SignerKey != "" {
		s, err := note.NewSigner(o.SignerKey)
		if err != nil {
			return fmt.Errorf("audit: Options.SignerKey: %v", err)
		}
		l.signer = s
	}
	red, err := NewRedactor(o.Redaction)
	if err != nil {
		return err
	}
	l.red = red
	return nil
}

// SegmentName returns the name a rotated file of the log at path gets:
// path, a dot, and the first seq in the file as 20 decimal digits.
func SegmentName(path string, firstSeq uint64) string {
	return fmt.Sprintf("%s.%020d", path, firstSeq)
}

// Segments returns the files of the log at path in chain order: its
// rotated files (see SegmentName), then path itself when it exists.
func Segments(path string) ([]string, error) {
	return segments(OS, path, true)
}

func segments(fsys FS, path string, withActive bool) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: list %s: %w", dir, err)
	}
	var out []string
	active := false
	for _, e := range ents {
		n := e.Name()
		if n == base {
			active = true
			continue
		}
		rest, ok := strings.CutPrefix(n, base+".")
		if !ok || len(rest) != 20 || strings.Trim(rest, "0123456789") != "" {
			continue
		}
		out = append(out, filepath.Join(filepath.Dir(path), n))
	}
	slices.Sort(out)
	if withActive && active {
		out = append(out, path)
	}
	return out, nil
}

func (l *Log) open() error {
	segs, err := segments(l.fsys, l.path, false)
	if err != nil {
		return err
	}
	v := newVerifier(nil)
	if len(segs) > 0 {
		if err := l.continueFrom(v, segs[len(segs)-1]); err != nil {
			return err
		}
	}
	f, err := l.fsys.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, l.opts.Perm)
	if err != nil {
		return fmt.Errorf("audit: open: %w", err)
	}
	if err := lockFile(f, l.path); err != nil {
		f.Close()
		return err
	}
	l.f = f
	l.fileSeq = v.seq
	if err := l.recover(v); err != nil {
		f.Close()
		return err
	}
	l.id, l.seq, l.prev = v.log, v.seq, v.prev
	l.cpSeq = v.cpSeq
	if l.id == "" {
		l.id = l.opts.ID
		if l.id == "" {
			u, err := uuid.NewV7()
			if err != nil {
				f.Close()
				return fmt.Errorf("audit: log ID: %v", err)
			}
			l.id = u.String()
		}
	} else if l.opts.ID != "" && l.opts.ID != l.id {
		f.Close()
		return fmt.Errorf("audit: %s is log %q, not Options.ID %q", l.path, l.id, l.opts.ID)
	}
	if err := l.startMapping(); err != nil {
		f.Close()
		return err
	}
	// Make the file, and its name when it is new, durable.
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit: sync %s: %w", l.path, err)
	}
	if err := l.syncDir(); err != nil {
		f.Close()
		return fmt.Errorf("audit: sync the directory of %s: %w", l.path, err)
	}
	l.synced, l.syncedOff = l.seq, l.off
	return nil
}

// startMapping maps the active file, whose records end at l.off, unless
// Options.NoMap is set or the file cannot be mapped: then records are
// written with write(2). An error means the file could not be cut back
// after a failed reservation.
func (l *Log) startMapping() error {
	if l.opts.NoMap || l.msys.mmap == nil || (l.opts.Sync == SyncEach && !l.msys.mapEach) {
		return nil
	}
	chunk := int64(mapChunk)
	if l.msys.chunk > 0 {
		chunk = l.msys.chunk
	} else if l.opts.MaxSize > 0 && l.opts.MaxSize < chunk {
		// The file rotates at MaxSize, after the record that crosses it.
		chunk = max(64<<10, (l.opts.MaxSize+(64<<10)-1)&^(64<<10-1))
	}
	m, err := newMapping(l.f, l.off, chunk, l.msys)
	if err == nil {
		if m != nil {
			m.limit = l.opts.MaxSize
			m.hugeFill = hugeFill(l.opts)
			m.setPrepAt()
		}
		l.mm = m
		return nil
	}
	l.logger.Warn("audit: cannot map the log file: writing records with write(2)",
		zap.String("file", l.path), zap.Error(err))
	if err := l.f.Truncate(l.off); err != nil {
		return fmt.Errorf("audit: cut %s back after a failed reservation: %w", l.path, err)
	}
	return nil
}

// hugeFill is the mapping's hugeFill for a log with options o: how often
// at most its file is written back. SyncEach syncs every record, and
// gets small folios only. Under SyncNever the kernel's flusher writes
// dirty pages back every 5s by default (vm.dirty_writeback_centisecs).
func hugeFill(o Options) time.Duration {
	switch o.Sync {
	case SyncNever:
		return 5 * time.Second
	case SyncInterval:
		if o.SyncInterval > 0 {
			return o.SyncInterval
		}
		return time.Second
	}
	return 0
}

// unmapLocked stops writing through the mapping: it unmaps the file and
// cuts it at l.off, the end of the records. Records are then written with
// write(2). A failure to cut latches the log.
func (l *Log) unmapLocked(why error) error {
	m := l.mm
	l.mm = nil
	l.logger.Warn("audit: writing records with write(2) from now on",
		zap.String("file", l.path), zap.Error(why))
	if err := m.close(l.off); err != nil {
		l.failLocked(fmt.Errorf("cut %s: %w", l.path, err), -1)
		return l.unavailable()
	}
	return nil
}

// continueFrom sets v to continue after the last line of the rotated file
// seg.
func (l *Log) continueFrom(v *verifier, seg string) error {
	f, err := l.fsys.OpenFile(seg, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("audit: open: %w", err)
	}
	defer f.Close()
	var last []byte
	err = readLines(f, func(line []byte, off int64, complete bool) error {
		last = append(last[:0], line...)
		if !complete {
			return &VerifyError{File: seg, Offset: off, Err: ErrTorn}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(last) == 0 {
		return &VerifyError{File: seg, Err: fmt.Errorf("%w: empty rotated file", ErrSyntax)}
	}
	r, err := ParseRecord(last)
	if err != nil {
		return &VerifyError{File: seg, Err: err}
	}
	v.seq, v.prev, v.log, v.started = r.Seq+1, HashLine(last), r.Log, true
	if r.Kind == KindCheckpoint {
		v.cpSeq = v.seq
	}
	return nil
}

// recover reads the active file through v, cutting what a crash left
// after the last complete record: a zero tail (space the mapping writer
// had reserved) silently, and a torn line, or a damaged region where a
// line holds NUL bytes (a record that was being copied into the mapping,
// or pages a power failure lost), into the .broken file.
func (l *Log) recover(v *verifier) error {
	if _, err := l.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("audit: read %s: %w", l.path, err)
	}
	lineNo := 0
	var torn []byte
	tornOff := int64(-1)
	err := readLines(l.f, func(line []byte, off int64, complete bool) error {
		lineNo++
		if !complete {
			torn, tornOff = bytes.TrimRight(line, "\x00"), off
			return nil
		}
		r, err := v.line(line, l.path, lineNo, off)
		if err != nil {
			if bytes.IndexByte(line, 0) >= 0 {
				// No record holds a NUL byte: this is where the writer
				// stopped, and everything from here is cut.
				tornOff = off
				return errStop
			}
			return v.fail(err, l.path, lineNo, off)
		}
		if lineNo == 1 {
			l.fileStart = r.Time
		}
		l.off = off + int64(len(line)) + 1
		return nil
	})
	if err != nil && err != errStop {
		return err
	}
	if err == errStop {
		if _, err := l.f.Seek(tornOff, io.SeekStart); err != nil {
			return fmt.Errorf("audit: read %s: %w", l.path, err)
		}
		rest, err := io.ReadAll(io.LimitReader(l.f, maxLine))
		if err != nil {
			return fmt.Errorf("audit: read %s: %w", l.path, err)
		}
		torn = bytes.TrimRight(rest, "\x00")
	}
	size, err := l.f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", l.path, err)
	}
	if len(torn) > 0 {
		broken := l.path + ".broken"
		bf, err := l.fsys.OpenFile(broken, os.O_WRONLY|os.O_CREATE|os.O_APPEND, l.opts.Perm)
		if err != nil {
			return fmt.Errorf("audit: save torn line: %w", err)
		}
		out := torn
		if torn[len(torn)-1] != '\n' {
			out = append(bytes.Clone(torn), '\n')
		}
		_, err = bf.Write(out)
		if err == nil {
			err = bf.Sync()
		}
		if cerr := bf.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("audit: save torn line: %w", err)
		}
		l.recovery = &Recovery{File: l.path, Offset: tornOff, Bytes: int64(len(torn)), Broken: broken}
		l.logger.Warn("audit: cut a torn last line", zap.String("file", l.path),
			zap.Int64("offset", tornOff), zap.Int("bytes", len(torn)), zap.String("broken", broken))
	} else if size > l.off {
		l.logger.Info("audit: cut a zero tail", zap.String("file", l.path),
			zap.Int64("offset", l.off), zap.Int64("bytes", size-l.off))
	}
	if size > l.off {
		if err := l.f.Truncate(l.off); err != nil {
			return fmt.Errorf("audit: cut torn line: %w", err)
		}
	}
	return nil
}

// errStop ends a readLines early.
var errStop = errors.New("audit: stop")

// maxLine is the longest line the log reads.
const maxLine = 64 << 20

// readLines calls fn for each line of r with its byte offset; the last
// line is incomplete when it has no newline. A zero tail (see allNUL)
// after the last newline is not a line: fn does not see it.
func readLines(r io.Reader, fn func(line []byte, off int64, complete bool) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var off int64
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, chunk...)
			if len(long) > maxLine {
				return &VerifyError{Offset: off, Err: fmt.Errorf("%w: line longer than %d bytes", ErrSyntax, maxLine)}
			}
			continue
		}
		line := chunk
		if long != nil {
			long = append(long, chunk...)
			line = long
		}
		if err == io.EOF {
			if len(line) > 0 && !allNUL(line) {
				if ferr := fn(line, off, false); ferr != nil {
					return ferr
				}
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: read: %w", err)
		}
		if ferr := fn(line[:len(line)-1], off, true); ferr != nil {
			return ferr
		}
		off += int64(len(line))
		long = nil
	}
}

// Recovered reports the torn line that Open cut off, or nil.
func (l *Log) Recovered() *Recovery { return l.recovery }

// ID returns the log's ID.
func (l *Log) ID() string { return l.id }

// Path returns the path of the log's active file.
func (l *Log) Path() string { return l.path }

// Redactor returns the log's redactor.
func (l *Log) Redactor() *Redactor { return l.red }

// Head returns the number of records in the log and the hash of the last
// line. Records appended with AppendLater are written first.
func (l *Log) Head() (size uint64, head Hash) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed && l.err == nil {
		_ = l.flushLocked() // a failure latches the log and rolls seq back
	}
	return l.seq, l.prev
}

// Err returns the failure that latched the log, or nil. Like the errors of
// Append and Close, it wraps ErrUnavailable and the cause.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		return nil
	}
	return l.unavailable()
}

// Append redacts r (its Args, and its Error, Reason and Note text, with
// the secrets found in Args), assigns its Seq, Time (unless set: a zero
// Time is the Log's clock's), Log and Prev, and writes it as one line. Under SyncEach it returns after the line is
// durable. r.Kind must be set and must not be KindCheckpoint.
//
// An error means the record may not be in the log, and the caller must
// not act on it. Once a write or fsync fails the log is latched: that
// Append and every later one fail with an error that wraps
// ErrUnavailable and the cause, until the log is reopened. A failed write
// is cut back so that no partial record stays visible.
//
// ctx does not keep r out of the log: it bounds the wait for r's sync.
// When ctx ends while Append waits for a sync that another append leads
// (a disk whose sync hangs), or before r's sync starts, Append returns
// ctx's error, wrapped: r is in the log, and is written and synced later
// (by the log's flusher, the next sync or Close). An Append that leads a
// sync waits for it whatever ctx says.
func (l *Log) Append(ctx context.Context, r *Record) error {
	if err := l.red.prepare(r, "Log"); err != nil {
		return err
	}

	return l.append(ctx, r, false)
}

// AppendLater appends r as Append does, but returns before r is made
// durable. Through the file's mapping (the default on Linux, see
// Options.NoMap) r is out of the process when AppendLater returns, as
// with Append; written with write(2), it goes out in the same write as
// the next record appended with Append, or by Sync, Checkpoint, Head or
// Close, and at the latest about 10 ms after AppendLater returns. Under
// SyncEach it is made durable by the next sync, within about 10 ms. It
// costs no system call. It is for records that
// nothing waits on, such as the result of a call whose decision is in the
// log already: a crash of the process can lose the records appended this
// way in its last 10 ms, never one appended with Append. A write that
// fails while r waits latches the log, and r is lost with the write.
func (l *Log) AppendLater(ctx context.Context, r *Record) error {
	if err := l.red.prepare(r, "Log"); err != nil {
		return err
	}
	return l.append(ctx, r, true)
}

func (l *Log) append(ctx context.Context, r *Record, lazy bool) error {
	// The line's prefix (up to "seq":) depends on r, the time and the
	// log's ID alone: it is encoded and hashed before the lock, which is
	// held only for what is sequential (the seq, the prev, the end of the
	// hash and the copy).
	lb := lineBufs.Get().(*lineBuf)
	now := r.Time // the caller's, when it gives one (see Record.Time)
	if now.IsZero() {
		now = l.clock() // read before the lock, which it would lengthen
	}
	now = now.UTC()
	if err := lb.prefix(r, now, l.id, &l.heads); err != nil {
		lb.free()
		return err
	}
	l.mu.Lock()
	seq, err := l.writeLocked(r, now, lazy, lb)
	if err == nil && !lazy && l.opts.Sync == SyncEach {
		err = l.commitLocked(ctx, seq+1, true)
	}
	if err == nil && lazy && !l.lazyWait && (len(l.pend) > 0 || l.mm != nil && l.opts.Sync == SyncEach) {
		// Written out within lazyDelay; through the mapping, it is out
		// already, and is made durable then.
		l.armLocked()
	}
	var cp *Checkpoint
	var cpErr error
	if err == nil {
		l.since++
		if l.opts.CheckpointEvery > 0 && l.since >= l.opts.CheckpointEvery {
			cp, cpErr = l.checkpointLocked()
		}
	}
	l.mu.Unlock()
	lb.free()
	if err != nil {
		return err
	}
	l.mirror(r)
	if cpErr != nil {
		l.logger.Error("audit: checkpoint failed", zap.Error(cpErr))
	} else if cp != nil {
		if err := l.toSinks(context.WithoutCancel(ctx), cp); err != nil {
			l.logger.Error("audit: checkpoint sink failed", zap.Error(err))
		}
	}
	return nil
}

// lineBuf is a line being appended: its prefix, up to and including
// "seq": (see AppendJSON), encoded before the log's lock, and the SHA-256
// state after the prefix, which the tail (appendTail) completes under
// the lock. SHA-256 hashes its input in 64-byte blocks from the start,
// so the hash of the prefix's blocks is done before the lock, and what
// is left under it is the tail, the prefix's last partial block and the
// padding: two or three blocks.
type lineBuf struct {
	b    []byte
	h    hash.Hash
	st   sha256State // h's state, to save and restore
	tail [maxTail]byte
	sum  [sha256.Size]byte
}

// sha256State is what crypto/sha256's hash offers to save its state and
// start again from it.
type sha256State interface {
	encoding.BinaryAppender
	encoding.BinaryUnmarshaler
}

// lineBufs are the lineBufs of the lines being appended.
var lineBufs = sync.Pool{New: func() any {
	h := sha256.New()
	return &lineBuf{h: h, st: h.(sha256State)}
}}

// prefix encodes the prefix of r's line, at time now in the log of the ID
// log, into lb and hashes it; the line's head comes from heads (which may
// be nil) when heads has it. On an error lb holds part of it.
func (lb *lineBuf) prefix(r *Record, now time.Time, log string, heads *midCache) error {
	b := heads.start(lb, r, log)
	n := len(b)
	b, err := r.appendBody3(b, now)
	if err == nil {
		b = append(b, seqKey...)
		lb.h.Write(b[n:])
	}
	lb.b = b
	return err
}

// midCache keeps the heads of recent lines (appendHead3: the log's ID,
// the kind, the principal, the env, the tool, its labels, the policy's
// version, the verdict, the estimate, the outcome and the actual cost)
// with the SHA-256 state after each, so that a line whose head is that of
// an earlier one is neither encoded nor hashed up to its time: the
// records of a tool's calls by one principal share their head. A head is
// kept from the second line that has it, so that a head seen once costs
// no allocation; a slot holds one head, the last kept of those that map
// to it. Its slots are read without a lock and replaced whole.
type midCache struct {
	slots [midSlots]midSlot
}

// midSlot is one slot of a midCache.
type midSlot struct {
	kept atomic.Pointer[midState]
	seen atomic.Uint64 // the headKey hash of the last head that mapped here and was not kept
}

// headKey is what a line's head is made of but its costs: equal keys
// and equal costs, equal heads.
type headKey struct {
	log, env, tool, policy              string
	decision, code, stage, rule, reason string
	outcome                             string
	kind                                Kind
	who                                 Principal
	// labels is the plan whose labels the head holds (Plan.labels), or
	// nil for a head without labels.
	labels *Plan
}

// midState is a head, what it is made of, and the state of SHA-256
// after it.
type midState struct {
	key      headKey
	estimate []Cost
	actual   []Cost
	head     []byte
	state    []byte // sha256State.AppendBinary after head
}

const (
	// midSlots is the number of heads a midCache keeps.
	midSlots = 16
	// minMid is the length of the shortest head worth keeping: two
	// blocks of SHA-256 cost more than finding the state and restoring it.
	minMid = 128
)

// midSeed is the seed of the hash that picks a head's slot.
var midSeed = maphash.MakeSeed()

// start appends the head of r's line in the log of the ID log to
// lb.b[:0], hashes it into lb.h from the start, and returns the bytes. It
// takes both from the head kept for r's key when there is one; otherwise
// it encodes and hashes the head, and keeps it when its key was seen
// before. A record with labels that are not its plan's is not kept. c
// may be nil: then it encodes and hashes the head.
func (c *midCache) start(lb *lineBuf, r *Record, log string) []byte {
	k := headKey{log: log, env: r.Env, tool: r.Tool, policy: r.PolicyVersion,
		decision: r.Decision, code: r.Code, stage: r.Stage, rule: r.Rule, reason: r.Reason,
		outcome: r.Outcome, kind: r.Kind, who: r.Principal}
	keep := c != nil
	if len(r.Labels) > 0 {
		if pl := r.Plan; pl != nil && pl.sameLabels(r.Labels) {
			k.labels = pl
		} else {
			keep = false
		}
	}
	var slot *midSlot
	var sum uint64
	if keep {
		sum = k.hash()
		slot = &c.slots[sum%midSlots]
		e := slot.kept.Load()
		if e != nil && e.key == k && slices.Equal(e.estimate, r.Estimate) && slices.Equal(e.actual, r.Actual) &&
			lb.st.UnmarshalBinary(e.state) == nil {
			return append(lb.b[:0], e.head...)
		}
	}
	b := r.appendHead3(lb.b[:0], log)
	lb.h.Reset()
	lb.h.Write(b)
	if !keep || len(b) < minMid || slot.seen.Swap(sum) != sum {
		return b
	}
	if state, err := lb.st.AppendBinary(make([]byte, 0, 128)); err == nil {
		slot.kept.Store(&midState{key: k, estimate: slices.Clone(r.Estimate), actual: slices.Clone(r.Actual),
			head: bytes.Clone(b), state: state})
	}
	return b
}

// hash returns a hash of the parts of k that differ most from head to
// head: the agent, the session, the tool and the kind.
func (k *headKey) hash() uint64 {
	h := maphash.String(midSeed, k.who.Agent)
	h = h*31 + maphash.String(midSeed, k.who.Session)
	h = h*31 + maphash.String(midSeed, k.tool)
	return h*31 + uint64(len(k.kind))
}

// line appends lb's tail for seq and prev, and returns it and the hash of
// the whole line.
func (lb *lineBuf) line(seq uint64, prev Hash) (tail []byte, h Hash) {
	tail = appendTail(lb.tail[:0], seq, prev)
	lb.h.Write(tail)
	return tail, Hash(lb.h.Sum(lb.sum[:0]))
}

// free returns lb to lineBufs, unless its buffer grew large.
func (lb *lineBuf) free() {
	if cap(lb.b) <= 64<<10 {
		lineBufs.Put(lb)
	}
}

func (l *Log) unavailable() error {
	return fmt.Errorf("%w: %w", ErrUnavailable, l.err)
}

// writeLocked writes r, whose line's prefix is in lb (see lineBuf), as
// the next line and returns its seq. It copies the line into the mapping,
// or writes it with the lazy lines before it, unless lazy is set (then
// the line waits in pend, up to maxPend bytes).
func (l *Log) writeLocked(r *Record, now time.Time, lazy bool, lb *lineBuf) (uint64, error) {
	if l.closed {
		return 0, ErrClosed
	}
	if l.err != nil {
		return 0, l.unavailable()
	}
	size := l.off + int64(len(l.pend))
	if size > 0 && (l.opts.MaxSize > 0 && size >= l.opts.MaxSize ||
		l.opts.MaxAge > 0 && now.Sub(l.fileStart) >= l.opts.MaxAge) {
		if err := l.flushLocked(); err != nil {
			return 0, err
		}
		if err := l.rotateLocked(); err != nil {
			return 0, err
		}
		size = 0
	}
	r.Seq, r.Time, r.Log, r.Prev = l.seq, now, l.id, l.prev
	head := lb.b
	tail, h := lb.line(r.Seq, r.Prev)
	n := len(head) + len(tail)
	if l.mm != nil {
		if err := l.mm.reserve(l.off, n+1); err != nil {
			// A full disk, or no more address space: write(2) from here.
			if err := l.unmapLocked(err); err != nil {
				return 0, err
			}
		}
	}
	if l.mm != nil {
		if err := l.mm.put(l.off, head, tail); err != nil {
			l.failLocked(fmt.Errorf("write %s: %w", l.path, err), l.off)
			return 0, l.unavailable()
		}
		if size == 0 {
			l.fileStart = now
		}
		l.prev = h
		l.off += int64(n) + 1
		l.seq++
		l.written, l.wprev = l.seq, l.prev
		return r.Seq, nil
	}
	if size == 0 {
		l.fileStart = now
	}
	l.prev = h
	l.pend = append(append(append(l.pend, head...), tail...), '\n')
	l.seq++
	// Under SyncEach a record waits for a sync, whose leader writes
	// every record waiting with one write (commitLocked): the batch's
	// records go out of the process together, before any of their
	// callers goes on.
	if !lazy && l.opts.Sync != SyncEach || len(l.pend) >= maxPend {
		if err := l.flushLocked(); err != nil {
			return 0, err
		}
	}
	return r.Seq, nil
}

// flushLocked writes the lines in pend with one write. On failure the
// log is latched, the file cut back, and the records in pend are lost.
func (l *Log) flushLocked() error {
	if len(l.pend) == 0 {
		return nil
	}
	n, err := l.f.Write(l.pend)
	if err == nil && n != len(l.pend) {
		err = io.ErrShortWrite
	}
	if err != nil {
		l.seq, l.prev = l.written, l.wprev
		l.pend = l.pend[:0]
		l.failLocked(fmt.Errorf("write %s: %w", l.path, err), l.off)
		return l.unavailable()
	}
	l.off += int64(n)
	l.written, l.wprev = l.seq, l.prev
	if cap(l.pend) > maxPend+64<<10 {
		l.pend = nil
	} else {
		l.pend = l.pend[:0]
	}
	return nil
}

// armLocked has the flusher write pend within lazyDelay, starting it on
// first use.
func (l *Log) armLocked() {
	if l.stopping {
		return
	}
	if !l.lazyOn {
		l.lazyOn = true
		l.kick = make(chan struct{}, 1)
		l.wg.Add(1)
		go l.flusher()
	}
	l.lazyWait = true
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// flusher writes the lazy records that no other write took along, within
// lazyDelay of being armed.
func (l *Log) flusher() {
	defer l.wg.Done()
	t := time.NewTimer(lazyDelay)
	t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.kick:
		}
		t.Reset(lazyDelay)
		select {
		case <-l.stop:
			t.Stop()
			return
		case <-t.C:
		}
		l.mu.Lock()
		l.lazyWait = false
		var err error
		switch {
		case l.closed || l.err != nil || len(l.pend) == 0 && l.synced >= l.written:
		case len(l.pend) == 0 && l.syncing:
			// In the file already, and a sync is being led, whose
			// appends gather their batch: no sync of its own in the
			// middle of theirs; look again after lazyDelay.
			l.armLocked()
		default:
			err = l.flushLocked()
			if err == nil && l.opts.Sync == SyncEach {
				err = l.waitSyncedLocked(l.written)
			}
		}
		l.mu.Unlock()
		if err != nil {
			l.logger.Error("audit: writing lazy records failed", zap.Error(err))
		}
	}
}

// failLocked latches the log with cause and cuts the file back to off.
func (l *Log) failLocked(cause error, off int64) {
	if l.err == nil {
		l.err = cause
		l.logger.Error("audit: log latched", zap.String("file", l.path), zap.Error(cause))
	}
	if m := l.mm; m != nil {
		// No record is copied into a latched log: unmap it, and cut the
		// zero tail (or what off says) off.
		l.mm = nil
		cut := off
		if cut < 0 {
			cut = l.off
		}
		if err := m.close(cut); err != nil {
			l.logger.Error("audit: cannot cut back a failed write", zap.String("file", l.path),
				zap.Int64("offset", cut), zap.Error(err))
		}
		off = -1
	}
	if off >= 0 {
		if err := l.f.Truncate(off); err != nil {
			l.logger.Error("audit: cannot cut back a failed write", zap.String("file", l.path),
				zap.Int64("offset", off), zap.Error(err))
		}
	}
	l.cond.Broadcast()
}

// waitSyncedLocked returns when the records below n are durable; the
// first waiter syncs for all (group commit).
func (l *Log) waitSyncedLocked(n uint64) error {
	return l.commitLocked(context.Background(), n, false)
}

// gatherLimit bounds how long a leader waits for records before it syncs.
const gatherLimit = 2 * time.Millisecond

// commitLocked is waitSyncedLocked; gather lets a leader wait for the
// records of the callers the last sync released (see lastBatch). It
// returns ctx's error, wrapped, when ctx ends before the records are
// synced and it is not in a sync of its own: a sync that hangs (a disk
// that stopped answering) fails the appends that wait for it once their
// contexts end, rather than holding them for good. Their records stay in
// the log, written and synced by the log's flusher (within lazyDelay of
// the end of the sync that hangs), by a later sync or by Close.
func (l *Log) commitLocked(ctx context.Context, n uint64, gather bool) error {
	var stop func() bool // the wake-up registered with ctx, once this append waits
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	if gather {
		l.joined++
		if l.gathering && l.joined >= l.expect {
			select {
			case l.gathered <- struct{}{}:
			default:
			}
		}
	}
	for l.synced < n {
		if l.err != nil {
			return l.unavailable()
		}
		if l.closed {
			return ErrClosed // not reached: Close writes and syncs every record
		}
		if err := ctx.Err(); err != nil {
			// The flusher writes and syncs what is left, as it does
			// for AppendLater's records.
			l.armLocked()
			return fmt.Errorf("audit: append: the record is appended but not yet synced: %w", err)
		}
		if l.syncing {
			if stop == nil && ctx.Done() != nil {
				stop = context.AfterFunc(ctx, func() {
					l.mu.Lock()
					l.cond.Broadcast()
					l.mu.Unlock()
				})
			}
			l.cond.Wait()
			continue
		}
		l.syncing = true
		if gather && l.joined < l.expect && l.lastSync > 0 {
			l.gatherLocked(min(l.lastSync, gatherLimit))
			if l.err != nil {
				l.syncing = false
				l.cond.Broadcast()
				continue
			}
		}
		// The records waiting in pend (a SyncEach batch, see
		// writeLocked, and those appended with AppendLater) are written
		// with one write, then synced.
		if err := l.flushLocked(); err != nil {
			l.syncing = false
			l.cond.Broadcast()
			return err
		}
		f, target, targetOff := l.f, l.written, l.off
		batch := l.joined
		l.joined = 0
		l.mu.Unlock()
		t0 := time.Now()
		err := l.datasync(f)
		took := time.Since(t0)
		l.mu.Lock()
		l.syncing = false
		switch {
		case f != l.f:
			// Rotated meanwhile: the rotation synced and closes f.
			f.Close()
		case err != nil:
			cut := int64(-1)
			if l.opts.Sync == SyncEach {
				cut = l.syncedOff
			}
			l.failLocked(fmt.Errorf("sync %s: %w", l.path, err), cut)
		default:
			if target > l.synced {
				l.synced, l.syncedOff = target, targetOff
			}
			l.expect, l.lastSync = batch+l.joined, took
		}
		l.cond.Broadcast()
	}
	return nil
}

// gatherLocked waits, without the lock, until l.expect appends wait, or
// for d.
func (l *Log) gatherLocked(d time.Duration) {
	l.gathering = true
	select {
	case <-l.gathered: // a signal from a sync that was not waited for
	default:
	}
	if l.gatherT == nil {
		l.gatherT = time.NewTimer(d)
	} else {
		l.gatherT.Reset(d)
	}
	l.mu.Unlock()
	select {
	case <-l.gathered:
	case <-l.gatherT.C:
	case <-l.stop:
	}
	l.gatherT.Stop()
	l.mu.Lock()
	l.gathering = false
}

// rotateLocked syncs and renames the active file and starts a new one.
func (l *Log) rotateLocked() error {
	old := l.f
	if m := l.mm; m != nil {
		// The rotated file ends at its last record: no zero tail.
		l.mm = nil
		if err := m.close(l.off); err != nil {
			l.failLocked(fmt.Errorf("cut %s: %w", l.path, err), -1)
			return l.unavailable()
		}
	}
	if err := old.Sync(); err != nil {
		l.failLocked(fmt.Errorf("sync %s: %w", l.path, err), -1)
		return l.unavailable()
	}
	l.synced, l.syncedOff = l.written, l.off
	seg := SegmentName(l.path, l.fileSeq)
	if err := l.fsys.Rename(l.path, seg); err != nil {
		l.failLocked(fmt.Errorf("rotate %s: %w", l.path, err), -1)
		return l.unavailable()
	}
	f, err := l.fsys.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, l.opts.Perm)
	if err == nil {
		if err = lockFile(f, l.path); err != nil {
			f.Close()
		}
	}
	if err == nil {
		err = l.syncDir()
	}
	if err != nil {
		l.failLocked(fmt.Errorf("rotate %s: %w", l.path, err), -1)
		return l.unavailable()
	}
	if !l.syncing {
		old.Close()
	}
	l.f, l.off, l.syncedOff, l.fileSeq = f, 0, 0, l.seq
	l.logger.Info("audit: rotated", zap.String("file", seg), zap.Uint64("next_seq", l.seq))
	if err := l.startMapping(); err != nil {
		l.failLocked(err, -1)
		return l.unavailable()
	}
	return nil
}

// datasync makes the records in f durable: fdatasync when f is an
// operating system file and the platform has it (it writes the pages a
// shared mapping dirtied, as those of write(2)), f.Sync otherwise.
func (l *Log) datasync(f File) error {
	if fd, ok := f.(interface{ Fd() uintptr }); ok && l.msys.sync != nil {
		return l.msys.sync(int(fd.Fd()))
	}
	return f.Sync()
}

func (l *Log) syncDir() error {
	d, err := l.fsys.OpenFile(filepath.Dir(l.path), os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Sync makes every record appended so far durable.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.err == nil {
		if err := l.flushLocked(); err != nil {
			return err
		}
	}
	return l.waitSyncedLocked(l.seq)
}

// Checkpoint signs the log's current size and head, writes the signed
// note as a record of KindCheckpoint, syncs, and hands it to the sinks.
// It fails with ErrNoSigner when Options.SignerKey is empty. A sink's
// failure is returned with the checkpoint, which is in the log.
func (l *Log) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	l.mu.Lock()
	cp, err := l.checkpointLocked()
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return cp, l.toSinks(ctx, cp)
}

func (l *Log) checkpointLocked() (*Checkpoint, error) {
	if l.signer == nil {
		return nil, ErrNoSigner
	}
	if l.closed {
		return nil, ErrClosed
	}
	if l.err != nil {
		return nil, l.unavailable()
	}
	now := l.clock().UTC()
	cp := &Checkpoint{Log: l.id, Size: l.seq, Head: l.prev, Time: now}
	msg, err := note.Sign(&note.Note{Text: cp.Text()}, l.signer)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %v", err)
	}
	cp.Note = msg
	r := &Record{Kind: KindCheckpoint, Checkpoint: string(msg)}
	lb := lineBufs.Get().(*lineBuf)
	defer lb.free()
	if err := lb.prefix(r, now, l.id, nil); err != nil {
		return nil, err
	}
	// The rotation check in writeLocked does not change seq or head.
	seq, err := l.writeLocked(r, now, false, lb)
	if err != nil {
		return nil, err
	}
	if seq != cp.Size {
		return nil, fmt.Errorf("audit: internal: checkpoint of size %d written at seq %d", cp.Size, seq)
	}
	if err := l.waitSyncedLocked(seq + 1); err != nil {
		return nil, err
	}
	// The sync let go of the lock: records appended meanwhile come
	// after the checkpoint, which does not cover them.
	if seq+1 > l.cpSeq {
		l.cpSeq = seq + 1
	}
	l.since = int(l.seq - l.cpSeq)
	return cp, nil
}

func (l *Log) toSinks(ctx context.Context, cp *Checkpoint) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for i, s := range l.opts.Sinks {
		if err := s.Checkpoint(ctx, cp); err != nil {
			errs = append(errs, fmt.Errorf("audit: sink %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func (l *Log) mirror(r *Record) {
	m := l.opts.Mirror
	if m == nil {
		return
	}
	fields := []zap.Field{zap.Uint64("seq", r.Seq), zap.String("log", r.Log), zap.String("kind", string(r.Kind))}
	add := func(k, v string) {
		if v != "" {
			fields = append(fields, zap.String(k, v))
		}
	}
	add("call", r.Call)
	add("agent", r.Principal.Agent)
	add("tenant", r.Principal.Tenant)
	add("tool", r.Tool)
	add("decision", r.Decision)
	add("code", r.Code)
	add("rule", r.Rule)
	add("reason", r.Reason)
	add("outcome", r.Outcome)
	add("error", r.Error)
	switch {
	case r.Args != nil:
		fields = append(fields, zap.Any("args", r.Args))
	case r.Reader != nil && r.Reader.Len() > 0:
		// Arguments the record's plan vouched for (prepare sets Args
		// otherwise): as the line has them. The reader is still the
		// caller's here; zap encodes them before Info returns.
		fields = append(fields, zap.Any("args", r.Reader.Args()))
	}
	m.Info("audit record", fields...)
}

func (l *Log) background() {
	defer l.wg.Done()
	var syncC, cpC <-chan time.Time
	if l.opts.Sync == SyncInterval {
		t := time.NewTicker(l.opts.SyncInterval)
		defer t.Stop()
		syncC = t.C
	}
	if l.opts.CheckpointInterval > 0 {
		t := time.NewTicker(l.opts.CheckpointInterval)
		defer t.Stop()
		cpC = t.C
	}
	for {
		select {
		case <-l.stop:
			return
		case <-syncC:
			if err := l.Sync(); err != nil && !errors.Is(err, ErrClosed) {
				l.logger.Error("audit: background sync failed", zap.Error(err))
			}
		case <-cpC:
			l.mu.Lock()
			var cp *Checkpoint
			var err error
			if !l.closed && l.seq != l.cpSeq {
				cp, err = l.checkpointLocked()
			}
			l.mu.Unlock()
			if err == nil && cp != nil {
				err = l.toSinks(context.Background(), cp)
			}
			if err != nil {
				l.logger.Error("audit: checkpoint failed", zap.Error(err))
			}
		}
	}
}

// Close writes a final checkpoint when there is a signer and records were
// appended since the last one, syncs, hands the checkpoint to the sinks
// and closes the file. It returns the latch's error if the log was
// latched. Close is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	l.stopping = true
	l.mu.Unlock()
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	var errs []error
	if l.err == nil {
		_ = l.flushLocked() // a failure latches the log, reported below
	}
	var cp *Checkpoint
	if l.err == nil && l.signer != nil && l.seq != l.cpSeq {
		var err error
		if cp, err = l.checkpointLocked(); err != nil {
			errs = append(errs, err)
		}
	}
	for l.syncing {
		l.cond.Wait()
	}
	if l.err == nil {
		// Appended while the checkpoint or a sync let go of the lock,
		// and waiting for a sync (see writeLocked): written now, synced
		// below with the rest.
		_ = l.flushLocked()
	}
	if m := l.mm; m != nil {
		l.mm = nil
		if err := m.close(l.off); err != nil && l.err == nil {
			l.failLocked(fmt.Errorf("cut %s: %w", l.path, err), -1)
		}
	}
	if l.err == nil {
		if err := l.f.Sync(); err != nil {
			l.failLocked(fmt.Errorf("sync %s: %w", l.path, err), -1)
		} else {
			l.synced, l.syncedOff = l.written, l.off
		}
	}
	if l.err != nil {
		errs = append(errs, l.unavailable())
	}
	if err := l.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("audit: close %s: %w", l.path, err))
	}
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
	if cp != nil {
		if err := l.toSinks(context.Background(), cp); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

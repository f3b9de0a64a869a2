package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Store keeps a log that several writers (processes) extend together: a
// database table. The chain is built by StoreLog, the portable type; the
// store only keeps lines in order and makes writers take turns. MemStore
// is the in-memory store and the reference; package storetest checks any
// store against this contract.
//
// Implementations must be safe for concurrent use (and, for shared
// stores, by many processes).
type Store interface {
	// Append adds one line to the log named log, under a lock that keeps
	// every other writer of that log out until it returns: it calls line
	// with the log's size (the next seq) and head (the hash of its last
	// line, zero when empty), and stores the bytes line returns (without
	// a newline) as the line of seq size. When line returns an error, or
	// the store fails, nothing is stored and Append returns the error. It
	// returns nil only once the line is durable. The store may keep the
	// bytes line returns.
	Append(ctx context.Context, log string, line func(size uint64, head Hash) ([]byte, error)) error
	// Read calls fn with each line of the log named log, from seq from
	// on, in order, without newlines, until the end of the log or fn's
	// first error, which it returns. fn must not keep line after it
	// returns. A log never written reads as empty.
	Read(ctx context.Context, log string, from uint64, fn func(seq uint64, line []byte) error) error
}

// MemStore is an in-memory Store. Its zero value is empty and ready to
// use; it is safe for concurrent use.
type MemStore struct {
	mu   sync.Mutex
	logs map[string][][]byte
	// err, when set, fails every call: a store that cannot be reached.
	err error
}

var _ Store = (*MemStore)(nil)

// SetErr makes every later call fail with err (nil restores the store).
func (m *MemStore) SetErr(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

// Append appends the line that line builds.
func (m *MemStore) Append(ctx context.Context, log string, line func(size uint64, head Hash) ([]byte, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return fmt.Errorf("audit: mem store: %w", m.err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	lines := m.logs[log]
	var head Hash
	if n := len(lines); n > 0 {
		head = HashLine(lines[n-1])
	}
	b, err := line(uint64(len(lines)), head)
	if err != nil {
		return err
	}
	if m.logs == nil {
		m.logs = map[string][][]byte{}
	}
	m.logs[log] = append(lines, append([]byte(nil), b...))
	return nil
}

// Read calls fn with the lines from seq from.
func (m *MemStore) Read(ctx context.Context, log string, from uint64, fn func(seq uint64, line []byte) error) error {
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return fmt.Errorf("audit: mem store: %w", m.err)
	}
	lines := m.logs[log]
	m.mu.Unlock()
	for i := from; i < uint64(len(lines)); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(i, lines[i]); err != nil {
			return err
		}
	}
	return nil
}

// StoreOptions configure a StoreLog. ID is required; the zero value of
// the rest means default redaction, the system clock and no checkpoints.
type StoreOptions struct {
	// ID is the log's ID, the same for every writer that extends the
	// same chain: every process of a fleet opens the store with the same
	// ID.
	ID string
	// SignerKey is a note signer key (see GenerateKey) that signs
	// checkpoints; required for checkpoints and sinks.
	SignerKey string
	// CheckpointEvery writes a checkpoint after every n records this
	// writer appended; zero means none (Checkpoint writes one on demand).
	CheckpointEvery int
	// Sinks receive every checkpoint this writer writes, to keep it
	// outside the store (FileSink, ZapSink, another database).
	Sinks []Sink
	// Redaction configures redaction, as for Log.
	Redaction Redaction
	// Clock gives each record's time; nil means time.Now.
	Clock func() time.Time
	// Timeout bounds each append: a store that does not answer fails the
	// append (and so denies the call) instead of holding it. An append
	// ignores the cancellation of the caller's context (a cancelled call is
	// still recorded), so this is its only bound. Zero means 10 seconds.
	Timeout time.Duration
}

// DefaultStoreTimeout is the Timeout of a zero StoreOptions.
const DefaultStoreTimeout = 10 * time.Second

// StoreLog writes an audit log kept in a Store, in the format of Log (see
// FORMAT.md): the same records, redaction, chain and checkpoints, so that
// the lines it reads back (Export) verify with Verify. Several StoreLogs,
// in several processes, may extend one log together: the store's lock
// makes each append see the head the last one left. Unlike Log, a
// StoreLog does not latch when an append fails: every Append is all or
// nothing, and the next one tries the store again.
//
// A StoreLog is safe for concurrent use.
type StoreLog struct {
	st     Store
	opts   StoreOptions
	red    *Redactor
	signer note.Signer
	clock  func() time.Time

	mu    sync.Mutex
	since int // records appended since this writer's last checkpoint
}

// OpenStore returns a StoreLog that writes the log opts.ID in st.
func OpenStore(st Store, opts StoreOptions) (*StoreLog, error) {
	switch {
	case st == nil:
		return nil, errors.New("audit: OpenStore: nil store")
	case opts.ID == "" || strings.ContainsAny(opts.ID, "\n"):
		return nil, fmt.Errorf("audit: OpenStore: log ID %q: want a non-empty single line", opts.ID)
	case opts.CheckpointEvery < 0 || opts.Timeout < 0:
		return nil, fmt.Errorf("audit: OpenStore: negative CheckpointEvery %d or Timeout %v", opts.CheckpointEvery, opts.Timeout)
	case (opts.CheckpointEvery > 0 || len(opts.Sinks) > 0) && opts.SignerKey == "":
		return nil, errors.New("audit: OpenStore: checkpoints or sinks configured without SignerKey")
	}
	red, err := NewRedactor(opts.Redaction)
	if err != nil {
		return nil, err
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultStoreTimeout
	}
	l := &StoreLog{st: st, opts: opts, red: red, clock: opts.Clock}
	if l.clock == nil {
		l.clock = time.Now
	}
	if opts.SignerKey != "" {
		s, err := note.NewSigner(opts.SignerKey)
		if err != nil {
			return nil, fmt.Errorf("audit: StoreOptions.SignerKey: %v", err)
		}
		l.signer = s
	}
	return l, nil
}

// ID returns the log's ID.
func (l *StoreLog) ID() string { return l.opts.ID }

// Redactor returns the redactor that Append applies.
func (l *StoreLog) Redactor() *Redactor { return l.red }

// Append redacts r, sets its Seq, Time, Log and Prev from the store's head
// under the store's lock, and appends it; it returns once the store holds
// it durably. r.Kind must be set and must not be KindCheckpoint. An error
// means the record is not in the log.
func (l *StoreLog) Append(ctx context.Context, r *Record) error {
	if err := l.red.prepare(r, "StoreLog"); err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.Timeout)
	defer cancel()
	err := l.st.Append(actx, l.opts.ID, func(size uint64, head Hash) ([]byte, error) {
		r.Seq, r.Time, r.Log, r.Prev = size, l.clock().UTC(), l.opts.ID, head
		return r.AppendJSON(nil)
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if l.opts.CheckpointEvery > 0 {
		l.mu.Lock()
		l.since++
		due := l.since >= l.opts.CheckpointEvery
		if due {
			l.since = 0
		}
		l.mu.Unlock()
		if due {
			// The record is in the log; a failed checkpoint only delays
			// the next one.
			l.Checkpoint(ctx)
		}
	}
	return nil
}

// Checkpoint signs the log's size and head, as the store holds them,
// appends the signed note as a record of KindCheckpoint, and hands it to
// the sinks. It fails with ErrNoSigner without StoreOptions.SignerKey. A
// sink's failure is returned with the checkpoint, which is in the log.
func (l *StoreLog) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	if l.signer == nil {
		return nil, ErrNoSigner
	}
	var cp *Checkpoint
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.Timeout)
	defer cancel()
	err := l.st.Append(actx, l.opts.ID, func(size uint64, head Hash) ([]byte, error) {
		now := l.clock().UTC()
		c := &Checkpoint{Log: l.opts.ID, Size: size, Head: head, Time: now}
		msg, err := note.Sign(&note.Note{Text: c.Text()}, l.signer)
		if err != nil {
			return nil, fmt.Errorf("audit: sign checkpoint: %v", err)
		}
		c.Note = msg
		cp = c
		r := &Record{Seq: size, Time: now, Log: l.opts.ID, Kind: KindCheckpoint, Checkpoint: string(msg), Prev: head}
		return r.AppendJSON(nil)
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var errs []error
	for i, s := range l.opts.Sinks {
		if err := s.Checkpoint(context.WithoutCancel(ctx), cp); err != nil {
			errs = append(errs, fmt.Errorf("audit: sink %d: %w", i, err))
		}
	}
	return cp, errors.Join(errs...)
}

// Export writes the log's lines from seq from on to w, each followed by a
// newline: a file that Verify reads like one Log wrote.
func Export(ctx context.Context, st Store, log string, from uint64, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	err := st.Read(ctx, log, from, func(_ uint64, line []byte) error {
		if _, err := bw.Write(line); err != nil {
			return err
		}
		return bw.WriteByte('\n')
	})
	if err != nil {
		return fmt.Errorf("audit: export %s: %w", log, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: export %s: %w", log, err)
	}
	return nil
}

// prepare checks that r may be appended by a writer's Append (typ names
// the writer) and redacts its arguments, and its error, reason and note
// of the secrets found in them.
func (red *Redactor) prepare(r *Record, typ string) error {
	if r.Kind == "" {
		return errors.New("audit: record has no kind")
	}
	if r.Kind == KindCheckpoint || r.Checkpoint != "" {
		return fmt.Errorf("audit: checkpoint records are written by %s.Checkpoint", typ)
	}
	var secrets []string
	if r.Args != nil {
		// Written only when changed: r is often on the heap, where a
		// pointer written while the collector runs costs a write barrier.
		if args, found := red.recordArgs(r); found != nil || !sameMap(args, r.Args) {
			r.Args, secrets = args, found
		}
	} else if r.Reader != nil && r.Reader.Len() > 0 && !red.readerClean(r) {
		// Arguments the plan cannot vouch for: redacted from the map, which
		// then stands for them.
		r.Args, secrets = red.Args(readerArgs(r.Reader))
	}
	if len(r.Labels) > 0 && !(r.Plan != nil && r.Plan.red == red && r.Plan.sameLabels(r.Labels)) {
		// A plan of this redactor has its labels redacted when it is
		// made.
		if l := red.Labels(r.Labels); !sameMap(l, r.Labels) {
			r.Labels = l
		}
	}
	for _, s := range [...]*string{&r.Error, &r.Reason, &r.Note} {
		if t := red.Text(*s, secrets); t != *s {
			*s = t
		}
	}
	return nil
}

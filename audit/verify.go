package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/note"
)

// Errors of verification. A *VerifyError wraps ErrCorrupt and one of the
// others.
var (
	// ErrCorrupt is wrapped by every *VerifyError.
	ErrCorrupt = errors.New("audit: log does not verify")
	// ErrSeq: a record is missing, repeated or out of order.
	ErrSeq = errors.New("audit: wrong seq")
	// ErrChain: a record's prev is not the hash of the line before it.
	ErrChain = errors.New("audit: broken hash chain")
	// ErrLogID: a record belongs to another log.
	ErrLogID = errors.New("audit: wrong log ID")
	// ErrTorn: the last line has no newline.
	ErrTorn = errors.New("audit: torn last line")
	// ErrTruncated: the log is shorter than a checkpoint says.
	ErrTruncated = errors.New("audit: log truncated")
	// ErrMismatch: the log differs from a checkpoint that covers it.
	ErrMismatch = errors.New("audit: log does not match checkpoint")
	// ErrNoCheckpoint: VerifyOptions.Key is set and neither the log nor
	// VerifyOptions.Checkpoint holds a checkpoint signed by it. Anyone
	// can write records and chain them: without a signed checkpoint a log
	// proves nothing.
	ErrNoCheckpoint = errors.New("audit: no checkpoint signed by the key")
	// ErrUncovered: VerifyOptions.RequireCovered is set and records at the
	// end of the log are covered by no signed checkpoint.
	ErrUncovered = errors.New("audit: records not covered by a signed checkpoint")
)

// VerifyError reports the first record at which a log stops verifying.
//
// Seq is the seq of the bad record, or the seq expected at its place when
// it cannot be read. For a broken chain (ErrChain) it is the earlier of the
// two records: the one whose hash is not the prev of the next, which is
// what a change to a record's content looks like (a change to the next
// record's prev looks the same). For ErrTruncated it is the first missing
// seq.
type VerifyError struct {
	Seq    uint64
	File   string // the file that holds it
	Line   int    // its line in File, from 1
	Offset int64  // its byte offset in File
	Err    error  // what is wrong: ErrSyntax, ErrSeq, ErrChain, ErrLogID, ErrTorn, ErrTruncated, ErrMismatch, ErrCheckpoint, ErrNoCheckpoint or ErrUncovered
}

// Error says where the log stops verifying and why.
func (e *VerifyError) Error() string {
	return fmt.Sprintf("audit: %s:%d (byte %d): seq %d: %v", e.File, e.Line, e.Offset, e.Seq, e.Err)
}

// Unwrap returns ErrCorrupt and the cause.
func (e *VerifyError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// VerifyOptions configure Verify. The zero value checks the chain and the
// form of every record, and the form (not the signature) of checkpoint
// records.
//
// What a passing Verify guarantees:
//
//   - Without Key: only that the log is well formed and its records chain
//     (each prev is the hash of the line before). Anyone who can write
//     the file can edit a record and re-chain the rest: the log then
//     still verifies.
//   - With Key: also that the log carries at least one checkpoint signed
//     by the key (in the log or as Checkpoint) and that every checkpoint
//     is signed by it, so the records a checkpoint covers are exactly
//     those the key's holder signed. Report.Uncovered counts the records
//     at the end that no checkpoint covers: those can still be rewritten
//     (or removed) undetected. RequireCovered fails when there are any.
//   - With Checkpoint (kept where the log's writer cannot change it):
//     also that the log holds every record it covers, unchanged:
//     truncation and rewrites of those are detected.
type VerifyOptions struct {
	// Key is the note verifier key (see GenerateKey) of the log's
	// checkpoints. When set, every checkpoint record must carry a valid
	// signature by it, and so must Checkpoint, and at least one of them
	// must be there (ErrNoCheckpoint).
	Key string
	// RequireCovered makes Verify fail (ErrUncovered) when any record is
	// covered by no checkpoint signed by Key. It needs Key.
	RequireCovered bool
	// Checkpoint is a signed checkpoint note kept outside the log (see
	// FileSink). The log must contain all the records it covers, with
	// the same head: truncation and rewrites of those records are
	// detected. Without one, a log cut after a whole record still
	// verifies: truncation cannot be detected from the log alone.
	Checkpoint []byte
}

// Report is what Verify found in a log that verifies.
type Report struct {
	Log     string // the log's ID; empty for an empty log
	Records uint64 // the number of records: the next seq
	Head    Hash   // the hash of the last line; zero for an empty log
	Bytes   int64
	Files   int
	// Checkpoints counts the checkpoint records whose signature was
	// verified with VerifyOptions.Key; CheckpointRecords counts all.
	Checkpoints       int
	CheckpointRecords int
	// Covered is the size the external checkpoint vouched for; zero
	// without one.
	Covered uint64
	// Uncovered is the number of records at the end of the log that no
	// checkpoint covers. A checkpoint record covers itself and every
	// record before it; the external checkpoint the records it counts.
	// With Key those checkpoints are signed and the covered records are
	// vouched for; the uncovered ones are vouched for by nothing (whoever
	// can write the log can rewrite them). Without Key no signature was
	// checked and nothing is vouched for.
	Uncovered uint64
}

// Source is one file of a log, for VerifyReaders.
type Source struct {
	Name string // used in errors
	R    io.Reader
}

// Verify checks the log made of the files at paths, in chain order (see
// Segments), streaming them in constant memory. It returns a *VerifyError
// naming the first bad record by seq, file and line.
//
// A line is accepted exactly when ParseRecord accepts it. Verify reads
// the files in blocks of 256 KiB, a few blocks ahead, and hashes and
// checks the lines of each block on a goroutine per CPU (up to four),
// with a scanner of the canonical form; a line it does not pass (the
// first, a checkpoint, a bad one) goes through ParseRecord's path, which
// decides and says what is wrong.
func Verify(opts VerifyOptions, paths ...string) (*Report, error) {
	srcs := make([]Source, len(paths))
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("audit: verify: %w", err)
		}
		files = append(files, f)
		srcs[i] = Source{Name: p, R: f}
	}
	return VerifyReaders(opts, srcs...)
}

// VerifyReaders is Verify on readers. It reads ahead of the line it
// checks, from a goroutine of its own, and does not return while a Read
// of one of srcs is in progress: a reader that blocks holds it up, even
// after a bad line.
func VerifyReaders(opts VerifyOptions, srcs ...Source) (*Report, error) {
	return verifyReaders(opts, srcs, false)
}

// verifyReaders is VerifyReaders. With inline it reads, hashes and checks
// every block on the caller's goroutine, one block at a time, with no
// pool: what runs then depends on the input alone, which is what a
// coverage-guided fuzzer needs (goroutine timing and a pool emptied by
// the garbage collector otherwise look like new coverage to it).
func verifyReaders(opts VerifyOptions, srcs []Source, inline bool) (*Report, error) {
	var nv note.Verifier
	if opts.Key != "" {
		var err error
		if nv, err = note.NewVerifier(opts.Key); err != nil {
			return nil, fmt.Errorf("audit: verify: key: %v", err)
		}
	}
	if opts.RequireCovered && nv == nil {
		return nil, errors.New("audit: verify: RequireCovered needs a Key: coverage by unsigned checkpoints proves nothing")
	}
	var ext *Checkpoint
	if opts.Checkpoint != nil {
		var err error
		if ext, err = ParseCheckpoint(opts.Checkpoint, nv); err != nil {
			return nil, fmt.Errorf("audit: verify: checkpoint: %w", err)
		}
	}
	v := newVerifier(nv)
	v.ext = ext
	rep := &Report{Files: len(srcs)}
	c := &checker{v: v, rep: rep, srcs: srcs, cur: -1}
	if inline {
		readInline(srcs, c.block)
	} else {
		rd := startReading(srcs)
		defer rd.stop()
		for blk := range rd.full {
			<-blk.ready
			if !c.block(blk) {
				break
			}
			rd.free <- blk
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	if err := v.finish(); err != nil {
		return nil, v.fail(err, c.lastName, c.lastLine+1, c.lastOff)
	}
	if err := v.end(rep, opts.RequireCovered, srcs); err != nil {
		return nil, err
	}
	return rep, nil
}

// checker takes the blocks of a log in order and checks their lines.
type checker struct {
	v        *verifier
	rep      *Report
	srcs     []Source
	cur      int // the source of the last block
	lineNo   int // the last line's number in it
	lastName string
	lastLine int
	lastOff  int64
	err      error // what ended the check early
}

// block checks the lines of blk, whose hashes and sums are done; it
// reports whether to go on, and sets c.err when not.
func (c *checker) block(blk *lineBlock) bool {
	v := c.v
	if blk.src != c.cur {
		c.cur, c.lineNo = blk.src, 0
		c.lastName = c.srcs[c.cur].Name
	}
	name, lineNo := c.lastName, c.lineNo
	defer func() { c.lineNo = lineNo }()
	start := 0
	for i, end := range blk.ends {
		line := blk.buf[start:end]
		off := blk.off + int64(start)
		start = end + 1
		lineNo++
		c.lastLine, c.lastOff = lineNo, off
		if len(line) >= longLine {
			c.err = &VerifyError{Seq: v.seq, File: name, Line: lineNo, Offset: off,
				Err: fmt.Errorf("%w: line longer than %d bytes", ErrSyntax, maxLine)}
			return false
		}
		c.rep.Bytes += int64(len(line)) + 1
		if sum := &blk.sums[i]; sum.ok && v.advance(sum.seq, sum.prev, blk.buf[sum.log0:sum.log1], blk.hashes[i], name, lineNo, off) {
			continue
		}
		if _, err := v.line(line, name, lineNo, off); err != nil {
			c.err = v.fail(err, name, lineNo, off)
			return false
		}
	}
	switch {
	case blk.torn:
		c.err = &VerifyError{Seq: v.seq, File: name, Line: lineNo + 1, Offset: blk.off + int64(start), Err: ErrTorn}
	case blk.long:
		c.err = &VerifyError{Seq: v.seq, File: name, Line: lineNo + 1, Offset: blk.off + int64(start),
			Err: fmt.Errorf("%w: line longer than %d bytes", ErrSyntax, maxLine)}
	case blk.err != nil:
		c.err = fmt.Errorf("audit: read: %w", blk.err)
	}
	return c.err == nil
}

// end fills rep in from v at the end of the log, and checks that the log
// carries a signed checkpoint when v has a key, and that no record is
// uncovered when requireCovered. srcs are the log's files.
func (v *verifier) end(rep *Report, requireCovered bool, srcs []Source) error {
	rep.Log, rep.Records, rep.Head = v.log, v.seq, v.prev
	rep.Checkpoints, rep.CheckpointRecords = v.verified, v.cps
	if v.ext != nil {
		rep.Covered = v.ext.Size
	}
	covered, at := v.covered()
	rep.Uncovered = v.seq - covered
	if at.file == "" && len(srcs) > 0 {
		at = place{file: srcs[0].Name, line: 1} // an empty log
	}
	switch {
	case v.key != nil && v.verified == 0 && v.ext == nil:
		return &VerifyError{Seq: 0, File: at.file, Line: at.line, Offset: at.off,
			Err: fmt.Errorf("%w: %d records, none covered", ErrNoCheckpoint, v.seq)}
	case requireCovered && rep.Uncovered > 0:
		return &VerifyError{Seq: covered, File: at.file, Line: at.line, Offset: at.off,
			Err: fmt.Errorf("%w: the last %d of %d records", ErrUncovered, rep.Uncovered, v.seq)}
	}
	return nil
}

// verifier checks a log line by line; its state is a few words, so
// verification runs in constant memory.
type verifier struct {
	key      note.Verifier
	ext      *Checkpoint
	extHead  Hash // the hash of line ext.Size-1, once read
	started  bool
	log      string
	seq      uint64 // the next seq
	prev     Hash
	cpSeq    uint64
	cps      int
	verified int
	st       parseState
	rec      Record
	logRaw   []byte // log as written in a line, without quotes, once logRawOK
	logRawOK bool

	// where the previous record was, for chain errors
	prevLine int
	prevFile string
	prevOff  int64
	extFile  string
	extLine  int
	extOff   int64

	// where the first record that no checkpoint covers is: the one after
	// the last checkpoint record (once read: noted is false until then),
	// and the one after the external checkpoint's last
	afterCp  place
	noted    bool
	afterExt place
}

// place is where a line is in a log's files.
type place struct {
	file string
	line int
	off  int64
}

// note remembers where the line at (file, lineNo, off), the next record,
// is, when no checkpoint covers it.
func (v *verifier) note(file string, lineNo int, off int64) {
	if !v.noted {
		v.afterCp, v.noted = place{file, lineNo, off}, true
	}
	if v.ext != nil && v.seq == v.ext.Size {
		v.afterExt = place{file, lineNo, off}
	}
}

// covered returns how many records at the start of the log a checkpoint
// covers, and where the first record after them is.
func (v *verifier) covered() (uint64, place) {
	n, at := v.cpSeq, v.afterCp
	if v.ext != nil && v.ext.Size > n {
		n, at = v.ext.Size, v.afterExt
	}
	return n, at
}

func newVerifier(key note.Verifier) *verifier { return &verifier{key: key} }

// lineError is an error about the previous record rather than the
// current one.
type lineError struct {
	err      error
	previous bool // about the record before the current line
	ext      bool // about the record the external checkpoint ends at
	seq      uint64
}

func (e *lineError) Error() string { return e.err.Error() }

// advance moves v past the next line when the scanner found it canonical
// and not a checkpoint, with seq, prev and log (as written), and its hash
// is h: it reports true when the line is in its place in the chain and of
// the log. Otherwise v is unchanged and line must go through v.line,
// which decides, and says what is wrong.
func (v *verifier) advance(seq uint64, prev Hash, log []byte, h Hash, file string, lineNo int, off int64) bool {
	if !v.started || seq != v.seq || prev != v.prev {
		return false
	}
	if !v.logRawOK {
		v.logRaw = appendString(v.logRaw[:0], v.log)
		v.logRaw = v.logRaw[1 : len(v.logRaw)-1]
		v.logRawOK = true
	}
	if !bytes.Equal(log, v.logRaw) {
		return false
	}
	v.note(file, lineNo, off)
	if v.ext != nil && v.seq+1 == v.ext.Size {
		v.extHead = h
		v.extFile, v.extLine, v.extOff = file, lineNo, off
	}
	v.prevFile, v.prevLine, v.prevOff = file, lineNo, off
	v.prev = h
	v.seq++
	return true
}

// line checks the next line (without its newline).
func (v *verifier) line(line []byte, file string, lineNo int, off int64) (*Record, error) {
	r := &v.rec
	if err := parseRecord(line, r, &v.st); err != nil {
		return nil, err
	}
	if r.Seq != v.seq {
		return nil, fmt.Errorf("%w: found seq %d, want %d", ErrSeq, r.Seq, v.seq)
	}
	if r.Prev != v.prev {
		if v.seq == 0 {
			return nil, fmt.Errorf("%w: the first record's prev is not zero", ErrChain)
		}
		return nil, &lineError{previous: true, seq: v.seq - 1,
			err: fmt.Errorf("%w: seq %d does not hash to the prev of seq %d (one of them was changed)", ErrChain, v.seq-1, v.seq)}
	}
	if !v.started {
		v.log, v.started, v.logRawOK = r.Log, true, false
	} else if r.Log != v.log {
		return nil, fmt.Errorf("%w: %q, want %q", ErrLogID, r.Log, v.log)
	}
	v.note(file, lineNo, off)
	if r.Kind == KindCheckpoint {
		if err := v.checkpoint(r); err != nil {
			return nil, err
		}
	} else if r.Checkpoint != "" {
		return nil, fmt.Errorf("%w: a %s record with a checkpoint", ErrSyntax, r.Kind)
	}
	h := HashLine(line)
	if v.ext != nil && v.seq+1 == v.ext.Size {
		v.extHead = h
		v.extFile, v.extLine, v.extOff = file, lineNo, off
	}
	v.prevFile, v.prevLine, v.prevOff = file, lineNo, off
	v.prev = h
	v.seq++
	return r, nil
}

func (v *verifier) checkpoint(r *Record) error {
	cp, err := ParseCheckpoint([]byte(r.Checkpoint), v.key)
	if err != nil {
		return err
	}
	switch {
	case cp.Log != r.Log:
		return fmt.Errorf("%w: checkpoint of log %q", ErrCheckpoint, cp.Log)
	case cp.Size != r.Seq:
		return fmt.Errorf("%w: checkpoint of size %d at seq %d", ErrCheckpoint, cp.Size, r.Seq)
	case cp.Head != r.Prev:
		return fmt.Errorf("%w: checkpoint head is not the record's prev", ErrCheckpoint)
	case !cp.Time.Equal(r.Time):
		return fmt.Errorf("%w: checkpoint time is not the record's time", ErrCheckpoint)
	}
	v.cps++
	if v.key != nil {
		v.verified++
	}
	v.cpSeq = v.seq + 1
	v.noted = false // the next record is the first this one does not cover
	return nil
}

// finish checks the end of the log against the external checkpoint.
func (v *verifier) finish() error {
	if v.ext == nil {
		return nil
	}
	if v.started && v.ext.Log != v.log {
		return fmt.Errorf("%w: checkpoint of log %q", ErrLogID, v.ext.Log)
	}
	if v.seq < v.ext.Size {
		return fmt.Errorf("%w: %d records, the checkpoint covers %d", ErrTruncated, v.seq, v.ext.Size)
	}
	if v.ext.Size > 0 && v.extHead != v.ext.Head {
		return &lineError{seq: v.ext.Size - 1, ext: true, err: fmt.Errorf("%w: seq %d does not have the checkpoint's head", ErrMismatch, v.ext.Size-1)}
	}
	return nil
}

// fail turns an error of line or finish into a *VerifyError about the
// line at (file, lineNo, off), or about the record it names.
func (v *verifier) fail(err error, file string, lineNo int, off int64) error {
	ve := &VerifyError{Seq: v.seq, File: file, Line: lineNo, Offset: off, Err: err}
	var le *lineError
	if errors.As(err, &le) {
		ve.Err = le.err
		ve.Seq = le.seq
		switch {
		case le.previous:
			ve.File, ve.Line, ve.Offset = v.prevFile, v.prevLine, v.prevOff
		case le.ext:
			ve.File, ve.Line, ve.Offset = v.extFile, v.extLine, v.extOff
		}
	}
	return ve
}

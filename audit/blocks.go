package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
	"sync"
)

// Verify reads its sources in blocks of whole lines on a goroutine of its
// own, while workers (one per CPU, up to maxWorkers) hash and scan the
// lines of the blocks, each block on one worker; the caller's goroutine
// then takes the blocks in order and checks each line's place in the
// chain from what the workers found, which costs a few comparisons. A
// fixed number of blocks go round, so memory stays bounded (a block grows
// only to hold a line longer than itself).

const (
	// blockSize is the size of a block, and of readLines' buffer.
	blockSize = 256 << 10
	// inFlight is the number of blocks going round.
	inFlight = 6
	// maxWorkers is the most workers that hash and scan blocks.
	maxWorkers = 4
	// maxBlockLines is the most lines in a block, which bounds the
	// memory of their hashes and sums. A block of records has fewer: the
	// shortest record takes more than blockSize/maxBlockLines bytes.
	maxBlockLines = 2048
	// longLine is the length from which readLines refuses a line: it
	// reads a line in chunks of blockSize and stops once it holds more
	// than maxLine bytes without a newline.
	longLine = (maxLine/blockSize + 1) * blockSize
	// maxEmptyReads is how many reads in a row may return nothing, as in
	// bufio.
	maxEmptyReads = 100
)

// errBadCount is the error of a reader that says it read more than it
// was given, or less than nothing.
var errBadCount = errors.New("audit: reader returned an invalid count")

// lineBlock is a run of whole lines of one source, with their hashes, and
// what follows them when they end the source.
type lineBlock struct {
	src    int   // the source's index
	off    int64 // the offset of buf[0] in the source
	buf    []byte
	ends   []int  // the index in buf of each line's newline
	hashes []Hash // the hash of each line
	sums   []lineSum
	ready  chan struct{} // receives once the hashes and sums are done
	torn   bool          // then a last line without a newline (and not a zero tail)
	long   bool          // then a line of longLine bytes or more
	err    error         // then a read error
}

// lineSum is what a worker's scan found in a line.
type lineSum struct {
	ok         bool // the line is canonical and not a checkpoint
	seq        uint64
	prev       Hash
	log0, log1 int // where the log ID is in the block, as written
}

// summarize hashes and scans the lines of b.
func (b *lineBlock) summarize(sc *scanner) {
	b.hashes = slices.Grow(b.hashes[:0], len(b.ends))[:len(b.ends)]
	b.sums = slices.Grow(b.sums[:0], len(b.ends))[:len(b.ends)]
	var s scanned
	start := 0
	for i, end := range b.ends {
		line := b.buf[start:end]
		b.hashes[i] = sha256.Sum256(line)
		sum := &b.sums[i]
		sum.ok = sc.scan(line, &s) && !s.checkpoint && string(s.kind) != string(KindCheckpoint)
		if sum.ok {
			sum.seq, sum.prev = s.seq, s.prev
			sum.log0 = start + s.logAt
			sum.log1 = sum.log0 + len(s.log)
		}
		start = end + 1
	}
}

var blockPool = sync.Pool{New: func() any { return &lineBlock{buf: make([]byte, 0, blockSize)} }}

// blockReader is the goroutine that reads and hashes blocks.
type blockReader struct {
	srcs  []Source
	free  chan *lineBlock // blocks to fill
	work  chan *lineBlock // filled blocks, for the workers
	full  chan *lineBlock // filled blocks, in order; closed after the last
	quit  chan struct{}
	done  chan struct{}  // closed when run returns
	wg    sync.WaitGroup // the workers
	carry []byte         // the start of a line, from the end of the block before

	// For readInline, in place of the channels: the one block, the
	// scanner, and what takes each block once it is summarized.
	inline *lineBlock
	sc     scanner
	handle func(*lineBlock) bool
}

// startReading starts reading srcs. Every source yields at least one
// block; a block that ends in torn, long or err is the last. A block from
// full is ready once a value comes from its ready channel.
func startReading(srcs []Source) *blockReader {
	rd := &blockReader{
		srcs: srcs,
		free: make(chan *lineBlock, inFlight),
		work: make(chan *lineBlock, inFlight),
		full: make(chan *lineBlock, inFlight),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range inFlight {
		b := blockPool.Get().(*lineBlock)
		// A channel of its own per call: a channel made in a synctest
		// bubble cannot be used outside it.
		b.ready = make(chan struct{}, 1)
		rd.free <- b
	}
	for range min(runtime.GOMAXPROCS(0), maxWorkers) {
		rd.wg.Add(1)
		go rd.worker()
	}
	go rd.run()
	return rd
}

func (rd *blockReader) worker() {
	defer rd.wg.Done()
	var sc scanner
	for blk := range rd.work {
		blk.summarize(&sc)
		blk.ready <- struct{}{}
	}
}

// stop stops the goroutines and waits for them: no Read happens after
// stop returns.
func (rd *blockReader) stop() {
	close(rd.quit)
	<-rd.done
	rd.wg.Wait()
	put := func(b *lineBlock) {
		if cap(b.buf) <= blockSize {
			b.err, b.ready = nil, nil
			blockPool.Put(b)
		}
	}
	for b := range rd.full {
		put(b)
	}
	for {
		select {
		case b := <-rd.free:
			put(b)
		default:
			return
		}
	}
}

func (rd *blockReader) run() {
	defer close(rd.done)
	defer close(rd.full)
	defer close(rd.work)
	rd.sources()
}

func (rd *blockReader) sources() {
	for i, src := range rd.srcs {
		if !rd.source(i, src.R) {
			return
		}
	}
}

// readInline reads srcs as startReading does, but on the caller's
// goroutine, in one block, without the pool: it summarizes each block and
// hands it to handle, which reports whether to go on, before it reads the
// next.
func readInline(srcs []Source, handle func(*lineBlock) bool) {
	var blk *lineBlock
	select {
	case blk = <-inlineBlocks:
	default:
		// Room for the most lines a block holds: summarize never grows
		// the slices, whatever came before.
		blk = &lineBlock{buf: make([]byte, 0, blockSize),
			hashes: make([]Hash, 0, maxBlockLines), sums: make([]lineSum, 0, maxBlockLines)}
	}
	rd := &blockReader{srcs: srcs, handle: handle, inline: blk}
	rd.sources()
	if cap(blk.buf) != blockSize {
		// Grown by a long line: the next call starts as this one did.
		blk.buf = make([]byte, 0, blockSize)
	}
	select {
	case inlineBlocks <- blk:
	default:
	}
}

// inlineBlocks keeps readInline's block from one call to the next: a
// fuzzer's inputs then cost no allocation of a block each, and unlike a
// sync.Pool, the garbage collector does not empty it (which a
// coverage-guided fuzzer would take for new coverage).
var inlineBlocks = make(chan *lineBlock, 1)

// source reads one source; it reports whether to go on to the next.
func (rd *blockReader) source(i int, r io.Reader) bool {
	var off int64
	var pending error // what the reads ended with, after the carried lines
	rd.carry = rd.carry[:0]
	for {
		blk := rd.inline
		if blk == nil {
			select {
			case blk = <-rd.free:
			case <-rd.quit:
				return false
			}
		}
		*blk = lineBlock{src: i, off: off, buf: append(blk.buf[:0], rd.carry...), ends: blk.ends[:0],
			hashes: blk.hashes[:0], sums: blk.sums[:0], ready: blk.ready}
		err := pending
		for err == nil {
			blk.buf, err = fill(r, blk.buf)
			if err != nil || bytes.IndexByte(blk.buf, '\n') >= 0 {
				break
			}
			if len(blk.buf) >= longLine {
				break
			}
			// One line fills the block: grow it.
			grown := make([]byte, len(blk.buf), min(2*cap(blk.buf), longLine))
			copy(grown, blk.buf)
			blk.buf = grown
		}
		start := 0
		for len(blk.ends) < maxBlockLines {
			j := bytes.IndexByte(blk.buf[start:], '\n')
			if j < 0 {
				break
			}
			blk.ends = append(blk.ends, start+j)
			start += j + 1
		}
		rest := blk.buf[start:]
		last, more := true, false
		switch {
		case len(blk.ends) == maxBlockLines && bytes.IndexByte(rest, '\n') >= 0:
			// More whole lines than a block takes: the next block starts
			// with them, and what the reads ended with comes after.
			rd.carry = append(rd.carry[:0], rest...)
			pending, last, more = err, false, true
		case len(rest) >= longLine:
			blk.long = true
		case err == io.EOF:
			// A zero tail (see allNUL) is space the writer has not used.
			blk.torn = len(rest) > 0 && !allNUL(rest)
			last = blk.torn
		case err != nil:
			blk.err = err
		default:
			rd.carry = append(rd.carry[:0], rest...)
			last = false
		}
		blk.buf = blk.buf[:start]
		off += int64(start)
		if rd.handle != nil {
			blk.summarize(&rd.sc)
			if !rd.handle(blk) {
				return false
			}
		} else {
			// To the workers first: a block in full is always worked on.
			select {
			case rd.work <- blk:
			case <-rd.quit:
				return false
			}
			select {
			case rd.full <- blk:
			case <-rd.quit:
				return false
			}
		}
		if last {
			return false
		}
		if err == io.EOF && !more {
			return true
		}
	}
}

// allNUL reports whether b holds only NUL bytes. The rest of a file after
// its last newline is a zero tail when it does: a Log that writes through
// a shared mapping grows the file ahead of its records with NUL bytes, and
// a crash (or a reader while the Log runs) leaves them there. A tail that
// holds any other byte is a torn line.
func allNUL(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// fill reads from r into b until b is full, a read brings the end of a
// line (so that lines of a slow stream are checked as they come), or an
// error; it returns b with what it read.
func fill(r io.Reader, b []byte) ([]byte, error) {
	empty := 0
	for len(b) < cap(b) {
		n, err := r.Read(b[len(b):cap(b)])
		if n < 0 || n > cap(b)-len(b) {
			return b, errBadCount
		}
		b = b[:len(b)+n]
		if err != nil {
			return b, err
		}
		if n == 0 {
			if empty++; empty >= maxEmptyReads {
				return b, io.ErrNoProgress
			}
			continue
		}
		empty = 0
		if len(b) < cap(b) && bytes.IndexByte(b[len(b)-n:], '\n') >= 0 {
			break
		}
	}
	return b, nil
}

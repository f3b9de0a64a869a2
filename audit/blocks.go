package audit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"sync"
)

// Verify reads its sources in blocks of whole lines on a goroutine of its
// own, which also hashes each line, while the caller's goroutine checks
// the lines of the block before: reading and hashing overlap with
// checking. A fixed number of blocks go round between the two, so memory
// stays bounded (a block grows only to hold a line longer than itself).

const (
	// blockSize is the size of a block, and of readLines' buffer.
	blockSize = 256 << 10
	// inFlight is the number of blocks going round.
	inFlight = 4
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
	torn   bool   // then a last line without a newline
	long   bool   // then a line of longLine bytes or more
	err    error  // then a read error
}

var blockPool = sync.Pool{New: func() any { return &lineBlock{buf: make([]byte, 0, blockSize)} }}

// blockReader is the goroutine that reads and hashes blocks.
type blockReader struct {
	srcs  []Source
	free  chan *lineBlock // blocks to fill
	full  chan *lineBlock // filled blocks, in order; closed after the last
	quit  chan struct{}
	done  chan struct{}
	carry []byte // the start of a line, from the end of the block before
}

// startReading starts reading srcs. Every source yields at least one
// block; a block that ends in torn, long or err is the last.
func startReading(srcs []Source) *blockReader {
	rd := &blockReader{
		srcs: srcs,
		free: make(chan *lineBlock, inFlight),
		full: make(chan *lineBlock, inFlight),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range inFlight {
		rd.free <- blockPool.Get().(*lineBlock)
	}
	go rd.run()
	return rd
}

// stop stops the goroutine and waits until it is done with the sources:
// it makes no Read after stop returns.
func (rd *blockReader) stop() {
	close(rd.quit)
	<-rd.done
	put := func(b *lineBlock) {
		if cap(b.buf) <= blockSize {
			b.err = nil
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
	for i, src := range rd.srcs {
		if !rd.source(i, src.R) {
			return
		}
	}
}

// source reads one source; it reports whether to go on to the next.
func (rd *blockReader) source(i int, r io.Reader) bool {
	var off int64
	rd.carry = rd.carry[:0]
	for {
		var blk *lineBlock
		select {
		case blk = <-rd.free:
		case <-rd.quit:
			return false
		}
		*blk = lineBlock{src: i, off: off, buf: append(blk.buf[:0], rd.carry...), ends: blk.ends[:0], hashes: blk.hashes[:0]}
		var err error
		for {
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
		for {
			j := bytes.IndexByte(blk.buf[start:], '\n')
			if j < 0 {
				break
			}
			blk.ends = append(blk.ends, start+j)
			blk.hashes = append(blk.hashes, sha256.Sum256(blk.buf[start:start+j]))
			start += j + 1
		}
		rest := blk.buf[start:]
		last := true
		switch {
		case len(rest) >= longLine:
			blk.long = true
		case err == io.EOF:
			blk.torn = len(rest) > 0
			last = blk.torn
		case err != nil:
			blk.err = err
		default:
			rd.carry = append(rd.carry[:0], rest...)
			last = false
		}
		blk.buf = blk.buf[:start]
		off += int64(start)
		select {
		case rd.full <- blk:
		case <-rd.quit:
			return false
		}
		if last {
			return false
		}
		if err == io.EOF {
			return true
		}
	}
}

// fill reads from r into b until b is full, or an error; it returns b
// with what it read.
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
		if n > 0 {
			empty = 0
		} else if empty++; empty >= maxEmptyReads {
			return b, io.ErrNoProgress
		}
	}
	return b, nil
}

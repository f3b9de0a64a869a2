package audit

import (
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"time"
)

// A Log writes its records through a shared mapping of its file, where
// the platform allows (see mapFile): the file is grown ahead of the
// records in chunks reserved with fallocate, filled with zeros by pwrite
// (a huge page at a time where that costs no extra writes: see hugeSize
// and fillPiece), prefaulted for writing (MADV_POPULATE_WRITE) and
// stored into once, page by page, off the writer's path (touch); each
// record is copied into the mapping under the Log's mutex, and no system
// call is made per record. The bytes of a MAP_SHARED mapping are the
// file's pages in the kernel's page cache, the same pages write(2) would
// have filled: a kill of the process right after the copy loses nothing,
// and fsync or fdatasync of the file makes them durable as it does
// written pages. The file then ends with a zero tail (see FORMAT.md) while the Log runs and
// after a crash; Open and Close cut it.
//
// Of the ways to grow the file that keep a full disk an error rather
// than a SIGBUS, this one is the cheapest measured (ext4, Linux 6.18):
// pwrite makes the chunk's pages in the page cache in batches, and the
// prefault then only maps them. Growing with ftruncate and letting
// MADV_POPULATE_WRITE make the pages (the file system reserves each one
// as it is first written, and the madvise reports a failure as EFAULT)
// costs about three times as much CPU per chunk: each page goes through
// the fault path, zeroed by read-ahead and reserved one at a time, and
// the blocks are allocated later, in writeback. Bench Call/guarded spent
// about 1 µs more per call that way.

// mapChunk is how far a mapped file is grown at a time: one huge page
// (see hugeSize).
const mapChunk = hugeSize

// hugeSize is the size of a transparent huge page (x86-64 and arm64 with
// 4 KiB pages). A window of the file that starts on a multiple of it is
// mapped by the kernel at an address aligned alike (ext4 does: its file
// mappings take thp_get_unmapped_area), and where the file system keeps
// large folios (ext4 since Linux 6.16) the pages of a chunk filled by
// one write of hugeSize are one folio, mapped by one page-table entry
// once the window is marked MADV_HUGEPAGE. On a Firecracker VM (Linux
// 6.18, ext4) this made growing the file ten times cheaper per record:
// a 4 KiB page cost about 5 µs on its first store from user space and
// 1 µs to fill and prefault, which is 1.5 µs for a record of 1 KB; a
// huge page costs about 0.15 µs per record in all. Elsewhere the window
// is mapped with small pages, as before.
const hugeSize = 2 << 20

// mapping is the shared mapping of the active file: a window of it, from
// base to size, the end of the space reserved.
//
// The next chunk is prepared ahead of need, off the writer's path: once
// the records pass prepAt (half of the last chunk), reserve starts one
// goroutine that reserves and fills the chunk after size, maps a window
// reaching its end and prefaults the new pages (see prepare). The writer
// that crosses into that chunk then only swaps windows. All fields are
// guarded by the Log's mutex; a preparation touches none of them, and
// hands its result back through its prep.
type mapping struct {
	fd     int
	data   []byte // the file from base to size
	base   int64  // the file offset of data[0], a multiple of the page size
	size   int64  // the file's size: reserved up to here
	chunk  int64  // how far to grow at a time
	limit  int64  // no chunk is prepared ahead from here on (0: no limit)
	prepAt int64  // a record ending past here starts the next preparation
	prep   *prep  // the preparation in flight or done, not yet taken
	stale  []byte // a window replaced by a prepared one, still mapped
	sys    mapSys // the system calls, replaced in tests
	align  int64  // windows start on a multiple of this: hugeSize, or pageSize for smaller chunks
	// hugeFill: a chunk is filled a huge page at a time when the chunk
	// before it filled within hugeFill (zero: never). See fillPiece.
	hugeFill time.Duration
	lastPrep time.Time // when the last preparation started
}

// prep is a preparation of the chunk [off, end) of the file, run by
// prepare; its other fields are set before done is closed.
type prep struct {
	off, end int64
	piece    int64 // fill writes this much at a time (see fillPiece)
	done     chan struct{}
	base     int64  // the file offset of data[0]
	data     []byte // a window of the file from base to end, or nil
	err      error
}

// mapSys holds the system calls of a mapping, so that tests can make
// them fail, and the size of its chunks (zero: mapChunk).
type mapSys struct {
	chunk int64
	alloc func(fd int, off, n int64) error // reserve and zero [off, off+n), growing the file
	// fill writes zeros over [off, off+n), reserved already, piece bytes
	// per write (see fillPiece): the pages are then in the page cache,
	// dirty and backed by blocks, and a store into the mapping costs a
	// cheap fault rather than the file system's work for a page of a
	// reserved (unwritten) extent, about six times as much per record.
	fill func(fd int, off, n, piece int64) error
	// appendMode sets or clears O_APPEND on fd: fill writes at offsets,
	// which Linux ignores on a file opened with O_APPEND.
	appendMode func(fd int, on bool) error
	mmap       func(fd int, off int64, n int) ([]byte, error)
	unmap      func(b []byte) error
	// populate prefaults the pages of b, all reserved, for writing
	// (MADV_POPULATE_WRITE), so that stores into them take no page
	// fault. It returns nil where the kernel lacks it (before Linux 5.14:
	// the stores fault the pages in). An error means a page could not
	// be made writable (the madvise reports as EFAULT what a store would
	// have raised as SIGBUS): the chunk is not used. nil: no prefault.
	populate func(b []byte) error
	trunc    func(fd int, size int64) error
	sync     func(fd int) error // fdatasync
	// recycle, called once per preparation before the new chunk is
	// filled, starts the writeback of the last chunk the records filled
	// and drops the two before it from the page cache (nil: neither).
	// The records there are in the file, the Log does not read them, and
	// no window maps them any more; pages still dirty or under writeback
	// stay. The page cache then grows by the chunks being written rather
	// than by all the log, and the new chunk's fill reuses the pages
	// just dropped: on a virtual machine whose host backs guest memory on
	// first touch (Firecracker, Linux 6.18 guest) a page the guest had not
	// touched cost the fill about 1.7 µs per 1 KB record, a recycled one
	// 0.15 µs (plus 0.1 µs for the two calls). SyncNever logs are written
	// back sooner than the kernel would have: only more durable.
	recycle func(fd int, wbOff, wbN, dropOff, dropN int64)
	// mapEach maps the file of a SyncEach log too (tests of the mapping
	// under SyncEach); without it such a log writes with write(2) (see
	// Options.NoMap).
	mapEach bool
}

// errFault is the cause of a latch when a copy into the mapping faults:
// the file was cut or its storage failed under the Log.
var errFault = errors.New("audit: fault writing the mapped file (was it truncated?)")

// reserve makes the window cover [off, off+n), growing the file when
// needed; off is where the next record goes, the end of the records.
// Past prepAt it starts preparing the next chunk in the background; a
// record that needs the prepared chunk waits for its preparation, if it
// is still running, and takes its window. A failed preparation is
// reserve's error, as a failure to grow the file inline is.
func (m *mapping) reserve(off int64, n int) error {
	end := off + int64(n)
	if off >= m.base && end <= m.base+int64(len(m.data)) {
		if end > m.prepAt {
			m.startPrep(off)
		}
		return nil
	}
	if p := m.prep; p != nil {
		<-p.done
		m.prep = nil
		if p.err != nil {
			return p.err
		}
		m.size = p.end
		if off >= p.base && end <= p.end {
			if m.stale != nil {
				m.sys.unmap(m.stale)
			}
			// The old window is unmapped by the next preparation, off
			// this path, or by close.
			m.stale, m.data, m.base = m.data, p.data, p.base
			m.setPrepAt()
			return nil
		}
		m.sys.unmap(p.data) // a record longer than the chunk: grow inline
	}
	size, old := m.size, m.size
	if end > size {
		size = (end + m.chunk - 1) / m.chunk * m.chunk
		if err := m.sys.alloc(m.fd, m.size, size-m.size); err != nil {
			return fmt.Errorf("reserve %d bytes: %w", size-m.size, err)
		}
		if err := m.sys.fill(m.fd, m.size, size-m.size, smallPiece); err != nil {
			return fmt.Errorf("fill %d bytes: %w", size-m.size, err)
		}
		m.size = size
	}
	base := off &^ (m.align - 1)
	data, err := m.sys.mmap(m.fd, base, int(size-base))
	if err != nil {
		return fmt.Errorf("map: %w", err)
	}
	if old < size && m.sys.populate != nil {
		if err := m.sys.populate(data[max(base, old&^(pageSize-1))-base:]); err != nil {
			m.sys.unmap(data)
			return fmt.Errorf("prefault %d bytes: %w", size-old, err)
		}
	}
	if m.data != nil {
		m.sys.unmap(m.data) // nothing to do about a failure but leak the window
	}
	m.data, m.base = data, base
	m.setPrepAt()
	return nil
}

// setPrepAt sets where the records start the preparation of the chunk
// after size: half way through the last chunk, unless the file has
// reached limit (it rotates there: a chunk beyond would be cut again).
func (m *mapping) setPrepAt() {
	m.prepAt = math.MaxInt64
	if m.limit <= 0 || m.size < m.limit {
		m.prepAt = m.size - m.chunk/2
	}
}

// startPrep starts preparing the chunk after size, with a window from
// the page (or huge page: see align) of off, where the records end, to
// the chunk's end.
func (m *mapping) startPrep(off int64) {
	m.prepAt = math.MaxInt64
	if m.prep != nil {
		return
	}
	p := &prep{off: m.size, end: m.size + m.chunk, piece: m.fillPiece(), base: off &^ (m.align - 1), done: make(chan struct{})}
	m.prep = p
	go p.prepare(m.fd, m.sys, m.stale)
	m.stale = nil
}

// Pieces of a fill: a write of hugeSize at an offset aligned alike makes
// one huge folio where the file system keeps large folios (see
// hugeSize); a write of smallPiece makes small ones.
const smallPiece = 64 << 10

// fillPiece says how the chunk prepared now is filled, from how fast the
// records filled the last one; it is called once per chunk. A huge folio
// is one page to the file system: a store into it after writeback makes
// all of it dirty again, so each sync writes the whole 2 MiB (Durable/N=1
// went from 0.26 to 1.4 ms a call when SyncEach logs used them). Huge
// folios are used only where that costs no extra writes: when the log
// syncs no more often than every hugeFill (never under SyncEach) and the
// last chunk filled within that time, so that a folio is written about
// once either way.
func (m *mapping) fillPiece() int64 {
	now := time.Now()
	last := m.lastPrep
	m.lastPrep = now
	if m.hugeFill <= 0 || m.align != hugeSize || last.IsZero() || now.Sub(last) > m.hugeFill {
		return smallPiece
	}
	return hugeSize
}

// prepare reserves and fills [p.off, p.end), maps [p.base, p.end) and
// prefaults the new pages (a failure to prefault fails the preparation), after unmapping stale, the window the Log no
// longer uses. It touches nothing but p and the file beyond the records:
// the Log writes below p.off until it takes p, after done.
func (p *prep) prepare(fd int, sys mapSys, stale []byte) {
	defer close(p.done)
	if stale != nil {
		sys.unmap(stale)
	}
	n := p.end - p.off
	if sys.recycle != nil && p.off >= 2*n {
		drop := max(0, p.off-4*n)
		sys.recycle(fd, p.off-2*n, n, drop, p.off-2*n-drop)
	}
	if err := sys.alloc(fd, p.off, n); err != nil {
		p.err = fmt.Errorf("reserve %d bytes: %w", n, err)
		return
	}
	if err := sys.fill(fd, p.off, n, p.piece); err != nil {
		p.err = fmt.Errorf("fill %d bytes: %w", n, err)
		return
	}
	data, err := sys.mmap(fd, p.base, int(p.end-p.base))
	if err != nil {
		p.err = fmt.Errorf("map: %w", err)
		return
	}
	if sys.populate != nil {
		// From the last page of the old chunk, where the record that
		// crosses into this one starts.
		if err := sys.populate(data[max(p.base, p.off-pageSize)-p.base:]); err != nil {
			sys.unmap(data)
			p.err = fmt.Errorf("prefault %d bytes: %w", n, err)
			return
		}
	}
	// Store into each new page once, here, off the writer's path: on
	// some virtual machines the first store from user space into a page
	// costs microseconds however the page was made (measured on a
	// Firecracker VM, Linux 6.18: about 5 µs a page, after the prefault
	// and after a read, and a third of Call/guarded's time when the
	// writer paid it); once stored into, the page takes stores at memory
	// speed. The pages from off on hold zeros that no record has reached.
	if err := touch(data[(p.off+pageSize-1)&^(pageSize-1)-p.base:]); err != nil {
		sys.unmap(data)
		p.err = fmt.Errorf("touch %d bytes: %w", n, err)
		return
	}
	p.data = data
}

// endFault ends a run of stores into the mapping, begun by making faults
// panics (debug.SetPanicOnFault(true), which returned old): it restores
// old, and makes a fault (the file cut under the mapping) errFault in
// *err. It must be deferred itself, to recover.
func endFault(old bool, err *error) {
	debug.SetPanicOnFault(old)
	if e := recover(); e != nil {
		if _, ok := e.(interface{ Addr() uintptr }); !ok {
			panic(e)
		}
		*err = errFault
	}
}

// touch stores a zero in the first byte of each page of b, which begins
// on a page and holds zeros. A fault (the file cut under the mapping) is
// an error, not a crash.
func touch(b []byte) (err error) {
	defer endFault(debug.SetPanicOnFault(true), &err)
	for i := 0; i < len(b); i += int(pageSize) {
		b[i] = 0
	}
	return nil
}

// wait waits for the preparation in flight, if any, and drops it: after
// it, nothing but the Log touches the file.
func (m *mapping) wait() {
	if p := m.prep; p != nil {
		<-p.done
		m.prep = nil
		if p.data != nil {
			m.sys.unmap(p.data)
		}
	}
}

// put copies a line, made of head and tail, and a newline into the window
// at off, which reserve has made room for, the newline last: a reader (or
// recovery after a kill in the middle of the copy) sees the record once
// it is complete. A fault (the file cut under the mapping) is an error,
// not a crash.
func (m *mapping) put(off int64, head, tail []byte) (err error) {
	defer endFault(debug.SetPanicOnFault(true), &err)
	d := m.data[off-m.base:]
	n := copy(d[:len(head)], head)
	n += copy(d[n:n+len(tail)], tail)
	d[n] = '\n'
	return nil
}

// close waits for a preparation in flight, unmaps the windows, cuts the file to size, the end of the
// records, and gives the file its O_APPEND back, for write(2).
func (m *mapping) close(size int64) error {
	m.wait() // a preparation finishing after the cut would grow the file again
	if m.stale != nil {
		m.sys.unmap(m.stale)
		m.stale = nil
	}
	var err error
	if m.data != nil {
		err = m.sys.unmap(m.data)
		m.data = nil
	}
	if terr := m.sys.trunc(m.fd, size); err == nil {
		err = terr
	}
	if aerr := m.sys.appendMode(m.fd, true); err == nil {
		err = aerr
	}
	return err
}

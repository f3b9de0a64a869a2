package audit

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// A Log writes its records through a shared mapping of its file, where
// the platform allows (see mapFile): the file is grown ahead of the
// records in chunks reserved with fallocate and filled with zeros, each
// record is copied into the mapping under the Log's mutex, and no system
// call is made per record. The bytes of a MAP_SHARED mapping are the
// file's pages in the kernel's page cache, the same pages write(2) would
// have filled: a kill of the process right after the copy loses nothing,
// and fsync or fdatasync of the file makes them durable as it does
// written pages. The file then ends with a zero tail (see FORMAT.md)
// while the Log runs and after a crash; Open and Close cut it.

// mapChunk is how far a mapped file is grown at a time.
const mapChunk = 1 << 20

// mapping is the shared mapping of the active file: a window of it, from
// base to size, the end of the space reserved.
type mapping struct {
	fd    int
	data  []byte // the file from base to size
	base  int64  // the file offset of data[0], a multiple of the page size
	size  int64  // the file's size: reserved up to here
	chunk int64  // how far to grow at a time
	sys   mapSys // the system calls, replaced in tests
}

// mapSys holds the system calls of a mapping, so that tests can make
// them fail, and the size of its chunks (zero: mapChunk).
type mapSys struct {
	chunk int64
	alloc func(fd int, off, n int64) error // reserve and zero [off, off+n), growing the file
	// fill writes zeros over [off, off+n), reserved already: the pages
	// are then in the page cache, dirty and backed by blocks, and a store
	// into the mapping costs a cheap fault rather than the file system's
	// work for a page of a reserved (unwritten) extent, about six times
	// as much per record.
	fill func(fd int, off, n int64) error
	// appendMode sets or clears O_APPEND on fd: fill writes at offsets,
	// which Linux ignores on a file opened with O_APPEND.
	appendMode func(fd int, on bool) error
	mmap       func(fd int, off int64, n int) ([]byte, error)
	unmap      func(b []byte) error
	trunc      func(fd int, size int64) error
	sync       func(fd int) error // fdatasync
}

// errFault is the cause of a latch when a copy into the mapping faults:
// the file was cut or its storage failed under the Log.
var errFault = errors.New("audit: fault writing the mapped file (was it truncated?)")

// reserve makes the window cover [off, off+n), growing the file when
// needed; off is where the next record goes, the end of the records.
func (m *mapping) reserve(off int64, n int) error {
	end := off + int64(n)
	if off >= m.base && end <= m.base+int64(len(m.data)) {
		return nil
	}
	size := m.size
	if end > size {
		size = (end + m.chunk - 1) / m.chunk * m.chunk
		if err := m.sys.alloc(m.fd, m.size, size-m.size); err != nil {
			return fmt.Errorf("reserve %d bytes: %w", size-m.size, err)
		}
		if err := m.sys.fill(m.fd, m.size, size-m.size); err != nil {
			return fmt.Errorf("fill %d bytes: %w", size-m.size, err)
		}
		m.size = size
	}
	base := off &^ (pageSize - 1)
	data, err := m.sys.mmap(m.fd, base, int(size-base))
	if err != nil {
		return fmt.Errorf("map: %w", err)
	}
	if m.data != nil {
		m.sys.unmap(m.data) // nothing to do about a failure but leak the window
	}
	m.data, m.base = data, base
	return nil
}

// put copies line and a newline into the window at off, which reserve
// has made room for, the newline last: a reader (or recovery after a
// kill in the middle of the copy) sees the record once it is complete.
// A fault (the file cut under the mapping) is an error, not a crash.
func (m *mapping) put(off int64, line []byte) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if e := recover(); e != nil {
			if _, ok := e.(interface{ Addr() uintptr }); !ok {
				panic(e)
			}
			err = errFault
		}
	}()
	d := m.data[off-m.base:]
	copy(d[:len(line)], line)
	d[len(line)] = '\n'
	return nil
}

// close unmaps the window, cuts the file to size, the end of the
// records, and gives the file its O_APPEND back, for write(2).
func (m *mapping) close(size int64) error {
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

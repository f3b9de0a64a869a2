package bench

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// mapChunk is how much the floor's log file grows at a time.
const mapChunk = 4 << 20

// hugePage is the size of a transparent huge page (x86-64, arm64).
const hugePage = 2 << 20

// mapFile is the floor's way of putting a record out of the process
// without a system call: the file is mapped shared and grown in chunks
// reserved with fallocate, filled with zeros and prefaulted, and a record
// is copied into the mapping, where it is in the page cache and survives
// the process as written bytes do. The mapping is a window from the huge
// page of the records' end to the end of the file.
type mapFile struct {
	f    *os.File
	mem  []byte // the file from base to size
	base int
	size int
	off  int // the end of the records
}

func openMapFile(path string) (*mapFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	m := &mapFile{f: f}
	if err := m.grow(mapChunk); err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// zeros is what a new chunk is filled with, a huge page (2 MiB) at a
// time: where the file system keeps large folios (ext4 from Linux 6.16)
// each write makes one, which the mapping, marked
// MADV_HUGEPAGE, maps with one page-table entry. As the guard's log does
// for a log that syncs no more often than the records fill a chunk
// (audit.hugeSize).
var zeros [hugePage]byte

// grow maps the file again from the huge page of the records' end to
// size bytes, which it first reserves and fills with zeros, and
// prefaults the new pages for writing (MADV_POPULATE_WRITE), as the
// guard's log does: pwrite makes the pages in the page cache in batches
// and the prefault maps them at once, where a file grown by ftruncate
// would make each page through the fault path. A failed prefault (a page
// that cannot be made writable) is an error; a kernel without it
// (EINVAL) leaves the stores to fault. Before it fills the new chunk it
// starts the writeback of the chunk before the records' and drops the
// two before that from the page cache, so that the fill reuses their
// pages, as the guard's log does (audit's mapSys.recycle).
func (m *mapFile) grow(size int) error {
	fd := int(m.f.Fd())
	old := m.size
	if m.mem != nil {
		if err := syscall.Munmap(m.mem); err != nil {
			return err
		}
		m.mem = nil
	}
	if c := mapChunk; old >= 2*c {
		syscall.SyncFileRange(fd, int64(old-2*c), int64(c), 2 /* SYNC_FILE_RANGE_WRITE */)
		drop := max(0, old-4*c)
		syscall.Syscall6(syscall.SYS_FADVISE64, uintptr(fd), uintptr(drop), uintptr(old-2*c-drop), 4 /* POSIX_FADV_DONTNEED */, 0, 0)
	}
	if err := syscall.Fallocate(fd, 0, 0, int64(size)); err != nil {
		return fmt.Errorf("fallocate %s: %w", m.f.Name(), err)
	}
	for off := int64(old); off < int64(size); {
		n, err := syscall.Pwrite(fd, zeros[:min(int64(len(zeros)), int64(size)-off)], off)
		if err != nil {
			return fmt.Errorf("zero %s: %w", m.f.Name(), err)
		}
		off += int64(n)
	}
	base := m.off &^ (hugePage - 1)
	mem, err := syscall.Mmap(fd, int64(base), size-base, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap %s: %w", m.f.Name(), err)
	}
	m.mem, m.base, m.size = mem, base, size
	syscall.Madvise(mem, syscall.MADV_HUGEPAGE) // an error (no THP) leaves small pages
	if err := syscall.Madvise(mem[old-base:], madvPopulateWrite); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("prefault %s: %w", m.f.Name(), err)
	}
	return nil
}

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14), which package
// syscall lacks.
const madvPopulateWrite = 23

// write copies b after the bytes written before it.
func (m *mapFile) write(b []byte) error {
	if m.off+len(b) > m.size {
		if err := m.grow(m.size + max(mapChunk, len(b))); err != nil {
			return err
		}
	}
	m.off += copy(m.mem[m.off-m.base:], b)
	return nil
}

// close unmaps the file and cuts it to the bytes written. Closing again
// does nothing.
func (m *mapFile) close() error {
	if m.mem == nil {
		return nil
	}
	err := syscall.Munmap(m.mem)
	m.mem = nil
	if terr := m.f.Truncate(int64(m.off)); err == nil {
		err = terr
	}
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}

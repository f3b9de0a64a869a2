//go:build linux

package audit

import (
	"errors"
	"os"
	"syscall"
)

var pageSize = int64(os.Getpagesize())

// osMapSys are the system calls of a mapping on Linux. fallocate reserves
// the blocks, so that a full disk is an error when the file grows rather
// than a SIGBUS when a page of the mapping is first written.
var osMapSys = mapSys{
	alloc: func(fd int, off, n int64) error {
		for {
			err := syscall.Fallocate(fd, 0, off, n)
			if !errors.Is(err, syscall.EINTR) {
				return err
			}
		}
	},
	mmap: func(fd int, off int64, n int) ([]byte, error) {
		return syscall.Mmap(fd, off, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	},
	unmap: syscall.Munmap,
	trunc: syscall.Ftruncate,
	// fdatasync writes the pages the mapping dirtied as it writes those of
	// write(2): on Linux a store to a shared file mapping marks its page
	// dirty in the page cache (TestDatasyncCleansMapping checks it).
	sync: syscall.Fdatasync,
}

// newMapping maps f, whose records end at off, when f is an operating
// system file, and reserves the first chunk after off. It returns nil and
// no error when f cannot be mapped (not an *os.File); an error when the
// reservation or the mapping failed: the caller cuts the file back to
// off and writes with write(2).
func newMapping(f File, off, chunk int64, sys mapSys) (*mapping, error) {
	fdf, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return nil, nil
	}
	m := &mapping{fd: int(fdf.Fd()), size: off, chunk: chunk, sys: sys}
	if err := m.reserve(off, 1); err != nil {
		return nil, err
	}
	return m, nil
}

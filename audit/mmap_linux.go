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
	fill: func(fd int, off, n, piece int64) error {
		for n > 0 {
			k, err := syscall.Pwrite(fd, zeros[:min(n, piece, int64(len(zeros)))], off)
			if err != nil && !errors.Is(err, syscall.EINTR) {
				return err
			}
			off, n = off+int64(k), n-int64(k)
		}
		return nil
	},
	appendMode: func(fd int, on bool) error {
		flags, err := fcntl(fd, syscall.F_GETFL, 0)
		if err != nil {
			return err
		}
		if on {
			flags |= syscall.O_APPEND
		} else {
			flags &^= syscall.O_APPEND
		}
		_, err = fcntl(fd, syscall.F_SETFL, flags)
		return err
	},
	mmap: func(fd int, off int64, n int) ([]byte, error) {
		b, err := syscall.Mmap(fd, off, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if err == nil {
			// Huge pages where the kernel and the file system have them
			// (see hugeSize); an error (no THP) leaves small pages.
			syscall.Madvise(b, syscall.MADV_HUGEPAGE)
		}
		return b, err
	},
	unmap: syscall.Munmap,
	populate: func(b []byte) error {
		for {
			err := syscall.Madvise(b, madvPopulateWrite)
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EINVAL):
				// Before Linux 5.14: the stores fault the pages in.
				return nil
			}
			return err
		}
	},
	trunc: syscall.Ftruncate,
	// fdatasync writes the pages the mapping dirtied as it writes those of
	// write(2): on Linux a store to a shared file mapping marks its page
	// dirty in the page cache (TestDatasyncCleansMapping checks it).
	sync:    syscall.Fdatasync,
	recycle: osRecycle,
}

// madvPopulateWrite is MADV_POPULATE_WRITE, which package syscall lacks.
const madvPopulateWrite = 23

// zeros is what fill writes, up to a huge page at a time: the page cache
// makes one folio of a write as large as it can (see hugeSize). It costs no
// memory: its pages are the kernel's zero page until written, and
// nothing writes them.
var zeros [hugeSize]byte

func fcntl(fd, cmd, arg int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), uintptr(arg))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
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
	m := &mapping{fd: int(fdf.Fd()), size: off, chunk: chunk, sys: sys, align: pageSize}
	if chunk%hugeSize == 0 {
		m.align = hugeSize
	}
	if err := sys.appendMode(m.fd, false); err != nil {
		return nil, err
	}
	if err := m.reserve(off, 1); err != nil {
		sys.appendMode(m.fd, true)
		return nil, err
	}
	return m, nil
}

//go:build linux && (amd64 || arm64)

package audit

import "syscall"

// osRecycle is mapSys.recycle on Linux.
var osRecycle = recycleAdvice

// recycleAdvice starts the writeback of [wbOff, wbOff+wbN), records the Log
// no longer writes, and drops [dropOff, dropOff+dropN) from the page
// cache where it is clean and unmapped (see mapSys.recycle). Both are
// advice: an error changes nothing the Log relies on, and is ignored.
func recycleAdvice(fd int, wbOff, wbN, dropOff, dropN int64) {
	if wbN > 0 {
		syscall.SyncFileRange(fd, wbOff, wbN, syncFileRangeWrite)
	}
	if dropN > 0 {
		syscall.Syscall6(syscall.SYS_FADVISE64, uintptr(fd), uintptr(dropOff), uintptr(dropN), fadvDontNeed, 0, 0)
	}
}

const (
	syncFileRangeWrite = 2 // SYNC_FILE_RANGE_WRITE: start writeback, do not wait
	fadvDontNeed       = 4 // POSIX_FADV_DONTNEED
)

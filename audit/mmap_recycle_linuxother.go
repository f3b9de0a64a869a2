//go:build linux && !(amd64 || arm64)

package audit

// osRecycle is nil where its system calls' arguments are laid out
// otherwise (32-bit platforms): the page cache keeps the log's pages.
var osRecycle func(fd int, wbOff, wbN, dropOff, dropN int64)

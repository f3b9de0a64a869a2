//go:build !linux

package audit

// pageSize is unused where files are not mapped.
const pageSize = 4096

// osMapSys is empty where files are not mapped.
var osMapSys = mapSys{}

// newMapping maps nothing: without fallocate, a full disk would show as
// a SIGBUS at a page of the mapping rather than as an error. The Log
// writes with write(2).
func newMapping(f File, off, chunk int64, sys mapSys) (*mapping, error) { return nil, nil }

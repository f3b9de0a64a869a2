package audit

import (
	"io"
	"io/fs"
	"os"
)

// FS is the file layer under a Log. The default is the operating system's
// files (OS); tests put a fault-injecting FS in its place. An FS must be
// safe for concurrent use.
type FS interface {
	// OpenFile opens a file as os.OpenFile does. A directory opened
	// read-only must support Sync, which makes renames in it durable.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Rename renames a file as os.Rename does.
	Rename(oldpath, newpath string) error
	// ReadDir lists a directory as os.ReadDir does.
	ReadDir(name string) ([]fs.DirEntry, error)
}

// File is an open file of an FS. The Log uses Write only at the end of
// the file, and reads only while it opens.
type File interface {
	io.Reader
	io.Writer
	io.Seeker
	Sync() error
	Truncate(size int64) error
	Close() error
}

// OS is the FS of the operating system.
var OS FS = osFS{}

type osFS struct{}

// OpenFile calls os.OpenFile.
func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Rename calls os.Rename.
func (osFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// ReadDir calls os.ReadDir.
func (osFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

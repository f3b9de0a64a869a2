//go:build !linux

package bench

import "os"

// mapFile is the floor's log file; on Linux it is a shared mapping
// (floormap_linux_test.go), elsewhere a file written with one write per
// record.
type mapFile struct {
	f      *os.File
	closed bool
}

func openMapFile(path string) (*mapFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &mapFile{f: f}, nil
}

func (m *mapFile) write(b []byte) error { _, err := m.f.Write(b); return err }

func (m *mapFile) close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	return m.f.Close()
}

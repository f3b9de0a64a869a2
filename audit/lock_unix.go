//go:build unix

package audit

import (
	"errors"
	"fmt"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f when it is an operating
// system file, so that a second process (or a second Log in this one)
// cannot interleave its records with ours and break the chain. Closing f
// releases the lock.
func lockFile(f File, path string) error {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return nil
	}
	if err := syscall.Flock(int(fd.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("audit: %s is open for writing by another Log: %w", path, ErrLocked)
		}
		return fmt.Errorf("audit: lock %s: %w", path, err)
	}
	return nil
}

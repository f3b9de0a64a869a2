//go:build !unix

package audit

// lockFile does nothing where advisory locks are not available: do not
// open one log from two processes.
func lockFile(f File, path string) error { return nil }

//go:build race

package audit

// raceEnabled is true when the race detector is on: single-goroutine
// tests that repeat a check many times check a sample instead, since the
// detector slows them several times and adds nothing to them.
const raceEnabled = true

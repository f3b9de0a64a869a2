//go:build !race

package policy

// raceEnabled reports whether the tests run under the race detector, whose
// sync.Pool drops items at random (so allocations cannot be counted).
const raceEnabled = false

//go:build !race

package audit

// raceEnabled is true when the race detector is on.
const raceEnabled = false

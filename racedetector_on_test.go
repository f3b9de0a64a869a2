//go:build race

package agentguard

// raceDetector reports whether the tests run under the race detector,
// whose sync.Pool drops items at random: allocation counts of the
// package's own tests are checked without it.
const raceDetector = true

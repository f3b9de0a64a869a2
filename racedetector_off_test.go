//go:build !race

package agentguard

// raceDetector reports whether the tests run under the race detector.
const raceDetector = false

//go:build race

package agentguard_test

// underRace reports whether the tests run under the race detector, which
// adds allocations of its own: allocation counts are checked without it.
const underRace = true

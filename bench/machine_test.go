package bench

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// BenchmarkMachine measures what the machine charges for sharing memory
// between cores, which bounds what any parallel form of the guard (or of
// the floor) can gain: every call writes a few cache lines that every
// other call writes too (the audit chain's head and lock, the budget's
// shared account, the rate limiter's bucket, the kill switch's count).
//
// line-round-trip: two goroutines, on two cores, take turns writing one
// cache line; ns/op is one round trip, so one transfer of the line from
// one core to the other is half of it.
func BenchmarkMachine(b *testing.B) {
	b.Run("line-round-trip", func(b *testing.B) {
		if runtime.GOMAXPROCS(0) < 2 {
			b.Skip("needs two cores (GOMAXPROCS >= 2)")
		}
		var turn atomic.Int64
		n := int64(b.N)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := int64(1); i < 2*n; i += 2 {
				for turn.Load() != i {
				}
				turn.Store(i + 1)
			}
		}()
		b.ResetTimer()
		for i := int64(0); i < 2*n; i += 2 {
			for turn.Load() != i {
			}
			turn.Store(i + 1)
		}
		<-done
	})
}

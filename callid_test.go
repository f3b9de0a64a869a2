package agentguard

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestCallID checks that call IDs are UUIDv7 of the RFC 9562 variant,
// carry the call's time in milliseconds, and sort in the order they were
// made, also when the clock stands still or goes back.
func TestCallID(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 15, 0, 123456789, time.UTC)
	var last atomic.Int64
	var prev string
	for i, at := range []time.Time{t0, t0, t0, t0.Add(-time.Hour), t0.Add(time.Millisecond), t0.Add(time.Hour)} {
		id, err := newCallID(&last, at, new([36]byte), nil)
		if err != nil {
			t.Fatal(err)
		}
		u, err := uuid.Parse(id)
		if err != nil || u.String() != id {
			t.Fatalf("newCallID = %q: not a canonical UUID (%v)", id, err)
		}
		if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Errorf("newCallID = %q: version %d variant %v, want 7 and RFC 4122", id, u.Version(), u.Variant())
		}
		sec, nsec := u.Time().UnixTime()
		got := time.Unix(sec, nsec)
		if i < 3 || i == 5 {
			if want := at.Truncate(time.Millisecond); !got.Equal(want) {
				t.Errorf("newCallID(%v) = %q: time %v, want %v", at, id, got, want)
			}
		}
		if id <= prev {
			t.Errorf("newCallID(%v) = %q, not after %q", at, id, prev)
		}
		prev = id
	}

	// Concurrent calls at the same instant get distinct IDs.
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var src entropy
			for i := range 500 {
				var from *entropy
				if i%2 == 1 {
					from = &src // the batched source, as a pooled flight's
				}
				id, err := newCallID(&last, t0, new([36]byte), from)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[id] {
					t.Errorf("newCallID: %q made twice", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestEntropy: the batched source hands out each byte once, wipes what it
// handed out, and reads crypto/rand again when it runs out; what it gives
// is not all zeros.
func TestEntropy(t *testing.T) {
	var e entropy
	seen := map[[8]byte]bool{}
	for i := range 3 * len(e.b) / 8 {
		var p [8]byte
		if err := e.read(p[:]); err != nil {
			t.Fatal(err)
		}
		if p == ([8]byte{}) || seen[p] {
			t.Fatalf("read %d: %x, zero or given before", i, p)
		}
		seen[p] = true
		if used := e.b[:len(e.b)-e.n]; len(used) == 0 || !allZero(used) {
			t.Fatalf("read %d: %d bytes handed out, not all wiped: %x", i, len(used), used)
		}
	}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func BenchmarkCallID(b *testing.B) {
	for _, batched := range []bool{false, true} {
		name := "rand"
		if batched {
			name = "batched"
		}
		b.Run(name, func(b *testing.B) {
			var last atomic.Int64
			var src *entropy
			if batched {
				src = new(entropy)
			}
			var id [36]byte
			t := time.Now()
			for b.Loop() {
				if _, err := newCallID(&last, t, &id, src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package agentguard

import (
	"crypto/rand"
	"sync/atomic"
	"time"
	"unsafe"
)

// newCallID returns a UUIDv7 (RFC 9562) for a call entering the guard at
// t, written in the canonical 36-character form into b, which the string
// returned shares: b must never be written again (the pipeline keeps it in
// the call's flight, which is never reused), so the ID costs no allocation
// of its own. An ID holds 48 bits of Unix milliseconds, 12 bits of
// sub-millisecond time made to increase from call to call, and 62 random
// bits. last holds the time part of the last ID made (milliseconds << 12 |
// fraction): it only grows, so IDs sort in the order they were made, as
// uuid.NewV7's do. The random bits come from src, or from crypto/rand
// directly when src is nil.
func newCallID(last *atomic.Int64, t time.Time, b *[36]byte, src *entropy) (string, error) {
	nano := t.UnixNano()
	milli := nano / 1e6
	now := milli<<12 | (nano-milli*1e6)>>8
	for {
		prev := last.Load()
		next := now
		if next <= prev {
			next = prev + 1
		}
		if last.CompareAndSwap(prev, next) {
			now = next
			break
		}
	}
	var u [16]byte
	if err := src.read(u[8:]); err != nil {
		return "", err
	}
	milli, seq := now>>12, now&0xfff
	for i := 5; i >= 0; i-- {
		u[i] = byte(milli)
		milli >>= 8
	}
	u[6] = 0x70 | byte(seq>>8) // version 7
	u[7] = byte(seq)
	u[8] = u[8]&0x3f | 0x80 // the RFC 9562 variant
	const hexDigits = "0123456789abcdef"
	j := 0
	for i, x := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexDigits[x>>4], hexDigits[x&0xf]
		j += 2
	}
	return unsafe.String(&b[0], len(b)), nil
}

// entropy is bytes from crypto/rand read ahead in batches, for the call
// IDs made with one pooled flight: one read of the system's generator
// serves many calls. Each byte is handed out once and wiped from the
// buffer as it is. An entropy is used by one goroutine at a time.
type entropy struct {
	b [256]byte
	n int // the bytes not yet handed out: the last n of b
}

// read fills p (at most len(e.b) bytes) with random bytes; with e nil,
// straight from crypto/rand.
func (e *entropy) read(p []byte) error {
	if e == nil {
		_, err := rand.Read(p)
		return err
	}
	if e.n < len(p) {
		if _, err := rand.Read(e.b[:]); err != nil {
			return err
		}
		e.n = len(e.b)
	}
	i := len(e.b) - e.n
	copy(p, e.b[i:i+len(p)])
	clear(e.b[i : i+len(p)])
	e.n -= len(p)
	return nil
}

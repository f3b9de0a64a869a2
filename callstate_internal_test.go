package agentguard

import (
	"testing"
	"unsafe"
)

// TestCallStateSmall: the one allocation of an allowed call stays in the
// 144-byte size class. Its size sets how often the collector runs under
// load: at 288 bytes (the denial inside it) a guarded call cost about 10%
// more wall time in bench's Call/guarded.
func TestCallStateSmall(t *testing.T) {
	if n := unsafe.Sizeof(callState{}); n > 144 {
		t.Errorf("callState is %d bytes, want at most 144", n)
	}
}

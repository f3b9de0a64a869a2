package audit

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
)

// TestAppendLeavesAHungSync: under SyncEach, a sync that does not return
// (a disk that stopped answering) holds the append that leads it, but an
// append waiting for it returns its context's error once the context
// ends, and so does an append whose context ended before it came; their
// records are not lost: once the sync returns, they are synced with the
// rest and the log verifies.
func TestAppendLeavesAHungSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var hang atomic.Bool
	ffs := &faultFS{FS: OS, noSync: true, sync: func() error {
		if hang.Load() {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}
		return nil
	}}
	l, err := Open(path, Options{FS: ffs, SignerKey: testSKey})
	if err != nil {
		t.Fatal(err)
	}
	hang.Store(true)

	leader := make(chan error, 1)
	go func() { leader <- l.Append(context.Background(), sampleRecord(0)) }()
	<-entered // the leader is in its sync, and stays there

	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() { waiter <- l.Append(ctx, sampleRecord(1)) }()
	// The waiter joins the next batch, under the lock it holds until it
	// waits: once it has joined, it waits.
	for joined := 0; joined == 0; {
		runtime.Gosched()
		l.mu.Lock()
		joined = l.joined
		l.mu.Unlock()
	}
	cancel()
	if err := <-waiter; !errors.Is(err, context.Canceled) {
		t.Fatalf("an append waiting for a hung sync, its context cancelled: %v, want context.Canceled", err)
	}
	if err := l.Append(ctx, sampleRecord(2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("an append whose context had ended: %v, want context.Canceled", err)
	}
	select {
	case err := <-leader:
		t.Fatalf("the leader returned (%v) while its sync hung", err)
	default:
	}

	hang.Store(false)
	close(release)
	if err := <-leader; err != nil {
		t.Fatalf("the leader, once its sync returned: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(VerifyOptions{Key: testVKey, RequireCovered: true}, path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records-uint64(rep.CheckpointRecords) != 3 {
		t.Fatalf("Verify = %+v, want the 3 records (and the checkpoint)", rep)
	}
}

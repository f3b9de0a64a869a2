package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hardstop-labs/agentguard/audit"
)

// groupCommit is the floor of BenchmarkDurable: writers append the same
// bytes (the two records of one guarded call) with one write(2) each
// under a mutex and wait until an fdatasync covers them; the first waiter
// syncs for everyone written so far (one shared fdatasync per batch).
type groupCommit struct {
	mu      sync.Mutex
	cond    sync.Cond
	f       *os.File
	line    []byte
	off     int64 // bytes written
	synced  int64 // bytes durable
	syncing bool
	err     error
}

func openGroupCommit(tb testing.TB, line []byte) *groupCommit {
	tb.Helper()
	f, err := os.OpenFile(filepath.Join(tb.TempDir(), "group.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	gc := &groupCommit{f: f, line: line}
	gc.cond.L = &gc.mu
	return gc
}

func (gc *groupCommit) append() error {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if gc.err != nil {
		return gc.err
	}
	n, err := gc.f.Write(gc.line)
	if err != nil {
		gc.err = err
		return err
	}
	gc.off += int64(n)
	mine := gc.off
	for gc.synced < mine {
		if gc.err != nil {
			return gc.err
		}
		if gc.syncing {
			gc.cond.Wait()
			continue
		}
		gc.syncing = true
		target := gc.off
		gc.mu.Unlock()
		err := fdatasync(gc.f)
		gc.mu.Lock()
		gc.syncing = false
		if err != nil {
			gc.err = err
		} else {
			gc.synced = target
		}
		gc.cond.Broadcast()
	}
	return nil
}

// callLines are the bytes of the two records of one guarded call, as the
// audit log writes them.
func callLines(tb testing.TB) []byte {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "lines.jsonl")
	l, err := audit.Open(path, audit.Options{Sync: audit.SyncNever})
	if err != nil {
		tb.Fatal(err)
	}
	d, r := callRecords("0193b6c8-7c4e-7000-8000-000000000000")
	for _, rec := range []*audit.Record{d, r} {
		if err := l.Append(context.Background(), rec); err != nil {
			tb.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkGroupCommit is the group-commit floor of BenchmarkDurable: N
// writers appending the bytes of one guarded call's records each, with one
// shared fdatasync per batch. ns/op is per call.
func BenchmarkGroupCommit(b *testing.B) {
	line := callLines(b)
	for _, n := range writers {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			gc := openGroupCommit(b, line)
			b.ReportAllocs()
			runN(b, n, gc.append)
		})
	}
}

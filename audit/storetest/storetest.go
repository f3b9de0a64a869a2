// Package storetest checks an audit.Store against the contract written on
// the interface, and a StoreLog over it. A driver's test is one line:
//
//	func TestStore(t *testing.T) { storetest.Run(t, func(t *testing.T) audit.Store { return newStore(t) }) }
//
// Every subtest uses logs with random IDs, so a store shared between runs
// needs no cleaning.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hardstop-labs/agentguard/audit"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// Run checks the store that newStore returns, one per subtest. Every line
// it appends is a record that extends its log's chain.
func Run(t *testing.T, newStore func(t *testing.T) audit.Store) {
	ctx := context.Background()
	// rec returns a line function that builds a record of log extending
	// the chain: a store may refuse lines that do not (PostgreSQL's does).
	rec := func(log, call string) func(uint64, audit.Hash) ([]byte, error) {
		return func(size uint64, head audit.Hash) ([]byte, error) {
			r := audit.Record{Seq: size, Time: t0, Log: log, Kind: audit.KindDecision, Call: call, Prev: head}
			return r.AppendJSON(nil)
		}
	}
	read := func(t *testing.T, st audit.Store, log string, from uint64) []string {
		t.Helper()
		var out []string
		next := from
		err := st.Read(ctx, log, from, func(seq uint64, l []byte) error {
			if seq != next {
				return fmt.Errorf("read gave seq %d, want %d", seq, next)
			}
			next++
			out = append(out, string(l))
			return nil
		})
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		return out
	}

	t.Run("SizeAndHead", func(t *testing.T) {
		st, log := newStore(t), uuid.NewString()
		if got := read(t, st, log, 0); len(got) != 0 {
			t.Fatalf("a new log reads %q, want nothing", got)
		}
		var want []string
		for i, call := range []string{"first", "second", "third"} {
			err := st.Append(ctx, log, func(size uint64, head audit.Hash) ([]byte, error) {
				if size != uint64(i) {
					return nil, fmt.Errorf("size %d, want %d", size, i)
				}
				var wantHead audit.Hash
				if i > 0 {
					wantHead = audit.HashLine([]byte(want[i-1]))
				}
				if head != wantHead {
					return nil, fmt.Errorf("head %v, want %v", head, wantHead)
				}
				b, err := rec(log, call)(size, head)
				want = append(want, string(b))
				return b, err
			})
			if err != nil {
				t.Fatalf("Append %d: %v", i, err)
			}
		}
		if got := read(t, st, log, 0); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Read = %q, want %q", got, want)
		}
		if got := read(t, st, log, 2); len(got) != 1 || got[0] != want[2] {
			t.Fatalf("Read from 2 = %q, want the third line", got)
		}
		if got := read(t, st, uuid.NewString(), 0); len(got) != 0 {
			t.Fatalf("another log reads %q, want nothing", got)
		}
	})

	t.Run("LineErrorStoresNothing", func(t *testing.T) {
		st, log := newStore(t), uuid.NewString()
		boom := errors.New("boom")
		if err := st.Append(ctx, log, func(uint64, audit.Hash) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Fatalf("Append = %v, want the line's error", err)
		}
		if err := st.Append(ctx, log, rec(log, "a")); err != nil {
			t.Fatal(err)
		}
		if got := read(t, st, log, 0); len(got) != 1 {
			t.Fatalf("Read = %q, want one line", got)
		}
	})

	t.Run("ReadStopsAtError", func(t *testing.T) {
		st, log := newStore(t), uuid.NewString()
		for range 3 {
			if err := st.Append(ctx, log, rec(log, "x")); err != nil {
				t.Fatal(err)
			}
		}
		stop := errors.New("stop")
		n := 0
		err := st.Read(ctx, log, 0, func(uint64, []byte) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Fatalf("Read = %v after %d lines, want fn's error after 1", err, n)
		}
	})

	// Writers of two StoreLogs append at once: one unbroken chain that
	// Verify accepts, with every record, and signed checkpoints.
	t.Run("ConcurrentChain", func(t *testing.T) {
		st, log := newStore(t), uuid.NewString()
		skey, vkey, err := audit.GenerateKey("storetest")
		if err != nil {
			t.Fatal(err)
		}
		var ls []*audit.StoreLog
		for range 2 {
			l, err := audit.OpenStore(st, audit.StoreOptions{ID: log, SignerKey: skey, CheckpointEvery: 25})
			if err != nil {
				t.Fatal(err)
			}
			ls = append(ls, l)
		}
		const per = 60
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Go(func() {
				for i := range per {
					r := &audit.Record{Kind: audit.KindDecision, Call: fmt.Sprintf("w%d-%d", w, i), Tool: "t",
						Args: map[string]any{"password": "hunter2", "n": i}}
					if err := ls[w%2].Append(ctx, r); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		if _, err := ls[0].Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := audit.Export(ctx, st, log, 0, &buf); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(buf.Bytes(), []byte("hunter2")) {
			t.Fatal("a secret reached the store unredacted")
		}
		rep, err := audit.VerifyReaders(audit.VerifyOptions{Key: vkey}, audit.Source{Name: "export", R: &buf})
		if err != nil {
			t.Fatalf("the exported chain does not verify: %v", err)
		}
		if got := rep.Records - uint64(rep.CheckpointRecords); got != 6*per {
			t.Fatalf("%d records besides checkpoints, want %d", got, 6*per)
		}
		if rep.Checkpoints < 2 || rep.Checkpoints != rep.CheckpointRecords {
			t.Fatalf("%d of %d checkpoints verified, want every one and at least 2", rep.Checkpoints, rep.CheckpointRecords)
		}
		if rep.Log != log {
			t.Fatalf("log ID %q, want %q", rep.Log, log)
		}
	})
}

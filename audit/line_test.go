package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// FuzzLineHash checks the two steps of a line's hash, the prefix hashed
// before the log's lock and the tail after it, against the hash of the
// whole line in one step, for arbitrary records, seqs and prevs: the bytes
// are AppendJSON's and the hash is their SHA-256. The lineBufs are reused
// from call to call, as the Log reuses them.
func FuzzLineHash(f *testing.F) {
	f.Add("y", strings.Repeat("h", 150), "0193b6c8", uint64(0), []byte{}, int64(0), 1.5) // a head kept
	f.Add("x", "y", "0193b6c8", uint64(0), []byte{}, int64(0), 1.5)
	f.Add("\xff\u2028", strings.Repeat("k", 200), "", uint64(1<<64-1), []byte("prev"), int64(-1), 1e300)
	f.Add(strings.Repeat("é", 40), "", "L", uint64(12345), bytes.Repeat([]byte{0xff}, 40), int64(1)<<62, 0.25)
	f.Fuzz(func(t *testing.T, s, k, log string, seq uint64, prev []byte, ns int64, fl float64) {
		r := &Record{Kind: Kind("k" + s), Call: k, Tool: s, Reason: k, Error: s,
			Args:   map[string]any{k: s, "f": fl, "a": []any{s, int64(seq)}},
			Labels: map[string]string{k: s}, Duration: time.Duration(ns)}
		if len(s)%2 == 1 {
			r.Checkpoint = k
		}
		now := time.Unix(0, ns).UTC()
		lb := lineBufs.Get().(*lineBuf)
		defer lb.free()
		// The same head three times (hashed and seen, hashed and kept,
		// restored), each line with another time, seq and prev; the
		// heads of earlier inputs may be in the cache.
		var want []byte
		for i := range 3 {
			now := now.Add(time.Duration(i))
			if err := lb.prefix(r, now, log, &fuzzHeads); err != nil {
				if _, werr := r.AppendJSON(nil); werr == nil {
					t.Fatalf("prefix: %v; AppendJSON: no error", err)
				}
				return
			}
			var p Hash
			copy(p[:], prev)
			p[0] += byte(i)
			tail, h := lb.line(seq+uint64(i), p)
			r.Seq, r.Time, r.Log, r.Prev = seq+uint64(i), now, log, p
			var err error
			want, err = r.AppendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := append(bytes.Clone(lb.b), tail...); !bytes.Equal(got, want) {
				t.Fatalf("prefix and tail\n%s\nAppendJSON\n%s", got, want)
			}
			if h != sha256.Sum256(want) {
				t.Fatalf("line %d: two-step hash %v, sha256.Sum256 %x", i, h, sha256.Sum256(want))
			}
		}
		if _, err := ParseRecord(want); err != nil {
			t.Fatalf("ParseRecord(%s) = %v", want, err)
		}
	})
}

// TestConcurrentAppendsChain appends from many goroutines, with Append
// and AppendLater, through the mapping and with write(2): the log
// verifies, its lines are of version 3 with seqs 0, 1, 2… in file order,
// each line's prev is the hash of the line before, and each Append
// returned with its record's Seq and Prev set to those of the line that
// holds it.
func TestConcurrentAppendsChain(t *testing.T) {
	for _, noMap := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoMap=%v", noMap), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			l, err := Open(path, Options{Sync: SyncNever, NoMap: noMap, SignerKey: testSKey, CheckpointEvery: 37})
			if err != nil {
				t.Fatal(err)
			}
			const goroutines, each = 8, 60
			got := make([][]*Record, goroutines)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range each {
						r := sampleRecord(g*1000 + i)
						add := l.Append
						if i%3 == 0 {
							add = l.AppendLater
						}
						if err := add(context.Background(), r); err != nil {
							t.Error(err)
							return
						}
						got[g] = append(got[g], r)
					}
				})
			}
			wg.Wait()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(VerifyOptions{Key: testVKey, RequireCovered: true}, path)
			if err != nil {
				t.Fatal(err)
			}
			if n := rep.Records - uint64(rep.CheckpointRecords); n != goroutines*each {
				t.Fatalf("Verify = %+v, want %d records and the checkpoints", rep, goroutines*each)
			}
			lines := splitLines(readFile(t, path))
			var prev Hash
			bySeq := map[uint64]string{}
			for i, line := range lines {
				line = line[:len(line)-1]
				if !bytes.HasPrefix(line, []byte(`{"log":`)) {
					t.Fatalf("line %d is not of version 3: %s", i+1, line)
				}
				r, err := ParseRecord(line)
				if err != nil {
					t.Fatal(err)
				}
				if r.Seq != uint64(i) || r.Prev != prev {
					t.Fatalf("line %d: seq %d, prev %v; want seq %d, prev %v", i+1, r.Seq, r.Prev, i, prev)
				}
				bySeq[r.Seq] = r.Call
				prev = HashLine(line)
			}
			for g := range got {
				if len(got[g]) != each {
					t.Fatalf("goroutine %d appended %d records, want %d", g, len(got[g]), each)
				}
				for i, r := range got[g] {
					if bySeq[r.Seq] != r.Call {
						t.Fatalf("goroutine %d, record %d: Append set seq %d, whose line holds call %q, not %q", g, i, r.Seq, bySeq[r.Seq], r.Call)
					}
					want := Hash{}
					if r.Seq > 0 {
						want = HashLine(lines[r.Seq-1][:len(lines[r.Seq-1])-1])
					}
					if r.Prev != want {
						t.Fatalf("call %s: Append set prev %v, the line before hashes to %v", r.Call, r.Prev, want)
					}
					if i > 0 && r.Seq <= got[g][i-1].Seq {
						t.Fatalf("goroutine %d: seq %d after seq %d", g, r.Seq, got[g][i-1].Seq)
					}
				}
			}
		})
	}
}

// TestOldVersionContinued: a Log opens a log of version 1 or 2, as the
// active file (with a torn last line, which it cuts) or as a rotated
// file, and continues the chain in version 3; Verify reads both as one
// chain.
func TestOldVersionContinued(t *testing.T) {
	raw := readFile(t, writeLog(t, 6, true))
	for _, version := range []int{1, 2} {
		start := map[int]string{1: `{"seq":`, 2: `{"time":`}[version]
		v1 := mixVersionsN(t, raw, 7*(2-version), 7*(version-1))
		if n := bytes.Count(v1, []byte("\n"+start)) + 1; n != 7 {
			t.Fatalf("%d lines of version %d, want 7", n, version)
		}
		if _, err := verifyBytes(v1, VerifyOptions{Key: testVKey, RequireCovered: true}); err != nil {
			t.Fatalf("the log of version %d: %v", version, err)
		}
		for _, rotated := range []bool{false, true} {
			t.Run(fmt.Sprintf("version=%d/rotated=%v", version, rotated), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "audit.jsonl")
				name, data := path, append(bytes.Clone(v1), start+`"2026-11-30T12:00:`...)
				if rotated {
					name, data = SegmentName(path, 0), v1
				}
				if err := os.WriteFile(name, data, 0o600); err != nil {
					t.Fatal(err)
				}
				l, err := Open(path, Options{SignerKey: testSKey, Clock: fakeClock(), Sync: SyncNever})
				if err != nil {
					t.Fatal(err)
				}
				if (l.Recovered() != nil) == rotated {
					t.Errorf("Recovered = %+v", l.Recovered())
				}
				if size, head := l.Head(); size != 7 || head != HashLine(bytes.TrimSuffix(splitLines(v1)[6], []byte("\n"))) {
					t.Fatalf("Head = %d, %v; want 7 and the hash of the last line of version %d", size, head, version)
				}
				for i := range 3 {
					if err := l.Append(t.Context(), sampleRecord(100+i)); err != nil {
						t.Fatal(err)
					}
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				files, err := Segments(path)
				if err != nil {
					t.Fatal(err)
				}
				rep, err := Verify(VerifyOptions{Key: testVKey, RequireCovered: true}, files...)
				if err != nil || rep.Records != 11 || rep.Checkpoints != 2 {
					t.Fatalf("Verify = %+v, %v; want 11 records, 2 checkpoints", rep, err)
				}
				got := readFile(t, path)
				if !rotated {
					if !bytes.HasPrefix(got, v1) {
						t.Fatalf("the lines of version %d changed", version)
					}
					got = got[len(v1):]
				}
				if bytes.Count(got, []byte(`{"log":`)) != 4 || bytes.Contains(got, []byte(`{"seq":`)) || bytes.Contains(got, []byte(`{"time":`)) {
					t.Fatalf("the Log continued with\n%s", got)
				}
			})
		}
	}
}

// fuzzHeads is the head cache of FuzzLineHash, kept from input to input.
var fuzzHeads midCache

// BenchmarkLineHash compares the work under the log's lock for the
// decision record of a guarded call: the seq and prev encoded and the
// whole line hashed, as version 1 had to ("whole"), and the seq and prev
// encoded and the hash ended from the state after the prefix, which
// version 2 hashes before the lock ("tail", which also restores that
// state, about 20 ns); "prefix" is the part moved out.
func BenchmarkLineHash(b *testing.B) {
	r, _ := benchPair()
	r.Time = time.Date(2026, 11, 30, 9, 15, 0, 123456789, time.UTC)
	lb := lineBufs.Get().(*lineBuf)
	if err := lb.prefix(r, r.Time, "0193b6c8-7c4e-7000-8000-00000000a001", nil); err != nil {
		b.Fatal(err)
	}
	prefix := bytes.Clone(lb.b)
	state, err := lb.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	tail, _ := lb.line(123456, Hash{1})
	line := append(bytes.Clone(prefix), tail...)
	b.Logf("line of %d bytes, tail of %d", len(line), len(tail))
	b.Run("whole", func(b *testing.B) {
		buf := bytes.Clone(line)
		for b.Loop() {
			buf = appendTail(buf[:len(prefix)], 123456, Hash{1})
			HashLine(buf)
		}
	})
	b.Run("prefix", func(b *testing.B) {
		for b.Loop() {
			lb.h.Reset()
			lb.h.Write(prefix)
		}
	})
	b.Run("tail", func(b *testing.B) {
		b.ReportAllocs()
		u := lb.h.(encoding.BinaryUnmarshaler)
		for b.Loop() {
			if err := u.UnmarshalBinary(state); err != nil {
				b.Fatal(err)
			}
			lb.line(123456, Hash{1})
		}
	})
}

package audit

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestMirrorAndZapSink(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	zl := zap.New(core)
	var got []*Checkpoint
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{Mirror: zl, SignerKey: testSKey, Sinks: []Sink{ZapSink(zl),
		SinkFunc(func(ctx context.Context, c *Checkpoint) error { got = append(got, c); return nil })}})
	if err != nil {
		t.Fatal(err)
	}
	r := sampleRecord(1)
	r.Args["password"] = "p4ssw0rd!"
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	cp, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != cp || cp.Size != 1 {
		t.Fatalf("sink got %v, want the one checkpoint of size 1 (Close adds none: nothing new)", got)
	}
	mirrored := logs.FilterMessage("audit record").All()
	if len(mirrored) != 1 || mirrored[0].ContextMap()["tool"] != "send_email" {
		t.Fatalf("mirror got %v", mirrored)
	}
	if args := mirrored[0].ContextMap()["args"].(map[string]any); args["password"] == "p4ssw0rd!" {
		t.Error("the mirror got the unredacted password")
	}
	if n := logs.FilterMessage("audit checkpoint").Len(); n != 1 {
		t.Errorf("ZapSink logged %d checkpoints, want 1", n)
	}
}

// TestMirrorReaderArgs: a record whose arguments come from an ArgReader
// (a typed tool's struct, as the Guard appends them) is mirrored with
// them, redacted as in the line.
func TestMirrorReaderArgs(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l, err := Open(filepath.Join(t.TempDir(), "audit.jsonl"), Options{Mirror: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	plan := l.Redactor().Plan("", "send_email", nil, []string{"to", "subject", "password"})
	for _, args := range []map[string]any{
		{"to": "bob@example.com", "subject": "hi"},                          // the plan vouches for them
		{"to": "bob@example.com", "subject": "hi", "password": "p4ssw0rd!"}, // redacted into Args
	} {
		r := &Record{Kind: KindDecision, Call: "c1", Tool: "send_email", Decision: "allow",
			Reader: &mapReader{m: args}, Plan: plan}
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	mirrored := logs.FilterMessage("audit record").All()
	if len(mirrored) != 2 {
		t.Fatalf("mirror got %d records, want 2", len(mirrored))
	}
	for i, e := range mirrored {
		args, ok := e.ContextMap()["args"].(map[string]any)
		if !ok || args["to"] != "bob@example.com" || args["subject"] != "hi" {
			t.Errorf("record %d mirrored with args %v, want the reader's", i, e.ContextMap()["args"])
		}
		if pw, ok := args["password"]; ok && pw == "p4ssw0rd!" {
			t.Errorf("record %d: the mirror got the unredacted password", i)
		}
	}
}

func TestSinkFailure(t *testing.T) {
	boom := errors.New("boom")
	l, err := Open(filepath.Join(t.TempDir(), "a.jsonl"), Options{SignerKey: testSKey,
		Sinks: []Sink{SinkFunc(func(context.Context, *Checkpoint) error { return boom })}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Checkpoint(context.Background()); !errors.Is(err, boom) {
		t.Errorf("Checkpoint = %v, want the sink's error", err)
	}
	if err := l.Append(context.Background(), sampleRecord(0)); err != nil {
		t.Errorf("a sink failure stopped the log: %v", err)
	}
	if err := l.Close(); !errors.Is(err, boom) {
		t.Errorf("Close = %v, want the sink's error", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "b.jsonl"), Options{CheckpointEvery: 3}); err == nil {
		t.Error("CheckpointEvery without a SignerKey was accepted")
	}
	nolog, _ := Open(filepath.Join(t.TempDir(), "c.jsonl"), Options{})
	if _, err := nolog.Checkpoint(context.Background()); !errors.Is(err, ErrNoSigner) {
		t.Errorf("Checkpoint without a signer = %v, want ErrNoSigner", err)
	}
	nolog.Close()
}

func TestOptionsValidation(t *testing.T) {
	dir := t.TempDir()
	for i, o := range []Options{
		{Sync: 9}, {SyncInterval: -1}, {MaxSize: -1}, {MaxAge: -1}, {CheckpointEvery: -1},
		{CheckpointInterval: -1}, {SignerKey: "bad"}, {ID: "a\nb"},
		{SignerKey: testSKey, Sinks: []Sink{nil}}, {Redaction: Redaction{Keys: []string{""}}},
	} {
		if _, err := Open(filepath.Join(dir, "x.jsonl"), o); err == nil {
			t.Errorf("Open with options %d (%+v) succeeded", i, o)
		}
	}
}

// TestBackground checks the interval policies on a fake clock.
func TestBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		ffs := &faultFS{FS: OS}
		l, err := Open(path, Options{FS: ffs, Sync: SyncInterval, SyncInterval: time.Second,
			SignerKey: testSKey, CheckpointInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		base := ffs.syncs.Load()
		if err := l.Append(context.Background(), sampleRecord(0)); err != nil {
			t.Fatal(err)
		}
		if n := ffs.syncs.Load(); n != base {
			t.Errorf("SyncInterval synced in Append")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := ffs.syncs.Load(); n != base+1 {
			t.Errorf("%d syncs after one interval, want 1", n-base)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if size, _ := l.Head(); size != 2 {
			t.Errorf("%d records after the checkpoint interval, want 2 (a checkpoint)", size)
		}
		time.Sleep(time.Minute) // nothing new: no checkpoint
		synctest.Wait()
		if size, _ := l.Head(); size != 2 {
			t.Errorf("%d records after an idle interval, want 2", size)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(VerifyOptions{Key: testVKey}, path)
		if err != nil || rep.Records != 2 || rep.Checkpoints != 1 {
			t.Errorf("Verify = %+v, %v", rep, err)
		}
	})
}

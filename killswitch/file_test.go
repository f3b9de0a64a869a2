package killswitch

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFileTrigger(t *testing.T) {
	clk := newFakeClock()
	var events []Event
	sw := New(Options{Clock: clk.Now, OnEvent: func(e Event) { events = append(events, e) }})
	path := filepath.Join(t.TempDir(), "KILL")
	tr, err := NewFileTrigger(sw, path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(step string) {
		t.Helper()
		if err := tr.Check(clk.Now()); err != nil {
			t.Fatalf("%s: Check = %v", step, err)
		}
	}
	check("absent")
	if len(sw.Status()) != 0 || len(events) != 0 {
		t.Fatalf("absent file tripped: %v", sw.Status())
	}

	// Created: trips everything with the first line as reason.
	writeFile(t, path, "agents are looping\n")
	check("created")
	h, ok := sw.Lookup(Everything)
	if !ok || h.Why != "agents are looping" || h.Who != "file:"+path {
		t.Fatalf("after create: Lookup = %+v, %v", h, ok)
	}
	check("unchanged")
	check("unchanged again")
	if n := len(events); n != 1 {
		t.Fatalf("an unchanged file tripped %d times, want 1", n)
	}

	// Changed: the new reason replaces the old.
	writeFile(t, path, "refunds going out\nby: alice\n")
	check("changed")
	h, _ = sw.Lookup(Everything)
	if h.Why != "refunds going out" || h.Who != "alice (file:"+path+")" {
		t.Fatalf("after change: %+v", h)
	}

	// Removed: sticky without ResumeOnRemove, however long we wait.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	check("removed")
	clk.Advance(365 * 24 * time.Hour)
	check("removed, a year later")
	if _, ok := sw.Lookup(Everything); !ok {
		t.Fatal("removing the kill file resumed without ResumeOnRemove")
	}
	// Resumed in process, then the file comes back: it trips again.
	if err := sw.Resume(Everything, "ops", "ok"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "refunds going out\nby: alice\n")
	check("recreated")
	if _, ok := sw.Lookup(Everything); !ok {
		t.Fatal("a kill file written again did not trip")
	}
	// Resumed in process while the file is still there: its presence
	// trips again at the next check.
	if err := sw.Resume(Everything, "ops", "ok"); err != nil {
		t.Fatal(err)
	}
	check("present after resume")
	if _, ok := sw.Lookup(Everything); !ok {
		t.Fatal("a present kill file did not trip again after a resume")
	}
}

func TestFileTriggerResumeOnRemove(t *testing.T) {
	clk := newFakeClock()
	sw := New(Options{Clock: clk.Now})
	path := filepath.Join(t.TempDir(), "KILL")
	tr, err := NewFileTrigger(sw, path, FileOptions{ResumeOnRemove: true, Scope: Scope{Tenant: "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "bot a misbehaves\nagent: a\n")
	if err := tr.Check(clk.Now()); err != nil {
		t.Fatal(err)
	}
	want := Scope{Tenant: "acme", Agent: "a"}
	if st := sw.Status(); len(st) != 1 || st[0].Scope != want {
		t.Fatalf("Status = %+v, want one trip of %v", st, want)
	}
	// The scope changes: the old one is resumed, the new one tripped.
	writeFile(t, path, "now b\nagent: b\ntool: sql\n")
	if err := tr.Check(clk.Now()); err != nil {
		t.Fatal(err)
	}
	want = Scope{Tenant: "acme", Agent: "b", Tool: "sql"}
	if st := sw.Status(); len(st) != 1 || st[0].Scope != want {
		t.Fatalf("Status = %+v, want one trip of %v", st, want)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := tr.Check(clk.Now()); err != nil {
		t.Fatal(err)
	}
	if st := sw.Status(); len(st) != 0 {
		t.Fatalf("Status = %+v after removal with ResumeOnRemove, want none", st)
	}
}

func TestFileTriggerUnreadable(t *testing.T) {
	clk := newFakeClock()
	sw := New(Options{Clock: clk.Now})
	dir := t.TempDir()
	path := filepath.Join(dir, "KILL")
	tr, err := NewFileTrigger(sw, path, FileOptions{Stale: 30 * time.Second, Scope: Scope{Agent: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Check(clk.Now()); err != nil {
		t.Fatal(err)
	}
	// The file system refuses the read (as it would a file root cannot read
	// on a network mount).
	tr.read = func(string) ([]byte, error) { return nil, fs.ErrPermission }
	clk.Advance(10 * time.Second)
	if err := tr.Check(clk.Now()); err == nil {
		t.Fatal("Check of an unreadable file = nil, want its error")
	}
	if _, ok := sw.Lookup(Scope{Agent: "a"}); ok {
		t.Fatal("tripped within the staleness bound")
	}
	clk.Advance(20 * time.Second) // 30s since the last good check
	if err := tr.Check(clk.Now()); err == nil {
		t.Fatal("Check of an unreadable file = nil, want its error")
	}
	h, ok := sw.Lookup(Scope{Agent: "a"})
	if !ok || !strings.Contains(h.Why, "unreadable for 30s") {
		t.Fatalf("past the staleness bound: Lookup = %+v, %v; want a trip", h, ok)
	}
	clk.Advance(time.Minute)
	tr.Check(clk.Now())
	if h2, _ := sw.Lookup(Scope{Agent: "a"}); h2 != h {
		t.Error("a still unreadable file tripped again")
	}
	// Readable and absent again: the trip stays (no ResumeOnRemove).
	tr.read = ReadKillFile
	if err := tr.Check(clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, ok := sw.Lookup(Scope{Agent: "a"}); !ok {
		t.Fatal("the staleness trip went away by itself")
	}
}

func TestFileTriggerZeroStale(t *testing.T) {
	sw := New(Options{})
	path := filepath.Join(t.TempDir(), "KILL")
	tr, err := NewFileTrigger(sw, path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr.read = func(string) ([]byte, error) { return nil, fs.ErrPermission }
	if err := tr.Check(time.Now()); err == nil {
		t.Fatal("Check = nil, want the read error")
	}
	if _, ok := sw.Lookup(Everything); !ok {
		t.Fatal("zero Stale: an unreadable kill file did not trip at once")
	}
}

func TestFileTriggerMalformedFailsClosed(t *testing.T) {
	tests := []struct {
		name, text string
		base       Scope
	}{
		{"unknown key", "stop\nagnet: a\n", Scope{Tenant: "acme"}},
		{"outside the trigger's scope", "stop\nagent: b\n", Scope{Agent: "a"}},
		{"too big", "stop\n" + strings.Repeat("# pad\n", 1000), Everything},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sw := New(Options{})
			path := filepath.Join(t.TempDir(), "KILL")
			writeFile(t, path, tt.text)
			tr, err := NewFileTrigger(sw, path, FileOptions{Scope: tt.base})
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.Check(time.Now()); err == nil {
				t.Error("Check = nil, want the parse error")
			}
			h, ok := sw.Lookup(tt.base)
			if !ok || !strings.HasPrefix(h.Why, "stop [") {
				t.Errorf("Lookup(%v) = %+v, %v; want a trip of the trigger's whole scope", tt.base, h, ok)
			}
		})
	}
}

func TestFileTriggerRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := New(Options{})
		path := filepath.Join(t.TempDir(), "KILL")
		var errs []error
		tr, err := NewFileTrigger(sw, path, FileOptions{OnError: func(err error) { errs = append(errs, err) }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- tr.Run(ctx, time.Second) }()
		synctest.Wait()
		if len(sw.Status()) != 0 {
			t.Fatal("tripped with no file")
		}
		writeFile(t, path, "stop now\n")
		time.Sleep(time.Second)
		synctest.Wait()
		if h, ok := sw.Lookup(Everything); !ok || h.Why != "stop now" {
			t.Fatalf("one interval after the file appeared: %+v, %v", h, ok)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
		if len(errs) != 0 {
			t.Errorf("OnError got %v", errs)
		}
		if err := tr.Run(ctx, 0); err == nil {
			t.Error("Run with a zero interval = nil, want an error")
		}
	})
}

func TestNewFileTriggerErrors(t *testing.T) {
	sw := New(Options{})
	if _, err := NewFileTrigger(nil, "x", FileOptions{}); err == nil {
		t.Error("nil Switch accepted")
	}
	if _, err := NewFileTrigger(sw, "", FileOptions{}); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := NewFileTrigger(sw, "x", FileOptions{Stale: -1}); err == nil {
		t.Error("negative Stale accepted")
	}
	if _, err := NewFileTrigger(sw, "x", FileOptions{Timeout: -1}); err == nil {
		t.Error("negative Timeout accepted")
	}
}

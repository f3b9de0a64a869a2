package audit

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestAppendVerify(t *testing.T) {
	path := writeLog(t, 10, true)
	rep, err := Verify(VerifyOptions{Key: testVKey}, path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 11 || rep.Checkpoints != 1 || rep.Log != "log-1" {
		t.Fatalf("Verify = %+v, want 11 records, 1 checkpoint, log-1", rep)
	}
	data := readFile(t, path)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if len(lines) != 11 {
		t.Fatalf("%d lines, want 11", len(lines))
	}
	if !bytes.Contains(lines[0], []byte(`"prev":"`+strings.Repeat("0", 64)+`"`)) {
		t.Errorf("first line %s: prev is not 64 zeros", lines[0])
	}
	for i := 1; i < len(lines); i++ {
		want := HashLine(lines[i-1]).String()
		if !bytes.HasSuffix(lines[i], []byte(`"prev":"`+want+`"}`)) {
			t.Errorf("line %d does not end with the prev %s", i+1, want)
		}
	}
	if rep.Head != HashLine(lines[10]) {
		t.Errorf("Head = %v, want the hash of the last line", rep.Head)
	}
}

func TestReopenContinues(t *testing.T) {
	path := writeLog(t, 3, false)
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l.ID() != "log-1" {
		t.Errorf("ID() = %q, want log-1", l.ID())
	}
	r := sampleRecord(3)
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if r.Seq != 3 {
		t.Errorf("Seq = %d, want 3", r.Seq)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(VerifyOptions{}, path)
	if err != nil || rep.Records != 4 {
		t.Fatalf("Verify = %+v, %v; want 4 records", rep, err)
	}
	if _, err := Open(path, Options{ID: "other"}); err == nil {
		t.Error("Open with another ID succeeded")
	}
}

func TestAppendAfterClose(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "a.jsonl"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := l.Append(context.Background(), sampleRecord(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
}

func TestOpenTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
	l.Close()
	l, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after Close = %v", err)
	}
	l.Close()
}

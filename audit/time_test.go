package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAppendKeepsTime: a record whose Time the caller set keeps it (in
// UTC), through Append and AppendLater, without reading the log's clock;
// a record without one gets the clock's time.
func TestAppendKeepsTime(t *testing.T) {
	reads := 0
	clock := func() time.Time {
		reads++
		return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{Clock: clock, Sync: SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	given := time.Date(2027, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	before := reads
	for _, later := range []bool{false, true} {
		r := sampleRecord(0)
		r.Time = given
		add := l.Append
		if later {
			add = l.AppendLater
		}
		if err := add(ctx, r); err != nil {
			t.Fatal(err)
		}
		if !r.Time.Equal(given) || r.Time.Location() != time.UTC {
			t.Errorf("later %v: appended with Time %v, want %v in UTC", later, r.Time, given.UTC())
		}
	}
	if reads != before {
		t.Errorf("records with a Time read the clock %d times, want 0", reads-before)
	}
	r := sampleRecord(1)
	if err := l.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	if !r.Time.Equal(clock()) {
		t.Errorf("a record without a Time got %v, want the clock's", r.Time)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*Record
	for _, line := range bytes.Split(bytes.TrimRight(data, "\x00\n"), []byte("\n")) {
		r, err := ParseRecord(line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		recs = append(recs, r)
	}
	if len(recs) < 3 || !recs[0].Time.Equal(given) || !recs[1].Time.Equal(given) || !recs[2].Time.Equal(clock()) {
		t.Errorf("times in the file: %v", recs)
	}
}

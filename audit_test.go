package agentguard_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/policy"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fullDisk is the OS file layer with a switch that makes writes fail with
// ENOSPC after writing half of what they were given.
type fullDisk struct {
	audit.FS
	full atomic.Bool
}

type fullDiskFile struct {
	audit.File
	d *fullDisk
}

func (d *fullDisk) OpenFile(name string, flag int, perm fs.FileMode) (audit.File, error) {
	f, err := d.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &fullDiskFile{File: f, d: d}, nil
}

func (f *fullDiskFile) Write(p []byte) (int, error) {
	if f.d.full.Load() {
		n, _ := f.File.Write(p[:len(p)/2])
		return n, syscall.ENOSPC
	}
	return f.File.Write(p)
}

// spyBudget reserves nothing and counts how reservations are settled.
type spyBudget struct {
	mu      sync.Mutex
	settles []bool // the known argument of each Settle
	actual  [][]agentguard.Cost
}

func (b *spyBudget) Reserve(ctx context.Context, c *agentguard.Call) (agentguard.Reservation, error) {
	return b, nil
}

func (b *spyBudget) Usage(ctx context.Context, c *agentguard.Call) (policy.Usage, error) {
	return policy.Usage{}, nil
}

func (b *spyBudget) Settle(ctx context.Context, actual []agentguard.Cost, known bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settles = append(b.settles, known)
	b.actual = append(b.actual, actual)
	return nil
}

type fileArgs struct {
	Path string `json:"path"`
}

// auditLines parses every record of the log at path.
func auditLines(t *testing.T, path string) []*audit.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.TrimRight(data, "\x00") // the zero tail of an open log (audit/FORMAT.md)
	var recs []*audit.Record
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		r, err := audit.ParseRecord(line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestAuditDecisionBeforeTool: the tool itself finds its decision record
// in the file, durable, before it runs.
func TestAuditDecisionBeforeTool(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)), agentguard.WithAuditFile(path))
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	read := agentguard.Wrap(g, "read_file", func(ctx context.Context, a fileArgs) (string, error) {
		ran = true
		c, ok := agentguard.CallFrom(ctx)
		if !ok {
			t.Error("CallFrom: no call in the tool's context")
			return "", nil
		}
		recs := auditLines(t, path)
		if len(recs) != 1 {
			t.Fatalf("the tool sees %d records, want its decision", len(recs))
		}
		r := recs[0]
		if r.Kind != audit.KindDecision || r.Call != c.ID || r.Decision != "allow" || r.Rule != "reads" || r.Tool != "read_file" {
			t.Errorf("decision record = %+v", r)
		}
		return "contents", nil
	})
	if _, err := read(context.Background(), fileArgs{Path: "/etc/motd"}); err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatal("the tool did not run")
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	recs := auditLines(t, path)
	if len(recs) != 2 || recs[1].Kind != audit.KindResult || recs[1].Outcome != "ok" || recs[1].Call != recs[0].Call || recs[1].Args != nil {
		t.Fatalf("records after the call: %d, last %+v; want decision then result (without the args)", len(recs), recs[len(recs)-1])
	}
	// The result is compact: who, which tool, how it ended; the rule and
	// the policy's version are its decision's.
	if d, r := recs[0], recs[1]; r.Tool != "read_file" || r.Principal != d.Principal || r.Rule != "" || r.PolicyVersion != "" || d.PolicyVersion == "" {
		t.Errorf("result record %+v after decision %+v; want the call's principal and tool, no rule or policy version", r, d)
	}
	if _, err := audit.Verify(audit.VerifyOptions{}, path); err != nil {
		t.Error(err)
	}
}

// TestAuditFullDiskDenies: when the decision cannot be written, the call
// is denied, the tool never runs, no partial record is left, the budget
// reservation is released, and the log stays latched.
func TestAuditFullDiskDenies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	disk := &fullDisk{FS: audit.OS}
	l, err := audit.Open(path, audit.Options{FS: disk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	budget := &spyBudget{}
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)), agentguard.WithAudit(l),
		agentguard.WithBudgeter(budget))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var runs atomic.Int32
	read := agentguard.Wrap(g, "read_file", func(ctx context.Context, a fileArgs) (string, error) {
		runs.Add(1)
		return "x", nil
	})
	if _, err := read(context.Background(), fileArgs{Path: "a"}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	disk.full.Store(true)
	_, err = read(context.Background(), fileArgs{Path: "b"})
	var d *agentguard.DeniedError
	if !errors.As(err, &d) || d.Code != agentguard.CodeAuditUnavailable || !errors.Is(err, agentguard.ErrAuditUnavailable) {
		t.Fatalf("call on a full disk = %v, want an audit_unavailable denial", err)
	}
	if !errors.Is(err, audit.ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("denial %v does not carry the log's error", err)
	}
	if runs.Load() != 1 {
		t.Errorf("the tool ran %d times, want once (not on the full disk)", runs.Load())
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("the log changed on a full disk: %d bytes, was %d", len(after), len(before))
	}
	budget.mu.Lock()
	if len(budget.settles) != 2 || !budget.settles[1] || budget.actual[1] != nil {
		t.Errorf("settles = %v %v, want the denied call's reservation released (known, no cost)", budget.settles, budget.actual)
	}
	budget.mu.Unlock()
	// Latched: denied even with room on the disk again.
	disk.full.Store(false)
	if _, err := read(context.Background(), fileArgs{Path: "c"}); !errors.Is(err, agentguard.ErrAuditUnavailable) {
		t.Errorf("call after the failure = %v, want ErrAuditUnavailable", err)
	}
	if runs.Load() != 1 {
		t.Errorf("the tool ran on a latched log")
	}
}

type loginArgs struct {
	User     string            `json:"user"`
	Password string            `json:"password"`
	Headers  map[string]string `json:"headers"`
}

// TestAuditSecrets: secrets in arguments and in the tool's error never
// reach the file, and denials show redacted arguments.
func TestAuditSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	pol := mustPolicy(t, testPolicy+`
  - name: logins
    match: call.tool == "read_login"
    effect: allow
`)
	g, err := agentguard.New(agentguard.WithPolicy(pol), agentguard.WithEnv("prod"), agentguard.WithAuditFile(path))
	if err != nil {
		t.Fatal(err)
	}
	login := agentguard.Wrap(g, "read_login", func(ctx context.Context, a loginArgs) (string, error) {
		return "", errors.New("login as " + a.User + " with " + a.Password + " failed; header " + a.Headers["Authorization"])
	})
	args := loginArgs{User: "alice", Password: "Tr0ub4dor&3", Headers: map[string]string{"Authorization": "Bearer tok_abcdefghijkl"}}
	if _, err := login(context.Background(), args); err == nil || !strings.Contains(err.Error(), "Tr0ub4dor&3") {
		t.Fatalf("the tool's own error = %v, want it untouched", err)
	}
	del := agentguard.Wrap(g, "db.delete", func(ctx context.Context, a loginArgs) (string, error) { return "", nil })
	_, err = del(context.Background(), args)
	var d *agentguard.DeniedError
	if !errors.As(err, &d) {
		t.Fatalf("delete in prod = %v, want a denial", err)
	}
	if pw, _ := d.Args["password"].(string); !strings.HasPrefix(pw, "[REDACTED:") {
		t.Errorf("denial args = %v, want the password redacted", d.Args)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	for _, secret := range []string{"Tr0ub4dor&3", "tok_abcdefghijkl"} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%q reached the audit file:\n%s", secret, data)
		}
	}
	recs := auditLines(t, path)
	kinds := []string{}
	for _, r := range recs {
		kinds = append(kinds, string(r.Kind)+":"+r.Decision+r.Outcome+r.Code)
	}
	want := "decision:allow result:error decision:denypolicy_denied"
	if strings.Join(kinds, " ") != want {
		t.Errorf("records %q, want %q", strings.Join(kinds, " "), want)
	}
	if !strings.Contains(recs[1].Error, "login as alice with [REDACTED:") {
		t.Errorf("result error = %q, want the password replaced by its mark", recs[1].Error)
	}
}

// TestAuditFileCheckpointOnClose: Guard.Close closes the log with a
// signed checkpoint that verifies.
func TestAuditFileCheckpointOnClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	skey, vkey, err := audit.GenerateKey("guard")
	if err != nil {
		t.Fatal(err)
	}
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)),
		agentguard.WithAuditFile(path, audit.Options{SignerKey: skey, Sinks: []audit.Sink{audit.FileSink(filepath.Join(dir, "cp"))}}))
	if err != nil {
		t.Fatal(err)
	}
	read := agentguard.Wrap(g, "read_file", func(ctx context.Context, a fileArgs) (string, error) { return "", nil })
	for range 3 {
		if _, err := read(context.Background(), fileArgs{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	cp, _ := os.ReadFile(filepath.Join(dir, "cp"))
	rep, err := audit.Verify(audit.VerifyOptions{Key: vkey, Checkpoint: cp}, path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 7 || rep.Checkpoints != 1 || rep.Covered != 6 {
		t.Errorf("Verify = %+v, want 6 records and the checkpoint that covers them", rep)
	}
	if _, err := agentguard.New(agentguard.WithAuditFile(path, audit.Options{}, audit.Options{})); err == nil {
		t.Error("WithAuditFile with two Options succeeded")
	}
	if _, err := agentguard.New(agentguard.WithAuditFile(path), agentguard.WithAudit(nil)); err == nil {
		t.Error("WithAudit(nil) succeeded")
	}
}

// TestAuditKillSwitchEvents: trips, hook failures and resumes are in the
// audit file, with who, why and scope.
func TestAuditKillSwitchEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sw := killswitch.New(killswitch.Options{})
	sw.OnTrip("revoke-keys", func(ctx context.Context, h *killswitch.Halt) error {
		return errors.New("vault unreachable, token=abc123456")
	})
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)), agentguard.WithKillSwitch(sw),
		agentguard.WithAuditFile(path))
	if err != nil {
		t.Fatal(err)
	}
	sw.Trip(killswitch.Scope{Agent: "a"}, "alice", "loop")
	if err := sw.Resume(killswitch.Scope{Agent: "a"}, "bob", "fixed"); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	recs := auditLines(t, path)
	var got []string
	for _, r := range recs {
		if r.Control == nil {
			t.Fatalf("record %+v has no control", r)
		}
		got = append(got, string(r.Kind)+":"+r.Control.Scope+":"+r.Control.Who+":"+r.Control.Why)
	}
	want := []string{"halt:agent=a:alice:loop", "hook:agent=a:alice:loop", "resume:agent=a:bob:fixed"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("records %q, want %q", got, want)
	}
	if len(recs) == 3 && (recs[1].Rule != "revoke-keys" || !strings.Contains(recs[1].Error, "vault unreachable") || strings.Contains(recs[1].Error, "abc123456")) {
		t.Errorf("hook record = %+v, want the hook's name and its redacted error", recs[1])
	}
}

// stepClock is a clock that moves on by a millisecond at each read, and
// counts the reads.
type stepClock struct {
	mu    sync.Mutex
	t     time.Time
	reads int
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *stepClock) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// TestAuditCallTimes: an allowed call reads the Guard's clock for its
// records twice, when it enters the guard and when its tool has returned,
// and once more for the tool's start; a log with the Guard's clock gives
// its decision and result records those times, and the result's duration
// is the tool's run. A log with a clock of
// its own (audit.Options.Clock) times its records itself.
func TestAuditCallTimes(t *testing.T) {
	for _, own := range []bool{false, true} {
		clk := &stepClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
		logClk := &stepClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
		var opts []audit.Options
		if own {
			opts = append(opts, audit.Options{Clock: logClk.Now})
		}
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)), agentguard.WithClock(clk.Now), agentguard.WithAuditFile(path, opts...))
		if err != nil {
			t.Fatal(err)
		}
		var call agentguard.Call
		read := agentguard.Wrap(g, "read_file", func(ctx context.Context, a fileArgs) (string, error) {
			c, _ := agentguard.CallFrom(ctx)
			call = *c
			return "contents", nil
		})
		before := clk.count()
		if _, err := read(context.Background(), fileArgs{Path: "/etc/motd"}); err != nil {
			t.Fatal(err)
		}
		// Twice for the records, once for the time from the decision to
		// the tool's start (with the real clock, a monotonic reading only).
		if n := clk.count() - before; n != 3 {
			t.Errorf("own log clock %v: an allowed call read the Guard's clock %d times, want 3", own, n)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		recs := auditLines(t, path)
		if len(recs) < 2 || recs[0].Kind != audit.KindDecision || recs[1].Kind != audit.KindResult {
			t.Fatalf("own log clock %v: records %+v, want a decision and a result", own, recs)
		}
		d, r := recs[0], recs[1]
		end := call.Time.Add(2 * time.Millisecond) // the clock's read after the tool's start
		if r.Duration != time.Millisecond {
			t.Errorf("own log clock %v: result duration %v, want %v (from the tool's start to its return)", own, r.Duration, time.Millisecond)
		}
		if !own && (!d.Time.Equal(call.Time) || !r.Time.Equal(end)) {
			t.Errorf("decision at %v, result at %v; want the call's times %v, %v", d.Time, r.Time, call.Time, end)
		}
		if own && (d.Time.Year() != 2030 || r.Time.Year() != 2030 || !r.Time.After(d.Time)) {
			t.Errorf("with the log's own clock: decision at %v, result at %v; want the log's times", d.Time, r.Time)
		}
	}
}

// slowDecisionRecorder moves clk by an hour as it records a decision, as a
// decision's fsync would take time: a stand-in for a slow disk.
type slowDecisionRecorder struct {
	memRecorder
	clk *lateClock
}

func (r *slowDecisionRecorder) Record(ctx context.Context, e *agentguard.Event) error {
	if e.Kind == agentguard.EventDecision {
		r.clk.Add(time.Hour)
	}
	return r.memRecorder.Record(ctx, e)
}

// TestResultDurationIsTheTools: a result's Duration is how long the tool
// ran, not counting the time the decision's record took to write (an
// fsync under the durable default), nor what came before.
func TestResultDurationIsTheTools(t *testing.T) {
	clk := &lateClock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	rec := &slowDecisionRecorder{clk: clk}
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)), agentguard.WithClock(clk.Now), agentguard.WithRecorder(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	read := agentguard.Wrap(g, "read_file", func(ctx context.Context, a fileArgs) (string, error) {
		clk.Add(5 * time.Second)
		return "contents", nil
	})
	if _, err := read(context.Background(), fileArgs{Path: "/etc/motd"}); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var found bool
	for _, e := range rec.events {
		if e.Kind == agentguard.EventResult {
			found = true
			if e.Duration != 5*time.Second {
				t.Errorf("result Duration = %v, want 5s: the tool's own run, without the decision's hour", e.Duration)
			}
		}
	}
	if !found {
		t.Fatalf("no result recorded: %v", rec.kinds())
	}
}

// credArgs is a struct of plain fields: the policy and the log read its
// arguments where they lie, with no map.
type credArgs struct {
	User string `json:"user"`
	Note string `json:"note"`
}

// TestAuditMirrorArgs: a log with a Mirror shows each decision with its
// arguments, read from the typed tool's struct as the line is (not from
// a map built for the mirror), and redacted as in the line; for a log
// the Guard opens (WithAuditFile) and one given to it (WithAudit).
func TestAuditMirrorArgs(t *testing.T) {
	for _, given := range []bool{false, true} {
		core, logs := observer.New(zapcore.InfoLevel)
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		opts := audit.Options{Sync: audit.SyncNever, Mirror: zap.New(core)}
		auditOpt := agentguard.WithAuditFile(path, opts)
		if given {
			l, err := audit.Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			auditOpt = agentguard.WithAudit(l)
		}
		g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)), auditOpt)
		if err != nil {
			t.Fatal(err)
		}
		read := agentguard.Wrap(g, "read_login", func(ctx context.Context, a credArgs) (string, error) { return "ok", nil })
		// alice's arguments need no redaction: the log takes them from
		// the struct; bob's note has a secret, redacted into a map.
		for _, a := range []credArgs{{User: "alice", Note: "hello"}, {User: "bob", Note: "password=Tr0ub4dor&3"}} {
			if _, err := read(context.Background(), a); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, e := range logs.FilterMessage("audit record").All() {
			if e.ContextMap()["kind"] != "decision" {
				continue
			}
			args, _ := e.ContextMap()["args"].(map[string]any)
			user, _ := args["user"].(string)
			users = append(users, user)
			if note, _ := args["note"].(string); strings.Contains(note, "Tr0ub4dor&3") {
				t.Errorf("given %v: the mirror shows the secret in %q", given, note)
			}
		}
		if strings.Join(users, ",") != "alice,bob" {
			t.Errorf("given %v: mirrored decisions of users %q, want alice,bob (with their args)", given, users)
		}
	}
}

// TestAuditLabelsRedacted: a tool's labels reach the audit log redacted,
// as its arguments do.
func TestAuditLabelsRedacted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)), agentguard.WithAuditFile(path))
	if err != nil {
		t.Fatal(err)
	}
	read := agentguard.Wrap(g, "read_login", func(ctx context.Context, a credArgs) (string, error) { return "ok", nil },
		agentguard.Labels("team", "support", "api_key", "sk-live-abcdefghijklmnop"))
	for range 2 { // the second call takes the tool's plan
		if _, err := read(context.Background(), credArgs{User: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte("sk-live-abcdefghijklmnop")) {
		t.Errorf("a secret label reached the audit file:\n%s", data)
	}
	recs := auditLines(t, path)
	if len(recs) < 4 || recs[2].Labels["team"] != "support" || !strings.HasPrefix(recs[2].Labels["api_key"], "[REDACTED:") {
		t.Errorf("labels of the second decision = %v, want team kept and api_key marked", recs[2].Labels)
	}
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/postgres"
)

// pgTestDB opens a fresh schema in the database of
// AGENTGUARD_TEST_POSTGRES (skipping without it), dropped at the end.
func pgTestDB(t *testing.T) (*postgres.DB, string) {
	t.Helper()
	dsn := os.Getenv("AGENTGUARD_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("AGENTGUARD_TEST_POSTGRES is not set: skipping the --postgres tests")
	}
	schema := "agt_cli_" + strings.ToLower(rand.Text()[:10])
	db, err := postgres.Open(context.Background(), dsn, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.DropSchema(context.Background()); err != nil {
			t.Error(err)
		}
		db.Close()
	})
	return db, dsn
}

func TestKillPostgres(t *testing.T) {
	db, dsn := pgTestDB(t)
	pg := []string{"--postgres", dsn, "--schema", db.Schema()}
	code, out, errOut := runCmd(append([]string{"status"}, pg...)...)
	if code != 0 || !strings.HasPrefix(out, "not tripped") {
		t.Fatalf("status before a kill: %d %q %q", code, out, errOut)
	}
	code, out, errOut = runCmd(append([]string{"kill", "--agent", "bot", "--by", "alice", "--reason", "refund loop"}, pg...)...)
	if code != 0 || !strings.HasPrefix(out, "tripped agent=bot: refund loop") {
		t.Fatalf("kill: %d %q %q", code, out, errOut)
	}
	// A process following the fleet's kill switch is tripped.
	sw := killswitch.New(killswitch.Options{})
	tr, _ := killswitch.NewStoreTrigger(sw, db.KillStore(), killswitch.StoreOptions{})
	if err := tr.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h, on := sw.Tripped(killswitch.Key{Agent: "bot"}); !on || h.Who != "alice" || h.Why != "refund loop" {
		t.Fatalf("the fleet's switch: %v, %v", h, on)
	}
	code, out, _ = runCmd(append([]string{"status"}, pg...)...)
	if code != 1 || !strings.Contains(out, "tripped agent=bot: refund loop\nby: alice") {
		t.Fatalf("status after a kill: %d %q", code, out)
	}
	code, out, errOut = runCmd(append([]string{"resume", "--agent", "bot"}, pg...)...)
	if code != 0 || !strings.HasPrefix(out, "resumed agent=bot") {
		t.Fatalf("resume: %d %q %q", code, out, errOut)
	}
	if code, _, errOut = runCmd(append([]string{"resume", "--agent", "bot"}, pg...)...); code != 1 || !strings.Contains(errOut, "not tripped") {
		t.Fatalf("second resume: %d %q", code, errOut)
	}
	if code, _, _ = runCmd("kill", "--reason", "x", "--file", "/tmp/k", "--postgres", dsn); code != 2 {
		t.Fatalf("kill with --file and --postgres: exit %d, want 2", code)
	}
	// An unreachable database reads as tripped.
	if code, out, _ = runCmd("status", "--postgres", "postgres://nobody@127.0.0.1:1/x?connect_timeout=2"); code != 1 || !strings.HasPrefix(out, "tripped") {
		t.Fatalf("status of an unreachable database: %d %q", code, out)
	}
}

func TestApprovalsPostgres(t *testing.T) {
	db, dsn := pgTestDB(t)
	pg := []string{"--postgres", dsn, "--schema", db.Schema()}
	g, _ := approval.NewGate(db.Approvals(), approval.Options{Timeout: time.Minute})
	type result struct {
		out approval.Outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := g.Ask(context.Background(), &approval.Request{ID: "r-1", Tool: "refund", Args: map[string]any{"amount": 250},
			Principal: approval.Principal{Agent: "bot", Tenant: "acme"}})
		done <- result{out, err}
	}()
	var cards []approval.Request
	for deadline := time.Now().Add(30 * time.Second); len(cards) == 0; {
		code, out, errOut := runCmd(append([]string{"approvals", "list", "--json"}, pg...)...)
		if code != 0 {
			t.Fatalf("list: %d %q", code, errOut)
		}
		if err := json.Unmarshal([]byte(out), &cards); err != nil {
			t.Fatalf("list --json: %v: %q", err, out)
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiting call never showed in the list")
		}
	}
	if cards[0].ID != "r-1" {
		t.Fatalf("listed %+v", cards)
	}
	code, out, errOut := runCmd(append([]string{"approvals", "approve", "--id", "r-1", "--hash", cards[0].Hash[:8], "--by", "alice", "--grant", "tool 10m"}, pg...)...)
	if code != 0 || !strings.Contains(out, "hash:     "+cards[0].Hash) || !strings.Contains(out, "\napproved r-1 (refund) as alice") {
		t.Fatalf("approve: %d %q %q", code, out, errOut)
	}
	r := <-done
	if r.err != nil || r.out.Verdict.By != "alice" || r.out.Permit == nil {
		t.Fatalf("the waiting call got %+v, %v; want alice's approval with a grant", r.out, r.err)
	}
	if code, _, _ = runCmd(append([]string{"approvals", "deny", "--id", "r-1"}, pg...)...); code != 1 {
		t.Fatalf("answer to a request no longer waiting: exit %d, want 1", code)
	}
}

func TestAuditExportVerifyPostgres(t *testing.T) {
	db, dsn := pgTestDB(t)
	pg := []string{"--postgres", dsn, "--schema", db.Schema()}
	ctx := context.Background()
	skey, vkey, err := audit.GenerateKey("fleet")
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.OpenStore(db.AuditStore(), audit.StoreOptions{ID: "fleet-log", SignerKey: skey, Sinks: []audit.Sink{db.CheckpointSink()}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := l.Append(ctx, &audit.Record{Kind: audit.KindDecision, Call: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "fleet.jsonl")
	code, _, errOut := runCmd(append([]string{"audit", "export", "--out", file}, pg...)...)
	if code != 0 {
		t.Fatalf("export: %d %q", code, errOut)
	}
	code, out, _ := runCmd("audit", "verify", "--key", vkey, file)
	if code != 0 || !strings.Contains(out, "OK: log fleet-log: 6 records") || !strings.Contains(out, "1 checkpoint verified") {
		t.Fatalf("verify of the export: %d %q", code, out)
	}
	code, out, _ = runCmd(append([]string{"audit", "verify", "--key", vkey}, pg...)...)
	if code != 0 || !strings.Contains(out, "OK: log fleet-log: 6 records") || !strings.Contains(out, "external checkpoint covers 5") {
		t.Fatalf("verify --postgres: %d %q", code, out)
	}
	if code, _, _ = runCmd(append([]string{"audit", "export", "--out", file}, pg...)...); code != 1 {
		t.Fatalf("export over an existing file: exit %d, want 1", code)
	}
}

package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/audit/storetest"
)

func TestAuditStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) audit.Store { return testDB(t).AuditStore() })
}

func init() {
	// A writer process: appends Extra records to the log "fleet" from
	// four goroutines.
	childRoles["append"] = func(ctx context.Context, a childArgs) (any, error) {
		var n int
		if err := json.Unmarshal(a.Extra, &n); err != nil {
			return nil, err
		}
		db, err := Open(ctx, a.DSN, Options{Schema: a.Schema, MaxConns: 4})
		if err != nil {
			return nil, err
		}
		defer db.Close()
		l, err := audit.OpenStore(db.AuditStore(), audit.StoreOptions{ID: "fleet"})
		if err != nil {
			return nil, err
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for w := range 4 {
			wg.Go(func() {
				for i := range n / 4 {
					r := &audit.Record{Kind: audit.KindDecision, Call: fmt.Sprintf("p%d-w%d-%d", a.Index, w, i), Tool: "t"}
					if err := l.Append(ctx, r); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		return n, <-errs
	}
}

// exportVerify exports log and verifies it, returning the report and the
// call IDs of its records.
func exportVerify(t *testing.T, db *DB, log string) (*audit.Report, map[string]bool) {
	t.Helper()
	var buf bytes.Buffer
	if err := audit.Export(context.Background(), db.AuditStore(), log, 0, &buf); err != nil {
		t.Fatal(err)
	}
	calls := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		r, err := audit.ParseRecord(line)
		if err != nil {
			t.Fatalf("exported line %q: %v", line, err)
		}
		if r.Call != "" {
			calls[r.Call+"/"+string(r.Kind)] = true
		}
	}
	rep, err := audit.VerifyReaders(audit.VerifyOptions{}, audit.Source{Name: "postgres", R: &buf})
	if err != nil {
		t.Fatalf("the exported log does not verify: %v", err)
	}
	return rep, calls
}

// Two processes append to the audit table at once: one unbroken chain.
func TestAuditTwoProcesses(t *testing.T) {
	db := testDB(t)
	n, _ := json.Marshal(200)
	var cs []*child
	for i := range 2 {
		cs = append(cs, startChild(t, "append", childArgs{DSN: testDSN(t), Schema: db.Schema(), Index: i, Extra: n}))
	}
	for _, c := range cs {
		var got int
		c.wait(t, &got)
	}
	rep, calls := exportVerify(t, db, "fleet")
	if rep.Records != 400 || len(calls) != 400 {
		t.Fatalf("%d records, %d distinct calls; want 400", rep.Records, len(calls))
	}
}

// The table refuses UPDATE, DELETE and TRUNCATE, even from its owner, and
// an INSERT that does not extend the chain.
func TestAuditAppendOnly(t *testing.T) {
	db := testDB(t)
	ctx := context.Background()
	l, err := audit.OpenStore(db.AuditStore(), audit.StoreOptions{ID: "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := l.Append(ctx, &audit.Record{Kind: audit.KindDecision, Call: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`UPDATE audit_log SET line = 'x' WHERE seq = 1`,
		`DELETE FROM audit_log WHERE seq = 2`,
		`TRUNCATE audit_log`,
		`INSERT INTO audit_log (log, seq, line) VALUES ('fleet', 7, '{}')`,
		`INSERT INTO audit_log (log, seq, line) SELECT 'fleet', 3, line FROM audit_log WHERE seq = 2`,
		`INSERT INTO audit_log (log, seq, line) VALUES ('fleet', 3, 'not json')`,
		`UPDATE audit_checkpoints SET note = ''`,
		`TRUNCATE audit_checkpoints`,
	} {
		if _, err := db.pool.Exec(ctx, q); err == nil {
			t.Errorf("%s: succeeded", q)
		} else if !strings.Contains(err.Error(), "agentguard:") {
			t.Errorf("%s: %v, want the table's refusal", q, err)
		}
	}
	rep, _ := exportVerify(t, db, "fleet")
	if rep.Records != 3 {
		t.Fatalf("%d records after the refused changes, want 3", rep.Records)
	}
}

// Checkpoints go into the log and to the checkpoint table, and an
// external checkpoint detects a log cut short.
func TestAuditCheckpoints(t *testing.T) {
	db := testDB(t)
	ctx := context.Background()
	skey, vkey, err := audit.GenerateKey("fleet")
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.OpenStore(db.AuditStore(), audit.StoreOptions{ID: "fleet", SignerKey: skey, CheckpointEvery: 5,
		Sinks: []audit.Sink{db.CheckpointSink()}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if err := l.Append(ctx, &audit.Record{Kind: audit.KindResult, Call: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	note, err := db.LatestCheckpoint(ctx, "fleet")
	if err != nil || note == nil {
		t.Fatalf("LatestCheckpoint = %q, %v", note, err)
	}
	var buf bytes.Buffer
	if err := audit.Export(ctx, db.AuditStore(), "fleet", 0, &buf); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	rep, err := audit.VerifyReaders(audit.VerifyOptions{Key: vkey, Checkpoint: note}, audit.Source{Name: "pg", R: bytes.NewReader(full)})
	if err != nil {
		t.Fatalf("Verify with the stored checkpoint: %v", err)
	}
	if rep.Checkpoints != 2 || rep.Covered == 0 {
		t.Fatalf("report %+v, want 2 verified checkpoints and coverage", rep)
	}
	// The export cut before the checkpoint's size fails against it.
	lines := bytes.SplitAfter(full, []byte("\n"))
	cut := bytes.Join(lines[:3], nil)
	if _, err := audit.VerifyReaders(audit.VerifyOptions{Key: vkey, Checkpoint: note}, audit.Source{Name: "pg", R: bytes.NewReader(cut)}); err == nil {
		t.Fatal("a log cut short verified against the stored checkpoint")
	}
}

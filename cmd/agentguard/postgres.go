package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/postgres"
)

// The --postgres flags: the fleet's state in PostgreSQL (package postgres)
// instead of a kill file, an inbox URL or a log file.

// pgTimeout bounds every command's work on the database.
const pgTimeout = 30 * time.Second

// pgFlags are --postgres DSN and --schema NAME, on any command.
type pgFlags struct {
	dsn    *string
	schema *string
}

func addPGFlags(fset *flag.FlagSet) pgFlags {
	return pgFlags{
		dsn:    fset.String("postgres", "", "the fleet's PostgreSQL database (a URL or key=value DSN; keep passwords in PGPASSWORD or ~/.pgpass)"),
		schema: fset.String("schema", postgres.DefaultSchema, "with --postgres: the schema that holds the fleet's tables"),
	}
}

func (p pgFlags) set() bool { return *p.dsn != "" }

// open connects, migrating the schema when it is new or old.
func (p pgFlags) open(ctx context.Context) (*postgres.DB, error) {
	return postgres.Open(ctx, *p.dsn, postgres.Options{Schema: *p.schema, MaxConns: 2})
}

func pgContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), pgTimeout)
}

// withDB opens the database and runs fn with it; an error of either is
// reported as the command name's and exits 1.
func (p pgFlags) withDB(name string, stderr io.Writer, fn func(ctx context.Context, db *postgres.DB) error) int {
	ctx, cancel := pgContext()
	defer cancel()
	db, err := p.open(ctx)
	if err == nil {
		defer db.Close()
		err = fn(ctx, db)
	}
	if err != nil {
		fmt.Fprintf(stderr, "agentguard %s: %v\n", name, err)
		return 1
	}
	return 0
}

// pgKill trips scope for the fleet.
func pgKill(p pgFlags, h killswitch.Halt, stdout, stderr io.Writer) int {
	return p.withDB("kill", stderr, func(ctx context.Context, db *postgres.DB) error {
		if err := db.KillStore().Trip(ctx, h); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tripped %s: %s\nfleet: schema %s (every process following it halts now)\n", h.Scope, h.Why, db.Schema())
		return nil
	})
}

// pgResume resumes scope for the fleet.
func pgResume(p pgFlags, scope killswitch.Scope, stdout, stderr io.Writer) int {
	return p.withDB("resume", stderr, func(ctx context.Context, db *postgres.DB) error {
		if err := db.KillStore().Resume(ctx, scope); err != nil {
			if errors.Is(err, killswitch.ErrNotTripped) {
				return fmt.Errorf("%s is not tripped in schema %s", scope, db.Schema())
			}
			return err
		}
		fmt.Fprintf(stdout, "resumed %s\nfleet: schema %s\n", scope, db.Schema())
		return nil
	})
}

// pgStatus prints the fleet's trips; it exits 0 when none, 1 when some,
// and 1 when the database cannot be read (the fleet then counts as
// tripped once its staleness bound passes).
func pgStatus(p pgFlags, stdout, stderr io.Writer) int {
	ctx, cancel := pgContext()
	defer cancel()
	db, err := p.open(ctx)
	if err != nil {
		fmt.Fprintf(stdout, "tripped: the fleet's database is unreachable (%v); processes that cannot read it trip once it stays so past their staleness bound\n", err)
		return 1
	}
	defer db.Close()
	hs, err := db.KillStore().Trips(ctx)
	if err != nil {
		fmt.Fprintf(stdout, "tripped: the kill switch cannot be read (%v)\n", err)
		return 1
	}
	if len(hs) == 0 {
		fmt.Fprintf(stdout, "not tripped: no trip in schema %s\n", db.Schema())
		return 0
	}
	for _, h := range hs {
		fmt.Fprintf(stdout, "tripped %s: %s\nby: %s at %s\n", h.Scope, apprOneLine(h.Why), apprOneLine(h.Who), h.At.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, "fleet: schema %s\n", db.Schema())
	return 1
}

// pgApprovals answers through the fleet's approval inbox.
type pgApprovals struct {
	db *postgres.DB
}

func (a pgApprovals) pending() ([]approval.Request, error) {
	ctx, cancel := pgContext()
	defer cancel()
	return a.db.Approvals().Pending(ctx)
}

func (a pgApprovals) answer(sub string, ans approval.Answer) error {
	ctx, cancel := pgContext()
	defer cancel()
	return a.db.Approvals().Answer(ctx, ans, sub == "approve")
}

// pgAuditFlags adds --postgres, --schema and --log to an audit command.
type pgAuditFlags struct {
	pgFlags
	log *string
}

func addPGAuditFlags(fset *flag.FlagSet) pgAuditFlags {
	return pgAuditFlags{pgFlags: addPGFlags(fset),
		log: fset.String("log", "", "with --postgres: the log's ID (needed when the table holds several)")}
}

// logID returns --log, or the only log in the table.
func (p pgAuditFlags) logID(ctx context.Context, db *postgres.DB) (string, error) {
	if *p.log != "" {
		return *p.log, nil
	}
	ids, err := db.AuditStore().Logs(ctx)
	if err != nil {
		return "", err
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("no audit log in schema %s", db.Schema())
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("schema %s holds %d logs (%q…): choose one with --log", db.Schema(), len(ids), ids[0])
}

// auditExport writes a log kept in PostgreSQL as a file (stdout or --out).
func auditExport(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("audit export", flag.ContinueOnError)
	p := addPGAuditFlags(fset)
	out := fset.String("out", "", "the file to write (default: standard output)")
	fset.Usage = func() { auditUsage(stderr); fset.PrintDefaults() }
	pos, ok := auditParse(fset, args, stderr)
	if !ok {
		return 2
	}
	if len(pos) > 0 || !p.set() {
		fmt.Fprintln(stderr, "agentguard audit export: --postgres DSN is required, and no other argument")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	db, err := p.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "agentguard audit export: %v\n", err)
		return 1
	}
	defer db.Close()
	id, err := p.logID(ctx, db)
	if err != nil {
		fmt.Fprintf(stderr, "agentguard audit export: %v\n", err)
		return 1
	}
	if *out == "" {
		if err := audit.Export(ctx, db.AuditStore(), id, 0, stdout); err != nil {
			fmt.Fprintf(stderr, "agentguard audit export: %v\n", err)
			return 1
		}
		return 0
	}
	if err := exportFile(ctx, db, id, *out); err != nil {
		fmt.Fprintf(stderr, "agentguard audit export: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "exported log %s to %s\n", id, *out)
	return 0
}

// verifyPG verifies the log kept in PostgreSQL, streaming it. Without an
// external checkpoint in opts it uses the latest one the database keeps
// (DB.CheckpointSink), if any.
func verifyPG(p pgAuditFlags, opts audit.VerifyOptions) (*audit.Report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	db, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	id, err := p.logID(ctx, db)
	if err != nil {
		return nil, err
	}
	if opts.Checkpoint == nil {
		if opts.Checkpoint, err = db.LatestCheckpoint(ctx, id); err != nil {
			return nil, err
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(audit.Export(ctx, db.AuditStore(), id, 0, pw)) }()
	defer pr.Close()
	return audit.VerifyReaders(opts, audit.Source{Name: "postgres:" + db.Schema() + "/" + id, R: pr})
}

// exportFile exports log id into a new file at path, removed on failure.
func exportFile(ctx context.Context, db *postgres.DB, id, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = audit.Export(ctx, db.AuditStore(), id, 0, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

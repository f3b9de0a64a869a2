package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSchema is the schema of a zero Options.
const DefaultSchema = "agentguard"

// Options configure Open. The zero value uses DefaultSchema and pgx's
// pool defaults.
type Options struct {
	// Schema holds every table and function; Open creates it. Several
	// fleets (or tests) share a database in schemas of their own. Empty
	// means DefaultSchema. It must be a plain lowercase identifier.
	Schema string
	// MaxConns bounds the pool; zero means pgx's default (at least 4, or
	// the number of CPUs).
	MaxConns int32
	// Timeout bounds each operation of the ledger, the rate limits, the
	// kill switch, the approvals and each audit append, whatever the
	// caller's context: a server
	// that stops answering fails the operation (and so refuses the call)
	// instead of holding it. Zero means 10 seconds.
	Timeout time.Duration
	// NoMigrate makes Open only check that the schema is at the code's
	// version, for a role that may not change it (see DB.GrantAgent): the
	// owner migrates, the agents use.
	NoMigrate bool
}

// DB is a connection pool to one PostgreSQL database, with agentguard's
// schema migrated. It makes the fleet's stores (Ledger, Grants, Switch,
// AuditLog…); they share its pool. A DB is safe for concurrent use.
type DB struct {
	pool    *pgxpool.Pool
	schema  string
	timeout time.Duration
}

// bound returns ctx bounded by the DB's Timeout.
func (db *DB) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, db.timeout)
}

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,47}$`)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded SQL file, applied once, in version order.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order. Their names are
// NNNN_what.sql; versions start at 1 and have no gaps.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []migration
	for i, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("postgres: migration %s: want version %d", base, i+1)
		}
		b, err := migrationFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(b)})
	}
	return out, nil
}

// Open connects to the database at dsn (a PostgreSQL URL or key=value
// string, as pgx takes it), creates the schema if needed and applies the
// migrations it lacks (see DB.Migrate). Close the DB when done.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	schema := opts.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	if !schemaRE.MatchString(schema) {
		return nil, fmt.Errorf("postgres: schema %q is not a plain lowercase identifier", schema)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	// Every connection resolves names in the schema first.
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	// A server that does not answer must not hold a call forever: connect
	// within 5 seconds unless the DSN says otherwise (connect_timeout).
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := &DB{pool: pool, schema: schema, timeout: opts.Timeout}
	if db.timeout <= 0 {
		db.timeout = 10 * time.Second
	}
	if opts.NoMigrate {
		err = db.checkVersion(ctx)
	} else {
		err = db.Migrate(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the pool. The stores made from db stop working.
func (db *DB) Close() { db.pool.Close() }

// Schema returns the schema that holds db's tables.
func (db *DB) Schema() string { return db.schema }

// Pool returns the connection pool, for the caller's own queries.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Version returns the schema's migration version: the number of
// migrations applied.
func (db *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := db.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	return v, nil
}

// Migrate creates the schema if needed and applies, in one transaction,
// the embedded migrations it lacks. It is safe when several processes
// start at once: the transaction first takes an advisory lock of the
// schema, so the others wait and then find nothing left to do. A database
// whose schema is newer than this code is refused.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	ident := pgx.Identifier{db.schema}.Sanitize()
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('agentguard.migrate.' || $1, 0))`, db.schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+ident); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SET LOCAL search_path = `+ident); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version int PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
			return err
		}
		if have > len(ms) {
			return fmt.Errorf("schema %s is at version %d, newer than this code (%d): upgrade the library", db.schema, have, len(ms))
		}
		for _, m := range ms[have:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate schema %s: %w", db.schema, err)
	}
	return nil
}

// DropSchema drops db's schema and everything in it. It is for tests and
// for tearing a fleet down; there is no undo.
func (db *DB) DropSchema(ctx context.Context) error {
	_, err := db.pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{db.schema}.Sanitize()+` CASCADE`)
	if err != nil {
		return fmt.Errorf("postgres: drop schema %s: %w", db.schema, err)
	}
	return nil
}

// checkVersion returns an error unless the schema is at the code's
// version.
func (db *DB) checkVersion(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	v, err := db.Version(ctx)
	if err != nil {
		return err
	}
	if v != len(ms) {
		return fmt.Errorf("postgres: schema %s is at version %d, the code at %d: migrate it with its owner", db.schema, v, len(ms))
	}
	return nil
}

// agentGrants are the privileges of an agent's role, as GrantAgent gives
// them; %[1]s is the schema and %[2]s the role, both quoted.
var agentGrants = []string{
	`GRANT USAGE ON SCHEMA %[1]s TO %[2]s`,
	`GRANT SELECT ON %[1]s.schema_migrations TO %[2]s`,
	// The ledger and rate limits: the agents keep them.
	`GRANT SELECT, INSERT, UPDATE, DELETE ON %[1]s.budget_holds, %[1]s.budget_hold_entries, %[1]s.budget_charges, %[1]s.budget_expired, %[1]s.rate_buckets TO %[2]s`,
	// The kill switch: read only; trips and resumes come from operators.
	`GRANT SELECT ON %[1]s.kill_trips TO %[2]s`,
	// Approvals: an agent asks and takes its answer, never writes one.
	`GRANT SELECT, INSERT, DELETE ON %[1]s.approval_pending TO %[2]s`,
	`GRANT UPDATE (taken) ON %[1]s.approval_pending TO %[2]s`,
	`GRANT SELECT, INSERT, UPDATE, DELETE ON %[1]s.approval_grants TO %[2]s`,
	// The audit log: append only.
	`GRANT SELECT, INSERT ON %[1]s.audit_log, %[1]s.audit_checkpoints TO %[2]s`,
	`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %[1]s TO %[2]s`,
}

// GrantAgent gives role the privileges an agent process needs, and no
// more (see the package documentation): it can reserve and settle budget,
// take rate-limit tokens, read the kill switch, ask for approvals and take
// their answers, and append to the audit log; it cannot trip or resume
// the kill switch, answer an approval, or change or delete audit lines.
// The role must exist; db's role must own the schema.
func (db *DB) GrantAgent(ctx context.Context, role string) error {
	for _, g := range agentGrants {
		q := fmt.Sprintf(g, pgx.Identifier{db.schema}.Sanitize(), pgx.Identifier{role}.Sanitize())
		if _, err := db.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("postgres: grant %s: %w", role, err)
		}
	}
	return nil
}

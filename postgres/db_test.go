package postgres

import (
	"context"
	"strings"
	"testing"
)

func init() {
	childRoles["migrate"] = func(ctx context.Context, a childArgs) (any, error) {
		db, err := openChild(ctx, a)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		return db.Version(ctx)
	}
}

// Four processes open (and so migrate) one fresh schema at the same time:
// none fails, and the schema ends at the latest version, each migration
// applied once.
func TestMigrateConcurrently(t *testing.T) {
	dsn := testDSN(t)
	schema := testSchema(t, dsn)
	var cs []*child
	for i := range 4 {
		cs = append(cs, startChild(t, "migrate", childArgs{DSN: dsn, Schema: schema, Index: i}))
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		var v int
		c.wait(t, &v)
		if v != len(ms) {
			t.Errorf("child %d: version %d, want %d", i, v, len(ms))
		}
	}
	db, err := Open(context.Background(), dsn, Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, distinct int
	if err := db.pool.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || distinct != len(ms) {
		t.Errorf("schema_migrations has %d rows (%d versions), want %d", n, distinct, len(ms))
	}
}

// A schema newer than the code is refused, not half-used.
func TestMigrateNewerSchema(t *testing.T) {
	db := testDB(t)
	ctx := context.Background()
	if _, err := db.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')`); err != nil {
		t.Fatal(err)
	}
	err := db.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "newer than this code") {
		t.Fatalf("Migrate on a newer schema = %v, want a refusal", err)
	}
}

func TestOpenBadSchema(t *testing.T) {
	for _, s := range []string{"Upper", "a-b", "x;drop", strings.Repeat("a", 60)} {
		if _, err := Open(context.Background(), "postgres://127.0.0.1:1/x", Options{Schema: s}); err == nil {
			t.Errorf("Open with schema %q succeeded", s)
		}
	}
}

package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The tests run against the PostgreSQL named by AGENTGUARD_TEST_POSTGRES
// and skip without it. Each test gets a schema of its own, dropped at its
// end, so parallel test packages and runs never collide.
const dsnEnv = "AGENTGUARD_TEST_POSTGRES"

// Tests that need several processes re-execute the test binary: a child
// finds its role in childEnv, its settings in childArgsEnv (JSON), does its
// part, prints one JSON line of results and exits.
const (
	childEnv     = "AGENTGUARD_PG_CHILD"
	childArgsEnv = "AGENTGUARD_PG_CHILD_ARGS"
)

// childRoles maps a role to its function; the tests' files fill it in init.
var childRoles = map[string]func(ctx context.Context, args childArgs) (any, error){}

// childArgs is what a parent tells its children.
type childArgs struct {
	DSN    string          `json:"dsn"`
	Schema string          `json:"schema"`
	Index  int             `json:"index"`
	Ready  string          `json:"ready,omitempty"` // a file to create when ready
	Extra  json.RawMessage `json:"extra,omitempty"`
}

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	os.Exit(m.Run())
}

func runChild(role string) int {
	fn := childRoles[role]
	if fn == nil {
		fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
		return 2
	}
	var a childArgs
	if err := json.Unmarshal([]byte(os.Getenv(childArgsEnv)), &a); err != nil {
		fmt.Fprintf(os.Stderr, "child args: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := fn(ctx, a)
	if err != nil {
		fmt.Fprintf(os.Stderr, "child %s %d: %v\n", role, a.Index, err)
		return 1
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	return 0
}

// child is a running child process.
type child struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
}

// startChild starts the test binary as a child with role and args.
func startChild(t *testing.T, role string, a childArgs) *child {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$")}
	c.cmd.Env = append(os.Environ(), childEnv+"="+role, childArgsEnv+"="+string(b))
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	return c
}

// wait waits for the child and decodes its result into out.
func (c *child) wait(t *testing.T, out any) {
	t.Helper()
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child failed: %v\n%s", err, c.stderr.String())
	}
	line := strings.TrimSpace(c.stdout.String())
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal([]byte(line), out); err != nil {
		t.Fatalf("child result %q: %v\n%s", line, err, c.stderr.String())
	}
}

func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Skipf("%s is not set: skipping the PostgreSQL tests (set it to e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", dsnEnv)
	}
	return dsn
}

// testSchema returns a fresh schema name, dropped when t ends.
func testSchema(t testing.TB, dsn string) string {
	t.Helper()
	schema := "agt_" + strings.ToLower(rand.Text()[:12])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("cleanup: drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// testDB opens a DB in a fresh schema, closed and dropped when t ends.
func testDB(t testing.TB) *DB {
	t.Helper()
	dsn := testDSN(t)
	schema := testSchema(t, dsn)
	db, err := Open(context.Background(), dsn, Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// openChild opens the parent's schema in a child.
func openChild(ctx context.Context, a childArgs) (*DB, error) {
	return Open(ctx, a.DSN, Options{Schema: a.Schema})
}

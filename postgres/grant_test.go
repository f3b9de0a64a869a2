package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/killswitch"
)

// An agent's role, with exactly GrantAgent's privileges, can do its work
// through the stores but cannot rewrite the audit log, trip or resume the
// kill switch, or answer its own approval.
func TestGrantAgent(t *testing.T) {
	owner := testDB(t)
	ctx := context.Background()
	role := "agt_role_" + strings.ToLower(rand.Text()[:10])
	if _, err := owner.pool.Exec(ctx, `CREATE ROLE `+pgx.Identifier{role}.Sanitize()+` NOLOGIN`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		owner.pool.Exec(context.Background(), `REVOKE ALL ON ALL TABLES IN SCHEMA `+pgx.Identifier{owner.schema}.Sanitize()+` FROM `+pgx.Identifier{role}.Sanitize())
		owner.pool.Exec(context.Background(), `DROP OWNED BY `+pgx.Identifier{role}.Sanitize())
		owner.pool.Exec(context.Background(), `DROP ROLE `+pgx.Identifier{role}.Sanitize())
	})
	if err := owner.GrantAgent(ctx, role); err != nil {
		t.Fatal(err)
	}
	// The agent's pool runs as the role (a startup parameter).
	u, _ := url.Parse(testDSN(t))
	q := u.Query()
	q.Set("role", role)
	u.RawQuery = q.Encode()
	agent, err := Open(ctx, u.String(), Options{Schema: owner.schema, NoMigrate: true})
	if err != nil {
		t.Fatalf("Open as the agent: %v", err)
	}
	defer agent.Close()
	var who string
	agent.pool.QueryRow(ctx, `SELECT current_user`).Scan(&who)
	if who != role {
		t.Fatalf("the agent runs as %q, want %q", who, role)
	}

	// What an agent does works.
	l, _ := audit.OpenStore(agent.AuditStore(), audit.StoreOptions{ID: "fleet"})
	if err := l.Append(ctx, &audit.Record{Kind: audit.KindDecision, Call: "c1"}); err != nil {
		t.Fatalf("append as the agent: %v", err)
	}
	at := time.Now()
	h := &budget.Hold{ID: "h1", At: at, Deadline: at.Add(time.Hour), Entries: []budget.Entry{{Key: "k", Limit: 10, Amount: 1}}}
	if err := agent.Ledger().Reserve(ctx, h); err != nil {
		t.Fatalf("reserve as the agent: %v", err)
	}
	if err := agent.Ledger().Settle(ctx, "h1", []int64{1}, at); err != nil {
		t.Fatalf("settle as the agent: %v", err)
	}
	if _, _, err := agent.Limits().Take(ctx, at, []budget.Bucket{{Key: "b", Interval: time.Second, Burst: 1}}); err != nil {
		t.Fatalf("take a token as the agent: %v", err)
	}
	if _, err := agent.KillStore().Trips(ctx); err != nil {
		t.Fatalf("read the kill switch as the agent: %v", err)
	}

	// What an agent must not do is refused.
	denied := func(what string, err error) {
		t.Helper()
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s as the agent: %v, want insufficient_privilege (42501)", what, err)
		}
	}
	_, err = agent.pool.Exec(ctx, `UPDATE audit_log SET line = 'x'`)
	denied("UPDATE audit_log", err)
	_, err = agent.pool.Exec(ctx, `DELETE FROM audit_log`)
	denied("DELETE audit_log", err)
	_, err = agent.pool.Exec(ctx, `TRUNCATE audit_log`)
	denied("TRUNCATE audit_log", err)
	denied("a trip", agent.KillStore().Trip(ctx, killswitch.Halt{Who: "agent", Why: "x", At: at}))
	owner.KillStore().Trip(ctx, killswitch.Halt{Who: "alice", Why: "stop", At: at})
	denied("a resume", agent.KillStore().Resume(ctx, killswitch.Scope{}))
	_, err = agent.pool.Exec(ctx, `INSERT INTO approval_pending (id, hash, card, created, deadline) VALUES ('r', 'h', '{}', now(), now() + interval '1 hour')`)
	if err != nil {
		t.Fatalf("an agent's approval request: %v", err)
	}
	denied("an answer", agent.Approvals().Answer(ctx, approval.Answer{ID: "r", Hash: "h", By: "agent"}, true))
}

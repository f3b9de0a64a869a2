package postgres_test

import (
	"context"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/postgres"
)

// Every process of a fleet builds its guard on the same database: caps,
// rate limits, approvals, the kill switch and the audit log are then
// shared.
func Example() {
	ctx := context.Background()
	db, err := postgres.Open(ctx, os.Getenv("AGENTGUARD_POSTGRES"), postgres.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	skey := os.Getenv("AGENTGUARD_SIGNER_KEY")
	logw, err := audit.OpenStore(db.AuditStore(), audit.StoreOptions{ID: "fleet", SignerKey: skey,
		CheckpointEvery: 1000, Sinks: []audit.Sink{audit.FileSink("/var/lib/agentguard/checkpoint")}})
	if err != nil {
		log.Fatal(err)
	}
	gate, err := approval.NewGate(db.Approvals(), approval.Options{Store: db.Grants()})
	if err != nil {
		log.Fatal(err)
	}
	g, err := agentguard.New(
		agentguard.WithPolicyFile("policy.yaml"),
		agentguard.WithBudget(nil, budget.Options{Store: db.Ledger()}),
		agentguard.WithRateLimits(nil, budget.LimiterOptions{Store: db.Limits()}),
		agentguard.WithApprovalGate(gate),
		agentguard.WithKillSwitch(killswitch.New(killswitch.Options{})),
		agentguard.WithKillStore(db.KillStore(), 5*time.Second, killswitch.StoreOptions{Stale: 30 * time.Second}),
		agentguard.WithAuditStore(logw),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
}

// Any process of a fleet serves the web inbox over the fleet's pending
// approvals: a person behind the SSO proxy sees every process's waiting
// cards, and an answer releases the call wherever it waits, once, under
// the identity the proxy vouched for.
func Example_inbox() {
	ctx := context.Background()
	db, err := postgres.Open(ctx, os.Getenv("AGENTGUARD_POSTGRES"), postgres.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	in, err := approval.NewInbox(approval.InboxOptions{
		Token:        os.Getenv("AGENTGUARD_TOKEN"),
		Authenticate: approval.TrustHeader("X-Forwarded-User"),
		Pending:      db.Approvals(),
	})
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/approvals/", http.StripPrefix("/approvals", in))
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", nil))
}

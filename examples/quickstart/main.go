// Command quickstart is agentguard's main job in one small program: a
// support agent, driven by a scripted fake model, calls guarded tools. Some
// calls are allowed, some denied with a reason the model can act on, one
// waits for a human (answered by a callback), and a model loop runs until
// its daily budget stops it. It ends by verifying its own audit log, which
// it keeps (by default under the temporary directory; -audit PATH to choose),
// and prints the agentguard command that checks it again.
//
// Run it with:
//
//	go run ./examples/quickstart [-audit PATH]
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/policy"
)

//go:embed policy.yaml
var policyYAML []byte

// The tools. They would talk to real systems; here they only answer.

type OrderArgs struct {
	Customer string `json:"customer"`
}

func readOrders(_ context.Context, a OrderArgs) (string, error) {
	return "2 orders for " + a.Customer, nil
}

type RefundArgs struct {
	Order  string  `json:"order"`
	Amount float64 `json:"amount"`
}

func refund(_ context.Context, a RefundArgs) (string, error) {
	return fmt.Sprintf("refunded %.2f USD on %s", a.Amount, a.Order), nil
}

type DeleteArgs struct {
	Table string `json:"table"`
}

func dbDelete(_ context.Context, a DeleteArgs) (string, error) {
	return "deleted " + a.Table, nil
}

type EmailArgs struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

func sendEmail(_ context.Context, a EmailArgs) (string, error) {
	return "sent to " + a.To, nil
}

type Prompt struct {
	Text string `json:"text"`
}

// complete is a fake model call. It charges what it used, as a real
// client would from the API's usage report: 800 tokens at 12.5 USD per
// million, 0.01 USD a call.
func complete(ctx context.Context, p Prompt) (string, error) {
	if err := agentguard.Charge(ctx, agentguard.Cost{Unit: "USD", Micros: 800 * 12.5}); err != nil {
		return "", err
	}
	return "a summary of " + p.Text, nil
}

// The approver: the callback a real program would wire to Slack, a pager or
// a web inbox. This one approves refunds up to 500 USD and rejects the rest.
func approve(_ context.Context, r *approval.Request) (approval.Verdict, error) {
	if amount, _ := r.Args["amount"].(float64); amount <= 500 {
		return r.Approve("alice@acme.com", "customer is in good standing"), nil
	}
	return r.Reject("alice@acme.com", "too large; escalate to finance"), nil
}

// step is one tool call the scripted model makes.
type step struct {
	say  string
	call func(context.Context) (string, error)
}

func main() {
	logPath := flag.String("audit", filepath.Join(os.TempDir(), "agentguard-quickstart", "audit.jsonl"),
		"where to keep the audit log (a previous run's log there is replaced)")
	flag.Parse()
	if err := run(os.Stdout, *logPath); err != nil {
		log.Fatal(err)
	}
}

func run(w io.Writer, logPath string) error {
	// Each run starts a new log, signed with a new key: a previous run's
	// log would not verify with it.
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return err
	}
	if err := os.Remove(logPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	skey, vkey, err := audit.GenerateKey("quickstart")
	if err != nil {
		return err
	}

	pol, err := policy.Parse("policy.yaml", policyYAML)
	if err != nil {
		return err
	}
	g, err := agentguard.New(
		agentguard.WithPolicy(pol),
		agentguard.WithEnv("prod"),
		// A fixed clock keeps the output the same on every run (the budget's
		// retry-after depends on the time of day). Real programs leave it out.
		agentguard.WithClock(func() time.Time { return time.Date(2026, 6, 1, 18, 0, 0, 0, time.UTC) }),
		agentguard.WithApprover(approval.Func(approve)),
		agentguard.WithAuditFile(logPath, audit.Options{SignerKey: skey}),
	)
	if err != nil {
		return err
	}

	read := agentguard.Wrap(g, "read_orders", readOrders)
	ref := agentguard.Wrap(g, "refund", refund)
	del := agentguard.Wrap(g, "db.delete", dbDelete)
	mail := agentguard.Wrap(g, "send_email", sendEmail)
	llm := agentguard.Wrap(g, "llm.complete", complete,
		agentguard.Estimate(agentguard.Cost{Unit: "USD", Micros: 10_000}))

	ctx := agentguard.WithPrincipal(context.Background(),
		agentguard.Principal{Agent: "support-bot", Requester: "bob", Tenant: "acme"})

	script := []step{
		{"look up the customer's orders", func(ctx context.Context) (string, error) {
			return read(ctx, OrderArgs{Customer: "carol"})
		}},
		{"refund 30 USD", func(ctx context.Context) (string, error) {
			return ref(ctx, RefundArgs{Order: "A-1001", Amount: 30})
		}},
		{"refund 250 USD", func(ctx context.Context) (string, error) {
			return ref(ctx, RefundArgs{Order: "A-1002", Amount: 250})
		}},
		{"refund 900 USD", func(ctx context.Context) (string, error) {
			return ref(ctx, RefundArgs{Order: "A-1003", Amount: 900})
		}},
		{"clean up the orders table", func(ctx context.Context) (string, error) {
			return del(ctx, DeleteArgs{Table: "orders"})
		}},
		{"email a colleague", func(ctx context.Context) (string, error) {
			return mail(ctx, EmailArgs{To: "dave@acme.com", Subject: "refunds done"})
		}},
		{"email the customer's lawyer", func(ctx context.Context) (string, error) {
			return mail(ctx, EmailArgs{To: "counsel@example.org", Subject: "refunds"})
		}},
	}
	for i, s := range script {
		fmt.Fprintf(w, "%d. model: %s\n", i+1, s.say)
		out, err := s.call(ctx)
		report(w, out, err)
	}

	// The model loops on the LLM until the daily budget stops it.
	for i := len(script) + 1; ; i++ {
		fmt.Fprintf(w, "%d. model: summarise the case again\n", i)
		out, err := llm(ctx, Prompt{Text: "the case"})
		report(w, out, err)
		if err != nil {
			break
		}
	}

	if err := g.Close(); err != nil {
		return err
	}
	rep, err := audit.Verify(audit.VerifyOptions{Key: vkey}, logPath)
	if err != nil {
		return fmt.Errorf("audit log does not verify: %w", err)
	}
	fmt.Fprintf(w, "\naudit log: %d records, hash chain intact, %d signed checkpoint(s) verified\n", rep.Records, rep.Checkpoints)
	abs, err := filepath.Abs(logPath)
	if err != nil {
		abs = logPath
	}
	fmt.Fprintf(w, "kept at %s; check it again with:\n  go run ./cmd/agentguard audit verify --key %s %s\n", abs, shellQuote(vkey), shellQuote(abs))
	return nil
}

// shellQuote returns s as one word of a POSIX shell: as it is when it
// holds only characters no shell treats specially, single-quoted
// otherwise, so that the printed command can be pasted as it is (a temp
// dir or an -audit path with a space in it).
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=/.,:@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// report prints what the model gets back: the tool's result, or the
// denial's text, which is written for the model to read.
func report(w io.Writer, out string, err error) {
	var d *agentguard.DeniedError
	switch {
	case errors.As(err, &d):
		fmt.Fprintf(w, "   denied: %s\n", d.Error())
	case err != nil:
		fmt.Fprintf(w, "   tool error: %v\n", err)
	default:
		fmt.Fprintf(w, "   allowed: %s\n", out)
	}
}

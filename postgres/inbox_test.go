package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/policy"
)

type guardAskResult struct {
	Runs   int64
	Result string
	Err    string
}

func init() {
	// Process B: a guard whose policy sends refunds to a person, with its
	// approvals and audit log in the fleet's database, makes one refund.
	childRoles["guardask"] = func(ctx context.Context, a childArgs) (any, error) {
		db, err := Open(ctx, a.DSN, Options{Schema: a.Schema, MaxConns: 4})
		if err != nil {
			return nil, err
		}
		defer db.Close()
		pol, err := policy.Parse("fleet.yaml", []byte(`version: 1
default: allow
rules:
  - name: refunds
    match: call.tool == "refund"
    effect: approve
    reason: refunds need a person
`))
		if err != nil {
			return nil, err
		}
		al, err := audit.OpenStore(db.AuditStore(), audit.StoreOptions{ID: "fleet"})
		if err != nil {
			return nil, err
		}
		g, err := agentguard.New(agentguard.WithPolicy(pol), agentguard.WithApprover(db.Approvals()),
			agentguard.WithApprovalTimeout(time.Minute), agentguard.WithAuditStore(al))
		if err != nil {
			return nil, err
		}
		defer g.Close()
		var runs atomic.Int64
		refund := agentguard.Wrap(g, "refund", func(ctx context.Context, args map[string]any) (string, error) {
			runs.Add(1)
			return fmt.Sprint("refunded ", args["amount"]), nil
		})
		ctx = agentguard.WithPrincipal(ctx, agentguard.Principal{Agent: "bot-b", Tenant: "acme"})
		out, err := refund(ctx, map[string]any{"order": "B-7", "amount": 250})
		r := guardAskResult{Runs: runs.Load(), Result: out}
		if err != nil {
			r.Err = err.Error()
		}
		return r, nil
	}
}

// A call waiting in the guard of process B is approved through the web
// inbox of process A (approval.Inbox over the fleet's Approvals, served
// over HTTP), exactly once: of two people approving at the same moment,
// one is told no call waits any more; the call in B runs once, and the
// audit chain names the identity the inbox verified as its approver.
func TestInboxAcrossProcesses(t *testing.T) {
	db := testDB(t)
	c := startChild(t, "guardask", childArgs{DSN: testDSN(t), Schema: db.Schema()})
	const token = "fleet-inbox-token-0123456789"
	in, err := approval.NewInbox(approval.InboxOptions{Token: token, Pending: db.Approvals(),
		Authenticate: approval.TrustHeader("X-Forwarded-User")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in)
	defer srv.Close()
	send := func(method, path, body string, hdr ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	var card approval.Request
	for deadline := time.Now().Add(60 * time.Second); ; {
		code, body := send("GET", "/api/pending", "")
		var list struct{ Pending []approval.Request }
		if code != 200 || json.Unmarshal([]byte(body), &list) != nil {
			t.Fatalf("list: %d %s", code, body)
		}
		if len(list.Pending) == 1 {
			card = list.Pending[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no card of process B appeared in A's inbox: %s", c.stderr.String())
		}
		time.Sleep(10 * time.Millisecond) // waiting for another process to start and ask
	}
	if card.Tool != "refund" || card.Principal.Agent != "bot-b" || card.Args["order"] != "B-7" {
		t.Fatalf("card = %+v", card)
	}
	if code, page := send("GET", "/", ""); code != 200 || !strings.Contains(page, "bot-b") || !strings.Contains(page, card.Hash) {
		t.Fatalf("A's page does not show B's card: %d\n%s", code, page)
	}

	// Two people approve at once through A; the typed name is ignored.
	body := fmt.Sprintf(`{"id":%q,"hash":%q,"by":"mallory","note":"fine"}`, card.ID, card.Hash)
	people := []string{"alice@acme.com", "bob@acme.com"}
	codes := make([]int, len(people))
	bodies := make([]string, len(people))
	var wg sync.WaitGroup
	for i, who := range people {
		wg.Go(func() { codes[i], bodies[i] = send("POST", "/api/approve", body, "X-Forwarded-User", who) })
	}
	wg.Wait()
	winner := ""
	for i, code := range codes {
		switch {
		case code == 200 && winner == "":
			winner = people[i]
		case code == http.StatusNotFound && strings.Contains(bodies[i], "no call is waiting"):
		default:
			t.Fatalf("approvals answered %v %q: want one 200 and one 404 (no call is waiting)", codes, bodies)
		}
	}
	if winner == "" {
		t.Fatalf("nobody's approval was taken: %v %q", codes, bodies)
	}
	if code, msg := send("POST", "/api/deny", body, "X-Forwarded-User", "carol@acme.com"); code != http.StatusNotFound {
		t.Errorf("a later denial: %d %s, want 404", code, msg)
	}

	var r guardAskResult
	c.wait(t, &r)
	if r.Err != "" || r.Runs != 1 || r.Result != "refunded 250" {
		t.Fatalf("process B: %+v, want the refund run once", r)
	}
	if code, body := send("GET", "/api/pending", ""); code != 200 || strings.Contains(body, card.ID) {
		t.Errorf("still pending after the answer: %d %s", code, body)
	}

	// The audit chain (written by B) verifies and names the verified
	// approver of the call, never the typed name.
	rep, _ := exportVerify(t, db, "fleet")
	if rep.Records == 0 {
		t.Fatal("no audit records")
	}
	var buf strings.Builder
	if err := audit.Export(context.Background(), db.AuditStore(), "fleet", 0, &buf); err != nil {
		t.Fatal(err)
	}
	approvers := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		rec, err := audit.ParseRecord([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if rec.Approver != "" {
			approvers[rec.Approver]++
		}
	}
	if approvers[winner] == 0 || len(approvers) != 1 {
		t.Fatalf("audit approvers = %v, want only %s", approvers, winner)
	}
}

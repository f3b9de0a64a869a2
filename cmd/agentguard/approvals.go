package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hardstop-labs/agentguard/approval"
)

func init() {
	commands["approvals"] = command{"list, approve or deny calls waiting in an approval inbox", runApprovals}
}

const apprUsage = `usage: agentguard approvals list    (--url URL [--token-file FILE] | --postgres DSN [--schema S]) [--json]
       agentguard approvals approve (--url URL [--token-file FILE] | --postgres DSN [--schema S]) --id ID --hash PREFIX [--by WHO] [--note TEXT] [--grant "SCOPE DURATION"]
       agentguard approvals deny    (--url URL [--token-file FILE] | --postgres DSN [--schema S]) --id ID [--hash PREFIX] [--by WHO] [--note TEXT]

URL is where the inbox (approval.Inbox) is served; DSN is the fleet's
PostgreSQL database, whose inbox (postgres.Approvals) every process of the
fleet waits in. The inbox token is read from --token-file or from the
AGENTGUARD_TOKEN environment variable; it is never given on the command
line. SCOPE is args, tool or agent.

list shows every waiting card in full, its arguments whole, with control
and invisible characters escaped (\u202e). approve needs --hash: at least
the first 8 digits of the hash of the card you read, so that you approve
the call you saw; it shows the card again before it answers. Without
--hash it shows the card and answers nothing. An inbox records WHO as
"typed:WHO" unless it verifies who you are.`

func runApprovals(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, apprUsage)
		return 2
	}
	sub := args[0]
	if sub != "list" && sub != "approve" && sub != "deny" {
		fmt.Fprintf(stderr, "agentguard approvals: unknown subcommand %q\n%s\n", sub, apprUsage)
		return 2
	}
	fset := flag.NewFlagSet("approvals "+sub, flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { fmt.Fprintln(stderr, apprUsage); fset.PrintDefaults() }
	url := fset.String("url", "", "where the inbox is served (required)")
	tokenFile := fset.String("token-file", "", "a file holding the inbox token (else $AGENTGUARD_TOKEN)")
	asJSON := fset.Bool("json", false, "list: print the pending cards as JSON")
	id := fset.String("id", "", "approve, deny: the request to answer (required)")
	by := fset.String("by", apprDefaultWho(), "approve, deny: who answers")
	note := fset.String("note", "", "approve, deny: a note for the record")
	grant := fset.String("grant", "", `approve: also remember the approval, as "SCOPE DURATION" (e.g. "tool 10m")`)
	hash := fset.String("hash", "", "approve (required), deny: the first 8 or more digits of the card's hash")
	pg := addPGFlags(fset)
	if err := fset.Parse(args[1:]); err != nil {
		return 2
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "agentguard approvals: unexpected argument %q\n", fset.Arg(0))
		return 2
	}
	if (*url == "") == !pg.set() {
		fmt.Fprintln(stderr, "agentguard approvals: one of --url or --postgres is required")
		return 2
	}
	if sub != "list" && *id == "" {
		fmt.Fprintln(stderr, "agentguard approvals: --id is required")
		return 2
	}
	var g *approval.Grant
	if *grant != "" {
		if sub != "approve" {
			fmt.Fprintln(stderr, "agentguard approvals: --grant goes with approve")
			return 2
		}
		scope, dur, _ := strings.Cut(strings.TrimSpace(*grant), " ")
		sc, err1 := approval.ParseScope(scope)
		d, err2 := time.ParseDuration(strings.TrimSpace(dur))
		if err1 != nil || err2 != nil || d <= 0 || sc == approval.ScopeCall {
			fmt.Fprintf(stderr, "agentguard approvals: --grant %q: want SCOPE DURATION, with SCOPE args, tool or agent\n", *grant)
			return 2
		}
		g = &approval.Grant{Scope: sc, Duration: d}
	}
	var c apprBackend
	if pg.set() {
		ctx, cancel := pgContext()
		db, err := pg.open(ctx)
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "agentguard approvals: %v\n", err)
			return 1
		}
		defer db.Close()
		c = pgApprovals{db}
	} else {
		token, err := apprToken(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "agentguard approvals: %v\n", err)
			return 2
		}
		c = &apprClient{base: strings.TrimSuffix(*url, "/"), token: token, http: &http.Client{Timeout: 15 * time.Second}}
	}

	pending, err := c.pending()
	if err != nil {
		fmt.Fprintf(stderr, "agentguard approvals: %v\n", err)
		return 1
	}
	if sub == "list" {
		if *asJSON {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetIndent("", "  ")
			enc.Encode(pending)
			// The same JSON, with nothing invisible: line by line, as the
			// indentation's newlines are the only ones (JSON escapes those
			// in strings).
			for line := range strings.Lines(b.String()) {
				io.WriteString(stdout, approval.Visible(strings.TrimSuffix(line, "\n"))+"\n")
			}
			return 0
		}
		apprPrint(stdout, pending)
		return 0
	}
	var card *approval.Request
	for i := range pending {
		if pending[i].ID == *id {
			card = &pending[i]
		}
	}
	if card == nil {
		fmt.Fprintf(stderr, "agentguard approvals: no call is waiting for request %q\n", approval.Visible(*id))
		return 1
	}
	// The person answers the card they read: show it whole, and for an
	// approval require the start of its hash.
	approval.WriteCard(stdout, card)
	if *hash == "" && sub == "approve" {
		fmt.Fprintf(stderr, "agentguard approvals: read the card above; to approve exactly this call, run again with --hash %s\n", card.Hash[:min(8, len(card.Hash))])
		return 2
	}
	if *hash != "" && (len(*hash) < 8 || !strings.HasPrefix(card.Hash, strings.ToLower(*hash))) {
		fmt.Fprintf(stderr, "agentguard approvals: --hash %q is not the start (8 digits or more) of this card's hash: the card changed, or it is another card; nothing was answered\n", approval.Visible(*hash))
		return 1
	}
	// Answer with the hash of the card just listed: the inbox takes the
	// answer only for exactly that call.
	ans := approval.Answer{ID: card.ID, Hash: card.Hash, By: *by, Note: *note, Grant: g}
	if err := c.answer(sub, ans); err != nil {
		fmt.Fprintf(stderr, "agentguard approvals: %v\n", err)
		return 1
	}
	verb := map[string]string{"approve": "approved", "deny": "denied"}[sub]
	fmt.Fprintf(stdout, "%s %s (%s) as %s\n", verb, approval.Visible(card.ID), approval.Visible(card.Tool), approval.Visible(*by))
	if g != nil {
		fmt.Fprintf(stdout, "granted %s for %s\n", g.Scope, g.Duration)
	}
	return 0
}

// apprToken reads the token from file, or from $AGENTGUARD_TOKEN.
func apprToken(file string) (string, error) {
	var tok string
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading the token: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	} else {
		tok = strings.TrimSpace(os.Getenv("AGENTGUARD_TOKEN"))
	}
	if tok == "" {
		return "", errors.New("no token: use --token-file FILE or set AGENTGUARD_TOKEN")
	}
	if strings.ContainsAny(tok, "\r\n") {
		return "", errors.New("the token must be one line")
	}
	return tok, nil
}

func apprDefaultWho() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "cli"
}

// apprBackend is where the pending calls wait: an inbox over HTTP
// (apprClient) or the fleet's database (pgApprovals).
type apprBackend interface {
	pending() ([]approval.Request, error)
	answer(sub string, a approval.Answer) error
}

type apprClient struct {
	base  string
	token string
	http  *http.Client
}

func (c *apprClient) do(method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		msg := strings.TrimSpace(string(out))
		if json.Unmarshal(out, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
	}
	return out, nil
}

func (c *apprClient) pending() ([]approval.Request, error) {
	b, err := c.do(http.MethodGet, "/api/pending", nil)
	if err != nil {
		return nil, err
	}
	var list struct {
		Pending []approval.Request `json:"pending"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("reading the pending list: %w", err)
	}
	return list.Pending, nil
}

func (c *apprClient) answer(sub string, a approval.Answer) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = c.do(http.MethodPost, "/api/"+sub, b)
	return err
}

// apprPrint writes every card in full (approval.WriteCard escapes what a
// terminal would hide or obey), each with the start of the command that
// approves it.
func apprPrint(w io.Writer, cards []approval.Request) {
	if len(cards) == 0 {
		fmt.Fprintln(w, "no call is waiting for approval")
		return
	}
	for i, c := range cards {
		if i > 0 {
			fmt.Fprintln(w)
		}
		approval.WriteCard(w, &c)
		if len(c.Hash) >= 8 {
			fmt.Fprintf(w, "  approve:  agentguard approvals approve … --id %s --hash %s\n", approval.Visible(c.ID), c.Hash[:8])
		}
	}
}

// apprOneLine keeps a field on one line of output and keeps control and
// invisible characters (terminal escapes, bidi controls from a hostile
// card) off the terminal, escaped.
func apprOneLine(s string) string { return approval.Visible(s) }

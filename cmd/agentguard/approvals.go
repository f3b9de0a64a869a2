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
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/hardstop-labs/agentguard/approval"
)

func init() {
	commands["approvals"] = command{"list, approve or deny calls waiting in an approval inbox", runApprovals}
}

const apprUsage = `usage: agentguard approvals list    (--url URL [--token-file FILE] | --postgres DSN [--schema S]) [--json]
       agentguard approvals approve (--url URL [--token-file FILE] | --postgres DSN [--schema S]) --id ID [--by WHO] [--note TEXT] [--grant "SCOPE DURATION"]
       agentguard approvals deny    (--url URL [--token-file FILE] | --postgres DSN [--schema S]) --id ID [--by WHO] [--note TEXT]

URL is where the inbox (approval.Inbox) is served; DSN is the fleet's
PostgreSQL database, whose inbox (postgres.Approvals) every process of the
fleet waits in. The inbox token is read from --token-file or from the
AGENTGUARD_TOKEN environment variable; it is never given on the command
line. SCOPE is args, tool or agent.`

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
	fset.Usage = func() { fmt.Fprintln(stderr, apprUsage) }
	url := fset.String("url", "", "where the inbox is served (required)")
	tokenFile := fset.String("token-file", "", "a file holding the inbox token (else $AGENTGUARD_TOKEN)")
	asJSON := fset.Bool("json", false, "list: print the pending cards as JSON")
	id := fset.String("id", "", "approve, deny: the request to answer (required)")
	by := fset.String("by", apprDefaultWho(), "approve, deny: who answers")
	note := fset.String("note", "", "approve, deny: a note for the record")
	grant := fset.String("grant", "", `approve: also remember the approval, as "SCOPE DURATION" (e.g. "tool 10m")`)
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
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(pending)
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
		fmt.Fprintf(stderr, "agentguard approvals: no call is waiting for request %q\n", *id)
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
	fmt.Fprintf(stdout, "%s %s (%s) as %s\n", verb, card.ID, card.Tool, *by)
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

func apprPrint(w io.Writer, cards []approval.Request) {
	if len(cards) == 0 {
		fmt.Fprintln(w, "no call is waiting for approval")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTOOL\tAGENT\tRULE\tDEADLINE\tARGS")
	for _, c := range cards {
		args, _ := json.Marshal(c.Args)
		if len(args) > 80 {
			args = append(args[:77], "..."...)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", apprOneLine(c.ID), apprOneLine(c.Tool), apprOneLine(c.Principal.Agent),
			apprOneLine(c.Rule), c.Deadline.UTC().Format(time.RFC3339), apprOneLine(string(args)))
	}
	tw.Flush()
}

// apprOneLine keeps a field on one line of the table and keeps control
// characters (terminal escapes from a hostile card) off the terminal.
func apprOneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

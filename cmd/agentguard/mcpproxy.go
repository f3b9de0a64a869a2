package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
	"github.com/hardstop-labs/agentguard/killswitch"
)

func init() {
	commands["mcp-proxy"] = command{"guard a third-party MCP server: run it as a child and re-expose its tools guarded", runMCPProxy}
	commands["mcp-pins"] = command{"list or accept the pinned tool definitions of mcp-proxy --pins", runMCPPins}
}

// mcpProxyStdin is the client's side of the protocol; tests replace it.
var mcpProxyStdin io.Reader = os.Stdin

// runMCPProxy is agentguard mcp-proxy. The protocol runs over stdin and
// stdout; every message of the proxy's own goes to stderr.
func runMCPProxy(args []string, stdout, stderr io.Writer) int {
	// The server's stderr is copied to ours while the proxy writes there too.
	stderr = &lockedWriter{w: stderr}
	fs := flag.NewFlagSet("mcp-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyFile := fs.String("policy", "", "the policy file (required); re-read when it changes")
	auditFile := fs.String("audit", "", "the audit log (JSON lines, hash-chained); none when empty")
	auditSync := fs.String("audit-sync", "each", "when the audit log is synced to disk: each (before every call runs), interval, or never")
	approver := fs.String("approver", "", "who approves calls the policy sends for approval: console (this terminal), inbox (a web page), or client (the MCP client's user, asked through elicitation; only for a client that asks its user)")
	inboxAddr := fs.String("inbox-addr", "127.0.0.1:8787", "with --approver inbox: the address of the approval inbox (its token is $AGENTGUARD_TOKEN)")
	pinsFile := fs.String("pins", "", "keep the pinned tool definitions in this file (default: in memory); a changed definition holds its calls until accepted (agentguard mcp-pins accept)")
	hide := fs.Bool("hide", false, "hide from tools/list the tools the policy or the kill switch can never allow")
	killFile := fs.String("kill-file", "", "a kill file: its presence halts every call (agentguard kill --file)")
	listen := fs.String("listen", "", "serve MCP clients over streamable HTTP on this address (e.g. 127.0.0.1:8788) instead of stdin and stdout")
	timeout := fs.Duration("timeout", mcpproxy.DefaultTimeout, "how long a request may wait for the server's answer")
	agent := fs.String("agent", "", "the agent's name for the policy (default: the client's name)")
	tenant := fs.String("tenant", "", "the tenant for the policy")
	requester := fs.String("requester", "", "the person the agent acts for")
	env := fs.String("env", "", "the environment for the policy (call.env)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: agentguard mcp-proxy --policy FILE [--audit FILE] [--approver console|inbox|client] [--pins FILE] [--hide] [--kill-file PATH] [--listen ADDR] -- COMMAND [ARGS...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cmd := fs.Args()
	if *policyFile == "" || len(cmd) == 0 {
		fs.Usage()
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "agentguard mcp-proxy: "+format+"\n", a...)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()

	// The server starts first, so that its start overlaps the policy's
	// compilation; it reads nothing until the guard is ready.
	child, err := mcpproxy.StartChild(cmd[0], cmd[1:], stderr)
	if err != nil {
		return fail("%v", err)
	}
	const grace = 2 * time.Second
	defer child.Stop(grace)

	sw := killswitch.New(killswitch.Options{})
	opts := []agentguard.Option{
		agentguard.WithPolicyFile(*policyFile),
		agentguard.WithPolicyWatch(2*time.Second, func(err error) { fmt.Fprintf(stderr, "agentguard mcp-proxy: policy not reloaded: %v\n", err) }),
		agentguard.WithKillSwitch(sw),
		agentguard.WithEnv(*env),
	}
	if *auditFile != "" {
		var ao audit.Options
		switch *auditSync {
		case "each":
			ao.Sync = audit.SyncEach
		case "interval":
			ao.Sync = audit.SyncInterval
		case "never":
			ao.Sync = audit.SyncNever
		default:
			return fail("unknown --audit-sync %q (want each, interval or never)", *auditSync)
		}
		opts = append(opts, agentguard.WithAuditFile(*auditFile, ao))
	}
	if *killFile != "" {
		opts = append(opts, agentguard.WithKillFile(*killFile, time.Second, killswitch.FileOptions{}))
	}
	switch *approver {
	case "":
	case "console":
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return fail("--approver console needs a terminal (stdin and stdout carry the protocol): %v", err)
		}
		defer tty.Close()
		opts = append(opts, agentguard.WithApprover(approval.NewConsole(tty, tty, approval.ConsoleOptions{})))
	case "inbox":
		token := os.Getenv("AGENTGUARD_TOKEN")
		if token == "" {
			return fail("--approver inbox needs a token in $AGENTGUARD_TOKEN")
		}
		inbox, err := approval.NewInbox(approval.InboxOptions{Token: token})
		if err != nil {
			return fail("%v", err)
		}
		ln, err := net.Listen("tcp", *inboxAddr)
		if err != nil {
			return fail("approval inbox: %v", err)
		}
		srv := &http.Server{Handler: inbox, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(stderr, "agentguard mcp-proxy: approvals at http://%s/\n", ln.Addr())
		opts = append(opts, agentguard.WithApprover(inbox))
	case "client":
		opts = append(opts, agentguard.WithApprover(mcpproxy.ClientApprover(nil)))
	default:
		return fail("unknown --approver %q (want console, inbox or client)", *approver)
	}
	g, err := agentguard.New(opts...)
	if err != nil {
		return fail("%v", err)
	}
	defer g.Close()

	popts := mcpproxy.Options{
		Principal:  agentguard.Principal{Agent: *agent, Tenant: *tenant, Requester: *requester},
		HideTools:  *hide,
		KillSwitch: sw,
		Timeout:    *timeout,
		Log:        stderr,
	}
	// Every tool the server shows is recorded and pinned; without --pins
	// the pins last as long as the process.
	popts.Pins = mcpproxy.NewPins()
	if *pinsFile != "" {
		if popts.Pins, err = mcpproxy.OpenPins(*pinsFile); err != nil {
			return fail("%v", err)
		}
	}
	p := mcpproxy.New(g, popts)
	if *hide {
		// A trip, a resume or a new policy changes what is hidden.
		stop := mcpproxy.WatchChanges(ctx, g, sw, time.Second, p.ToolsChanged)
		defer stop()
	}
	if *listen != "" {
		err = serveHTTP(ctx, *listen, p, child, grace, stderr)
	} else {
		err = p.Serve(ctx, mcpproxy.Streams{
			ClientIn: mcpProxyStdin, ClientOut: stdout,
			ServerOut: child.Stdout(), ServerIn: child.Stdin(),
			StopServer: func() { go child.Stop(grace) },
		})
	}
	if serr := child.Stop(grace); serr != nil {
		fmt.Fprintf(stderr, "agentguard mcp-proxy: the server: %v\n", serr)
	}
	if cerr := g.Close(); cerr != nil {
		return fail("closing the guard: %v", cerr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fail("%v", err)
	}
	return 0
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// serveHTTP serves the proxy's clients over streamable HTTP on addr until
// ctx ends (a signal) or the server behind it is gone for good.
func serveHTTP(ctx context.Context, addr string, p *mcpproxy.Proxy, child *mcpproxy.Child, grace time.Duration, stderr io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	h, done := mcpproxy.NewHTTP(ctx, p, mcpproxy.Streams{ServerOut: child.Stdout(), ServerIn: child.Stdin(),
		StopServer: func() { go child.Stop(grace) }})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Fprintf(stderr, "agentguard mcp-proxy: MCP over HTTP at http://%s/\n", ln.Addr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = srv.Shutdown(sctx)
	h.Close()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// runMCPPins is agentguard mcp-pins list|accept.
func runMCPPins(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mcp-pins", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pinsFile := fs.String("pins", "", "the pins file of mcp-proxy --pins (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: agentguard mcp-pins --pins FILE list | accept TOOL HASH")
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return 2
	}
	sub := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *pinsFile == "" {
		fs.Usage()
		return 2
	}
	pins, err := mcpproxy.OpenPins(*pinsFile)
	if err != nil {
		fmt.Fprintf(stderr, "agentguard mcp-pins: %v\n", err)
		return 1
	}
	switch {
	case sub == "list" && fs.NArg() == 0:
		for _, t := range pins.Tools() {
			h, _ := pins.Pinned(t)
			fmt.Fprintf(stdout, "%s %s\n", h, t)
		}
		return 0
	case sub == "accept" && fs.NArg() == 2:
		if err := pins.Accept(fs.Arg(0), fs.Arg(1)); err != nil {
			fmt.Fprintf(stderr, "agentguard mcp-pins: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "accepted %s for %s\n", fs.Arg(1), fs.Arg(0))
		return 0
	}
	fs.Usage()
	return 2
}

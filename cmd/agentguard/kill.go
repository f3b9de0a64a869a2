package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/hardstop-labs/agentguard/killswitch"
)

func init() {
	commands["kill"] = command{"trip the kill switch: write a kill file", runKill}
	commands["resume"] = command{"remove a kill file", runResume}
	commands["status"] = command{"show whether a kill file trips the switch", runStatus}
}

// killParseFlags parses args with fset, reporting errors to stderr; it returns
// false on a usage error.
func killParseFlags(fset *flag.FlagSet, args []string, stderr io.Writer) bool {
	fset.SetOutput(stderr)
	if err := fset.Parse(args); err != nil {
		return false
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "agentguard %s: unexpected argument %q\n", fset.Name(), fset.Arg(0))
		fset.Usage()
		return false
	}
	return true
}

func killDefaultWho() string {
	user := os.Getenv("USER")
	if user == "" {
		user = "unknown"
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		return user + "@" + host
	}
	return user
}

func runKill(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("kill", flag.ContinueOnError)
	path := fset.String("file", "", "the kill file that the guarded processes watch (required)")
	reason := fset.String("reason", "", "why the agents must stop (required; one line)")
	agent := fset.String("agent", "", "stop only this agent")
	tool := fset.String("tool", "", "stop only this tool")
	tenant := fset.String("tenant", "", "stop only this tenant")
	by := fset.String("by", killDefaultWho(), "who is stopping them")
	pg := addPGFlags(fset)
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: agentguard kill (--file PATH | --postgres DSN [--schema S]) [--agent A] [--tool T] [--tenant X] [--by WHO] --reason TEXT")
		fset.PrintDefaults()
	}
	if !killParseFlags(fset, args, stderr) {
		return 2
	}
	if (*path == "") == !pg.set() || *reason == "" {
		fmt.Fprintln(stderr, "agentguard kill: --reason and one of --file or --postgres are required")
		fset.Usage()
		return 2
	}
	kf := killswitch.KillFile{
		Reason: *reason,
		Scope:  killswitch.Scope{Tenant: *tenant, Agent: *agent, Tool: *tool},
		By:     *by,
	}
	if _, err := kf.Marshal(); err != nil {
		fmt.Fprintf(stderr, "agentguard kill: %v\n", err)
		return 2
	}
	if pg.set() {
		return pgKill(pg, killswitch.Halt{Scope: kf.Scope, Who: kf.By, Why: kf.Reason, At: time.Now()}, stdout, stderr)
	}
	if err := killswitch.WriteKillFile(*path, kf); err != nil {
		fmt.Fprintf(stderr, "agentguard kill: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "tripped %s: %s\nkill file: %s\n", kf.Scope, kf.Reason, *path)
	return 0
}

func runResume(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("resume", flag.ContinueOnError)
	path := fset.String("file", "", "the kill file to remove")
	pg := addPGFlags(fset)
	agent := fset.String("agent", "", "with --postgres: the scope's agent")
	tool := fset.String("tool", "", "with --postgres: the scope's tool")
	tenant := fset.String("tenant", "", "with --postgres: the scope's tenant")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: agentguard resume --file PATH\n       agentguard resume --postgres DSN [--schema S] [--agent A] [--tool T] [--tenant X]")
		fset.PrintDefaults()
	}
	if !killParseFlags(fset, args, stderr) {
		return 2
	}
	if (*path == "") == !pg.set() {
		fmt.Fprintln(stderr, "agentguard resume: one of --file or --postgres is required")
		fset.Usage()
		return 2
	}
	if pg.set() {
		return pgResume(pg, killswitch.Scope{Tenant: *tenant, Agent: *agent, Tool: *tool}, stdout, stderr)
	}
	if err := os.Remove(*path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "agentguard resume: no kill file at %s\n", *path)
			return 1
		}
		fmt.Fprintf(stderr, "agentguard resume: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "removed %s\nprocesses whose trigger has ResumeOnRemove resume; the others stay halted until resumed in process\n", *path)
	return 0
}

// runStatus exits 0 when no kill file exists, 1 when one does.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("status", flag.ContinueOnError)
	path := fset.String("file", "", "the kill file to read")
	pg := addPGFlags(fset)
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: agentguard status (--file PATH | --postgres DSN [--schema S]) (exit status 0: not tripped, 1: tripped)")
		fset.PrintDefaults()
	}
	if !killParseFlags(fset, args, stderr) {
		return 2
	}
	if (*path == "") == !pg.set() {
		fmt.Fprintln(stderr, "agentguard status: one of --file or --postgres is required")
		fset.Usage()
		return 2
	}
	if pg.set() {
		return pgStatus(pg, stdout, stderr)
	}
	data, err := killswitch.ReadKillFile(*path)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stdout, "not tripped: no kill file at %s\n", *path)
		return 0
	}
	if errors.Is(err, killswitch.ErrNotRegular) {
		fmt.Fprintf(stdout, "tripped: kill file %s is %v; watching processes trip their whole scope\n", *path, err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stdout, "tripped: kill file %s is unreadable (%v); watching processes trip once it stays so past their staleness bound\n", *path, err)
		return 1
	}
	kf, perr := killswitch.ParseKillFile(data)
	fmt.Fprintf(stdout, "tripped %s: %s\n", kf.Scope, kf.Reason)
	if kf.By != "" {
		fmt.Fprintf(stdout, "by: %s\n", kf.By)
	}
	if perr != nil {
		fmt.Fprintf(stdout, "malformed (%v): watching processes trip their whole scope\n", perr)
	}
	fmt.Fprintf(stdout, "kill file: %s\n", *path)
	return 1
}

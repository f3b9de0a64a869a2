// Command agentguard checks and tests policies, verifies and replays audit
// logs, trips and resumes the kill switch, and answers approvals.
//
// Usage:
//
//	agentguard policy check FILE
//	agentguard policy test FILE CASES
//	agentguard audit keygen|verify|replay ...
//	agentguard audit export|verify --postgres DSN ...
//	agentguard kill|resume|status --file PATH ...
//	agentguard kill|resume|status --postgres DSN ...
//	agentguard approvals list|approve|deny --url URL ...
//	agentguard approvals list|approve|deny --postgres DSN ...
//
// With --postgres DSN (and --schema, "agentguard" by default) a command
// acts on a fleet's shared state in PostgreSQL (package postgres): its
// kill switch, its approval inbox, its audit log.
//
// Every command exits 0 on success, 1 when what it checked is bad, and 2 on
// a usage error.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// A command runs with its arguments (after its name) and writes to stdout
// and stderr; it returns the process's exit code.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands is filled by each command's file in its init function.
var commands = map[string]command{}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		return 2
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "agentguard: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: agentguard COMMAND [ARGS]")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}

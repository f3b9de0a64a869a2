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
// a usage error. "help", -h and --help print the usage of the command they
// follow and exit 0.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
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
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if isHelp(args[0]) {
		if len(args) > 1 && commands[args[1]].run != nil { // agentguard help policy
			return help(commands[args[1]], args[2:], stdout)
		}
		usage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "agentguard: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	for i, a := range args[1:] {
		if a == "--" { // what follows is another program's (mcp-proxy)
			break
		}
		if (isHelp(a) || a == "-help") && !notHelp(c, args[1:], i) {
			return help(c, args[1:i+1], stdout)
		}
	}
	return c.run(args[1:], stdout, stderr)
}

// notHelp reports whether args[i], a help word, is an argument of c
// rather than a request for help: the value of the flag before it ("kill
// --reason help", "--note -h", as package flag reads them; a boolean flag
// takes no value), or the word help after the command's first argument or
// its subcommand's (a file called help). Reading those as help would print
// the usage and exit 0 without doing what was asked: a kill that is not
// written.
func notHelp(c command, args []string, i int) bool {
	if i > 0 {
		if p := args[i-1]; len(p) > 1 && p[0] == '-' && p != "--" && !strings.Contains(p, "=") && !isHelp(p) && p != "-help" {
			return !boolFlag(c, args, p)
		}
	}
	return args[i] == "help" && i > 1 || args[i] == "help" && i == 1 && strings.HasPrefix(args[0], "-")
}

// boolFlag reports whether flag (-name or --name) is a boolean flag of c,
// or of the subcommand args[0] names: its usage (package flag's, which
// asking for it prints without acting) lists the flag with no value.
func boolFlag(c command, args []string, flag string) bool {
	var sub []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub = args[:1]
	}
	var buf bytes.Buffer
	c.run(append(slices.Clip(sub), "--help"), &buf, &buf)
	return bytes.Contains(buf.Bytes(), []byte("\n  -"+strings.TrimLeft(flag, "-")+"\n"))
}

func isHelp(a string) bool { return a == "help" || a == "-h" || a == "--help" }

// help prints the usage of c (of its subcommand, when sub names one) to
// stdout and returns 0. Each command prints its usage when asked with
// --help, to either stream and with whatever status: help gathers both and
// acts on nothing else of the command line.
func help(c command, sub []string, stdout io.Writer) int {
	var buf bytes.Buffer
	if len(sub) > 0 && len(sub[0]) > 0 && sub[0][0] != '-' {
		sub = sub[:1] // the subcommand, not its arguments
	} else {
		sub = nil
	}
	c.run(append(sub, "--help"), &buf, &buf)
	// A command without a --help of its own says so before its usage.
	out := bytes.Join(slices.DeleteFunc(bytes.SplitAfter(buf.Bytes(), []byte("\n")), func(l []byte) bool {
		return bytes.Contains(l, []byte(`"--help"`))
	}), nil)
	if len(out) == 0 {
		out = []byte(c.summary + "\n")
	}
	stdout.Write(out)
	return 0
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

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/policy"
)

func init() {
	commands["audit"] = command{"keygen, verify or replay an audit log", runAudit}
}

func auditUsage(w io.Writer) {
	fmt.Fprintln(w, `usage:
  agentguard audit keygen [--dir DIR] NAME
  agentguard audit verify [--key PUBKEY | --key-file FILE] [--checkpoint FILE] [--require-covered] LOG...
  agentguard audit verify --postgres DSN [--schema S] [--log ID] [--key ...] [--checkpoint FILE] [--require-covered]
  agentguard audit export --postgres DSN [--schema S] [--log ID] [--out FILE]
  agentguard audit replay --policy NEW.yaml LOG...`)
}

func runAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		auditUsage(stderr)
		return 2
	}
	switch args[0] {
	case "keygen":
		return auditKeygen(args[1:], stdout, stderr)
	case "verify":
		return auditVerify(args[1:], stdout, stderr)
	case "export":
		return auditExport(args[1:], stdout, stderr)
	case "replay":
		return auditReplay(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		auditUsage(stderr)
		return 2
	}
	fmt.Fprintf(stderr, "agentguard audit: unknown subcommand %q\n", args[0])
	auditUsage(stderr)
	return 2
}

// auditParse parses flags that may come before, between or after the
// positional arguments, and returns the positional ones.
func auditParse(fset *flag.FlagSet, args []string, stderr io.Writer) ([]string, bool) {
	fset.SetOutput(stderr)
	var pos []string
	for {
		if err := fset.Parse(args); err != nil {
			return nil, false
		}
		args = fset.Args()
		if len(args) == 0 {
			return pos, true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func auditKeygen(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("audit keygen", flag.ContinueOnError)
	dir := fset.String("dir", ".", "directory for NAME.key (private) and NAME.pub (public)")
	fset.Usage = func() { auditUsage(stderr); fset.PrintDefaults() }
	pos, ok := auditParse(fset, args, stderr)
	if !ok {
		return 2
	}
	if len(pos) != 1 || pos[0] == "" || strings.ContainsAny(pos[0], "/\\+ \n") {
		fmt.Fprintln(stderr, "agentguard audit keygen: want one key NAME (no '/', '+', spaces)")
		fset.Usage()
		return 2
	}
	name := pos[0]
	skey, vkey, err := audit.GenerateKey(name)
	if err != nil {
		fmt.Fprintf(stderr, "agentguard audit keygen: %v\n", err)
		return 1
	}
	priv := filepath.Join(*dir, name+".key")
	pub := filepath.Join(*dir, name+".pub")
	f, err := os.OpenFile(priv, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "agentguard audit keygen: %v\n", err)
		return 1
	}
	_, err = fmt.Fprintln(f, skey)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.WriteFile(pub, []byte(vkey+"\n"), 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "agentguard audit keygen: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, vkey)
	fmt.Fprintf(stderr, "wrote the signer key to %s (keep it secret: audit.Options.SignerKey) and the verifier key to %s\n", priv, pub)
	return 0
}

// auditFiles expands a single LOG argument to its rotated files.
func auditFiles(logs []string) ([]string, error) {
	if len(logs) != 1 {
		return logs, nil
	}
	files, err := audit.Segments(logs[0])
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return logs, nil // let Verify report the missing file
	}
	return files, nil
}

func auditVerify(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	key := fset.String("key", "", "the verifier key of the log's checkpoints")
	keyFile := fset.String("key-file", "", "a file holding the verifier key")
	cpFile := fset.String("checkpoint", "", "a checkpoint kept outside the log, to detect truncation and rewrites")
	requireCovered := fset.Bool("require-covered", false, "fail when a record at the end of the log is covered by no signed checkpoint (needs a key)")
	pg := addPGAuditFlags(fset)
	fset.Usage = func() { auditUsage(stderr); fset.PrintDefaults() }
	logs, ok := auditParse(fset, args, stderr)
	if !ok {
		return 2
	}
	if pg.set() && len(logs) > 0 {
		fmt.Fprintln(stderr, "agentguard audit verify: give LOG files or --postgres, not both")
		return 2
	}
	if len(logs) == 0 && !pg.set() {
		fmt.Fprintln(stderr, "agentguard audit verify: no LOG given")
		fset.Usage()
		return 2
	}
	if *key != "" && *keyFile != "" {
		fmt.Fprintln(stderr, "agentguard audit verify: give --key or --key-file, not both")
		return 2
	}
	if *requireCovered && *key == "" && *keyFile == "" {
		fmt.Fprintln(stderr, "agentguard audit verify: --require-covered needs --key or --key-file: coverage by unsigned checkpoints proves nothing")
		return 2
	}
	var opts audit.VerifyOptions
	opts.Key, opts.RequireCovered = *key, *requireCovered
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			fmt.Fprintf(stderr, "agentguard audit verify: %v\n", err)
			return 1
		}
		opts.Key = strings.TrimSpace(string(b))
	}
	if *cpFile != "" {
		b, err := os.ReadFile(*cpFile)
		if err != nil {
			fmt.Fprintf(stderr, "agentguard audit verify: %v\n", err)
			return 1
		}
		opts.Checkpoint = b
	}
	var rep *audit.Report
	var err error
	if pg.set() {
		rep, err = verifyPG(pg, opts)
	} else {
		var files []string
		if files, err = auditFiles(logs); err != nil {
			fmt.Fprintf(stderr, "agentguard audit verify: %v\n", err)
			return 1
		}
		rep, err = audit.Verify(opts, files...)
	}
	if err != nil {
		var ve *audit.VerifyError
		if errors.As(err, &ve) {
			fmt.Fprintf(stdout, "FAIL: seq %d, %s line %d (byte %d): %v\n", ve.Seq, ve.File, ve.Line, ve.Offset, ve.Err)
		} else {
			fmt.Fprintf(stdout, "FAIL: %v\n", err)
		}
		return 1
	}
	fmt.Fprintf(stdout, "OK: log %s: %s in %s, head %s, %s verified",
		auditOr(rep.Log, "(empty)"), count(rep.Records, "record"), count(rep.Files, "file"), rep.Head, count(rep.Checkpoints, "checkpoint"))
	if opts.Key == "" {
		fmt.Fprint(stdout, " (no --key: signatures not checked, the records prove nothing)")
	}
	if rep.Covered > 0 || opts.Checkpoint != nil {
		fmt.Fprintf(stdout, ", external checkpoint covers %d", rep.Covered)
	}
	if opts.Key != "" {
		if rep.Uncovered > 0 {
			fmt.Fprintf(stdout, "; the last %d record(s) are covered by no checkpoint and could be rewritten undetected", rep.Uncovered)
		} else {
			fmt.Fprint(stdout, "; every record is covered by a signed checkpoint")
		}
	}
	fmt.Fprintln(stdout)
	return 0
}

func auditOr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func auditReplay(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("audit replay", flag.ContinueOnError)
	polFile := fset.String("policy", "", "the new policy file (required)")
	fset.Usage = func() { auditUsage(stderr); fset.PrintDefaults() }
	logs, ok := auditParse(fset, args, stderr)
	if !ok {
		return 2
	}
	if *polFile == "" || len(logs) == 0 {
		fmt.Fprintln(stderr, "agentguard audit replay: --policy and at least one LOG are required")
		fset.Usage()
		return 2
	}
	pol, err := policy.Load(*polFile)
	if err != nil {
		fmt.Fprintf(stderr, "agentguard audit replay: %v\n", err)
		return 1
	}
	files, err := auditFiles(logs)
	if err != nil {
		fmt.Fprintf(stderr, "agentguard audit replay: %v\n", err)
		return 1
	}
	rep, err := audit.Replay(context.Background(), pol, files...)
	if err != nil {
		fmt.Fprintf(stderr, "agentguard audit replay: %v\n", err)
		return 1
	}
	for _, c := range rep.Changes {
		fmt.Fprintf(stdout, "seq %d call %s tool %s: %s%s -> %s%s\n", c.Seq, c.Call, c.Tool,
			c.Old, auditRule(c.OldRule, ""), c.New.Effect, auditRule(c.New.Rule, c.New.Reason))
	}
	fmt.Fprintf(stdout, "%d of %d decisions would change under %s (%d not decided by the policy, skipped)\n",
		len(rep.Changes), rep.Decisions, *polFile, rep.Skipped)
	return 0
}

func auditRule(rule, reason string) string {
	if rule == "" {
		rule = "default"
	}
	s := " (" + rule
	if reason != "" {
		s += ": " + reason
	}
	return s + ")"
}

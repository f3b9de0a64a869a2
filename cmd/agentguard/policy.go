package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/hardstop-labs/agentguard/policy"
	"go.yaml.in/yaml/v3"
)

func init() {
	commands["policy"] = command{
		summary: "check a policy file, or test it against a table of calls",
		run:     policyMain,
	}
}

const policyUsage = `usage:
  agentguard policy check FILE         validate a policy file (YAML or JSON)
  agentguard policy test FILE CASES    run a YAML table of calls against a policy

A CASES file is a YAML list of cases:

  - name: small refunds run
    call: {tool: refund, args: {amount: 50}, agent: bot, tenant: acme}
    usage: {spend: {USD: 3.5}, calls: 4, caps: {daily-spend: 21.5}}
    now: 2026-01-02T15:04:05Z        # optional; the current time otherwise
    expect: {effect: allow, rule: small-refunds}

call takes tool, args, agent, requester, tenant, session, env, labels, id and
time; expect takes effect (allow, approve or deny), rule (the deciding rule;
"" for the default), error (true when a rule must fail to evaluate) and
shadow (the shadow rules that must match, in policy order; [] for none).
`

// count says n things: "1 rule", "2 rules".
func count[N int | uint64](n N, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func policyMain(args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprint(stdout, policyUsage)
			return 0
		}
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return 2
	}
	switch args[0] {
	case "check":
		if len(args) != 2 {
			fmt.Fprint(stderr, policyUsage)
			return 2
		}
		return policyCheck(args[1], stdout, stderr)
	case "test":
		if len(args) != 3 {
			fmt.Fprint(stderr, policyUsage)
			return 2
		}
		return policyTest(args[1], args[2], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, policyUsage)
		return 0
	}
	fmt.Fprintf(stderr, "agentguard policy: unknown subcommand %q\n", args[0])
	fmt.Fprint(stderr, policyUsage)
	return 2
}

// loadPolicy loads file and prints every problem, one per line.
func loadPolicy(file string, stderr io.Writer) (*policy.Policy, bool) {
	p, err := policy.Load(file)
	if err != nil {
		var list policy.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(stderr, e)
			}
		} else {
			fmt.Fprintln(stderr, err)
		}
		return nil, false
	}
	return p, true
}

func policyCheck(file string, stdout, stderr io.Writer) int {
	p, ok := loadPolicy(file, stderr)
	if !ok {
		return 1
	}
	s := p.Spec()
	shadow := 0
	for _, r := range s.Rules {
		if r.Mode == "shadow" {
			shadow++
		}
	}
	fmt.Fprintf(stdout, "%s: ok: %s (%d shadow), %s, %s, version %s\n",
		file, count(len(s.Rules), "rule"), shadow, count(len(s.Limits), "limit"), count(len(s.Budgets), "budget"), p.Version()[:12])
	return 0
}

// testCase is one entry of a CASES file.
type testCase struct {
	Name string `yaml:"name"`
	Call struct {
		ID        string            `yaml:"id"`
		Tool      string            `yaml:"tool"`
		Args      map[string]any    `yaml:"args"`
		Agent     string            `yaml:"agent"`
		Requester string            `yaml:"requester"`
		Tenant    string            `yaml:"tenant"`
		Session   string            `yaml:"session"`
		Env       string            `yaml:"env"`
		Labels    map[string]string `yaml:"labels"`
		Time      time.Time         `yaml:"time"`
	} `yaml:"call"`
	Usage struct {
		Spend map[string]float64 `yaml:"spend"`
		Calls int64              `yaml:"calls"`
		Caps  map[string]float64 `yaml:"caps"`
	} `yaml:"usage"`
	Now    time.Time `yaml:"now"`
	Expect struct {
		Effect string   `yaml:"effect"`
		Rule   *string  `yaml:"rule"`
		Error  bool     `yaml:"error"`
		Shadow []string `yaml:"shadow"`
	} `yaml:"expect"`
}

func readCases(file string) ([]testCase, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, policy.MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > policy.MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, policy.MaxFileSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var cases []testCase
	if err := dec.Decode(&cases); err != nil {
		return nil, fmt.Errorf("%s: %v", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	for i, c := range cases {
		where := fmt.Sprintf("%s: case #%d", file, i+1)
		if c.Name != "" {
			where = fmt.Sprintf("%s: case %q", file, c.Name)
		}
		if c.Call.Tool == "" {
			return nil, fmt.Errorf("%s: call.tool is missing", where)
		}
		switch c.Expect.Effect {
		case "allow", "approve", "deny":
		default:
			return nil, fmt.Errorf("%s: expect.effect %q is not allow, approve or deny", where, c.Expect.Effect)
		}
		if cases[i].Name == "" {
			cases[i].Name = fmt.Sprintf("#%d", i+1)
		}
	}
	return cases, nil
}

// jsonLike converts YAML-decoded values to the JSON-like values a policy
// sees: int64 numbers (uint64 above the int64 range, exactly, as the
// guard reads JSON integers) and float64 ones, []any and map[string]any.
func jsonLike(v any) any {
	switch v := v.(type) {
	case int:
		return int64(v)
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v)
		}
		return v
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = jsonLike(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = jsonLike(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = jsonLike(e)
		}
		return out
	}
	return v
}

func policyTest(file, casesFile string, stdout, stderr io.Writer) int {
	p, ok := loadPolicy(file, stderr)
	if !ok {
		return 1
	}
	cases, err := readCases(casesFile)
	if err != nil {
		fmt.Fprintf(stderr, "agentguard policy test: %v\n", err)
		return 1
	}
	failed := 0
	for i, c := range cases {
		now := c.Now
		if now.IsZero() {
			now = time.Now()
		}
		in := &policy.Input{
			Call: policy.Call{
				ID: c.Call.ID, Tool: c.Call.Tool, Agent: c.Call.Agent, Requester: c.Call.Requester,
				Tenant: c.Call.Tenant, Session: c.Call.Session, Env: c.Call.Env, Labels: c.Call.Labels,
				Time: c.Call.Time,
			},
			Now:   now,
			Usage: policy.Usage{Spend: c.Usage.Spend, Calls: c.Usage.Calls, Caps: c.Usage.Caps},
		}
		if in.Call.ID == "" {
			in.Call.ID = fmt.Sprintf("case-%d", i+1)
		}
		if in.Call.Time.IsZero() {
			in.Call.Time = now
		}
		if c.Call.Args != nil {
			in.Call.Args = jsonLike(c.Call.Args).(map[string]any)
		}
		d := p.Decide(context.Background(), in)
		var problems []string
		if d.Effect.String() != c.Expect.Effect {
			problems = append(problems, fmt.Sprintf("effect %s, want %s", d.Effect, c.Expect.Effect))
		}
		if c.Expect.Rule != nil && d.Rule != *c.Expect.Rule {
			problems = append(problems, fmt.Sprintf("rule %s, want %s", ruleName(d.Rule), ruleName(*c.Expect.Rule)))
		}
		if c.Expect.Shadow != nil {
			var got []string
			for _, h := range d.Shadow {
				got = append(got, h.Rule)
			}
			if strings.Join(got, ",") != strings.Join(c.Expect.Shadow, ",") {
				problems = append(problems, fmt.Sprintf("shadow rules [%s], want [%s]", strings.Join(got, ", "), strings.Join(c.Expect.Shadow, ", ")))
			}
		}
		if (d.Err != nil) != c.Expect.Error {
			if d.Err != nil {
				problems = append(problems, fmt.Sprintf("error %v, want none", d.Err))
			} else {
				problems = append(problems, "no error, want an evaluation error")
			}
		}
		if len(problems) == 0 {
			fmt.Fprintf(stdout, "PASS %s\n", c.Name)
			continue
		}
		failed++
		fmt.Fprintf(stdout, "FAIL %s: got %s\n", c.Name, strings.Join(problems, "; "))
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", len(cases)-failed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

// ruleName quotes a rule name, or says "(default)" for none.
func ruleName(r string) string {
	if r == "" {
		return "(default)"
	}
	return fmt.Sprintf("%q", r)
}

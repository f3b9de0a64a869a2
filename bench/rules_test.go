package bench

import (
	"fmt"
	"strings"

	"github.com/hardstop-labs/agentguard/policy"
)

// benchRule is one rule of the benchmark policy, written once for each
// engine: cel is the condition after the tool test, in CEL; rego holds the
// Rego bodies after the tool test, one per alternative (Rego has no ||).
type benchRule struct {
	name   string
	tool   string
	effect string // deny, approve or allow
	cel    string // empty: the tool test alone
	rego   []string
}

// realisticRules is the policy of BenchmarkCall/guarded: 20 rules over 10
// tools, a deny or approve on the arguments and an allow for each.
var realisticRules = []benchRule{
	{"no-competitor-mail", "send_email", "deny", `call.args.to.endsWith("@competitor.com")`, []string{`endswith(input.args.to, "@competitor.com")`}},
	{"support-mail", "send_email", "allow", `call.agent == "support-bot" && size(call.args.body) < 10000`, []string{`input.agent == "support-bot"; count(input.args.body) < 10000`}},
	{"refund-cap", "refund", "deny", `call.args.amount > 1000.0`, []string{`input.args.amount > 1000`}},
	{"small-refunds", "refund", "allow", `call.args.amount <= 100.0 && call.tenant == "acme"`, []string{`input.args.amount <= 100; input.tenant == "acme"`}},
	{"no-ddl", "db.query", "deny", `call.args.sql.matches("(?i)^\\s*(drop|alter|truncate)")`, []string{`regex.match("(?i)^\\s*(drop|alter|truncate)", input.args.sql)`}},
	{"selects", "db.query", "allow", `call.args.sql.startsWith("SELECT")`, []string{`startswith(input.args.sql, "SELECT")`}},
	{"no-prod-deletes", "db.delete", "deny", `call.env == "prod"`, []string{`input.env == "prod"`}},
	{"deletes-reviewed", "db.delete", "approve", ``, []string{`true`}},
	{"no-secrets", "read_file", "deny", `call.args.path.contains("secret") || call.args.path.startsWith("/etc/")`, []string{`contains(input.args.path, "secret")`, `startswith(input.args.path, "/etc/")`}},
	{"data-reads", "read_file", "allow", `call.args.path.startsWith("/data/")`, []string{`startswith(input.args.path, "/data/")`}},
	{"no-config-writes", "write_file", "deny", `call.args.path.endsWith(".yaml")`, []string{`endswith(input.args.path, ".yaml")`}},
	{"writes-reviewed", "write_file", "approve", `size(call.args.content) > 0`, []string{`count(input.args.content) > 0`}},
	{"no-internal-urls", "http.get", "deny", `call.args.url.startsWith("http://10.") || call.args.url.contains("localhost")`, []string{`startswith(input.args.url, "http://10.")`, `contains(input.args.url, "localhost")`}},
	{"public-web", "http.get", "allow", `call.args.url.startsWith("https://")`, []string{`startswith(input.args.url, "https://")`}},
	{"no-pii-search", "search", "deny", `call.args.query.contains("ssn")`, []string{`contains(input.args.query, "ssn")`}},
	{"search", "search", "allow", `size(call.args.query) <= 500`, []string{`count(input.args.query) <= 500`}},
	{"big-meetings", "calendar.create", "approve", `call.args.attendees > 50.0`, []string{`input.args.attendees > 50`}},
	{"calendar", "calendar.create", "allow", `call.requester != ""`, []string{`input.requester != ""`}},
	{"no-general", "slack.post", "deny", `call.args.channel == "#general"`, []string{`input.args.channel == "#general"`}},
	{"team-channels", "slack.post", "allow", `call.args.channel.startsWith("#team-")`, []string{`startswith(input.args.channel, "#team-")`}},
}

// manyRules returns 1,000 rules over 100 tools, ten per tool: the ten
// tools of realisticRules, each with eight more deny rules that do not
// match ordinary calls, and 90 more tools with ten rules each.
func manyRules() []benchRule {
	rules := append([]benchRule(nil), realisticRules...)
	tools := []string{}
	seen := map[string]bool{}
	for _, r := range realisticRules {
		if !seen[r.tool] {
			seen[r.tool] = true
			tools = append(tools, r.tool)
		}
	}
	for i := 0; i < 8; i++ {
		for _, t := range tools {
			rules = append(rules, benchRule{
				name: fmt.Sprintf("%s-block-%d", t, i), tool: t, effect: "deny",
				cel:  fmt.Sprintf(`call.requester == "blocked-%d"`, i),
				rego: []string{fmt.Sprintf(`input.requester == "blocked-%d"`, i)},
			})
		}
	}
	for t := 0; t < 90; t++ {
		tool := fmt.Sprintf("tool%02d", t)
		for i := 0; i < 10; i++ {
			r := benchRule{name: fmt.Sprintf("%s-rule-%d", tool, i), tool: tool, effect: "deny",
				cel:  fmt.Sprintf(`call.args.n == %d.0`, i),
				rego: []string{fmt.Sprintf(`input.args.n == %d`, i)}}
			if i == 9 {
				r.effect, r.cel, r.rego = "allow", `call.agent != ""`, []string{`input.agent != ""`}
			}
			rules = append(rules, r)
		}
	}
	return rules
}

// celMatch is the rule's whole CEL match expression.
func (r benchRule) celMatch() string {
	m := fmt.Sprintf("call.tool == %q", r.tool)
	if r.cel != "" {
		m += " && (" + r.cel + ")"
	}
	return m
}

// policySpec is the agentguard policy of rules, with a default of deny.
func policySpec(rules []benchRule) policy.Spec {
	s := policy.Spec{Version: 1, Default: "deny"}
	for _, r := range rules {
		s.Rules = append(s.Rules, policy.Rule{Name: r.name, Match: r.celMatch(), Effect: r.effect})
	}
	return s
}

// regoModule is the same rules in Rego. data.agentguard.effect is the
// decision: deny overrides approve, which overrides allow; no match denies.
func regoModule(rules []benchRule) string {
	var b strings.Builder
	b.WriteString("package agentguard\n\nimport rego.v1\n\n")
	for _, r := range rules {
		for _, body := range r.rego {
			fmt.Fprintf(&b, "%s contains %q if {\n\tinput.tool == %q\n\t%s\n}\n\n", r.effect, r.name, r.tool, body)
		}
	}
	b.WriteString(`default effect := "deny"

effect := "deny" if {
	count(deny) > 0
} else := "approve" if {
	count(approve) > 0
} else := "allow" if {
	count(allow) > 0
}
`)
	return b.String()
}

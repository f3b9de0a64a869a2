package bench

import (
	"errors"
	"regexp"
	"strings"
	"unicode/utf8"
)

// goRule is one of realisticRules written as Go by hand: the fastest way
// to decide a rule known when the program is written. match returns an
// error where CEL's evaluation would (a missing argument, a value of
// another type), and an error denies.
type goRule struct {
	name   string
	effect string
	match  func(c *benchCall) (bool, error)
}

// goRules is the floor's policy: realisticRules by hand, per tool, ordered
// deny, approve, allow, so that the first match decides.
type goRules map[string][]goRule

var errNoArg = errors.New("floor: no such argument, or not of the rule's type")

func argString(c *benchCall, k string) (string, error) {
	s, ok := c.Args[k].(string)
	if !ok {
		return "", errNoArg
	}
	return s, nil
}

func argNumber(c *benchCall, k string) (float64, error) {
	switch v := c.Args[k].(type) {
	case float64:
		return v, nil
	case int64:
		return float64(v), nil
	}
	return 0, errNoArg
}

var ddl = regexp.MustCompile(`(?i)^\s*(drop|alter|truncate)`)

// strTest is a rule that tests one string argument.
func strTest(k string, f func(string) bool) func(c *benchCall) (bool, error) {
	return func(c *benchCall) (bool, error) {
		s, err := argString(c, k)
		return err == nil && f(s), err
	}
}

// numTest is a rule that tests one number argument.
func numTest(k string, f func(float64) bool) func(c *benchCall) (bool, error) {
	return func(c *benchCall) (bool, error) {
		n, err := argNumber(c, k)
		return err == nil && f(n), err
	}
}

func newGoRules() goRules {
	byName := map[string]func(c *benchCall) (bool, error){
		"no-competitor-mail": strTest("to", func(s string) bool { return strings.HasSuffix(s, "@competitor.com") }),
		"support-mail": func(c *benchCall) (bool, error) {
			if c.Agent != "support-bot" {
				return false, nil
			}
			b, err := argString(c, "body")
			return err == nil && utf8.RuneCountInString(b) < 10000, err
		},
		"refund-cap": numTest("amount", func(n float64) bool { return n > 1000 }),
		"small-refunds": func(c *benchCall) (bool, error) {
			n, err := argNumber(c, "amount")
			return err == nil && n <= 100 && c.Tenant == "acme", err
		},
		"no-ddl":           strTest("sql", ddl.MatchString),
		"selects":          strTest("sql", func(s string) bool { return strings.HasPrefix(s, "SELECT") }),
		"no-prod-deletes":  func(c *benchCall) (bool, error) { return c.Env == "prod", nil },
		"deletes-reviewed": func(*benchCall) (bool, error) { return true, nil },
		"no-secrets": strTest("path", func(s string) bool {
			return strings.Contains(s, "secret") || strings.HasPrefix(s, "/etc/")
		}),
		"data-reads":       strTest("path", func(s string) bool { return strings.HasPrefix(s, "/data/") }),
		"no-config-writes": strTest("path", func(s string) bool { return strings.HasSuffix(s, ".yaml") }),
		"writes-reviewed":  strTest("content", func(s string) bool { return s != "" }),
		"no-internal-urls": strTest("url", func(s string) bool {
			return strings.HasPrefix(s, "http://10.") || strings.Contains(s, "localhost")
		}),
		"public-web":    strTest("url", func(s string) bool { return strings.HasPrefix(s, "https://") }),
		"no-pii-search": strTest("query", func(s string) bool { return strings.Contains(s, "ssn") }),
		"search":        strTest("query", func(s string) bool { return utf8.RuneCountInString(s) <= 500 }),
		"big-meetings":  numTest("attendees", func(n float64) bool { return n > 50 }),
		"calendar":      func(c *benchCall) (bool, error) { return c.Requester != "", nil },
		"no-general":    strTest("channel", func(s string) bool { return s == "#general" }),
		"team-channels": strTest("channel", func(s string) bool { return strings.HasPrefix(s, "#team-") }),
	}
	g := goRules{}
	for rank := 0; rank < 3; rank++ {
		for _, r := range realisticRules {
			if effectRank[r.effect] == rank {
				g[r.tool] = append(g[r.tool], goRule{r.name, r.effect, byName[r.name]})
			}
		}
	}
	return g
}

// decide evaluates the rules that apply to c's tool: the first that
// matches decides; an error denies; no match denies.
func (g goRules) decide(c *benchCall) (effect, rule string) {
	for _, r := range g[c.Tool] {
		ok, err := r.match(c)
		if err != nil {
			return "deny", r.name
		}
		if ok {
			return r.effect, r.name
		}
	}
	return "deny", ""
}

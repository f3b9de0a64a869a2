package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hardstop-labs/agentguard/internal/amount"
)

// ParseRate parses a rate such as "10/minute", "5/s", "100/hour",
// "2/day" or "1/500ms": events per period. The count is a positive
// number (decimals allowed); the period is s, sec(s), second(s), m,
// min(s), minute(s), h, hr, hour(s), d, day(s), or a Go duration.
func ParseRate(s string) (events float64, per time.Duration, err error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, 0, fmt.Errorf("policy: bad rate %q (want N/period, such as 10/minute)", s)
	}
	events, err = strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil || !(events > 0) || math.IsInf(events, 0) {
		return 0, 0, fmt.Errorf("policy: bad rate %q: the count must be a positive number", s)
	}
	unit = strings.TrimSpace(unit)
	switch unit {
	case "s", "sec", "secs", "second", "seconds":
		per = time.Second
	case "m", "min", "mins", "minute", "minutes":
		per = time.Minute
	case "h", "hr", "hour", "hours":
		per = time.Hour
	case "d", "day", "days":
		per = 24 * time.Hour
	}
	if per == 0 {
		d, perr := time.ParseDuration(unit)
		if perr != nil || d <= 0 {
			return 0, 0, fmt.Errorf("policy: bad rate %q: unknown period %q (want second, minute, hour, day or a duration)", s, unit)
		}
		per = d
	}
	return events, per, nil
}

// Window is a parsed budget window.
type Window struct {
	// Kind is "total" (never resets), "day" (calendar days in Location),
	// "hour" (clock hours, UTC) or "every" (fixed periods of Every since
	// the Unix epoch).
	Kind     string
	Location *time.Location // for "day"; UTC unless named
	Every    time.Duration  // for "every"
}

// ParseWindow parses a budget window: "" or "total", "day" (UTC),
// "day:Europe/Paris" (a named time zone), "hour", or a Go duration of at
// least a second ("15m", "168h"), as budget.ParseWindow reads them.
func ParseWindow(s string) (Window, error) {
	switch {
	case s == "" || s == "total":
		return Window{Kind: "total"}, nil
	case s == "day":
		return Window{Kind: "day", Location: time.UTC}, nil
	case s == "hour":
		return Window{Kind: "hour", Location: time.UTC}, nil
	case strings.HasPrefix(s, "day:"):
		name := s[len("day:"):]
		if name == "" || strings.ContainsAny(name, "\\") || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
			return Window{}, fmt.Errorf("policy: bad window %q: bad time zone name", s)
		}
		loc, err := time.LoadLocation(name)
		if err != nil {
			return Window{}, fmt.Errorf("policy: bad window %q: unknown time zone %q", s, name)
		}
		return Window{Kind: "day", Location: loc}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return Window{}, fmt.Errorf("policy: bad window %q (want total, day, day:ZONE, hour or a duration)", s)
	}
	if d < time.Second {
		return Window{}, fmt.Errorf("policy: bad window %q: a rolling window must be at least 1s", s)
	}
	return Window{Kind: "every", Every: d}, nil
}

// CheckAmount parses an amount with a unit exactly as budget.ParseAmount
// does (one parser: a policy this package loads has amounts a budget
// accepts): a decimal number with an optional K or k (thousand), M
// (million), G or B (billion) suffix, white space, and a unit of a letter
// then letters, digits, '_', '-' or '.': "25.00 USD", "1.5M tokens",
// "200 EUR". Amounts finer than a micro-unit or above the largest int64 of
// micro-units are errors. It returns the amount in whole units (rounded to
// a float64, for display) and the unit.
func CheckAmount(s string) (value float64, unit string, err error) {
	m, unit, err := amount.Parse(s)
	if err != nil {
		return 0, "", fmt.Errorf("policy: bad amount %q: %v", s, err)
	}
	return float64(m) / 1e6, unit, nil
}

// unitOK reports whether u is a unit CheckAmount accepts.
func unitOK(u string) bool { return amount.CheckUnit(u) == nil }

// tools checks a list of tool names or globs.
func (c *compiler) tools(item string, path []any, tools []string) {
	for j, t := range tools {
		if t == "" || len(t) > 200 {
			c.errorf(item, "", "tools", append(path, j), "tool name or glob must be 1 to 200 bytes")
		}
	}
}

func (c *compiler) limits(s *Spec) {
	seen := map[string]bool{}
	for i := range s.Limits {
		l := &s.Limits[i]
		item := fmt.Sprintf("limit #%d", i+1)
		if l.Name != "" {
			item = fmt.Sprintf("limit %q", l.Name)
			if seen[l.Name] {
				c.errorf(item, "", "name", []any{"limits", i, "name"}, "duplicate limit name")
			}
			seen[l.Name] = true
		}
		at := func(f string) []any { return []any{"limits", i, f} }
		c.tools(item, at("tools"), l.Tools)
		switch l.Per {
		case "", "agent", "tenant", "requester", "session", "global":
		default:
			c.errorf(item, "", "per", at("per"), "unknown per %q (want agent, tenant, requester, session or global)", l.Per)
		}
		if l.Rate == "" {
			c.errorf(item, "", "rate", []any{"limits", i}, "missing rate (such as 10/minute)")
		} else if _, _, err := ParseRate(l.Rate); err != nil {
			c.errorf(item, "", "rate", at("rate"), "%s", trimPrefix(err))
		}
		if l.Burst < 0 {
			c.errorf(item, "", "burst", at("burst"), "burst %d is negative", l.Burst)
		}
	}
}

func (c *compiler) budgets(s *Spec) {
	seen := map[string]bool{}
	for i := range s.Budgets {
		b := &s.Budgets[i]
		item := fmt.Sprintf("budget #%d", i+1)
		at := func(f string) []any { return []any{"budgets", i, f} }
		if b.Name == "" {
			c.errorf(item, "", "name", []any{"budgets", i}, "missing name")
		} else {
			item = fmt.Sprintf("budget %q", b.Name)
			if seen[b.Name] {
				c.errorf(item, "", "name", at("name"), "duplicate budget name")
			}
			if strings.Contains(b.Name, "|") {
				c.errorf(item, "", "name", at("name"), "a budget's name must not contain '|'")
			}
			seen[b.Name] = true
		}
		switch b.Per {
		case "", "global", "tenant", "agent":
		default:
			c.errorf(item, "", "per", at("per"), "unknown per %q (want tenant, agent or global)", b.Per)
		}
		c.tools(item, at("tools"), b.Tools)
		if b.Limit == "" {
			c.errorf(item, "", "limit", []any{"budgets", i}, "missing limit (such as \"25.00 USD\")")
		} else if _, _, err := CheckAmount(b.Limit); err != nil {
			c.errorf(item, "", "limit", at("limit"), "%s", trimPrefix(err))
		}
		if _, err := ParseWindow(b.Window); err != nil {
			c.errorf(item, "", "window", at("window"), "%s", trimPrefix(err))
		}
	}
}

func (c *compiler) breakers(s *Spec) {
	seen := map[string]bool{}
	for i := range s.Breakers {
		b := &s.Breakers[i]
		item := fmt.Sprintf("breaker #%d", i+1)
		at := func(f string) []any { return []any{"breakers", i, f} }
		if b.Name == "" {
			c.errorf(item, "", "name", []any{"breakers", i}, "missing name")
		} else {
			item = fmt.Sprintf("breaker %q", b.Name)
			if seen[b.Name] {
				c.errorf(item, "", "name", at("name"), "duplicate breaker name")
			}
			seen[b.Name] = true
		}
		c.tools(item, at("tools"), b.Tools)
		for _, f := range []struct {
			name string
			v    int
		}{{"consecutive_failures", b.ConsecutiveFailures}, {"min_calls", b.MinCalls}, {"denies_per_minute", b.DeniesPerMinute}, {"calls_per_minute", b.CallsPerMinute}} {
			if f.v < 0 {
				c.errorf(item, "", f.name, at(f.name), "%d is negative", f.v)
			}
		}
		if b.ErrorRate < 0 || b.ErrorRate > 1 || math.IsNaN(b.ErrorRate) {
			c.errorf(item, "", "error_rate", at("error_rate"), "%v is not between 0 and 1", b.ErrorRate)
		}
		if b.Window != "" {
			if d, err := time.ParseDuration(b.Window); err != nil || d <= 0 {
				c.errorf(item, "", "window", at("window"), "bad duration %q (want a positive Go duration such as 1m)", b.Window)
			}
		}
		if b.SpendPerMinute != "" {
			if _, _, err := CheckAmount(b.SpendPerMinute); err != nil {
				c.errorf(item, "", "spend_per_minute", at("spend_per_minute"), "%s", trimPrefix(err))
			}
		}
	}
}

// trimPrefix drops the package prefix of an error made here, which the
// enclosing *Error adds again.
func trimPrefix(err error) string {
	return strings.TrimPrefix(err.Error(), "policy: ")
}

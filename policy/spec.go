package policy

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
)

// clone returns a deep copy of s.
func (s Spec) clone() Spec {
	c := s
	c.Rules = slices.Clone(s.Rules)
	c.Limits = slices.Clone(s.Limits)
	for i := range c.Limits {
		c.Limits[i].Tools = slices.Clone(c.Limits[i].Tools)
	}
	c.Budgets = slices.Clone(s.Budgets)
	for i := range c.Budgets {
		c.Budgets[i].Tools = slices.Clone(c.Budgets[i].Tools)
	}
	c.Costs = slices.Clone(s.Costs)
	for i := range c.Costs {
		c.Costs[i].Tools = slices.Clone(c.Costs[i].Tools)
	}
	c.Breakers = slices.Clone(s.Breakers)
	for i := range c.Breakers {
		c.Breakers[i].Tools = slices.Clone(c.Breakers[i].Tools)
	}
	return c
}

// normalize writes out the defaults of a valid spec, so that equal
// policies have equal specs.
func normalize(s *Spec) {
	s.Version = 1
	if s.Default == "" {
		s.Default = "deny"
	}
	for i := range s.Rules {
		r := &s.Rules[i]
		if r.Mode == "" {
			r.Mode = "enforce"
		}
		r.Match = strings.TrimSpace(r.Match)
	}
	for i := range s.Limits {
		if s.Limits[i].Per == "" {
			s.Limits[i].Per = "agent"
		}
	}
	for i := range s.Budgets {
		b := &s.Budgets[i]
		if b.Per == "" {
			b.Per = "global"
		}
		if b.Window == "" {
			b.Window = "total"
		}
	}
	for i := range s.Costs {
		s.Costs[i].Estimate = strings.TrimSpace(s.Costs[i].Estimate)
	}
}

// version returns the hex SHA-256 of the canonical form of a normalized
// spec: its JSON encoding (fields in declaration order) with rules,
// budgets and breakers sorted by name. Limits and costs keep their order:
// the first matching cost applies, and limits may be unnamed.
func version(s *Spec) string {
	c := s.clone()
	byName := func(a, b string) int { return cmp.Compare(a, b) }
	slices.SortStableFunc(c.Rules, func(a, b Rule) int { return byName(a.Name, b.Name) })
	slices.SortStableFunc(c.Budgets, func(a, b Budget) int { return byName(a.Name, b.Name) })
	slices.SortStableFunc(c.Breakers, func(a, b Breaker) int { return byName(a.Name, b.Name) })
	data, err := json.Marshal(c)
	if err != nil {
		// A Spec holds only strings, numbers and slices of them; its
		// encoding cannot fail. Fall back to a version no policy shares.
		data = []byte(err.Error())
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

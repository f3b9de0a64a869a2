package budget

import (
	"errors"
	"fmt"

	"github.com/hardstop-labs/agentguard/policy"
)

// CapsFromPolicy converts a policy's budgets section into caps. Per
// defaults to global and Window to total, as in the policy file. Errors
// name the budget by index and name.
func CapsFromPolicy(bs []policy.Budget) ([]Cap, error) {
	out := make([]Cap, 0, len(bs))
	var errs []error
	for i, b := range bs {
		where := fmt.Sprintf("budget: budgets[%d] %q", i, b.Name)
		c := Cap{Name: b.Name, Tools: b.Tools}
		var err error
		if b.Per != "" {
			if c.Per, err = ParsePer(b.Per); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
		}
		if c.Limit, err = ParseAmount(b.Limit); err != nil {
			errs = append(errs, fmt.Errorf("%s: limit: %w", where, err))
		}
		if c.Window, err = ParseWindow(b.Window); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		out = append(out, c)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// LimitsFromPolicy converts a policy's limits section into limits. Per
// defaults to agent and Burst to 1, as in the policy file. Errors name the
// limit by index.
func LimitsFromPolicy(ls []policy.Limit) ([]Limit, error) {
	out := make([]Limit, 0, len(ls))
	var errs []error
	for i, p := range ls {
		where := fmt.Sprintf("budget: limits[%d]", i)
		if p.Name != "" {
			where += fmt.Sprintf(" %q", p.Name)
		}
		lm := Limit{Name: p.Name, Tools: p.Tools, Per: PerAgent, Burst: p.Burst, Wait: p.Wait}
		if lm.Name == "" {
			lm.Name = fmt.Sprintf("limits[%d]", i)
		}
		var err error
		if p.Per != "" {
			if lm.Per, err = ParsePer(p.Per); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
		}
		if lm.Rate, err = ParseRate(p.Rate); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		switch {
		case p.Burst < 0:
			errs = append(errs, fmt.Errorf("%s: negative burst %d", where, p.Burst))
		case p.Burst == 0:
			lm.Burst = 1
		}
		out = append(out, lm)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// specificity ranks scopes from the narrowest.
func specificity(p Per) int {
	switch p {
	case PerSession:
		return 4
	case PerRequester:
		return 3
	case PerAgent:
		return 2
	case PerTenant:
		return 1
	}
	return 0
}

// PolicyUsage summarizes a subject's usages (from Ledger.Usage) as the
// policy's usage variable. Spend[unit] is spent plus reserved in the
// narrowest-scoped cap of that unit (session, requester, agent, tenant,
// then global; the first listed among equals), Calls is that narrowest
// cap's call count, and Caps[name] is what is left of each cap, in whole
// units.
func PolicyUsage(us []Usage) policy.Usage {
	out := policy.Usage{Spend: make(map[string]float64, 1), Caps: make(map[string]float64, len(us))}
	rank := make(map[string]int, 1)
	best := -1
	for _, u := range us {
		out.Caps[u.Cap] = u.Left.Float()
		r := specificity(u.Per)
		if old, ok := rank[u.Limit.Unit]; !ok || r > old {
			rank[u.Limit.Unit] = r
			out.Spend[u.Limit.Unit] = float64(addSat(u.Spent.Micros, u.Reserved.Micros)) / 1e6
		}
		if r > best {
			best = r
			out.Calls = u.Calls
		}
	}
	return out
}

package bench

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"regexp"
	"strings"
	"sync"
	"time"
)

// peer is the lightest Go peer's per-call work, written by hand as issue 16
// specifies it (neither tuned nor padded): the yardstick Call/guarded is
// measured against. Per call it builds a 5-entry map of the call and
// copies it; scans the rules in order, first match wins, each rule's
// conditions a map ranged over and compared with the call's values; counts
// the call in a mutex-guarded fixed-window counter found under a key
// concatenated per call, its window parsed from a string per call; chains
// an entry with SHA-256 over length-prefixed fields in a buffer allocated
// per call, hex-encoded into a new entry appended to an unbounded slice;
// reads the agent's trust score under a read lock into a new map and
// updates it under the write lock by copying the score table; and returns
// a new result.
type peer struct {
	rules []peerRule

	rateMu   sync.Mutex
	counters map[string]*peerCounter
	limit    int

	logMu   sync.Mutex
	entries []*peerEntry
	prev    string

	scoreMu sync.RWMutex
	scores  map[string]*peerScore
}

// peerRule is a rule as the peer holds it: field → value (equality) or
// field → {operator: operand} ("any": a list of such maps, one of which
// must hold). A field "args.x" is the argument x.
type peerRule struct {
	name       string
	effect     string
	conditions map[string]any
}

type peerCounter struct {
	start time.Time
	n     int
}

type peerEntry struct {
	Agent, Action, Decision, Time, Prev, Hash string
}

type peerScore struct{ v float64 }

type peerResult struct {
	Decision string
	Rule     string
	Scores   map[string]float64
	Entry    peerEntry
}

// peerRules is realisticRules as the peer's condition maps, in the same
// order (each tool's deny and approve rules come before its allow, so the
// first match decides as deny-overrides does).
func peerRules() []peerRule {
	return []peerRule{
		{"no-competitor-mail", "deny", map[string]any{"tool": "send_email", "args.to": map[string]any{"endswith": "@competitor.com"}}},
		{"support-mail", "allow", map[string]any{"tool": "send_email", "agent": "support-bot", "args.body": map[string]any{"len_lt": 10000.0}}},
		{"refund-cap", "deny", map[string]any{"tool": "refund", "args.amount": map[string]any{"gt": 1000.0}}},
		{"small-refunds", "allow", map[string]any{"tool": "refund", "args.amount": map[string]any{"le": 100.0}, "tenant": "acme"}},
		{"no-ddl", "deny", map[string]any{"tool": "db.query", "args.sql": map[string]any{"matches": `(?i)^\s*(drop|alter|truncate)`}}},
		{"selects", "allow", map[string]any{"tool": "db.query", "args.sql": map[string]any{"startswith": "SELECT"}}},
		{"no-prod-deletes", "deny", map[string]any{"tool": "db.delete", "env": "prod"}},
		{"deletes-reviewed", "approve", map[string]any{"tool": "db.delete"}},
		{"no-secrets", "deny", map[string]any{"tool": "read_file", "args.path": map[string]any{"any": []any{map[string]any{"contains": "secret"}, map[string]any{"startswith": "/etc/"}}}}},
		{"data-reads", "allow", map[string]any{"tool": "read_file", "args.path": map[string]any{"startswith": "/data/"}}},
		{"no-config-writes", "deny", map[string]any{"tool": "write_file", "args.path": map[string]any{"endswith": ".yaml"}}},
		{"writes-reviewed", "approve", map[string]any{"tool": "write_file", "args.content": map[string]any{"len_gt": 0.0}}},
		{"no-internal-urls", "deny", map[string]any{"tool": "http.get", "args.url": map[string]any{"any": []any{map[string]any{"startswith": "http://10."}, map[string]any{"contains": "localhost"}}}}},
		{"public-web", "allow", map[string]any{"tool": "http.get", "args.url": map[string]any{"startswith": "https://"}}},
		{"no-pii-search", "deny", map[string]any{"tool": "search", "args.query": map[string]any{"contains": "ssn"}}},
		{"search", "allow", map[string]any{"tool": "search", "args.query": map[string]any{"len_le": 500.0}}},
		{"big-meetings", "approve", map[string]any{"tool": "calendar.create", "args.attendees": map[string]any{"gt": 50.0}}},
		{"calendar", "allow", map[string]any{"tool": "calendar.create", "requester": map[string]any{"ne": ""}}},
		{"no-general", "deny", map[string]any{"tool": "slack.post", "args.channel": "#general"}},
		{"team-channels", "allow", map[string]any{"tool": "slack.post", "args.channel": map[string]any{"startswith": "#team-"}}},
	}
}

func newPeer() *peer {
	return &peer{rules: peerRules(), counters: map[string]*peerCounter{}, limit: rateBurst,
		scores: map[string]*peerScore{}}
}

// call is one allowed-or-not call of the peer.
func (p *peer) call(c *benchCall) *peerResult {
	in := map[string]any{"tool": c.Tool, "agent": c.Agent, "requester": c.Requester, "tenant": c.Tenant, "args": c.Args}
	call := make(map[string]any, len(in))
	for k, v := range in {
		call[k] = v
	}
	call["env"] = c.Env

	decision, rule := "deny", ""
	for _, r := range p.rules {
		if r.matches(call) {
			decision, rule = r.effect, r.name
			break
		}
	}

	if decision == "allow" && !p.allow(c.Tool, c.Agent, c.Tenant) {
		decision = "rate_limited"
	}

	now := time.Now()
	e := p.chain(c.Agent, c.Tool, decision, now)

	p.scoreMu.RLock()
	s := 0.5
	if sc := p.scores[c.Agent]; sc != nil {
		s = sc.v
	}
	scores := map[string]float64{c.Agent: s}
	p.scoreMu.RUnlock()
	p.scoreMu.Lock()
	next := make(map[string]*peerScore, len(p.scores)+1)
	for k, v := range p.scores {
		next[k] = v
	}
	if decision == "allow" {
		s = min(1, s+0.001)
	} else {
		s = max(0, s-0.01)
	}
	next[c.Agent] = &peerScore{v: s}
	p.scores = next
	p.scoreMu.Unlock()

	return &peerResult{Decision: decision, Rule: rule, Scores: scores, Entry: *e}
}

func (r *peerRule) matches(call map[string]any) bool {
	for field, cond := range r.conditions {
		var v any
		var ok bool
		if name, isArg := strings.CutPrefix(field, "args."); isArg {
			args, _ := call["args"].(map[string]any)
			v, ok = args[name]
		} else {
			v, ok = call[field]
		}
		if !ok {
			return false
		}
		ops, isOps := cond.(map[string]any)
		if !isOps {
			if v != cond {
				return false
			}
			continue
		}
		for op, operand := range ops {
			if !peerCompare(op, v, operand) {
				return false
			}
		}
	}
	return true
}

func peerCompare(op string, v, operand any) bool {
	switch op {
	case "any": // operand: a list of {operator: operand}, one of which holds
		alts, _ := operand.([]any)
		for _, a := range alts {
			m, _ := a.(map[string]any)
			all := len(m) > 0
			for o, x := range m {
				all = all && peerCompare(o, v, x)
			}
			if all {
				return true
			}
		}
		return false
	case "ne":
		return v != operand
	case "endswith", "startswith", "contains", "matches":
		s, ok1 := v.(string)
		t, ok2 := operand.(string)
		if !ok1 || !ok2 {
			return false
		}
		switch op {
		case "endswith":
			return strings.HasSuffix(s, t)
		case "startswith":
			return strings.HasPrefix(s, t)
		case "contains":
			return strings.Contains(s, t)
		}
		m, err := regexp.MatchString(t, s)
		return err == nil && m
	case "gt", "le":
		x, ok1 := v.(float64)
		y, ok2 := operand.(float64)
		if !ok1 || !ok2 {
			return false
		}
		if op == "gt" {
			return x > y
		}
		return x <= y
	case "len_lt", "len_le", "len_gt":
		s, ok1 := v.(string)
		y, ok2 := operand.(float64)
		if !ok1 || !ok2 {
			return false
		}
		n := float64(len(s))
		switch op {
		case "len_lt":
			return n < y
		case "len_le":
			return n <= y
		}
		return n > y
	}
	return false
}

// allow counts the call in its fixed window.
func (p *peer) allow(tool, agent, tenant string) bool {
	key := tool + ":" + agent + ":" + tenant
	window, err := time.ParseDuration("1m")
	if err != nil {
		return false
	}
	now := time.Now()
	p.rateMu.Lock()
	defer p.rateMu.Unlock()
	c := p.counters[key]
	if c == nil {
		c = &peerCounter{start: now}
		p.counters[key] = c
	}
	if now.Sub(c.start) >= window {
		c.start, c.n = now, 0
	}
	if c.n >= p.limit {
		return false
	}
	c.n++
	return true
}

// chain appends the call's entry to the in-memory hash chain.
func (p *peer) chain(agent, action, decision string, now time.Time) *peerEntry {
	ts := now.UTC().Format(time.RFC3339)
	p.logMu.Lock()
	defer p.logMu.Unlock()
	buf := make([]byte, 0, 256)
	for _, f := range []string{agent, action, decision, ts, p.prev} {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(f)))
		buf = append(buf, f...)
	}
	sum := sha256.Sum256(buf)
	e := &peerEntry{Agent: agent, Action: action, Decision: decision, Time: ts, Prev: p.prev, Hash: hex.EncodeToString(sum[:])}
	p.entries = append(p.entries, e)
	p.prev = e.Hash
	return e
}

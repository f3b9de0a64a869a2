package policy

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

const toolCachePolicy = `
default: deny
rules:
  - {name: a, match: 'call.tool == "tool_a"', effect: allow}
  - {name: b, match: 'call.tool == "tool_b"', effect: approve}
`

// TestToolCache: a call's rules are its tool's whatever the address of
// its name: the same name at many addresses, more names than the cache
// has slots, and a name whose bytes change at the same address (a string
// over a reused buffer) each get their tool's decision.
func TestToolCache(t *testing.T) {
	p := mustParse(t, toolCachePolicy)
	want := map[string]string{"tool_a": "a", "tool_b": "b", "tool_c": ""}
	check := func(tool, what string) {
		t.Helper()
		if got := decide(p, tool, nil); got.Rule != want[tool[:6]] {
			t.Errorf("%s: Decide(%q) by rule %q, want %q", what, tool, got.Rule, want[tool[:6]])
		}
	}
	for range 3 {
		for _, name := range []string{"tool_a", "tool_b", "tool_c"} {
			check(name, "literal")
			check(strings.Clone(name), "copy")
		}
	}
	for i := range 200 {
		// Other tools fill every slot: names of tools the policy does
		// not name (the default), then the named ones again.
		check(fmt.Sprintf("tool_c%d", i), "many names")
		check(strings.Clone([]string{"tool_a", "tool_b"}[i%2]), "after many names")
	}
	buf := []byte("tool_a")
	name := unsafe.String(&buf[0], len(buf))
	check(name, "buffer")
	copy(buf, "tool_b")
	check(name, "buffer rewritten")
	copy(buf, "tool_c")
	check(name, "buffer rewritten again")
}

// TestToolCacheAllocs: once a tool's slot is filled, deciding its calls
// allocates nothing for the lookup.
func TestToolCacheAllocs(t *testing.T) {
	p := mustParse(t, toolCachePolicy)
	tool := strings.Clone("tool_a")
	if n := testing.AllocsPerRun(100, func() { p.ruleSet(tool) }); n != 0 {
		t.Errorf("ruleSet allocates %v times per call, want 0", n)
	}
	if got := p.ruleSet(tool); got != p.byTool["tool_a"] {
		t.Errorf("ruleSet(tool_a) = %p, want the map's %p", got, p.byTool["tool_a"])
	}
}

package policy

import (
	"strings"
	"sync/atomic"
	"unsafe"
)

// toolCache finds the rule set of a call's tool without hashing its name:
// by the address of the name's bytes, which a wrapped tool passes
// unchanged call after call. A slot is filled once, when empty, with a
// copy of the name that a later call's name is compared with: a hit is
// the same name, whatever its address; a miss (another name at that
// slot) looks in the map. The slots are bounded, so filling them costs a
// few allocations per policy, never one per call.
type toolCache struct {
	slots [64]atomic.Pointer[toolSlot]
}

// toolSlot is a tool's name, copied, and its rule set.
type toolSlot struct {
	tool string
	set  *ruleSet
}

// ruleSet returns the rules that may match a call to tool.
func (p *Policy) ruleSet(tool string) *ruleSet {
	c := p.tools
	if c == nil || tool == "" {
		return p.lookup(tool)
	}
	addr := uint64(uintptr(unsafe.Pointer(unsafe.StringData(tool))))
	slot := &c.slots[(addr*0x9e3779b97f4a7c15)>>58]
	if s := slot.Load(); s != nil {
		if s.tool == tool {
			return s.set
		}
		return p.lookup(tool)
	}
	set := p.lookup(tool)
	slot.CompareAndSwap(nil, &toolSlot{tool: strings.Clone(tool), set: set})
	return set
}

// lookup is ruleSet through the map.
func (p *Policy) lookup(tool string) *ruleSet {
	if s, ok := p.byTool[tool]; ok {
		return s
	}
	return p.other
}

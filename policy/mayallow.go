package policy

// MayAllow reports whether some call to tool could be allowed or sent for
// approval by p. It is conservative: false means that no call to tool is
// ever allowed, because no enforced allow or approve rule can match it
// (every such rule tests call.tool against other names, see the index in
// Decide) and the default is deny. Integrations use it to hide tools a
// model can never use (an MCP server's tools/list). A nil policy allows
// nothing.
func (p *Policy) MayAllow(tool string) bool {
	if p == nil {
		return false
	}
	if p.def != Deny {
		return true
	}
	rs := p.other
	if s, ok := p.byTool[tool]; ok {
		rs = s
	}
	for _, r := range rs.enforced {
		if r.effect != Deny {
			return true
		}
	}
	return false
}

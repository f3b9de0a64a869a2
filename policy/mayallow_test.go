package policy

import "testing"

func TestMayAllow(t *testing.T) {
	const src = `
version: 1
default: deny
rules:
  - name: reads
    match: call.tool == "read_file" && call.args.path.startsWith("/srv/")
    effect: allow
  - name: writes
    match: call.tool in ["write_file", "move_file"]
    effect: approve
  - name: never-delete
    match: call.tool == "delete_file"
    effect: deny
  - name: shadowed
    match: call.tool == "shadow_tool"
    effect: allow
    mode: shadow
`
	p, err := Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for tool, want := range map[string]bool{
		"read_file": true, "write_file": true, "move_file": true,
		"delete_file": false, "shadow_tool": false, "other": false,
	} {
		if got := p.MayAllow(tool); got != want {
			t.Errorf("MayAllow(%q) = %v, want %v", tool, got, want)
		}
	}
	// A rule that does not name its tools may match any tool.
	p2, err := Parse("p2.yaml", []byte("version: 1\ndefault: deny\nrules:\n  - name: r\n    match: call.tool.startsWith(\"read_\")\n    effect: allow\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p2.MayAllow("anything") {
		t.Error("MayAllow with a rule over any tool = false, want true")
	}
	// A default of allow may allow anything.
	p3, err := Parse("p3.yaml", []byte("version: 1\ndefault: allow\nrules:\n  - name: r\n    match: call.tool == \"x\"\n    effect: deny\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p3.MayAllow("y") {
		t.Error("MayAllow under default allow = false, want true")
	}
	var nilp *Policy
	if nilp.MayAllow("x") {
		t.Error("nil policy MayAllow = true")
	}
}

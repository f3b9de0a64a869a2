package agentguard

import (
	"maps"
	"math"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"unsafe"

	"github.com/hardstop-labs/agentguard/policy"
)

// smallArgs is a struct an argsView holds (at most maxViewArgs fields).
type smallArgs struct {
	To      string  `json:"to"`
	Subject string  `json:"subject,omitempty"`
	Amount  float64 `json:"amount"`
	N       int64   `json:"n,omitempty"`
	U       uint64  `json:"u"`
	OK      bool    `json:"ok"`
	Off     bool    `json:"off,omitempty"`
	Small   int8    `json:"small"`
}

// checkView checks the view of v against the map read builds: the same
// map from Args, each field from Arg as the policy would read it from the
// map, nothing for other names, and All in the struct's order.
func checkView(t *testing.T, v smallArgs) {
	t.Helper()
	plan := planArgs(reflect.TypeFor[smallArgs]())
	want, ok := plan.read(unsafe.Pointer(&v))
	var view argsView
	if got := plan.view(unsafe.Pointer(&v), &view); got != ok {
		t.Fatalf("view(%#v) = %v, read ok = %v", v, got, ok)
	}
	if !ok {
		return
	}
	for _, f := range plan.fields {
		got, found := view.Arg(f.name)
		w, wfound := want[f.name]
		if found != wfound || got != policy.ValueArg(w) {
			t.Errorf("view(%#v).Arg(%q) = %#v, %v; want %#v, %v", v, f.name, got, found, policy.ValueArg(w), wfound)
		}
	}
	if _, found := view.Arg("missing"); found {
		t.Errorf("view(%#v).Arg(missing) found", v)
	}
	// boxed, what the audit log reads: each value as the map holds it,
	// of the same type, and the count of those present.
	for _, f := range plan.fields {
		got, found := view.boxed(f.name)
		w, wfound := want[f.name]
		if found != wfound || !reflect.DeepEqual(got, w) {
			t.Errorf("view(%#v).boxed(%q) = %#v, %v; want %#v, %v", v, f.name, got, found, w, wfound)
		}
	}
	if _, found := view.boxed("missing"); found {
		t.Errorf("view(%#v).boxed(missing) found", v)
	}
	if view.n != len(want) {
		t.Errorf("view(%#v).n = %d, want %d", v, view.n, len(want))
	}
	var names []string
	for name, a := range view.All() {
		names = append(names, name)
		if a != policy.ValueArg(want[name]) {
			t.Errorf("view(%#v).All: %s = %#v, want %#v", v, name, a, want[name])
		}
	}
	if keys := slices.Sorted(maps.Keys(want)); !slices.Equal(slices.Sorted(slices.Values(names)), keys) {
		t.Errorf("view(%#v).All names %v, want %v", v, names, keys)
	}
	m := view.Args()
	if !reflect.DeepEqual(m, want) {
		t.Errorf("view(%#v).Args() = %#v, want %#v", v, m, want)
	}
	if m2 := view.Args(); reflect.ValueOf(m2).UnsafePointer() != reflect.ValueOf(m).UnsafePointer() {
		t.Errorf("view.Args built a second map")
	}
}

// TestArgsView checks argsView (the policy's ArgReader over a planned
// struct) against the map of read, which TestArgsPlanMatchesJSON checks
// against encoding/json.
func TestArgsView(t *testing.T) {
	for _, v := range []smallArgs{
		{},
		{To: "bob@example.com", Subject: "hi", Amount: 12.5, N: 300, U: 7, OK: true, Off: true, Small: -3},
		{To: "日本", Amount: math.Copysign(0, -1), N: math.MinInt64, U: math.MaxUint64},
		{U: 1 << 63, N: -1},
		{To: "bad \xff"},      // the JSON path
		{Amount: math.Inf(1)}, // the JSON path
		{Amount: math.NaN()},  // the JSON path
	} {
		checkView(t, v)
	}
	// A plan with more fields than a view holds is refused.
	var fa flatArgs
	if planArgs(reflect.TypeFor[flatArgs]()).view(unsafe.Pointer(&fa), &argsView{}) {
		t.Errorf("view of a %d-field struct accepted", reflect.TypeFor[flatArgs]().NumField())
	}
}

var mapSink map[string]any

// TestArgsMapShared checks the map whose values share one allocation:
// its values survive garbage collection intact, and building it costs the
// map and one allocation for all its strings and numbers.
func TestArgsMapShared(t *testing.T) {
	plan := planArgs(reflect.TypeFor[smallArgs]())
	mk := func(i int) map[string]any {
		v := smallArgs{To: "bob" + string(rune('a'+i%26)) + "@example.com", Subject: "s", Amount: float64(i) + 0.5, N: int64(i) + 1000, U: 1<<63 + uint64(i)}
		m, _ := plan.read(unsafe.Pointer(&v))
		return m
	}
	var ms []map[string]any
	for i := range 1000 {
		ms = append(ms, mk(i))
	}
	runtime.GC()
	runtime.GC()
	for i, m := range ms {
		if m["to"] != "bob"+string(rune('a'+i%26))+"@example.com" || m["amount"] != float64(i)+0.5 || m["n"] != int64(i)+1000 || m["u"] != uint64(1<<63+uint64(i)) || m["subject"] != "s" {
			t.Fatalf("map %d after GC: %#v", i, m)
		}
	}
	v := smallArgs{To: "bob@example.com", Subject: "hi", Amount: 12.5, N: 3000, U: 7}
	one := testing.AllocsPerRun(100, func() { // the map itself, with small values that box without allocating
		m := make(map[string]any, 5)
		m["ok"], m["u"] = true, uint64(7)
		mapSink = m
	})
	n := testing.AllocsPerRun(100, func() {
		var ok bool
		if mapSink, ok = plan.read(unsafe.Pointer(&v)); !ok {
			t.Fatal("refused")
		}
	})
	if n > one+1 {
		t.Errorf("read allocates %v times, want the map's %v and one more", n, one)
	}
}

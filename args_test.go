package agentguard

import (
	"context"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/policy"
)

type flatArgs struct {
	To      string  `json:"to"`
	Subject string  `json:"subject,omitempty"`
	Amount  float64 `json:"amount"`
	Count   int     `json:"count,omitempty"`
	Big     int64   `json:"big"`
	Small   int8    `json:"small"`
	U       uint64  `json:"u"`
	U16     uint16  `json:"u16,omitempty"`
	OK      bool    `json:"ok"`
	Off     bool    `json:"off,omitempty"`
	NoTag   string
	Skip    string `json:"-"`
	Named   label  `json:"named"`
	EmptyN  string `json:",omitempty"`
	hidden  string
}

type label string

type withMarshaler struct {
	When time.Time `json:"when"`
}

type textKey struct {
	K textOnly `json:"k"`
}

type textOnly int

func (t textOnly) MarshalText() ([]byte, error) { return []byte("text"), nil }

type withString struct {
	N int `json:"n,string"`
}

type withNested struct {
	Inner flatArgs `json:"inner"`
}

type withPointer struct {
	P *string `json:"p"`
}

type withFloat32 struct {
	F float32 `json:"f"`
}

type Embedded struct{ A string }

type withEmbedded struct {
	Embedded
	B string
}

type withOddKey struct {
	A string `json:"a b"`
}

type withSlice struct {
	L []string `json:"l"`
}

// argsEqual compares call.args values as the plan and the JSON path give
// them: equal, except that a float64 from the plan equals an int64 or
// uint64 from the JSON path holding the same whole number (JSON writes 3.0
// as 3). Every other difference of type counts.
func argsEqual(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !argsEqual(av, bv) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !argsEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	case float64:
		switch b := b.(type) {
		case int64:
			return a == math.Trunc(a) && a >= -(1<<63) && a < 1<<63 && int64(a) == b
		case uint64:
			return a == math.Trunc(a) && a >= 0 && a < 1<<64 && uint64(a) == b
		}
	}
	return reflect.DeepEqual(a, b)
}

// viaJSON is what toArgs gives without a plan: the JSON round trip.
func viaJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	m, err := toArgs(v, nil)
	if err != nil {
		t.Fatalf("toArgs(%#v) via JSON: %v", v, err)
	}
	return m
}

// TestArgsPlanMatchesJSON checks that the reflection fast path gives the
// same call.args as the JSON round trip for every flat struct it accepts,
// and that it refuses the structs whose encoding it does not reproduce.
func TestArgsPlanMatchesJSON(t *testing.T) {
	values := []flatArgs{
		{},
		{To: "bob@example.com", Subject: "hi", Amount: 12.5, Count: 3, Big: math.MaxInt64, Small: -7,
			U: math.MaxUint64, U16: 9, OK: true, Off: true, NoTag: "n", Skip: "s", Named: "lbl", EmptyN: "e", hidden: "h"},
		{To: "<html>&\u2028", Amount: math.Copysign(0, -1), Big: 1<<53 + 1, U: 1<<63 + 12345},
		{To: "héllo wörld ☃", Amount: 1e300, Count: -1},
		{Amount: 0.1 + 0.2, Big: math.MinInt64},
	}
	plan := planArgs(reflect.TypeFor[flatArgs]())
	if plan == nil {
		t.Fatal("planArgs(flatArgs) = nil, want a plan")
	}
	for _, v := range values {
		got, ok := plan.args(v)
		if !ok {
			t.Fatalf("plan.args(%#v) refused", v)
		}
		want := viaJSON(t, v)
		if !argsEqual(got, want) {
			t.Errorf("plan.args(%#v)\n = %#v\nwant %#v (encoding/json)", v, got, want)
		}
		viaPlan, err := toArgs(v, plan)
		if err != nil || !argsEqual(viaPlan, want) {
			t.Errorf("toArgs(%#v, plan) = %v, %v; want %v", v, viaPlan, err, want)
		}
	}

	// Values the plan hands back to the JSON path: invalid UTF-8 (JSON
	// replaces it) and non-finite floats (JSON refuses them).
	for _, v := range []flatArgs{{To: "bad \xff byte"}, {Amount: math.NaN()}, {Amount: math.Inf(-1)}} {
		if _, ok := plan.args(v); ok {
			t.Errorf("plan.args(%#v) accepted, want the JSON path", v)
		}
		got, gerr := toArgs(v, plan)
		want, werr := toArgs(v, nil)
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("toArgs(%#v, plan) = %v, %v; want %v, %v", v, got, gerr, want, werr)
		}
	}

	for _, tc := range []struct {
		name string
		t    reflect.Type
	}{
		{"a json.Marshaler field", reflect.TypeFor[withMarshaler]()},
		{"a TextMarshaler field", reflect.TypeFor[textKey]()},
		{"the string option", reflect.TypeFor[withString]()},
		{"a nested struct", reflect.TypeFor[withNested]()},
		{"a pointer field", reflect.TypeFor[withPointer]()},
		{"a float32 field", reflect.TypeFor[withFloat32]()},
		{"an embedded struct", reflect.TypeFor[withEmbedded]()},
		{"duplicate keys", reflect.StructOf([]reflect.StructField{
			{Name: "A", Type: reflect.TypeFor[string](), Tag: `json:"x"`},
			{Name: "B", Type: reflect.TypeFor[string](), Tag: `json:"x"`},
		})},
		{"a key JSON quotes", reflect.TypeFor[withOddKey]()},
		{"a slice field", reflect.TypeFor[withSlice]()},
		{"a map", reflect.TypeFor[map[string]any]()},
		{"a string", reflect.TypeFor[string]()},
		{"a pointer to a struct", reflect.TypeFor[*flatArgs]()},
		{"an interface", reflect.TypeFor[any]()},
	} {
		if p := planArgs(tc.t); p != nil {
			t.Errorf("planArgs(%v) (%s) = %+v, want nil (the JSON path)", tc.t, tc.name, p)
		}
	}
}

// TestWrapArgsPlan checks that a tool wrapped with a flat struct input
// shows the policy the same call.args as the JSON round trip would.
func TestWrapArgsPlan(t *testing.T) {
	type in struct {
		To     string  `json:"to"`
		Amount float64 `json:"amount"`
		N      int     `json:"n"`
	}
	var seen map[string]any
	pol, err := policy.Parse("allow.yaml", []byte("version: 1\ndefault: allow\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(WithPolicy(pol), WithRecorder(RecorderFunc(func(_ context.Context, e *Event) error {
		if e.Kind == EventDecision {
			seen = e.Call.Args
		}
		return nil
	})))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tool := Wrap(g, "t", func(_ context.Context, v in) (string, error) { return v.To, nil })
	v := in{To: "bob", Amount: 2.5, N: 7}
	if _, err := tool(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	if want := viaJSON(t, v); !argsEqual(seen, want) {
		t.Errorf("call.args = %#v, want %#v", seen, want)
	}
}

// FuzzArgsPlan checks the plan against the JSON round trip on arbitrary
// field values: the same map, or the JSON path when the plan refuses; and
// the plan's view (the policy's ArgReader) against its map.
func FuzzArgsPlan(f *testing.F) {
	f.Add("bob@example.com", "hi", 12.5, int64(3), uint64(7), true)
	f.Add("", "", 0.0, int64(0), uint64(0), false)
	f.Add("\xff\xfe", "\u2028<>&", math.Inf(1), int64(math.MinInt64), uint64(math.MaxUint64), true)
	f.Add("a\x00b", "\"\\", 1e-320, int64(1)<<53+1, uint64(1)<<63, false)
	plan := planArgs(reflect.TypeFor[flatArgs]())
	f.Fuzz(func(t *testing.T, to, subject string, amount float64, big int64, u uint64, ok bool) {
		v := flatArgs{To: to, Subject: subject, Amount: amount, Big: big, U: u, OK: ok, NoTag: subject, Named: label(to),
			Count: int(big), Small: int8(big), U16: uint16(u), Off: !ok}
		got, gerr := toArgs(v, plan)
		want, werr := toArgs(v, nil)
		if (gerr == nil) != (werr == nil) || !argsEqual(got, want) {
			t.Fatalf("toArgs(%#v)\n with plan %#v, %v\n via JSON  %#v, %v", v, got, gerr, want, werr)
		}
		// The view the policy reads in place agrees with the map.
		checkView(t, smallArgs{To: to, Subject: subject, Amount: amount, N: big, U: u, OK: ok, Off: !ok, Small: int8(big)})
	})
}

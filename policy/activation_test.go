package policy

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/cel-go/common/types"
)

// TestActivationRelease: a released activation holds nothing of its
// decision (but its usage value's pointer to itself), whether only
// compiled rules read it or a CEL program filled its caches.
func TestActivationRelease(t *testing.T) {
	in := &Input{Call: Call{Tool: "t", Agent: "bot"}, Now: time.Unix(1, 0)}
	for _, cel := range []bool{false, true} {
		a := newActivation(in)
		a.argm, a.cost = map[string]any{"x": 1}, 7
		if cel {
			p := mustParse(t, "rules:\n  - {name: r, match: 'call.agent == \"bot\" && now > timestamp(\"1970-01-01T00:00:00Z\") && call.labels.size() == 0', effect: allow}\n")
			out, err := evalProgram(t.Context(), p.rules[0].prg, false, a)
			if err != nil || out != types.True {
				t.Fatalf("eval = %v, %v", out, err)
			}
			if !a.cached() || a.now == nil || a.labels == nil {
				t.Fatalf("a CEL program left cached %v, now %v, labels %v", a.cached(), a.now, a.labels)
			}
		}
		a.release()
		v := reflect.ValueOf(a).Elem()
		for i := range v.NumField() {
			if name := v.Type().Field(i).Name; name != "usage" && !v.Field(i).IsZero() {
				t.Errorf("cel %v: a released activation keeps its %s", cel, name)
			}
		}
	}
}

// TestActivationReleaseWithoutMark: a CEL program evaluated without
// evalProgram (which used to mark the activation for clearing) fills its
// caches all the same; release clears them, so that the next call that
// takes the activation from the pool never reads the arguments, labels or
// strings of this one. A fuzzer found the leak: CEL then read a previous
// input's arguments.
func TestActivationReleaseWithoutMark(t *testing.T) {
	p := mustParse(t, "rules:\n  - {name: r, match: 'call.agent == \"bot\" && call.args.amount < 10 && call.labels.size() == 0 && now > timestamp(\"1970-01-01T00:00:00Z\")', effect: allow}\n")
	in := &Input{Call: Call{Tool: "t", Agent: "bot", Args: map[string]any{"amount": 5.0}}, Now: time.Unix(1, 0)}
	a := newActivation(in)
	if out, _, err := p.rules[0].prg.Eval(a); err != nil || out != types.True {
		t.Fatalf("eval = %v, %v", out, err)
	}
	if !a.cached() {
		t.Fatal("a direct Eval left no cache to clear")
	}
	a.release()
	v := reflect.ValueOf(a).Elem()
	for i := range v.NumField() {
		if name := v.Type().Field(i).Name; name != "usage" && !v.Field(i).IsZero() {
			t.Errorf("a released activation keeps its %s", name)
		}
	}
}

package agentguard

import (
	"reflect"
	"testing"
	"time"
	"unsafe"
)

// TestReleaseClears: a pooled flight released after a call holds nothing
// of it, whichever parts the call used: its state, the budget's hold
// when given to the budget, and the view's values and map.
func TestReleaseClears(t *testing.T) {
	type in struct{ A, B, C string }
	for _, held := range []bool{false, true} {
		f := &flight{pooled: true}
		f.g, f.cfg, f.call.ID, f.call.Tool, f.lazy, f.ran = &Guard{}, &toolConfig{}, "id", "tool", true, time.Now()
		v := in{"a", "b", "c"}
		if !planArgs(reflect.TypeFor[in]()).view(unsafe.Pointer(&v), &f.view) {
			t.Fatal("view refused the struct")
		}
		f.view.Args() // builds the map
		if held {
			f.held = true
			f.bh.now, f.bh.args = time.Now(), &f.view
			f.bh.estBuf[0].Unit = "USD"
		}
		gen := f.gen
		f.release()
		if f.gen != gen+1 {
			t.Errorf("held %v: generation %d after release, want %d", held, f.gen, gen+1)
		}
		if v := reflect.ValueOf(&f.flightVars).Elem(); !v.IsZero() {
			for i := range v.NumField() {
				if !v.Field(i).IsZero() {
					t.Errorf("held %v: a released flight keeps its %s", held, v.Type().Field(i).Name)
				}
			}
		}
	}
}

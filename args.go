package agentguard

import (
	"encoding"
	"encoding/json"
	"iter"
	"math"
	"reflect"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/hardstop-labs/agentguard/policy"
)

// argsPlan converts a flat struct to the map the policy sees as call.args
// without a JSON round trip: the map json.Marshal then decodeArgs would
// give, built by reflection, with one difference: a float64 field is a
// float64 even when it holds a whole number (the JSON text of 3.0 is 3, an
// int64), so the policy's arithmetic on it sees the field's own type.
// Integer fields are int64 (uint64 above the int64 range), exactly. Only
// structs whose encoding is plain qualify (see planArgs); the others take
// the JSON path.
type argsPlan struct {
	fields []argsField
}

type argsField struct {
	index     int
	offset    uintptr // of the field in the struct, to read it without reflection
	name      string
	kind      reflect.Kind
	omitEmpty bool
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// marshals reports whether t (or *t) has its own JSON or text encoding.
func marshals(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(jsonMarshaler) || t.Implements(textMarshaler) ||
		p.Implements(jsonMarshaler) || p.Implements(textMarshaler)
}

// planArgs returns the plan for t, or nil when t is not a flat struct
// whose JSON encoding the plan reproduces exactly: a struct with only
// exported fields of kinds bool, string, int*, uint* and float64, no
// embedded fields, no JSON or text marshalers, tags with at most the
// omitempty option, and distinct plain key names.
func planArgs(t reflect.Type) *argsPlan {
	if t == nil || t.Kind() != reflect.Struct || marshals(t) {
		return nil
	}
	p := &argsPlan{}
	seen := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.Anonymous {
			return nil
		}
		if !sf.IsExported() {
			continue
		}
		tag, hasTag := sf.Tag.Lookup("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		f := argsField{index: i, offset: sf.Offset, name: name, kind: sf.Type.Kind()}
		switch opts {
		case "":
		case "omitempty":
			f.omitEmpty = true
		default:
			return nil
		}
		if !hasTag || name == "" {
			f.name = sf.Name
		} else if !plainKey(name) {
			return nil
		}
		if seen[f.name] || marshals(sf.Type) {
			return nil
		}
		seen[f.name] = true
		switch f.kind {
		case reflect.Bool, reflect.String, reflect.Float64,
			reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		default:
			return nil
		}
		p.fields = append(p.fields, f)
	}
	return p
}

// plainKey reports whether a JSON key is made of letters, digits and
// _ - . only, so that encoding/json takes it as it is.
func plainKey(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '-' || b == '.') {
			return false
		}
	}
	return true
}

// args builds the map from v, a value of the plan's type. ok is false
// when a value needs the JSON path (invalid UTF-8, which encoding/json
// replaces, or a non-finite float, which it refuses).
func (p *argsPlan) args(v any) (map[string]any, bool) {
	rv := reflect.New(reflect.TypeOf(v))
	rv.Elem().Set(reflect.ValueOf(v))
	return p.read(rv.UnsafePointer())
}

// argsOf is args for the value at in, which it reads in place: Wrap's
// input is neither boxed nor copied to the heap.
func argsOf[In any](p *argsPlan, in *In) (map[string]any, bool) {
	return p.read(unsafe.Pointer(in))
}

// The kinds of an argVal.
const (
	valString uint8 = iota + 1
	valBool
	valInt   // int64
	valUint  // uint64 above the int64 range
	valFloat // float64
)

// argVal is one field's value as call.args holds it, not boxed.
type argVal struct {
	kind uint8 // 0: an omitempty field that is empty, absent from call.args
	s    string
	n    uint64 // bool (0 or 1), int64 bits, uint64, float64 bits
}

// load reads the struct of the plan's type at base into vals (one per
// field of the plan), each field at its offset as its kind's underlying
// type. ok is false when a value needs the JSON path (invalid UTF-8,
// which encoding/json replaces, or a non-finite float, which it refuses).
func (p *argsPlan) load(base unsafe.Pointer, vals []argVal) bool {
	for i, f := range p.fields {
		at := unsafe.Add(base, f.offset)
		v := argVal{}
		switch f.kind {
		case reflect.String:
			s := *(*string)(at)
			if !utf8.ValidString(s) {
				return false
			}
			if !f.omitEmpty || s != "" {
				v = argVal{kind: valString, s: s}
			}
		case reflect.Bool:
			if b := *(*bool)(at); b {
				v = argVal{kind: valBool, n: 1}
			} else if !f.omitEmpty {
				v = argVal{kind: valBool}
			}
		case reflect.Float64:
			x := *(*float64)(at)
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return false
			}
			if !f.omitEmpty || x != 0 {
				v = argVal{kind: valFloat, n: math.Float64bits(x)}
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			var n int64
			switch f.kind {
			case reflect.Int:
				n = int64(*(*int)(at))
			case reflect.Int8:
				n = int64(*(*int8)(at))
			case reflect.Int16:
				n = int64(*(*int16)(at))
			case reflect.Int32:
				n = int64(*(*int32)(at))
			default:
				n = *(*int64)(at)
			}
			if !f.omitEmpty || n != 0 {
				v = argVal{kind: valInt, n: uint64(n)}
			}
		default: // the unsigned kinds
			var n uint64
			switch f.kind {
			case reflect.Uint:
				n = uint64(*(*uint)(at))
			case reflect.Uint8:
				n = uint64(*(*uint8)(at))
			case reflect.Uint16:
				n = uint64(*(*uint16)(at))
			case reflect.Uint32:
				n = uint64(*(*uint32)(at))
			case reflect.Uintptr:
				n = uint64(*(*uintptr)(at))
			default:
				n = *(*uint64)(at)
			}
			if !f.omitEmpty || n != 0 {
				v = argVal{kind: valInt, n: n} // an int64 when it fits, as decodeArgs reads JSON integers
				if n > math.MaxInt64 {
					v.kind = valUint
				}
			}
		}
		vals[i] = v
	}
	return true
}

// maxLoaded is the most fields read holds on its stack.
const maxLoaded = 16

// read builds the map from the struct of the plan's type at base; ok is
// false as for load.
func (p *argsPlan) read(base unsafe.Pointer) (map[string]any, bool) {
	var buf [maxLoaded]argVal
	var vals []argVal
	if len(p.fields) <= maxLoaded {
		vals = buf[:len(p.fields)]
	} else {
		vals = make([]argVal, len(p.fields))
	}
	if !p.load(base, vals) {
		return nil, false
	}
	return p.build(vals), true
}

// argCell holds one boxed value of a map that build made.
type argCell struct {
	s string
	n uint64
}

// build returns the map of vals (as load left them). The map's strings
// and numbers share one allocation (a value boxed into an interface alone
// takes one each): each interface points at its cell, which nothing
// writes again.
func (p *argsPlan) build(vals []argVal) map[string]any { return p.buildIn(vals, nil) }

// buildIn is build with the cells taken from spare when it has enough of
// them (spare must be cells that nothing else uses, and never written
// again once the map holds them).
func (p *argsPlan) buildIn(vals []argVal, spare []argCell) map[string]any {
	n, boxed := 0, 0
	for _, v := range vals {
		if v.kind != 0 {
			n++
		}
		if v.kind != 0 && v.kind != valBool {
			boxed++
		}
	}
	m := make(map[string]any, n)
	var cells []argCell
	switch {
	case boxed > 0 && boxed <= len(spare):
		cells = spare[:boxed]
	case boxed > 1:
		cells = make([]argCell, boxed)
	}
	for i, v := range vals {
		name := p.fields[i].name
		if v.kind == valBool {
			m[name] = v.n != 0
			continue
		}
		if v.kind == 0 {
			continue
		}
		if cells == nil { // one value: boxed as usual, one allocation all the same
			m[name] = v.value()
			continue
		}
		c := &cells[len(cells)-boxed]
		boxed--
		switch v.kind {
		case valString:
			c.s = v.s
			m[name] = boxAt(stringType, unsafe.Pointer(&c.s))
		case valInt:
			c.n = v.n
			m[name] = boxAt(int64Type, unsafe.Pointer(&c.n))
		case valUint:
			c.n = v.n
			m[name] = boxAt(uint64Type, unsafe.Pointer(&c.n))
		default:
			c.n = v.n
			m[name] = boxAt(float64Type, unsafe.Pointer(&c.n))
		}
	}
	return m
}

// value returns v boxed as call.args holds it.
func (v argVal) value() any {
	switch v.kind {
	case valString:
		return v.s
	case valBool:
		return v.n != 0
	case valInt:
		return int64(v.n)
	case valUint:
		return v.n
	case valFloat:
		return math.Float64frombits(v.n)
	}
	return nil
}

// arg returns v as the policy reads it.
func (v argVal) arg() policy.Arg {
	switch v.kind {
	case valString:
		return policy.StringArg(v.s)
	case valBool:
		return policy.BoolArg(v.n != 0)
	case valInt:
		return policy.IntArg(int64(v.n))
	case valUint:
		return policy.UintArg(v.n)
	}
	return policy.FloatArg(math.Float64frombits(v.n))
}

// eface is the layout of an interface{} value: its type, and a pointer to
// its value (for the non-pointer types boxed here).
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func typeOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	stringType  = typeOf("")
	int64Type   = typeOf(int64(0))
	uint64Type  = typeOf(uint64(0))
	float64Type = typeOf(float64(0))
)

// boxAt returns the interface of type typ whose value is at data, which
// must hold a value of that type and never change: what any(x) makes,
// without copying x to a new allocation.
func boxAt(typ, data unsafe.Pointer) any {
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, data
	return v
}

// maxViewArgs is the most fields an argsView holds.
const maxViewArgs = 8

// argsView is a call's arguments read from a planned struct, held without
// a map: the policy's ArgReader. It is a value (a flight holds one in
// place); it is used by one call on one goroutine.
type argsView struct {
	plan *argsPlan
	vals [maxViewArgs]argVal
	n    int            // the fields present (kind not 0)
	m    map[string]any // built by Args
}

var _ policy.ArgReader = (*argsView)(nil)

// view loads the struct at base into v. ok is false when the plan has
// more fields than a view holds, or when load refuses a value: the
// caller then takes read's path.
func (p *argsPlan) view(base unsafe.Pointer, v *argsView) bool {
	if len(p.fields) > maxViewArgs {
		return false
	}
	v.plan, v.m = p, nil
	if !p.load(base, v.vals[:len(p.fields)]) {
		return false
	}
	v.n = 0
	for _, a := range v.vals[:len(p.fields)] {
		if a.kind != 0 {
			v.n++
		}
	}
	return true
}

// viewOf is view for the value at in, which it reads in place (as argsOf).
func viewOf[In any](p *argsPlan, in *In, v *argsView) bool {
	return p.view(unsafe.Pointer(in), v)
}

// Arg implements policy.ArgReader: the field of that name, if present.
func (v *argsView) Arg(name string) (policy.Arg, bool) {
	for i := range v.plan.fields {
		if v.plan.fields[i].name == name {
			if v.vals[i].kind == 0 {
				return policy.Arg{}, false
			}
			return v.vals[i].arg(), true
		}
	}
	return policy.Arg{}, false
}

// Args implements policy.ArgReader: the map read would have built, made
// on the first call and kept.
func (v *argsView) Args() map[string]any { return v.argsIn(nil) }

// argsIn is Args with the map's cells taken from spare when it has enough
// of them (see argsPlan.buildIn).
func (v *argsView) argsIn(spare []argCell) map[string]any {
	if v.m == nil {
		v.m = v.plan.buildIn(v.vals[:len(v.plan.fields)], spare)
	}
	return v.m
}

// All returns the present fields in the struct's order, with their
// values as the policy reads them: what an encoder needs to write
// call.args without its map.
func (v *argsView) All() iter.Seq2[string, policy.Arg] {
	return func(yield func(string, policy.Arg) bool) {
		for i := range v.plan.fields {
			if v.vals[i].kind != 0 && !yield(v.plan.fields[i].name, v.vals[i].arg()) {
				return
			}
		}
	}
}

// boxed returns the field of that name, if present, as call.args holds it,
// without allocating: the interface refers to the view's own value, so it
// is valid only while the view holds this call (the audit log reads it
// while it appends the call's record; see flightArgs).
func (v *argsView) boxed(name string) (any, bool) {
	for i := range v.plan.fields {
		if v.plan.fields[i].name != name {
			continue
		}
		a := &v.vals[i]
		switch a.kind {
		case valString:
			return boxAt(stringType, unsafe.Pointer(&a.s)), true
		case valBool:
			return a.n != 0, true // a bool boxes without allocating
		case valInt:
			return boxAt(int64Type, unsafe.Pointer(&a.n)), true
		case valUint:
			return boxAt(uint64Type, unsafe.Pointer(&a.n)), true
		case valFloat:
			return boxAt(float64Type, unsafe.Pointer(&a.n)), true
		}
		return nil, false
	}
	return nil, false
}

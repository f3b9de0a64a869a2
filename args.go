package agentguard

import (
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"unicode/utf8"
	"unsafe"
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

// exactUint returns n as call.args holds an integer: an int64 when it
// fits, a uint64 above (as decodeArgs reads JSON integers).
func exactUint(n uint64) any {
	if n <= math.MaxInt64 {
		return int64(n)
	}
	return n
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

// read builds the map from the struct of the plan's type at base, reading
// each field at its offset as its kind's underlying type.
func (p *argsPlan) read(base unsafe.Pointer) (map[string]any, bool) {
	m := make(map[string]any, len(p.fields))
	for _, f := range p.fields {
		at := unsafe.Add(base, f.offset)
		switch f.kind {
		case reflect.String:
			s := *(*string)(at)
			if !utf8.ValidString(s) {
				return nil, false
			}
			if f.omitEmpty && s == "" {
				continue
			}
			m[f.name] = s
		case reflect.Bool:
			b := *(*bool)(at)
			if f.omitEmpty && !b {
				continue
			}
			m[f.name] = b
		case reflect.Float64:
			x := *(*float64)(at)
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, false
			}
			if f.omitEmpty && x == 0 {
				continue
			}
			m[f.name] = x
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
			if f.omitEmpty && n == 0 {
				continue
			}
			m[f.name] = n
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
			if f.omitEmpty && n == 0 {
				continue
			}
			m[f.name] = exactUint(n)
		}
	}
	return m, true
}

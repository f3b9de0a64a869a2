package policy

import "math"

// argKind is the type of an Arg.
type argKind uint8

const (
	argNull argKind = iota
	argBool
	argInt
	argUint
	argDouble
	argString
	// The kinds from argList on are not read by compiled rules: a rule
	// that meets one is evaluated by CEL.
	argList  // []any
	argMap   // map[string]any
	argOther // any other Go value
)

// Arg is the value of one argument of a call, read without boxing: a
// string, number or bool is held as it is, so that reading it allocates
// nothing. The zero value is null. Make one with StringArg, IntArg,
// UintArg, FloatArg, BoolArg, NullArg or ValueArg.
type Arg struct {
	kind argKind
	n    uint64 // bool (0 or 1), int64 bits, uint64, float64 bits
	s    string
	v    any // list, map or other
}

// StringArg returns a string argument.
func StringArg(s string) Arg { return Arg{kind: argString, s: s} }

// IntArg returns an integer argument (a CEL int).
func IntArg(n int64) Arg { return Arg{kind: argInt, n: uint64(n)} }

// UintArg returns an unsigned integer argument (a CEL uint). Call.Args
// holds integers up to math.MaxInt64 as int64: use IntArg for those, so
// that a rule sees the same type either way.
func UintArg(n uint64) Arg { return Arg{kind: argUint, n: n} }

// FloatArg returns a floating-point argument (a CEL double).
func FloatArg(f float64) Arg { return Arg{kind: argDouble, n: math.Float64bits(f)} }

// BoolArg returns a boolean argument.
func BoolArg(b bool) Arg { return boolArg(b) }

// NullArg returns a null argument.
func NullArg() Arg { return Arg{} }

// ValueArg returns v, a JSON-like value as Call.Args holds them (nil,
// bool, int64, uint64, float64, string, []any or map[string]any), as an
// Arg. A value of any other type is kept as it is and read as CEL reads
// it from Call.Args.
func ValueArg(v any) Arg {
	switch v := v.(type) {
	case nil:
		return Arg{}
	case string:
		return StringArg(v)
	case bool:
		return BoolArg(v)
	case int64:
		return IntArg(v)
	case uint64:
		return UintArg(v)
	case float64:
		return FloatArg(v)
	case int: // the other numbers CEL reads as ints, uints and doubles
		return IntArg(int64(v))
	case int32:
		return IntArg(int64(v))
	case uint:
		return UintArg(uint64(v))
	case uint32:
		return UintArg(uint64(v))
	case float32:
		return FloatArg(float64(v))
	case []any:
		return Arg{kind: argList, v: v}
	case map[string]any:
		return Arg{kind: argMap, v: v}
	}
	return Arg{kind: argOther, v: v}
}

// Value returns the argument as a JSON-like value, as Call.Args holds it.
// It boxes strings and numbers, and so allocates.
func (v Arg) Value() any {
	switch v.kind {
	case argNull:
		return nil
	case argBool:
		return v.n != 0
	case argInt:
		return int64(v.n)
	case argUint:
		return v.n
	case argDouble:
		return math.Float64frombits(v.n)
	case argString:
		return v.s
	}
	return v.v
}

// ArgReader gives a call's arguments to the policy without a map: Decide
// reads the arguments a rule names one at a time, and builds the map
// only for what needs it (a rule that CEL evaluates, a cost estimate, the
// size bounds of a rule whose cost depends on its input's size). See
// Call.Reader.
//
// An ArgReader serves one call, on the goroutine that decides it; it must
// give the same arguments every time it is asked.
type ArgReader interface {
	// Arg returns the argument named name, and whether the call has it.
	// It must not allocate: it is on the hot path of every decision.
	Arg(name string) (Arg, bool)
	// Args returns the arguments as the map Call.Args would hold (the
	// values that Arg returns, by name). The caller does not change it.
	// Decide calls it at most once per decision.
	Args() map[string]any
}

// arg returns the call's argument name, from Call.Args or Call.Reader.
func (a *activation) arg(name string) (Arg, bool) {
	c := &a.in.Call
	if c.Args == nil && c.Reader != nil {
		return c.Reader.Arg(name)
	}
	v, ok := c.Args[name]
	if !ok {
		return Arg{}, false
	}
	return ValueArg(v), true
}

// argsMap returns the call's arguments as a map: Call.Args, or the map
// of Call.Reader, built once per activation.
func (a *activation) argsMap() map[string]any {
	c := &a.in.Call
	if c.Args != nil || c.Reader == nil {
		return c.Args
	}
	if a.argm == nil {
		a.argm = c.Reader.Args()
		if a.argm == nil {
			a.argm = map[string]any{}
		}
	}
	return a.argm
}

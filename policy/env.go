package policy

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
)

// The CEL object types of the variables call and usage.
const (
	callTypeName  = "agentguard.Call"
	usageTypeName = "agentguard.Usage"
)

var (
	callType  = types.NewObjectType(callTypeName)
	usageType = types.NewObjectType(usageTypeName)
)

// Limits on what a policy may hold, so that a hostile or broken file is
// rejected quickly and with bounded memory.
const (
	// MaxFileSize is the largest policy file Parse accepts, in bytes.
	MaxFileSize = 1 << 20
	// MaxExprSize is the longest CEL expression (match or estimate), in bytes.
	MaxExprSize = 4 << 10
	// MaxNesting is the deepest nesting of a CEL expression.
	MaxNesting = 32
	// MaxRules is the most rules a policy may hold.
	MaxRules = 2000
	// MaxYAMLNodes is the most YAML nodes a file may expand to, counting
	// every alias as a copy of what it refers to.
	MaxYAMLNodes = 100_000
	// CostLimit is the runtime cost limit of one rule's evaluation, in
	// CEL cost units (roughly one per operation); a rule that goes over it
	// denies the call. It is also the bound on a rule's minimum static cost
	// checked at load.
	CostLimit = 100_000
)

// provider adds the object types agentguard.Call and agentguard.Usage to
// the base CEL type provider.
type provider struct {
	types.Provider
	fields map[string]map[string]*types.FieldType
}

func (p *provider) FindStructType(name string) (*types.Type, bool) {
	switch name {
	case callTypeName:
		return types.NewTypeTypeWithParam(callType), true
	case usageTypeName:
		return types.NewTypeTypeWithParam(usageType), true
	}
	return p.Provider.FindStructType(name)
}

func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if fs, ok := p.fields[name]; ok {
		names := make([]string, 0, len(fs))
		for n := range fs {
			names = append(names, n)
		}
		return names, true
	}
	return p.Provider.FindStructFieldNames(name)
}

func (p *provider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if fs, ok := p.fields[name]; ok {
		ft, ok := fs[field]
		return ft, ok
	}
	return p.Provider.FindStructFieldType(name, field)
}

// NewValue refuses to build agentguard objects from CEL: rules read the
// call, they do not make new ones.
func (p *provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.fields[name]; ok {
		return types.NewErr("policy: cannot create %s values", name)
	}
	return p.Provider.NewValue(name, fields)
}

// field builds a FieldType whose getter reads the activation.
func callField(t *types.Type, get func(a *activation) ref.Val, set func(a *activation) bool) *types.FieldType {
	return &types.FieldType{
		Type: t,
		IsSet: func(target any) bool {
			a, ok := target.(*activation)
			return ok && set(a)
		},
		GetFrom: func(target any) (any, error) {
			a, ok := target.(*activation)
			if !ok {
				return nil, fmt.Errorf("policy: not a call: %T", target)
			}
			return get(a), nil
		},
	}
}

func usageField(t *types.Type, get func(a *activation) ref.Val, set func(u *Usage) bool) *types.FieldType {
	return &types.FieldType{
		Type: t,
		IsSet: func(target any) bool {
			u, ok := target.(*usageVal)
			return ok && set(&u.a.in.Usage)
		},
		GetFrom: func(target any) (any, error) {
			u, ok := target.(*usageVal)
			if !ok {
				return nil, fmt.Errorf("policy: not a usage: %T", target)
			}
			return get(u.a), nil
		},
	}
}

// The string fields of call, cached per activation.
var callStrings = []struct {
	name string
	get  func(c *Call) string
}{
	{"id", func(c *Call) string { return c.ID }},
	{"tool", func(c *Call) string { return c.Tool }},
	{"agent", func(c *Call) string { return c.Agent }},
	{"requester", func(c *Call) string { return c.Requester }},
	{"tenant", func(c *Call) string { return c.Tenant }},
	{"session", func(c *Call) string { return c.Session }},
	{"env", func(c *Call) string { return c.Env }},
}

func newProvider(base types.Provider, adapter types.Adapter) *provider {
	fields := map[string]*types.FieldType{}
	for i, f := range callStrings {
		fields[f.name] = callField(types.StringType, func(a *activation) ref.Val {
			if a.strs[i] == nil {
				a.strs[i] = types.String(f.get(&a.in.Call))
			}
			return a.strs[i]
		}, func(a *activation) bool { return f.get(&a.in.Call) != "" })
	}
	fields["args"] = callField(types.NewMapType(types.StringType, types.DynType), func(a *activation) ref.Val {
		if a.args.adapter == nil {
			a.args = nativeMap[any]{m: a.argsMap(), adapter: adapter}
		}
		return &a.args
	}, func(a *activation) bool { return len(a.argsMap()) > 0 })
	fields["labels"] = callField(types.NewMapType(types.StringType, types.StringType), func(a *activation) ref.Val {
		if a.labels == nil {
			a.labels = types.NewStringStringMap(adapter, a.in.Call.Labels)
		}
		return a.labels
	}, func(a *activation) bool { return len(a.in.Call.Labels) > 0 })
	fields["time"] = callField(types.TimestampType, func(a *activation) ref.Val {
		return types.Timestamp{Time: a.in.Call.Time}
	}, func(a *activation) bool { return !a.in.Call.Time.IsZero() })

	ufields := map[string]*types.FieldType{
		"spend": usageField(types.NewMapType(types.StringType, types.DoubleType), func(a *activation) ref.Val {
			if a.spend.adapter == nil {
				a.spend = nativeMap[float64]{m: a.in.Usage.Spend, conv: double, adapter: adapter}
			}
			return &a.spend
		}, func(u *Usage) bool { return len(u.Spend) > 0 }),
		"calls": usageField(types.IntType, func(a *activation) ref.Val {
			return types.Int(a.in.Usage.Calls)
		}, func(u *Usage) bool { return u.Calls != 0 }),
		"caps": usageField(types.NewMapType(types.StringType, types.DoubleType), func(a *activation) ref.Val {
			if a.caps.adapter == nil {
				a.caps = nativeMap[float64]{m: a.in.Usage.Caps, conv: double, adapter: adapter}
			}
			return &a.caps
		}, func(u *Usage) bool { return len(u.Caps) > 0 }),
	}
	return &provider{
		Provider: base,
		fields:   map[string]map[string]*types.FieldType{callTypeName: fields, usageTypeName: ufields},
	}
}

func double(f float64) ref.Val { return types.Double(f) }

// activation resolves the CEL variables call, now and usage from an Input
// without building a map per evaluation. It also stands for the call
// object: field reads go through it, and cache what they build. An
// activation serves one Decide or Estimate on one goroutine.
type activation struct {
	in     *Input
	strs   [8]ref.Val // of callStrings
	args   nativeMap[any]
	spend  nativeMap[float64]
	caps   nativeMap[float64]
	labels ref.Val
	now    ref.Val
	usage  usageVal
	argm   map[string]any // Call.Reader's map, once built
	cost   uint64         // of the compiled rule being evaluated
}

var activations = sync.Pool{New: func() any { return new(activation) }}

func newActivation(in *Input) *activation {
	a := activations.Get().(*activation)
	a.in = in
	if a.usage.a != a {
		a.usage.a = a
	}
	return a
}

// release clears a and puts it back in the pool: the caches that only
// CEL's field reads fill only when one of them is set (clearing memory
// that holds pointers costs a write barrier per pointer while the
// collector runs).
func (a *activation) release() {
	if a.cached() {
		*a = activation{}
	} else {
		a.in, a.argm, a.cost = nil, nil, 0
	}
	activations.Put(a)
}

// cached reports whether a CEL field read filled one of a's caches
// (strs, args, labels, spend, caps, now), however the program was
// evaluated, so that no cache outlives its call.
func (a *activation) cached() bool {
	if a.args.adapter != nil || a.spend.adapter != nil || a.caps.adapter != nil || a.labels != nil || a.now != nil {
		return true
	}
	for _, s := range a.strs {
		if s != nil {
			return true
		}
	}
	return false
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "call":
		return a, true
	case "usage":
		return &a.usage, true
	case "now":
		if a.now == nil {
			a.now = types.Timestamp{Time: a.in.Now}
		}
		return a.now, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// The activation is the CEL value of call.

func (a *activation) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("policy: call cannot be converted to %v", t)
}
func (a *activation) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return callType
	}
	return types.NewErr("policy: call cannot be converted to %v", t)
}
func (a *activation) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(a)) }
func (a *activation) Type() ref.Type              { return callType }
func (a *activation) Value() any                  { return a }

// usageVal is the CEL value of usage.
type usageVal struct{ a *activation }

func (u *usageVal) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("policy: usage cannot be converted to %v", t)
}
func (u *usageVal) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return usageType
	}
	return types.NewErr("policy: usage cannot be converted to %v", t)
}
func (u *usageVal) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(u)) }
func (u *usageVal) Type() ref.Type              { return usageType }
func (u *usageVal) Value() any                  { return u }

var (
	envOnce sync.Once
	envVal  *cel.Env
	envErr  error
)

// celEnv returns the shared CEL environment of every policy. A cel.Env is
// safe for concurrent use once built.
func celEnv() (*cel.Env, error) {
	envOnce.Do(func() {
		// Libraries that register types go first: the provider that adds
		// call and usage wraps the registry they filled.
		base, err := cel.NewEnv(cel.OptionalTypes(), ext.Strings())
		if err != nil {
			envErr = err
			return
		}
		p := newProvider(base.CELTypeProvider(), base.CELTypeAdapter())
		opts := []cel.EnvOption{
			cel.CustomTypeProvider(p),
			cel.Variable("call", callType),
			cel.Variable("usage", usageType),
			cel.Variable("now", types.TimestampType),
			cel.CrossTypeNumericComparisons(true),
			cel.ParserRecursionLimit(MaxNesting),
			cel.ParserExpressionSizeLimit(MaxExprSize),
			cel.ASTValidators(cel.ValidateComprehensionNestingLimit(2)),
		}
		opts = append(opts, helperFunctions()...)
		opts = append(opts, searchFunctions()...)
		envVal, envErr = base.Extend(opts...)
	})
	return envVal, envErr
}

package policy

import (
	"reflect"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// nativeMap is a CEL map over a Go map with string keys, read in place:
// lookups convert only the value they return. It lives inside an
// activation, so reading call.args or usage.spend allocates nothing for
// the map itself. The rarer operations (iteration, equality, conversion)
// go through cel-go's own map over the same Go map.
type nativeMap[V any] struct {
	m       map[string]V
	conv    func(V) ref.Val // nil: the adapter converts
	adapter types.Adapter
	// The last value found, by key: rules of one decision often read the
	// same entry.
	lastKey string
	last    ref.Val
}

var _ traits.Mapper = (*nativeMap[any])(nil)

func (n *nativeMap[V]) full() traits.Mapper {
	m := n.m
	if m == nil {
		m = map[string]V{}
	}
	return types.NewDynamicMap(n.adapter, m)
}

// Find implements traits.Mapper.
func (n *nativeMap[V]) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		if types.IsUnknownOrError(key) {
			return key, false
		}
		return nil, false
	}
	if n.last != nil && n.lastKey == string(k) {
		return n.last, true
	}
	v, ok := n.m[string(k)]
	if !ok {
		return nil, false
	}
	var val ref.Val
	if n.conv == nil {
		val = n.adapter.NativeToValue(v)
	} else {
		val = n.conv(v)
	}
	n.lastKey, n.last = string(k), val
	return val, true
}

// Get implements traits.Indexer.
func (n *nativeMap[V]) Get(key ref.Val) ref.Val {
	v, found := n.Find(key)
	if found {
		return v
	}
	if v != nil { // unknown or error
		return v
	}
	return types.ValOrErr(key, "no such key: %v", key)
}

// Contains implements traits.Container.
func (n *nativeMap[V]) Contains(key ref.Val) ref.Val {
	v, found := n.Find(key)
	if !found && v != nil {
		return v
	}
	return types.Bool(found)
}

// Size implements traits.Sizer.
func (n *nativeMap[V]) Size() ref.Val { return types.Int(len(n.m)) }

// Iterator implements traits.Iterable.
func (n *nativeMap[V]) Iterator() traits.Iterator { return n.full().Iterator() }

// ConvertToNative implements ref.Val.
func (n *nativeMap[V]) ConvertToNative(t reflect.Type) (any, error) {
	return n.full().ConvertToNative(t)
}

// ConvertToType implements ref.Val.
func (n *nativeMap[V]) ConvertToType(t ref.Type) ref.Val { return n.full().ConvertToType(t) }

// Equal implements ref.Val.
func (n *nativeMap[V]) Equal(other ref.Val) ref.Val { return n.full().Equal(other) }

// Type implements ref.Val.
func (n *nativeMap[V]) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (n *nativeMap[V]) Value() any { return n.m }

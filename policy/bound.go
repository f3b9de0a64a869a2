package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// Bounds on what one evaluation may read. A rule whose worst cost does
// not depend on the size of its input (comparisons, field tests, string
// tests against constants) runs on arguments of any size. Before a rule
// whose cost does (it is then tracked against CostLimit and the call's
// deadline) runs for a call, Decide checks the call's arguments against
// these bounds and denies a call whose arguments are larger, with an error
// matching ErrArgsTooLarge: the policy must see exactly what the tool
// receives, and it cannot read unbounded input in bounded time.
const (
	// MaxArgString is the longest string, in bytes, anywhere in a call's
	// arguments (a value or a key).
	MaxArgString = 256 << 10
	// MaxArgsSize is the largest a call's arguments may be in all, in
	// bytes: strings and keys by their length, other values as 8 bytes.
	MaxArgsSize = 1 << 20
	// maxArgsDepth bounds how deeply arguments may nest.
	maxArgsDepth = 64
)

// ErrArgsTooLarge is matched by the error of a decision that denied a call
// because its arguments are larger than MaxArgString or MaxArgsSize allow.
var ErrArgsTooLarge = errors.New("policy: arguments too large to evaluate")

// argsFit reports whether args are within MaxArgString, MaxArgsSize and
// the nesting bound. It allocates nothing: it runs on every decision.
func argsFit(args map[string]any) bool {
	size := 0
	for k, v := range args {
		if len(k) > MaxArgString || !valueFits(v, 1, &size) {
			return false
		}
		size += len(k)
	}
	return size <= MaxArgsSize
}

func valueFits(v any, depth int, size *int) bool {
	if depth > maxArgsDepth {
		return false
	}
	switch v := v.(type) {
	case string:
		if len(v) > MaxArgString {
			return false
		}
		*size += len(v)
	case map[string]any:
		for k, x := range v {
			if len(k) > MaxArgString || !valueFits(x, depth+1, size) {
				return false
			}
			*size += len(k)
		}
	case []any:
		for _, x := range v {
			if !valueFits(x, depth+1, size) {
				return false
			}
		}
	default:
		*size += 8
	}
	return *size <= MaxArgsSize
}

// argsTooLarge reports the first bound args break, as a reason that names
// where (never a value), or "" when they fit.
func argsTooLarge(args map[string]any) string {
	size := 0
	var path []string
	var walk func(v any, depth int) string
	check := func(s string, what string) string {
		size += len(s)
		if len(s) > MaxArgString {
			return fmt.Sprintf("%s %s is %d bytes, more than the %d the policy reads", what, argPath(path), len(s), MaxArgString)
		}
		return ""
	}
	walk = func(v any, depth int) string {
		if depth > maxArgsDepth {
			return fmt.Sprintf("the arguments nest deeper than %d levels at %s", maxArgsDepth, argPath(path))
		}
		switch v := v.(type) {
		case string:
			if r := check(v, "the string"); r != "" {
				return r
			}
		case map[string]any:
			for k, x := range v {
				path = append(path, k)
				r := check(k, "the key at")
				if r == "" {
					r = walk(x, depth+1)
				}
				path = path[:len(path)-1]
				if r != "" {
					return r
				}
			}
		case []any:
			for _, x := range v {
				path = append(path, "[]")
				r := walk(x, depth+1)
				path = path[:len(path)-1]
				if r != "" {
					return r
				}
			}
		default:
			size += 8
		}
		if size > MaxArgsSize {
			return fmt.Sprintf("the arguments are more than %d bytes, more than the policy reads", MaxArgsSize)
		}
		return ""
	}
	for k, v := range args {
		path = append(path[:0], k)
		if r := check(k, "the key at"); r != "" {
			return r
		}
		if r := walk(v, 1); r != "" {
			return r
		}
	}
	return ""
}

// argPath writes a path as call.args.a.b[].c.
func argPath(path []string) string {
	var b strings.Builder
	b.WriteString("call.args")
	for _, p := range path {
		if p != "[]" {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// searchFunctions replaces the implementations of ext.Strings' indexOf
// and lastIndexOf, which compare rune by rune in time proportional to the
// product of the lengths (two 120 KB strings took seconds), with searches
// in linear time that give the same answers. Their cost is still charged
// as ext.Strings estimates it.
func searchFunctions() []cel.EnvOption {
	str2 := []*cel.Type{cel.StringType, cel.StringType}
	str2int := []*cel.Type{cel.StringType, cel.StringType, cel.IntType}
	return []cel.EnvOption{
		cel.Function("indexOf",
			cel.MemberOverload("string_index_of_string", str2, cel.IntType,
				cel.BinaryBinding(func(s, sub ref.Val) ref.Val {
					return intOrErr(indexOf(string(s.(types.String)), string(sub.(types.String)), 0))
				})),
			cel.MemberOverload("string_index_of_string_int", str2int, cel.IntType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					return intOrErr(indexOf(string(args[0].(types.String)), string(args[1].(types.String)), int64(args[2].(types.Int))))
				}))),
		cel.Function("lastIndexOf",
			cel.MemberOverload("string_last_index_of_string", str2, cel.IntType,
				cel.BinaryBinding(func(s, sub ref.Val) ref.Val {
					return intOrErr(lastIndexOf(string(s.(types.String)), string(sub.(types.String))))
				})),
			cel.MemberOverload("string_last_index_of_string_int", str2int, cel.IntType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					return intOrErr(lastIndexOfOffset(string(args[0].(types.String)), string(args[1].(types.String)), int64(args[2].(types.Int))))
				}))),
	}
}

func intOrErr(i int64, err error) ref.Val {
	if err != nil {
		return types.WrapErr(err)
	}
	return types.Int(i)
}

// runeSafe returns s with each byte of invalid UTF-8 replaced by U+FFFD,
// as []rune(s) reads it, so that a byte search finds what a rune search
// does (valid UTF-8 matches only at rune boundaries).
func runeSafe(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += n
	}
	return b.String()
}

// runeByte returns the byte offset of rune k of s (k ≤ its rune count).
func runeByte(s string, k int64) int {
	i := 0
	for ; k > 0 && i < len(s); k-- {
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
	}
	return i
}

// indexOf is ext.Strings' indexOfOffset: the rune index of the first sub
// in str at or after rune off.
func indexOf(str, sub string, off int64) (int64, error) {
	if off < 0 {
		return -1, fmt.Errorf("index out of range: %d", off)
	}
	str, sub = runeSafe(str), runeSafe(sub)
	n := int64(utf8.RuneCountInString(str))
	if sub == "" {
		return min(off, n), nil
	}
	if off >= n {
		return -1, nil
	}
	b := runeByte(str, off)
	i := strings.Index(str[b:], sub)
	if i < 0 {
		return -1, nil
	}
	return off + int64(utf8.RuneCountInString(str[b:b+i])), nil
}

// lastIndexOf is ext.Strings' lastIndexOf.
func lastIndexOf(str, sub string) (int64, error) {
	n := int64(utf8.RuneCountInString(str))
	if sub == "" {
		return n, nil
	}
	if len(str) < len(sub) {
		return -1, nil
	}
	return lastIndexOfOffset(str, sub, n-1)
}

// lastIndexOfOffset is ext.Strings' lastIndexOfOffset: the rune index of
// the last sub in str that starts at or before rune off.
func lastIndexOfOffset(str, sub string, off int64) (int64, error) {
	if off < 0 {
		return -1, fmt.Errorf("index out of range: %d", off)
	}
	str, sub = runeSafe(str), runeSafe(sub)
	n := int64(utf8.RuneCountInString(str))
	if sub == "" {
		return min(off, n), nil
	}
	if off >= n {
		return -1, nil
	}
	m := int64(utf8.RuneCountInString(sub))
	off = min(off, n-m)
	if off < 0 {
		return -1, nil
	}
	b := runeByte(str, off)
	end := min(b+len(sub), len(str))
	i := strings.LastIndex(str[:end], sub)
	if i < 0 {
		return -1, nil
	}
	return int64(utf8.RuneCountInString(str[:i])), nil
}

// unpriced are the functions of ext.Strings the static cost estimate
// charges as one step whatever their input: an expression that calls one
// is tracked at run time.
var unpriced = map[string]bool{
	"charAt": true, "format": true, "join": true, "lowerAscii": true, "upperAscii": true,
	"quote": true, "strings.quote": true, "reverse": true, "split": true, "substring": true, "trim": true,
}

// callsUnpriced reports whether e calls a function of unpriced.
func callsUnpriced(e celast.Expr) bool {
	found := false
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() == celast.CallKind && unpriced[e.AsCall().FunctionName()] {
			found = true
		}
	}))
	return found
}

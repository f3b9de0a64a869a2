package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is the sentinel every load error unwraps to: a policy file or
// Spec that is not a valid policy. Test for it with errors.Is.
var ErrInvalid = errors.New("policy: invalid policy")

// ErrEval is the sentinel every evaluation error unwraps to: a rule that
// failed while deciding a call, which denied the call.
var ErrEval = errors.New("policy: evaluation failed")

// Error is one problem found in a policy: where it is and what is wrong.
// It unwraps to ErrInvalid.
type Error struct {
	File string // the file name given to Parse or Load; empty for Compile
	Line int    // 1-based line in the file; 0 when unknown
	Col  int    // 1-based column in the file; 0 when unknown
	// Item names the part of the policy at fault: `rule "name"`,
	// `limit #2`, `budget "daily"`, `cost #1`, `breaker "b"`; empty for
	// the file as a whole.
	Item string
	// Rule is the rule's name when a rule is at fault.
	Rule string
	// Field is the field at fault ("match", "effect", "rate", …).
	Field string
	// ExprLine and ExprCol locate the problem inside a CEL expression,
	// 1-based; 0 when the problem is not inside an expression.
	ExprLine, ExprCol int
	// Msg says what is wrong.
	Msg string
}

// Error returns, for example:
//
//	policy: bad.yaml:3:12: rule "x": match: at 1:1: undeclared reference to 'cal'
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("policy: ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
		}
		b.WriteString(": ")
	}
	if e.Item != "" {
		b.WriteString(e.Item)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	if e.ExprLine > 0 {
		fmt.Fprintf(&b, "at %d:%d: ", e.ExprLine, e.ExprCol)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// ErrorList is every problem found in a policy, in the order of the file.
// A policy with any problem is rejected whole. It unwraps to its errors
// (and so to ErrInvalid).
type ErrorList []*Error

// Error returns one line per problem.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors of the list.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Is reports whether target is ErrInvalid.
func (l ErrorList) Is(target error) bool { return target == ErrInvalid }

// EvalError is why a rule denied a call when it failed to evaluate: an
// error, a non-bool result, a cost over CostLimit, or the end of the
// context. It unwraps to ErrEval and to its cause (so errors.Is(err,
// context.Canceled) works for a cancelled context).
type EvalError struct {
	Rule string // the failing rule; empty when no rule was reached
	Err  error
}

// Error returns "policy: rule "name": evaluation failed: cause".
func (e *EvalError) Error() string {
	if e.Rule == "" {
		return "policy: evaluation failed: " + e.Err.Error()
	}
	return fmt.Sprintf("policy: rule %q: evaluation failed: %v", e.Rule, e.Err)
}

// Unwrap returns ErrEval and the cause.
func (e *EvalError) Unwrap() []error { return []error{ErrEval, e.Err} }

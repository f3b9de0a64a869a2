package approval

import (
	"errors"
	"strings"
	"time"
)

// Sentinels for the ways a request is refused. Every error the Gate
// returns from Ask is a *RefusedError that unwraps to exactly one of them.
var (
	// ErrRejected: the approver said no.
	ErrRejected = errors.New("approval: rejected")
	// ErrTimeout: no accepted verdict before the deadline.
	ErrTimeout = errors.New("approval: timed out")
	// ErrMismatch: the verdict answers another request (its ID is not
	// this request's, or it names none).
	ErrMismatch = errors.New("approval: verdict does not match the request")
	// ErrForged: the verdict names this request but carries another
	// call's hash: it was not made from this request's card (forged,
	// tampered with, or made from an edited card).
	ErrForged = errors.New("approval: verdict hash is not the request's")
	// ErrReused: the verdict, or the request, was already used once.
	ErrReused = errors.New("approval: verdict or request already used")
	// ErrCancelled: the caller's context ended while waiting. The error
	// also unwraps to the context's cause (context.Cause).
	ErrCancelled = errors.New("approval: cancelled")
	// ErrApprover: the approver, or the grant store, failed.
	ErrApprover = errors.New("approval: approver failed")
	// ErrInvalid: the request cannot be asked (no ID, no tool, bad hash).
	ErrInvalid = errors.New("approval: invalid request")
)

// RefusedError is why the Gate refused a request. It unwraps to one of
// the sentinels (Reason) and to the underlying cause, if any.
type RefusedError struct {
	Reason   error  // one of the sentinels above
	ID       string // the request
	Tool     string
	By       string    // who decided, for a rejection
	Note     string    // their note, for a rejection
	Deadline time.Time // for a timeout
	Detail   string    // what was wrong, for a mismatch, forgery or invalid request
	Err      error     // the cause: the approver's or store's error, the context's cause
}

// Error describes the refusal. It never includes arguments.
func (e *RefusedError) Error() string {
	var b strings.Builder
	b.WriteString(e.Reason.Error())
	if e.ID != "" {
		b.WriteString(": request ")
		b.WriteString(e.ID)
	}
	if e.By != "" {
		b.WriteString(" by ")
		b.WriteString(e.By)
	}
	if e.Note != "" {
		b.WriteString(": ")
		b.WriteString(e.Note)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Reason and Err.
func (e *RefusedError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Reason, e.Err}
	}
	return []error{e.Reason}
}

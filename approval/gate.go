package approval

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultTimeout is how long the Gate waits for a verdict when neither the
// request nor Options set a deadline.
const DefaultTimeout = 5 * time.Minute

// DefaultMaxGrant is the longest a grant lasts when Options leave MaxGrant
// zero.
const DefaultMaxGrant = 24 * time.Hour

// Options configure a Gate. The zero value is usable: a five-minute
// timeout, grants of at most a day, an in-memory store, the system clock.
type Options struct {
	// Timeout is how long to wait for a verdict when a request has no
	// deadline of its own. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxGrant caps the duration of grants. Zero means DefaultMaxGrant.
	MaxGrant time.Duration
	// Store keeps grants. Nil means a new in-memory store.
	Store Store
	// Clock returns the current time. Nil means time.Now. Waiting uses
	// timers (fake them with testing/synctest); the clock decides the
	// timestamps, grant expiry, and whether a verdict arrived too late.
	Clock func() time.Time
}

// Outcome is an accepted approval.
type Outcome struct {
	// Verdict is the approver's verdict; zero when a grant covered the call.
	Verdict Verdict
	// Permit is the grant that covered the call (Covered is true) or the
	// grant the verdict created; nil when neither.
	Permit  *Permit
	Covered bool
}

// Gate asks an Approver and enforces its answer: a verdict counts only for
// the request and hash it names, only once, and only before the deadline;
// anything else refuses the request. It remembers grants and lets the
// calls they cover skip the wait.
//
// A Gate is safe for concurrent use; many requests may wait at once, and
// each verdict reaches only its own request.
type Gate struct {
	a        Approver
	timeout  time.Duration
	maxGrant time.Duration
	store    Store
	clock    func() time.Time

	mu        sync.Mutex
	asked     map[string]time.Time // request ID → when to forget it
	nextPrune int
}

// NewGate returns a Gate that asks a.
func NewGate(a Approver, opts Options) (*Gate, error) {
	if a == nil {
		return nil, errors.New("approval: NewGate: nil Approver")
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("approval: NewGate: negative Timeout %s", opts.Timeout)
	}
	if opts.MaxGrant < 0 {
		return nil, fmt.Errorf("approval: NewGate: negative MaxGrant %s", opts.MaxGrant)
	}
	g := &Gate{a: a, timeout: opts.Timeout, maxGrant: opts.MaxGrant, store: opts.Store, clock: opts.Clock,
		asked: map[string]time.Time{}, nextPrune: 1024}
	if g.timeout == 0 {
		g.timeout = DefaultTimeout
	}
	if g.maxGrant == 0 {
		g.maxGrant = DefaultMaxGrant
	}
	if g.store == nil {
		g.store = NewMem()
	}
	if g.clock == nil {
		g.clock = time.Now
	}
	return g, nil
}

// Timeout returns the default wait of g.
func (g *Gate) Timeout() time.Duration { return g.timeout }

// Now returns the time by g's clock: set a request's Created and Deadline
// from it.
func (g *Gate) Now() time.Time { return g.clock() }

type answer struct {
	v   Verdict
	err error
}

var errDeadline = errors.New("approval: deadline passed")

// Ask returns an Outcome when r is approved, by a live grant or by a
// verdict bound to r, and otherwise a *RefusedError. It fills r's Hash
// (from Tool, Args and Principal), Created and Deadline when they are
// zero; a request without a deadline waits the Gate's Timeout.
//
// Ask refuses when the approver rejects, fails, panics or answers too
// late, when its verdict names another request (ErrMismatch) or another
// call's hash (ErrForged), when r was asked
// before, and when ctx ends (the error then unwraps to context.Cause(ctx)).
func (g *Gate) Ask(ctx context.Context, r *Request) (Outcome, error) {
	if r == nil {
		return Outcome{}, &RefusedError{Reason: ErrInvalid, Detail: "nil request"}
	}
	refuse := func(reason error, detail string, err error) (Outcome, error) {
		return Outcome{}, &RefusedError{Reason: reason, ID: r.ID, Tool: r.Tool, Detail: detail, Err: err}
	}
	if r.ID == "" || r.Tool == "" {
		return refuse(ErrInvalid, "request needs an ID and a tool", nil)
	}
	if r.Hash == "" {
		h, err := HashCall(r.Tool, r.Args, r.Principal)
		if err != nil {
			return refuse(ErrInvalid, "cannot hash the call", err)
		}
		r.Hash = h
	} else if !validHash(r.Hash) {
		return refuse(ErrInvalid, "hash is not 64 lowercase hex digits", nil)
	}
	if err := context.Cause(ctx); err != nil {
		return refuse(ErrCancelled, "", err)
	}
	now := g.clock()
	if r.Created.IsZero() {
		r.Created = now
	}
	if r.Deadline.IsZero() {
		r.Deadline = now.Add(g.timeout)
	}

	// A live grant skips the wait.
	p, err := g.covering(ctx, r, now)
	if err != nil {
		return refuse(ErrApprover, "grant store", err)
	}
	if p != nil {
		return Outcome{Permit: p, Covered: true}, nil
	}

	// Only once: a request ID is put to the approver at most once.
	if !g.markAsked(r.ID, r.Deadline.Add(g.timeout), now) {
		return refuse(ErrReused, "request was already asked", nil)
	}

	wait := r.Deadline.Sub(now)
	if wait <= 0 {
		return Outcome{}, &RefusedError{Reason: ErrTimeout, ID: r.ID, Tool: r.Tool, Deadline: r.Deadline}
	}
	wctx, cancel := context.WithTimeoutCause(ctx, wait, errDeadline)
	defer cancel()

	card := *r // the approver gets its own copy; ours decides
	ch := make(chan answer, 1)
	go func() {
		defer func() {
			if x := recover(); x != nil {
				ch <- answer{err: fmt.Errorf("approval: approver panicked: %v", x)}
			}
		}()
		v, err := g.a.Approve(wctx, &card)
		ch <- answer{v, err}
	}()

	var ans answer
	select {
	case ans = <-ch:
	case <-wctx.Done():
	}
	// Whatever arrived, the context decides first: a cancelled call is
	// cancelled, a late verdict is late.
	if ctx.Err() != nil {
		return refuse(ErrCancelled, "", context.Cause(ctx))
	}
	if wctx.Err() != nil || g.clock().After(r.Deadline) {
		return Outcome{}, &RefusedError{Reason: ErrTimeout, ID: r.ID, Tool: r.Tool, Deadline: r.Deadline}
	}
	if ans.err != nil {
		return refuse(ErrApprover, "", ans.err)
	}
	v := ans.v
	if v.ID != r.ID {
		if v.ID != "" && g.wasAsked(v.ID) {
			return refuse(ErrReused, fmt.Sprintf("verdict answers request %q", v.ID), nil)
		}
		return refuse(ErrMismatch, fmt.Sprintf("verdict answers request %q", v.ID), nil)
	}
	if v.Hash != r.Hash {
		return refuse(ErrForged, "verdict answers another call hash", nil)
	}
	if !v.Approved {
		return Outcome{}, &RefusedError{Reason: ErrRejected, ID: r.ID, Tool: r.Tool, By: v.By, Note: v.Note}
	}
	out := Outcome{Verdict: v}
	if gr := v.Grant; gr != nil && gr.Scope != ScopeCall && gr.Duration > 0 {
		if gr.Scope > ScopeAgent {
			return refuse(ErrInvalid, fmt.Sprintf("verdict grants unknown scope %d", gr.Scope), nil)
		}
		d := min(gr.Duration, g.maxGrant)
		now := g.clock()
		p := Permit{ID: rand.Text(), Scope: gr.Scope, Agent: r.Principal.Agent, Tenant: r.Principal.Tenant,
			By: v.By, Note: v.Note, Request: r.ID, Created: now, Expires: now.Add(d)}
		switch gr.Scope {
		case ScopeSameArgs:
			p.Hash = r.Hash
			p.Tool = r.Tool
		case ScopeTool:
			p.Tool = r.Tool
		}
		if err := g.store.Put(context.WithoutCancel(ctx), p); err != nil {
			return refuse(ErrApprover, "storing the grant", err)
		}
		out.Permit = &p
	}
	return out, nil
}

// markAsked records id as asked, until forget; it reports false when id
// was asked before.
func (g *Gate) markAsked(id string, forget, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.asked[id]; ok {
		return false
	}
	if len(g.asked) >= g.nextPrune {
		for k, t := range g.asked {
			if now.After(t) {
				delete(g.asked, k)
			}
		}
		g.nextPrune = 2*len(g.asked) + 1024
	}
	g.asked[id] = forget
	return true
}

func (g *Gate) wasAsked(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.asked[id]
	return ok
}

// covering returns a live permit that covers r, dropping expired ones it
// meets on the way.
func (g *Gate) covering(ctx context.Context, r *Request, now time.Time) (*Permit, error) {
	ps, err := g.store.List(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		p := &ps[i]
		if !now.Before(p.Expires) {
			_ = g.store.Delete(context.WithoutCancel(ctx), p.ID) // best effort: expired permits never match
			continue
		}
		if p.Covers(r, now) {
			return p, nil
		}
	}
	return nil, nil
}

// Grants returns the live grants, by creation time.
func (g *Gate) Grants(ctx context.Context) ([]Permit, error) {
	ps, err := g.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("approval: listing grants: %w", err)
	}
	now := g.clock()
	live := ps[:0]
	for _, p := range ps {
		if now.Before(p.Expires) {
			live = append(live, p)
		}
	}
	return live, nil
}

// Revoke removes the grant id; the next call it would have covered waits
// for a verdict again. It returns an error matching ErrNoGrant when there
// is no such grant.
func (g *Gate) Revoke(ctx context.Context, id string) error {
	if err := g.store.Delete(ctx, id); err != nil {
		return fmt.Errorf("approval: revoking grant: %w", err)
	}
	return nil
}

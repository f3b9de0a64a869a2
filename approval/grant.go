package approval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrNoGrant is returned when revoking a grant that does not exist.
var ErrNoGrant = errors.New("approval: no such grant")

// Permit is a grant in force: a remembered approval that lets calls in
// its scope skip the wait until it expires.
type Permit struct {
	ID    string `json:"id"`
	Scope Scope  `json:"scope"`
	// What the permit covers: Hash for ScopeSameArgs; Tool, Agent and
	// Tenant for ScopeTool; Agent and Tenant for ScopeAgent.
	Tool   string `json:"tool,omitempty"`
	Hash   string `json:"hash,omitempty"`
	Agent  string `json:"agent"`
	Tenant string `json:"tenant"`
	// Who granted it, their note, and the request whose verdict created it.
	By      string    `json:"by"`
	Note    string    `json:"note,omitempty"`
	Request string    `json:"request"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// Covers reports whether p lets r skip the wait at time now.
func (p *Permit) Covers(r *Request, now time.Time) bool {
	if !now.Before(p.Expires) {
		return false
	}
	switch p.Scope {
	case ScopeSameArgs:
		return p.Hash != "" && p.Hash == r.Hash
	case ScopeTool:
		return p.Tool == r.Tool && p.Agent == r.Principal.Agent && p.Tenant == r.Principal.Tenant
	case ScopeAgent:
		return p.Agent == r.Principal.Agent && p.Tenant == r.Principal.Tenant
	}
	return false
}

// Store persists permits. The Gate holds the logic (matching, expiry,
// revocation); a store only keeps them. Implementations must be safe for
// concurrent use.
type Store interface {
	// Put adds p, or replaces the permit with the same ID.
	Put(ctx context.Context, p Permit) error
	// List returns every stored permit, live or expired, in a stable
	// order (by Created, then ID).
	List(ctx context.Context) ([]Permit, error)
	// Delete removes the permit with the given ID, or returns an error
	// matching ErrNoGrant when there is none.
	Delete(ctx context.Context, id string) error
}

// Mem is the in-memory Store, the default. Its zero value is an empty
// store ready to use. It is safe for concurrent use.
type Mem struct {
	mu sync.Mutex
	m  map[string]Permit
}

var _ Store = (*Mem)(nil)

// NewMem returns an empty in-memory store.
func NewMem() *Mem { return &Mem{} }

// Put adds or replaces p.
func (s *Mem) Put(_ context.Context, p Permit) error {
	if p.ID == "" {
		return errors.New("approval: permit without ID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Permit{}
	}
	s.m[p.ID] = p
	return nil
}

// List returns all permits by Created, then ID.
func (s *Mem) List(_ context.Context) ([]Permit, error) {
	s.mu.Lock()
	out := make([]Permit, 0, len(s.m))
	for _, p := range s.m {
		out = append(out, p)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Permit) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out, nil
}

// Delete removes the permit id.
func (s *Mem) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		return fmt.Errorf("%w: %q", ErrNoGrant, id)
	}
	delete(s.m, id)
	return nil
}

package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hardstop-labs/agentguard/approval"
)

// Grants is the approval.Store of a fleet: a grant given through any
// process covers the calls of every process. Pass it as
// approval.Options.Store. A Grants is safe for concurrent use.
type Grants struct {
	db *DB
}

var _ approval.Store = (*Grants)(nil)

// Grants returns the grant store kept in db.
func (db *DB) Grants() *Grants { return &Grants{db: db} }

// Put adds p, or replaces the permit with the same ID.
func (g *Grants) Put(ctx context.Context, p approval.Permit) error {
	ctx, cancel := g.db.bound(ctx)
	defer cancel()
	if p.ID == "" {
		return errors.New("approval: postgres: permit without ID")
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("approval: postgres: %w", err)
	}
	_, err = g.db.pool.Exec(ctx, `INSERT INTO approval_grants (id, created, permit) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET created = excluded.created, permit = excluded.permit`, p.ID, p.Created, b)
	if err != nil {
		return fmt.Errorf("approval: postgres: put grant: %w", err)
	}
	return nil
}

// List returns every stored permit by Created, then ID.
func (g *Grants) List(ctx context.Context) ([]approval.Permit, error) {
	ctx, cancel := g.db.bound(ctx)
	defer cancel()
	rows, err := g.db.pool.Query(ctx, `SELECT permit FROM approval_grants ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("approval: postgres: list grants: %w", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (approval.Permit, error) {
		var p approval.Permit
		var b []byte
		if err := r.Scan(&b); err != nil {
			return p, err
		}
		return p, json.Unmarshal(b, &p)
	})
	if err != nil {
		return nil, fmt.Errorf("approval: postgres: list grants: %w", err)
	}
	return ps, nil
}

// Delete removes the permit id.
func (g *Grants) Delete(ctx context.Context, id string) error {
	ctx, cancel := g.db.bound(ctx)
	defer cancel()
	tag, err := g.db.pool.Exec(ctx, `DELETE FROM approval_grants WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("approval: postgres: delete grant: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("approval: postgres: %w: %q", approval.ErrNoGrant, id)
	}
	return nil
}

// Errors of Approvals.Answer: the approval package's, so that an
// approval.Inbox over Approvals tells them apart.
var (
	// ErrNotPending means no call waits for the request: unknown,
	// answered already, or past its deadline.
	ErrNotPending = approval.ErrNotPending
	// ErrHashMismatch means the answer names another call's hash.
	ErrHashMismatch = approval.ErrHashMismatch
)

// Approvals is an approval.Approver whose requests wait in the database
// until someone answers them through any process (Approvals.Answer, the
// `agentguard approvals approve --postgres` command, the webhook's
// callback, or a web inbox: approval.NewInbox with InboxOptions.Pending
// set to it lists the fleet's waiting cards and answers them under the
// identity the inbox verified): the fleet's inbox.
// The answer reaches the waiting call by LISTEN/NOTIFY, or by polling
// every PollInterval when the notification is lost; it is taken exactly
// once. Put it behind an approval.Gate (agentguard.WithApprover), which
// checks that the verdict names the request and hash, and its deadline.
// An Approvals is safe for concurrent use.
type Approvals struct {
	db *DB
	// PollInterval is how often a waiting call re-reads its request when
	// no notification came; zero means 2 seconds.
	PollInterval time.Duration
	// Announce, when set, is called once a card waits in the database,
	// before the wait, to tell people about it: post it to a chat, or to
	// a webhook (PostWebhook), whose callback any process of the fleet
	// takes (WebhookHandler). Its error refuses the request.
	Announce func(ctx context.Context, r *approval.Request) error

	mu      sync.Mutex
	waiters map[string]chan struct{}
	running bool
}

var (
	_ approval.Approver     = (*Approvals)(nil)
	_ approval.PendingStore = (*Approvals)(nil)
)

// Approvals returns the fleet's approval inbox kept in db.
func (db *DB) Approvals() *Approvals { return &Approvals{db: db, waiters: map[string]chan struct{}{}} }

// Approve puts r in the database and waits for an answer or the end of
// ctx; then the request is removed.
func (a *Approvals) Approve(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
	card, err := json.Marshal(r)
	if err != nil {
		return approval.Verdict{}, fmt.Errorf("approval: postgres: card: %w", err)
	}
	deadline := r.Deadline
	if deadline.IsZero() {
		if dl, ok := ctx.Deadline(); ok {
			deadline = dl
		} else {
			deadline = time.Now().Add(approval.DefaultTimeout)
		}
	}
	created := r.Created
	if created.IsZero() {
		created = time.Now()
	}
	wake := a.register(r.ID)
	defer a.unregister(r.ID)
	if _, err := a.db.pool.Exec(ctx, `INSERT INTO approval_pending (id, hash, card, created, deadline) VALUES ($1, $2, $3, $4, $5)`,
		r.ID, r.Hash, card, created, deadline); err != nil {
		return approval.Verdict{}, fmt.Errorf("approval: postgres: request %q: %w", r.ID, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		a.db.pool.Exec(cctx, `DELETE FROM approval_pending WHERE id = $1`, r.ID)
	}()
	a.ensureListener()
	if a.Announce != nil {
		if err := a.Announce(ctx, r); err != nil {
			return approval.Verdict{}, fmt.Errorf("approval: postgres: announcing %q: %w", r.ID, err)
		}
	}
	poll := a.PollInterval
	if poll <= 0 {
		poll = 2 * time.Second
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		var b []byte
		err := a.db.pool.QueryRow(ctx, `UPDATE approval_pending SET taken = true
			WHERE id = $1 AND answer IS NOT NULL AND NOT taken RETURNING answer`, r.ID).Scan(&b)
		switch {
		case err == nil:
			var v approval.Verdict
			if err := json.Unmarshal(b, &v); err != nil {
				return approval.Verdict{}, fmt.Errorf("approval: postgres: answer to %q: %w", r.ID, err)
			}
			return v, nil
		case !errors.Is(err, pgx.ErrNoRows):
			if ctx.Err() != nil {
				return approval.Verdict{}, context.Cause(ctx)
			}
			return approval.Verdict{}, fmt.Errorf("approval: postgres: waiting for %q: %w", r.ID, err)
		}
		select {
		case <-ctx.Done():
			return approval.Verdict{}, context.Cause(ctx)
		case <-wake:
		case <-tick.C:
		}
	}
}

func (a *Approvals) register(id string) chan struct{} {
	ch := make(chan struct{}, 1)
	a.mu.Lock()
	a.waiters[id] = ch
	a.mu.Unlock()
	return ch
}

func (a *Approvals) unregister(id string) {
	a.mu.Lock()
	delete(a.waiters, id)
	a.mu.Unlock()
}

// ensureListener starts the goroutine that LISTENs for answers while
// calls wait, and stops when none does.
func (a *Approvals) ensureListener() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running {
		return
	}
	a.running = true
	go func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			// Stop listening once no call has waited for a while.
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for range t.C {
				a.mu.Lock()
				idle := len(a.waiters) == 0
				if idle {
					a.running = false
				}
				a.mu.Unlock()
				if idle {
					cancel()
					return
				}
			}
		}()
		a.db.listen(ctx, a.db.schema+".approval", func(id string) {
			a.mu.Lock()
			ch := a.waiters[id]
			a.mu.Unlock()
			if ch != nil {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}, func() {
			// Listening: wake every waiter, for answers given before.
			a.mu.Lock()
			for _, ch := range a.waiters {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
			a.mu.Unlock()
		})
		a.mu.Lock()
		a.running = false
		a.mu.Unlock()
	}()
}

// Pending returns the cards of the calls waiting for an answer, oldest
// first.
func (a *Approvals) Pending(ctx context.Context) ([]approval.Request, error) {
	ctx, cancel := a.db.bound(ctx)
	defer cancel()
	rows, err := a.db.pool.Query(ctx, `SELECT card FROM approval_pending
		WHERE answer IS NULL AND deadline > now() ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("approval: postgres: pending: %w", err)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (approval.Request, error) {
		var q approval.Request
		var b []byte
		if err := r.Scan(&b); err != nil {
			return q, err
		}
		return q, json.Unmarshal(b, &q)
	})
	if err != nil {
		return nil, fmt.Errorf("approval: postgres: pending: %w", err)
	}
	return rs, nil
}

// Answer answers the waiting request ans.ID, approving it when approve is
// true (with ans.Grant) and rejecting it otherwise. An answer is taken
// once: a second answer, an answer to a request no call waits for, or
// past its deadline, returns ErrNotPending; one whose hash is not the
// request's returns ErrHashMismatch.
func (a *Approvals) Answer(ctx context.Context, ans approval.Answer, approve bool) error {
	ctx, cancel := a.db.bound(ctx)
	defer cancel()
	v := approval.Verdict{Approved: approve, By: ans.By, Note: ans.Note, ID: ans.ID, Hash: ans.Hash}
	if approve {
		v.Grant = ans.Grant
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("approval: postgres: %w", err)
	}
	var hash string
	err = a.db.pool.QueryRow(ctx, `UPDATE approval_pending p SET answer = CASE WHEN p.hash = $2 THEN $3::jsonb END,
			answered = CASE WHEN p.hash = $2 THEN now() END
		WHERE p.id = $1 AND p.answer IS NULL AND p.deadline > now() RETURNING p.hash`, ans.ID, ans.Hash, b).Scan(&hash)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: %q", ErrNotPending, ans.ID)
	case err != nil:
		return fmt.Errorf("approval: postgres: answer %q: %w", ans.ID, err)
	case hash != ans.Hash:
		return fmt.Errorf("%w: %q", ErrHashMismatch, ans.ID)
	}
	return nil
}

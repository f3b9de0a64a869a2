package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hardstop-labs/agentguard/killswitch"
)

// KillStore is the kill switch of a fleet (a killswitch.Store and
// killswitch.Watcher): the trips in force, in one table, and a
// LISTEN/NOTIFY channel that tells every process at once when they
// change. Give it to agentguard.WithKillStore (or a
// killswitch.StoreTrigger); its Watch keeps one connection of the pool
// while it listens. A KillStore is safe for concurrent use.
type KillStore struct {
	db *DB
}

var (
	_ killswitch.Store   = (*KillStore)(nil)
	_ killswitch.Watcher = (*KillStore)(nil)
)

// KillStore returns the kill switch store kept in db.
func (db *DB) KillStore() *KillStore { return &KillStore{db: db} }

// channel is the notification channel of the schema's kill switch.
func (k *KillStore) channel() string { return k.db.schema + ".kill" }

// Trip records h, replacing the trip of the same scope.
func (k *KillStore) Trip(ctx context.Context, h killswitch.Halt) error {
	ctx, cancel := k.db.bound(ctx)
	defer cancel()
	_, err := k.db.pool.Exec(ctx, `INSERT INTO kill_trips (tenant, agent, tool, who, why, at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant, agent, tool) DO UPDATE SET who = excluded.who, why = excluded.why, at = excluded.at`,
		h.Scope.Tenant, h.Scope.Agent, h.Scope.Tool, h.Who, h.Why, h.At)
	if err != nil {
		return fmt.Errorf("killswitch: postgres: trip %s: %w", h.Scope, err)
	}
	return nil
}

// Resume removes the trip of exactly scope.
func (k *KillStore) Resume(ctx context.Context, scope killswitch.Scope) error {
	ctx, cancel := k.db.bound(ctx)
	defer cancel()
	tag, err := k.db.pool.Exec(ctx, `DELETE FROM kill_trips WHERE tenant = $1 AND agent = $2 AND tool = $3`,
		scope.Tenant, scope.Agent, scope.Tool)
	if err != nil {
		return fmt.Errorf("killswitch: postgres: resume %s: %w", scope, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("killswitch: postgres: resume %s: %w", scope, killswitch.ErrNotTripped)
	}
	return nil
}

// Trips returns the trips in force.
func (k *KillStore) Trips(ctx context.Context) ([]killswitch.Halt, error) {
	ctx, cancel := k.db.bound(ctx)
	defer cancel()
	rows, err := k.db.pool.Query(ctx, `SELECT tenant, agent, tool, who, why, at FROM kill_trips ORDER BY tenant, agent, tool`)
	if err != nil {
		return nil, fmt.Errorf("killswitch: postgres: trips: %w", err)
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (killswitch.Halt, error) {
		var h killswitch.Halt
		err := r.Scan(&h.Scope.Tenant, &h.Scope.Agent, &h.Scope.Tool, &h.Who, &h.Why, &h.At)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("killswitch: postgres: trips: %w", err)
	}
	return hs, nil
}

// Watch listens on the kill switch's channel on a connection of its own,
// calls changed once listening and after every change, and returns when
// ctx is done or the connection breaks.
func (k *KillStore) Watch(ctx context.Context, changed func()) error {
	return k.db.listen(ctx, k.channel(), func(string) { changed() }, changed)
}

// listen LISTENs on channel with a connection taken out of the pool (and
// closed at the end, so no pooled connection ever listens), calls
// listening once it listens and fn with the payload of each
// notification, until ctx is done or the connection fails.
func (db *DB) listen(ctx context.Context, channel string, fn func(payload string), listening func()) error {
	pc, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: listen %s: %w", channel, err)
	}
	conn := pc.Hijack()
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("postgres: listen %s: %w", channel, err)
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("postgres: listen %s: %w", channel, err)
		}
		fn(n.Payload)
	}
}

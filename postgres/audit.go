package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/hardstop-labs/agentguard/audit"
)

// AuditStore is the audit.Store of a fleet: an append-only table that
// every process extends with one chain per log ID. Give it to
// audit.OpenStore and the StoreLog to agentguard.WithAuditStore. An append
// is one transaction: it takes the log's advisory lock, reads the head,
// inserts the line the StoreLog built on it, and commits (durably, with
// the server's synchronous_commit). A trigger refuses UPDATE, DELETE and
// TRUNCATE, and an INSERT that does not extend the chain, so a role that
// may only INSERT (see the package documentation) cannot rewrite history
// or fork the chain. An AuditStore is safe for concurrent use.
type AuditStore struct {
	db *DB
}

var _ audit.Store = (*AuditStore)(nil)

// AuditStore returns the audit store kept in db.
func (db *DB) AuditStore() *AuditStore { return &AuditStore{db: db} }

// Append appends the line that line builds on the log's size and head.
func (s *AuditStore) Append(ctx context.Context, log string, line func(size uint64, head audit.Hash) ([]byte, error)) error {
	ctx, cancel := s.db.bound(ctx)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		var size int64
		var head []byte
		if err := tx.QueryRow(ctx, `SELECT size, head FROM audit_head($1)`, log).Scan(&size, &head); err != nil {
			return err
		}
		var h audit.Hash
		if head != nil && copy(h[:], head) != len(h) {
			return fmt.Errorf("head of %d bytes", len(head))
		}
		b, err := line(uint64(size), h)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit_log (log, seq, line) VALUES ($1, $2, $3)`, log, size, b)
		return err
	})
	if err != nil {
		return fmt.Errorf("audit: postgres: append to %s: %w", log, err)
	}
	return nil
}

// readBatch is how many lines Read fetches per query.
const readBatch = 1000

// Read calls fn with the lines of log from seq from on, fetching them in
// batches (constant memory).
func (s *AuditStore) Read(ctx context.Context, log string, from uint64, fn func(seq uint64, line []byte) error) error {
	next := int64(from)
	for {
		rows, err := s.db.pool.Query(ctx, `SELECT seq, line FROM audit_log WHERE log = $1 AND seq >= $2 ORDER BY seq LIMIT $3`,
			log, next, readBatch)
		if err != nil {
			return fmt.Errorf("audit: postgres: read %s: %w", log, err)
		}
		n := 0
		var seq int64
		var line []byte
		_, err = pgx.ForEachRow(rows, []any{&seq, &line}, func() error {
			if seq != next {
				return fmt.Errorf("audit: postgres: read %s: seq %d where %d was due", log, seq, next)
			}
			n++
			next++
			return fn(uint64(seq), line)
		})
		if err != nil {
			return err
		}
		if n < readBatch {
			return nil
		}
	}
}

// Logs returns the IDs of the logs in the table.
func (s *AuditStore) Logs(ctx context.Context) ([]string, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT DISTINCT log FROM audit_log ORDER BY log`)
	if err != nil {
		return nil, fmt.Errorf("audit: postgres: logs: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("audit: postgres: logs: %w", err)
	}
	return ids, nil
}

// CheckpointSink returns an audit.Sink that keeps every checkpoint in the
// append-only audit_checkpoints table: the database as the outside place
// of a file log's checkpoints, or a second copy of a store log's.
func (db *DB) CheckpointSink() audit.Sink {
	return audit.SinkFunc(func(ctx context.Context, c *audit.Checkpoint) error {
		_, err := db.pool.Exec(ctx, `INSERT INTO audit_checkpoints (log, size, head, at, note) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING`, c.Log, int64(c.Size), c.Head.String(), c.Time, string(c.Note))
		if err != nil {
			return fmt.Errorf("audit: postgres: checkpoint: %w", err)
		}
		return nil
	})
}

// LatestCheckpoint returns the note of the latest checkpoint of log kept
// by CheckpointSink, or nil when there is none.
func (db *DB) LatestCheckpoint(ctx context.Context, log string) ([]byte, error) {
	var note string
	err := db.pool.QueryRow(ctx, `SELECT note FROM audit_checkpoints WHERE log = $1 ORDER BY size DESC, at DESC LIMIT 1`, log).Scan(&note)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: postgres: checkpoint: %w", err)
	}
	return []byte(note), nil
}

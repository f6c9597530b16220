package sync

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// sweeperLockKey is the advisory lock that elects the one replica sweeping a
// cluster at a time (12.2). It guards only the sweeper, never requests.
const sweeperLockKey int64 = 0x73796e6373776565 // "syncswee"

// sweepBatch bounds the sessions deleted per statement.
const sweepBatch = 200

func (h *Handler) runSweeper(ctx context.Context) {
	t := time.NewTicker(h.cfg.SweepInterval)
	defer t.Stop()
	for {
		for _, pool := range h.cfg.Pools() {
			start := time.Now()
			err := h.sweepCluster(ctx, pool)
			if ctx.Err() != nil {
				return
			}
			h.cfg.Metrics.ObserveJob("session_sweeper", time.Since(start), err)
			if err != nil {
				h.cfg.Logger.Warn("sync: sweep expired sessions", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepCluster removes expired push and snapshot sessions of every tenant
// schema on pool, if this replica wins the cluster's sweeper lock.
func (h *Handler) sweepCluster(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire sweeper connection: %w", err)
	}
	defer conn.Release()
	var leader bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, sweeperLockKey).Scan(&leader); err != nil {
		return fmt.Errorf("elect sweeper: %w", err)
	}
	if !leader {
		return nil
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, sweeperLockKey) //nolint:errcheck

	rows, err := conn.Query(ctx, `SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
		WHERE c.relname = '_sync_push_session' AND c.relkind = 'r' AND n.nspname LIKE 't\_%' ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("list tenant schemas: %w", err)
	}
	var schemas []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return err
		}
		schemas = append(schemas, s)
	}
	rows.Close()
	for _, s := range schemas {
		for _, kind := range [][2]string{{"push", "push_id"}, {"snapshot", "snapshot_id"}} {
			// A few bounded rounds per tick; what remains waits for the next.
			for round := 0; round < 5; round++ {
				var n int64
				if err := conn.QueryRow(ctx, deleteSessionsSQL(s, kind[0], expiredWhere(kind[1], sweepBatch))).Scan(&n); err != nil {
					return fmt.Errorf("sweep %s sessions of %s: %w", kind[0], s, err)
				}
				if n < sweepBatch {
					break
				}
			}
		}
	}
	return nil
}

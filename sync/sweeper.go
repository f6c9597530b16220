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
		var push, snap int64
		for _, pool := range h.cfg.Pools() {
			start := time.Now()
			p, s, err := h.sweepCluster(ctx, pool)
			push, snap = push+p, snap+s
			if ctx.Err() != nil {
				return
			}
			h.cfg.Metrics.ObserveJob("session_sweeper", time.Since(start), err)
			if err != nil {
				h.cfg.Logger.Warn("sync: sweep expired sessions", "err", err)
			}
		}
		h.cfg.Metrics.SetOpenSessions(push, snap)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepCluster removes expired push and snapshot sessions of every tenant
// schema on pool, if this replica wins the cluster's sweeper lock, and
// returns how many sessions remain open (0, 0 when another replica leads).
func (h *Handler) sweepCluster(ctx context.Context, pool *pgxpool.Pool) (openPush, openSnapshot int64, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("acquire sweeper connection: %w", err)
	}
	defer conn.Release()
	var leader bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, sweeperLockKey).Scan(&leader); err != nil {
		return 0, 0, fmt.Errorf("elect sweeper: %w", err)
	}
	if !leader {
		return 0, 0, nil
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, sweeperLockKey) //nolint:errcheck

	// ownTables: the schema is at tenant migration 000006 (snapshot sessions
	// may own a rows table); a schema not migrated yet is swept the old way.
	rows, err := conn.Query(ctx, `SELECT n.nspname, EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_class s ON s.oid = a.attrelid
			WHERE s.relnamespace = n.oid AND s.relname = '_sync_snapshot_session' AND a.attname = 'rows_table' AND NOT a.attisdropped)
		FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
		WHERE c.relname = '_sync_push_session' AND c.relkind = 'r' AND n.nspname LIKE 't\_%' ORDER BY 1`)
	if err != nil {
		return 0, 0, fmt.Errorf("list tenant schemas: %w", err)
	}
	var schemas []string
	ownTables := map[string]bool{}
	for rows.Next() {
		var s string
		var own bool
		if err := rows.Scan(&s, &own); err != nil {
			rows.Close()
			return 0, 0, err
		}
		schemas = append(schemas, s)
		ownTables[s] = own
	}
	rows.Close()
	for _, s := range schemas {
		snapshotKind := "snapshot"
		if !ownTables[s] {
			snapshotKind = snapshotSharedOnly
		}
		for _, kind := range [][2]string{{"push", "push_id"}, {snapshotKind, "snapshot_id"}} {
			// A few bounded rounds per tick; what remains waits for the next.
			for round := 0; round < 5; round++ {
				var n int64
				if err := conn.QueryRow(ctx, deleteSessionsSQL(s, kind[0], expiredWhere(kind[1], sweepBatch))).Scan(&n); err != nil {
					return 0, 0, fmt.Errorf("sweep %s sessions of %s: %w", kind[0], s, err)
				}
				if n < sweepBatch {
					break
				}
			}
		}
		var p, sn int64
		if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+ident(s, "_sync_push_session")+`),
			(SELECT count(*) FROM `+ident(s, "_sync_snapshot_session")+`)`).Scan(&p, &sn); err != nil {
			return 0, 0, fmt.Errorf("count sessions of %s: %w", s, err)
		}
		openPush, openSnapshot = openPush+p, openSnapshot+sn
	}
	return openPush, openSnapshot, nil
}

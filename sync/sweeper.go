package sync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// sweeperLockKey is the advisory lock that elects the one replica sweeping a
// cluster at a time (12.2). It guards only the sweeper, never requests.
const sweeperLockKey int64 = 0x73796e6373776565 // "syncswee"

// sweepBatch bounds the sessions deleted per statement.
const sweepBatch = 200

// fullSweepEvery: one tick in this many visits every tenant schema; the
// others visit only schemas whose session tables PostgreSQL's statistics
// say are not empty. Statistics are reset by a crash or pg_stat_reset, so
// the full sweeps are what guarantees that no expired session is kept.
const fullSweepEvery = 10

func (h *Handler) runSweeper(ctx context.Context) {
	t := time.NewTicker(h.cfg.SweepInterval)
	defer t.Stop()
	for tick := 0; ; tick++ {
		var push, snap int64
		for _, pool := range h.cfg.Pools() {
			start := time.Now()
			p, s, err := h.sweepCluster(ctx, pool, tick%fullSweepEvery == 0)
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

// sweepCluster removes expired push and snapshot sessions of the tenant
// schemas on pool, if this replica wins the cluster's sweeper lock, and
// returns how many sessions remain open (0, 0 when another replica leads).
// A sweep that is not full skips the schemas whose session tables the
// statistics count as empty: with many tenants most are idle, and each
// visit costs three statements. Sessions the statistics have not seen yet
// (they lag by up to seconds) cannot have expired yet; the open counts
// leave out what was skipped.
func (h *Handler) sweepCluster(ctx context.Context, pool *pgxpool.Pool, full bool) (openPush, openSnapshot int64, err error) {
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

	targets, err := sweepTargets(ctx, conn, full)
	if err != nil {
		return 0, 0, err
	}
	// A schema that fails (a deadlock with its migration, a schema dropped
	// since it was listed) is skipped, not allowed to stop the sweep of the
	// others; its error is reported with the rest.
	var errs []error
	for _, tg := range targets {
		p, sn, err := sweepSchema(ctx, conn, tg)
		if ctx.Err() != nil {
			return openPush, openSnapshot, ctx.Err()
		}
		if err != nil {
			errs = append(errs, err)
			if conn.Conn().IsClosed() {
				break // the connection is gone: every later schema would fail too
			}
			continue
		}
		openPush, openSnapshot = openPush+p, openSnapshot+sn
	}
	return openPush, openSnapshot, errors.Join(errs...)
}

// sweepSchema deletes one tenant schema's expired sessions in a few
// bounded rounds and returns how many stay open.
func sweepSchema(ctx context.Context, conn *pgxpool.Conn, tg sweepTarget) (openPush, openSnapshot int64, err error) {
	s := tg.schema
	snapshotKind := "snapshot"
	if !tg.ownTables {
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
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+ident(s, "_sync_push_session")+`),
		(SELECT count(*) FROM `+ident(s, "_sync_snapshot_session")+`)`).Scan(&openPush, &openSnapshot); err != nil {
		return 0, 0, fmt.Errorf("count sessions of %s: %w", s, err)
	}
	return openPush, openSnapshot, nil
}

// sweepTarget is a tenant schema a sweep visits; ownTables: the schema is
// at tenant migration 000006 (snapshot sessions may own a rows table), a
// schema not migrated yet is swept the old way.
type sweepTarget struct {
	schema    string
	ownTables bool
}

// sweepTargets lists the tenant schemas to visit: all of them when full,
// else those whose push or snapshot session table the statistics count as
// not empty.
func sweepTargets(ctx context.Context, conn *pgxpool.Conn, full bool) ([]sweepTarget, error) {
	rows, err := conn.Query(ctx, sweepTargetsSQL)
	if err != nil {
		return nil, fmt.Errorf("list tenant schemas: %w", err)
	}
	defer rows.Close()
	var out []sweepTarget
	for rows.Next() {
		var tg sweepTarget
		var busy bool
		if err := rows.Scan(&tg.schema, &tg.ownTables, &busy); err != nil {
			return nil, fmt.Errorf("list tenant schemas: %w", err)
		}
		if busy || full {
			out = append(out, tg)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tenant schemas: %w", err)
	}
	return out, nil
}

// sweepTargetsSQL: every tenant schema, whether it is at migration 000006,
// and whether the statistics count live push or snapshot sessions in it.
const sweepTargetsSQL = `SELECT n.nspname,
	EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_class s ON s.oid = a.attrelid
		WHERE s.relnamespace = n.oid AND s.relname = '_sync_snapshot_session' AND a.attname = 'rows_table' AND NOT a.attisdropped),
	pg_stat_get_live_tuples(c.oid) > 0 OR EXISTS (SELECT 1 FROM pg_class s
		WHERE s.relnamespace = n.oid AND s.relname = '_sync_snapshot_session' AND pg_stat_get_live_tuples(s.oid) > 0)
FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
WHERE c.relname = '_sync_push_session' AND c.relkind = 'r' AND n.nspname LIKE 't\_%' ORDER BY 1`

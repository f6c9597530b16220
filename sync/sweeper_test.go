package sync

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// 12.2: the sweeper removes expired push and snapshot sessions with their
// rows, and only the replica holding the cluster's sweeper lock sweeps.
func TestSweeper(t *testing.T) {
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	c.push(1, userRow(newUUID(), "committed")).expect(t, 200, "")
	pid := c.create(2, 2).expect(t, 200, "").str("push_id")
	c.chunk(pid, 0, userRow(newUUID(), "x")).expect(t, 200, "")
	sid := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "").str("snapshot_id")
	require.EqualValues(t, 1, e.count("_sync_snapshot_row"))
	ctx := context.Background()
	s := e.tenant.SchemaName()
	_, err := e.pool.Exec(ctx, `UPDATE `+ident(s, "_sync_push_session")+` SET expires_at = now() - interval '1 minute'`)
	require.NoError(t, err)
	_, err = e.pool.Exec(ctx, `UPDATE `+ident(s, "_sync_snapshot_session")+` SET expires_at = now() - interval '1 minute'`)
	require.NoError(t, err)

	h := NewHandler(Config{Pools: func() []*pgxpool.Pool { return []*pgxpool.Pool{e.pool} }})
	// Another replica holds the lock: nothing happens here.
	conn, err := e.pool.Acquire(ctx)
	require.NoError(t, err)
	var got bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, sweeperLockKey).Scan(&got))
	if got {
		p, sn, err := h.sweepCluster(ctx, e.pool, true)
		require.NoError(t, err)
		require.Zero(t, p+sn, "a replica that does not lead counts nothing")
		require.EqualValues(t, 1, e.count("_sync_push_session"))
		_, err = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, sweeperLockKey)
		require.NoError(t, err)
	}
	conn.Release()
	// Another test's sweeper may hold the lock for a moment; retry.
	waitFor(t, 10e9, func() bool {
		_, _, err := h.sweepCluster(ctx, e.pool, true)
		requireOwnSweepOK(t, e, err)
		return e.count("_sync_push_session") == 0 && e.count("_sync_snapshot_session") == 0
	})
	// The leader counts what stays open: a fresh session of this tenant.
	c.create(2, 2).expect(t, 200, "")
	waitFor(t, 10e9, func() bool {
		p, _, err := h.sweepCluster(ctx, e.pool, true)
		requireOwnSweepOK(t, e, err)
		return p >= 1
	})
	require.EqualValues(t, 0, e.count("_sync_push_run"))
	require.EqualValues(t, 0, e.count("_sync_snapshot_row"))
	c.do("GET", "/sync/snapshot-sessions/"+sid, nil).expect(t, 404, "snapshot_session_not_found")
	c.chunk(pid, 1, userRow(newUUID(), "y")).expect(t, 404, "push_session_not_found")
}

// 12.2: a sweep that is not full visits only the schemas whose statistics
// count open sessions; the full sweep visits every schema, so sessions that
// reset statistics hide are still swept.
func TestSweepTargetsSkipIdleSchemas(t *testing.T) {
	idle := newEnv(t)
	busy := newEnv(t)
	c := busy.client("u1", "a")
	c.attach()
	c.create(1, 2).expect(t, 200, "")
	ctx := context.Background()
	conn, err := busy.pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	targets := func(full bool) map[string]bool {
		tg, err := sweepTargets(ctx, conn, full)
		require.NoError(t, err)
		m := map[string]bool{}
		for _, x := range tg {
			m[x.schema] = true
		}
		return m
	}
	is, bs := idle.tenant.SchemaName(), busy.tenant.SchemaName()
	// Statistics reach the cumulative counters within seconds.
	waitFor(t, 30e9, func() bool { return targets(false)[bs] })
	require.False(t, targets(false)[is], "an idle schema is skipped")
	all := targets(true)
	require.True(t, all[is] && all[bs], "a full sweep visits every schema")

	_, err = conn.Exec(ctx, `SELECT pg_stat_reset_single_table_counters($1::regclass)`, ident(bs, "_sync_push_session"))
	require.NoError(t, err)
	require.False(t, targets(false)[bs], "reset statistics hide the session")
	require.True(t, targets(true)[bs])
}

// requireOwnSweepOK fails on a sweep error about e's schema. Other test
// processes share the database and migrate or drop their tenants' schemas
// while this sweep visits them (a deadlock with a migration was seen in CI);
// those schemas are skipped and reported, and must not fail this test.
func requireOwnSweepOK(t *testing.T, e *env, err error) {
	t.Helper()
	if err != nil {
		require.NotContains(t, err.Error(), e.tenant.SchemaName(), "sweeping this test's own schema failed")
		t.Logf("sweep skipped other schemas: %v", err)
	}
}

// A tenant schema the sweep cannot clean (here one whose session tables are
// not the sync core's) is skipped and reported; the schemas after it are
// still swept.
func TestSweeperSkipsFailingSchema(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	broken := "t_0broken" + randomSlug() // sorts before every t_st… schema
	_, err := e.pool.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{broken}.Sanitize()+`; CREATE TABLE `+ident(broken, "_sync_push_session")+` (x int)`)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = e.pool.Exec(context.Background(), `DROP SCHEMA `+pgx.Identifier{broken}.Sanitize()+` CASCADE`)
	})

	c := e.client("u1", "a")
	c.attach()
	c.create(1, 1).expect(t, 200, "")
	_, err = e.pool.Exec(ctx, `UPDATE `+ident(e.tenant.SchemaName(), "_sync_push_session")+` SET expires_at = now() - interval '1 minute'`)
	require.NoError(t, err)

	h := NewHandler(Config{Pools: func() []*pgxpool.Pool { return []*pgxpool.Pool{e.pool} }})
	// Another process's sweeper may hold the lock for a moment (and sweep
	// this tenant itself): retry until this one leads, has swept the tenant
	// and reports the broken schema.
	waitFor(t, 10e9, func() bool {
		_, _, err := h.sweepCluster(ctx, e.pool, true)
		requireOwnSweepOK(t, e, err)
		return e.count("_sync_push_session") == 0 && err != nil && strings.Contains(err.Error(), broken)
	})
}

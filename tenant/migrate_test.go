package tenant_test

import (
	"context"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

func TestMigrationsFromEmptyAndIdempotent(t *testing.T) {
	ctx := context.Background()
	url := tenanttest.FreshDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()

	st, err := tenant.ControlStatus(ctx, pool)
	require.NoError(t, err)
	require.Zero(t, st.Version)
	require.False(t, st.Current())
	require.Positive(t, st.Expected)

	// Several replicas starting at once: golang-migrate's advisory lock lets
	// one migrate; the others wait and find nothing to do.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tenant.MigrateControl(ctx, pool)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	st, err = tenant.ControlStatus(ctx, pool)
	require.NoError(t, err)
	require.True(t, st.Current(), "at %d, want %d", st.Version, st.Expected)

	// Re-running is a no-op.
	require.NoError(t, tenant.MigrateControl(ctx, pool))

	// A tenant schema migrates inside itself, and re-running all is a no-op.
	store := tenant.NewStore(pool, tenant.NewClusters(pool))
	tn, err := store.CreateTenant(ctx, tenant.NewTenant{Slug: "fresh"}, tenanttest.Actor)
	require.NoError(t, err)
	require.NoError(t, store.MigrateAllTenants(ctx))
	ts, err := tenant.TenantSchemaStatus(ctx, pool, tn.SchemaName())
	require.NoError(t, err)
	require.True(t, ts.Current())
	// Migrating leaves no connection behind (each run used to leak one).
	conns := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()`).Scan(&n))
		return n
	}
	// With the garbage collector off, a connection that is not closed
	// explicitly stays open (finalizers would otherwise hide the leak).
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	before := conns()
	for range 12 {
		require.NoError(t, tenant.MigrateTenantSchema(ctx, pool, tn.SchemaName()))
	}
	// A closed connection's backend leaves pg_stat_activity a moment after
	// the client hangs up, and the pool may open one more of its own: allow
	// that slack, never a dozen leaked connections.
	require.Less(t, conns(), before+6, "migrations leaked connections")

	var tables int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&tables))
	require.Zero(t, tables, "migrations must not touch the public schema")
}

func TestAuditLogIsAppendOnly(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	tenanttest.Tenant(t, store, "")
	_, err := store.DB().Exec(ctx, `UPDATE syncplane.audit_log SET actor = 'mallory'`)
	require.ErrorContains(t, err, "append-only")
	_, err = store.DB().Exec(ctx, `DELETE FROM syncplane.audit_log`)
	require.ErrorContains(t, err, "append-only")
}

func TestMigrateAllTenantsSkipsTenantsDeletedMeanwhile(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	tn := tenanttest.Tenant(t, store, "")
	// Simulate the race: the tenant is listed, then its schema disappears
	// and its row turns "deleting" before its migration runs.
	_, err := store.DB().Exec(ctx, `UPDATE syncplane.tenants SET state = 'deleting' WHERE id = $1`, tn.ID)
	require.NoError(t, err)
	_, err = store.DB().Exec(ctx, `DROP SCHEMA `+pgx.Identifier{tn.SchemaName()}.Sanitize()+` CASCADE`)
	require.NoError(t, err)
	_, err = store.DB().Exec(ctx, `UPDATE syncplane.tenants SET state = 'active' WHERE id = $1`, tn.ID)
	require.NoError(t, err)
	require.Error(t, store.MigrateAllTenants(ctx), "an active tenant without its schema is a real failure")
	_, err = store.DB().Exec(ctx, `UPDATE syncplane.tenants SET state = 'deleting' WHERE id = $1`, tn.ID)
	require.NoError(t, err)
	require.NoError(t, store.MigrateAllTenants(ctx))
}

func TestParallelCreatesDoNotStarveThePool(t *testing.T) {
	// A starved pool would wait forever: fail instead.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(tenanttest.DatabaseURL(t))
	require.NoError(t, err)
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	store := tenant.NewStore(pool, tenant.NewClusters(pool))
	// More creates at once than the pool has connections: the slug locks
	// must not hold pooled connections the provisioning itself needs.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	slugs := make([]string, 4)
	for i := range errs {
		slugs[i] = tenanttest.RandomSlug("par")
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = store.CreateTenant(ctx, tenant.NewTenant{Slug: slugs[i], Plan: "unlimited"}, tenanttest.Actor)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err)
		require.NoError(t, store.DeleteTenant(ctx, slugs[i], tenanttest.Actor))
	}
}

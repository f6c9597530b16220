package tenant_test

import (
	"context"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// Requests of a busy tenant all miss together when its entry expires; they
// must share one load (the same runtime), and an invalidation still forces
// a fresh one.
func TestCacheSharesConcurrentLoads(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	tn := tenanttest.Tenant(t, store, "")
	cache := tenant.NewCache(store, time.Hour)

	const callers = 20
	got := make([]*tenant.Runtime, callers)
	errs := make([]error, callers)
	var wg gosync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = cache.TenantRuntime(ctx, tn.ID)
		}()
	}
	wg.Wait()
	for i, rt := range got {
		require.NoError(t, errs[i])
		require.Same(t, got[0], rt)
	}

	cache.Invalidate(tn.ID)
	rt, err := cache.TenantRuntime(ctx, tn.ID)
	require.NoError(t, err)
	require.NotSame(t, got[0], rt)
	require.Equal(t, tn.ID, rt.Tenant.ID)
}

// A request's runtime carries a request shard of the tenant's cluster;
// tenants get different home shards, and both reach the tenant's schema.
func TestResolveKeyGivesRequestShards(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := tenanttest.Store(t) // 10 connections: two shards
	cache := tenant.NewCache(store, time.Hour)
	pools := map[any]bool{}
	for range 2 {
		tn := tenanttest.Tenant(t, store, "")
		pk, _, err := store.CreateKey(ctx, tn.ID, tenant.KeyPublishable, "", tenanttest.Actor)
		require.NoError(t, err)
		rt, _, err := cache.ResolveKey(ctx, pk)
		require.NoError(t, err)
		require.NotSame(t, store.DB(), rt.Pool, "requests use a shard, not the control pool")
		require.Same(t, store.DB(), tenant.ClusterPool(rt.Pool))
		var n int
		require.NoError(t, rt.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, tn.SchemaName()).Scan(&n))
		require.Equal(t, 1, n)
		pools[rt.Pool] = true
	}
	require.Len(t, pools, 2, "two tenants, two home shards")
}

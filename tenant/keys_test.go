package tenant_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

func TestKeyFormat(t *testing.T) {
	seen := map[string]bool{}
	for _, kind := range []tenant.KeyKind{tenant.KeyPublishable, tenant.KeySecret} {
		for range 50 {
			k, err := tenant.NewKeySecret(kind)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(k, kind.Prefix()))
			require.Equal(t, kind, tenant.KeyKindOf(k))
			require.False(t, seen[k], "duplicate key")
			seen[k] = true
			require.Len(t, tenant.KeyHash(k), 32)
			require.False(t, bytes.Contains(tenant.KeyHash(k), []byte(k[6:])))
			d := tenant.KeyDisplay(k)
			require.True(t, strings.HasPrefix(k, strings.TrimSuffix(d, "…")))
			require.Less(t, len(d), 15, "display form must not reveal the key")
		}
	}
	require.Equal(t, "sp_pk_", tenant.KeyPublishable.Prefix())
	require.Equal(t, "sp_sk_", tenant.KeySecret.Prefix())
	for _, bad := range []string{"", "sp_pk_", "sp_pk_short", "sp_xx_" + strings.Repeat("a", 40),
		"sp_pk_" + strings.Repeat("a", 39) + "!", "sp_pk_" + strings.Repeat("a", 41)} {
		require.Equal(t, tenant.KeyKind(""), tenant.KeyKindOf(bad), bad)
	}
	_, err := tenant.ParseKeyKind("admin")
	require.Error(t, err)
}

func TestKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	tn := tenanttest.Tenant(t, store, "")

	pk, rec, err := store.CreateKey(ctx, tn.ID, tenant.KeyPublishable, "ios app", tenanttest.Actor)
	require.NoError(t, err)
	require.Equal(t, tenant.KeyPublishable, tenant.KeyKindOf(pk))
	sk, _, err := store.CreateKey(ctx, tn.ID, tenant.KeySecret, "backend", tenanttest.Actor)
	require.NoError(t, err)

	// Only the hash is stored: the key text appears nowhere in the table.
	var leaks int
	require.NoError(t, store.DB().QueryRow(ctx, `SELECT count(*) FROM syncplane.api_keys k
		WHERE k.display = $1 OR k.label = $1 OR position($1 in k::text) > 0`, pk).Scan(&leaks))
	require.Zero(t, leaks)

	got, err := store.LookupKey(ctx, pk)
	require.NoError(t, err)
	require.Equal(t, rec.ID, got.ID)
	require.Equal(t, tn.ID, got.TenantID)
	require.False(t, got.Revoked)

	// A well-formed key nobody issued, and a malformed one.
	other, _ := tenant.NewKeySecret(tenant.KeyPublishable)
	_, err = store.LookupKey(ctx, other)
	require.ErrorIs(t, err, tenant.ErrInvalidAPIKey)
	_, err = store.LookupKey(ctx, "not-a-key")
	require.ErrorIs(t, err, tenant.ErrInvalidAPIKey)

	keys, err := store.ListKeys(ctx, tn.ID)
	require.NoError(t, err)
	require.Len(t, keys, 2)
	require.Equal(t, "backend", keys[0].Label)
	require.Equal(t, tenant.KeyDisplay(sk), keys[0].Display)

	// Last use is recorded in one batched write, never moved backwards.
	at := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, store.TouchKeys(ctx, map[int64]time.Time{rec.ID: at}))
	require.NoError(t, store.TouchKeys(ctx, map[int64]time.Time{rec.ID: at.Add(-time.Hour)}))
	keys, err = store.ListKeys(ctx, tn.ID)
	require.NoError(t, err)
	require.NotNil(t, keys[1].LastUsedAt)
	require.WithinDuration(t, at, *keys[1].LastUsedAt, time.Millisecond)

	require.NoError(t, store.RevokeKey(ctx, tn.ID, rec.ID, tenanttest.Actor))
	got, err = store.LookupKey(ctx, pk)
	require.NoError(t, err)
	require.True(t, got.Revoked)
	require.ErrorIs(t, store.RevokeKey(ctx, tn.ID+1_000_000, rec.ID, tenanttest.Actor), tenant.ErrNotFound)
}

func TestCacheSeesRevocationAndSuspension(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := tenanttest.Store(t)
	tn := tenanttest.Tenant(t, store, "")
	pk, rec, err := store.CreateKey(ctx, tn.ID, tenant.KeyPublishable, "", tenanttest.Actor)
	require.NoError(t, err)

	// A second store (its own pool) stands for another replica.
	other := tenanttest.Store(t)
	cache := tenant.NewCache(other, time.Hour) // only notifications can invalidate
	done := make(chan struct{})
	go func() { defer close(done); cache.Run(ctx, time.Hour) }()
	<-cache.Listening()

	rt, _, err := cache.ResolveKey(ctx, pk)
	require.NoError(t, err)
	require.Equal(t, tenant.StateActive, rt.Tenant.State)

	_, err = store.SetState(ctx, string(tn.Slug), tenant.StateSuspended, tenanttest.Actor)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rt, _, err := cache.ResolveKey(ctx, pk)
		return err == nil && rt.Tenant.State == tenant.StateSuspended
	}, time.Second, 10*time.Millisecond, "suspension not seen within a second")

	require.NoError(t, store.RevokeKey(ctx, tn.ID, rec.ID, tenanttest.Actor))
	require.Eventually(t, func() bool {
		_, _, err := cache.ResolveKey(ctx, pk)
		return err != nil
	}, time.Second, 10*time.Millisecond, "revocation not seen within a second")
	_, _, err = cache.ResolveKey(ctx, pk)
	require.ErrorIs(t, err, tenant.ErrInvalidAPIKey)
	cancel()
	<-done
}

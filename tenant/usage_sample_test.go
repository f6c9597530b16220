package tenant_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// TestSampleUsageSkipsVanishedSchemas: a tenant whose schema is gone while
// the sampler runs (deleted concurrently) does not fail the other tenants'
// sample.
func TestSampleUsageSkipsVanishedSchemas(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	kept := tenanttest.Tenant(t, store, "")
	gone := tenanttest.Tenant(t, store, "")
	// The table the sampler reads disappears, as with a tenant deleted
	// between the listing and the sample; put back afterwards, so that the
	// tenant's own clean-up (and every later test) finds it whole.
	src := pgx.Identifier{gone.SchemaName(), "_sync_source"}.Sanitize()
	_, err := store.DB().Exec(ctx, `ALTER TABLE `+src+` RENAME TO _sync_source_gone`)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := store.DB().Exec(context.Background(), `ALTER TABLE `+
			pgx.Identifier{gone.SchemaName(), "_sync_source_gone"}.Sanitize()+` RENAME TO _sync_source`)
		require.NoError(t, err)
	})

	// Another process's sampler may hold the sampling lock for a moment.
	require.Eventually(t, func() bool {
		ran, err := store.SampleUsage(ctx, 24*time.Hour)
		require.NoError(t, err)
		return ran
	}, 10*time.Second, 50*time.Millisecond)
	var sampled int
	require.NoError(t, store.DB().QueryRow(ctx, `SELECT count(*) FROM syncplane.usage_hourly
		WHERE tenant_id = $1 AND storage_bytes > 0`, kept.ID).Scan(&sampled))
	require.Equal(t, 1, sampled, "the kept tenant was sampled")
}

package tenant_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

func TestUpdateTenantSettings(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	tn := tenanttest.Tenant(t, store, "")
	name, watch, keep := "Renamed", false, 500
	got, err := store.UpdateTenant(ctx, string(tn.Slug), tenant.Settings{Name: &name, WatchEnabled: &watch, RetainedBundles: &keep}, tenanttest.Actor)
	require.NoError(t, err)
	require.Equal(t, "Renamed", got.Name)
	require.False(t, got.WatchEnabled)
	require.Equal(t, 500, got.RetainedBundles)
	require.Equal(t, tn.WireSchema, got.WireSchema)

	bad := 5
	_, err = store.UpdateTenant(ctx, string(tn.Slug), tenant.Settings{RetainedBundles: &bad}, tenanttest.Actor)
	var ve *tenant.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "retained_bundles", ve.Field)
	_, err = store.UpdateTenant(ctx, "nosuchtenant", tenant.Settings{Name: &name}, tenanttest.Actor)
	require.ErrorIs(t, err, tenant.ErrNotFound)
}

func TestCurrentUseAndUtilization(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	tn := tenanttest.Tenant(t, store, usersV1)
	// Live rows are counted per user on the scope row; tombstones are not
	// stored rows.
	_, err := store.DB().Exec(ctx, `INSERT INTO `+pgx.Identifier{tn.SchemaName(), "_sync_scope"}.Sanitize()+
		` (user_id, live_rows) VALUES ('u1', 1), ('u2', 0)`)
	require.NoError(t, err)
	_, err = store.DB().Exec(ctx, `INSERT INTO `+pgx.Identifier{tn.SchemaName(), "_sync_row_state"}.Sanitize()+
		` (user_id, table_name, key_text, row_version, deleted) VALUES ('u1', 'users', 'b', 2, true)`)
	require.NoError(t, err)
	_, err = store.DB().Exec(ctx, `INSERT INTO `+pgx.Identifier{tn.SchemaName(), "_sync_source"}.Sanitize()+
		` (user_id, source_id, state) VALUES ('u1', 'd1', 'active'), ('u1', 'd2', 'retired')`)
	require.NoError(t, err)

	u, err := store.CurrentUse(ctx, tn)
	require.NoError(t, err)
	require.Equal(t, int64(1), u.Rows, "tombstones are not stored rows")
	require.Equal(t, int64(1), u.ActiveDevices, "retired sources are not active devices")
	require.Positive(t, u.StorageBytes)

	ratios := tenant.Utilization(u, tenant.Limits{MaxRows: 2, MaxActiveDevices: 1})
	require.Equal(t, map[string]float64{"rows": 0.5, "active_devices": 1}, ratios)
	require.GreaterOrEqual(t, ratios["active_devices"], tenant.NearLimit)
}

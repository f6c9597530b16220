package tenant_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

func TestParseSlug(t *testing.T) {
	for _, tc := range []struct {
		in, wantErr string
	}{
		{"acme", ""},
		{"a", ""},
		{"a1_b2", ""},
		{strings.Repeat("a", 30), ""},
		{"", "is invalid"},
		{strings.Repeat("a", 31), "is invalid"},
		{"1acme", "is invalid"},
		{"_acme", "is invalid"},
		{"Acme", "is invalid"},
		{"ac-me", "is invalid"},
		{"ac me", "is invalid"},
		{"acme;drop", "is invalid"},
		{`ac"me`, "is invalid"},
		{"admin", "is reserved"},
		{"syncplane", "is reserved"},
		{"public", "is reserved"},
		{"pg_catalog", "is reserved"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			s, err := tenant.ParseSlug(tc.in)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, "t_"+tc.in, s.SchemaName())
				return
			}
			var ve *tenant.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "slug", ve.Field)
			require.Contains(t, ve.Message, tc.wantErr)
		})
	}
}

func schemaExists(t *testing.T, pool *pgxpool.Pool, schema string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&ok))
	return ok
}

func TestProvisionAndDelete(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	slug := tenanttest.RandomSlug("prov")
	tn, err := store.CreateTenant(ctx, tenant.NewTenant{Slug: slug, Name: "Acme", WireSchema: "business"}, tenanttest.Actor)
	require.NoError(t, err)
	require.Equal(t, tenant.StateActive, tn.State)
	require.Equal(t, "business", tn.WireSchema)
	require.Equal(t, tenant.DefaultPlacement, tn.Placement)
	require.True(t, schemaExists(t, store.DB(), "t_"+slug))

	// The per-tenant migrations ran inside the tenant schema, with their
	// version table there too.
	st, err := tenant.TenantSchemaStatus(ctx, store.DB(), tn.SchemaName())
	require.NoError(t, err)
	require.True(t, st.Current(), "tenant schema at %d, want %d", st.Version, st.Expected)
	var n int
	require.NoError(t, store.DB().QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = $1 AND table_name IN ('_sync_schema_migrations', '_sync_bundle', '_sync_row_state')`,
		tn.SchemaName()).Scan(&n))
	require.Equal(t, 3, n)

	_, err = store.CreateTenant(ctx, tenant.NewTenant{Slug: slug}, tenanttest.Actor)
	require.ErrorIs(t, err, tenant.ErrTenantExists)

	got, err := store.Tenant(ctx, slug)
	require.NoError(t, err)
	require.Equal(t, tn.ID, got.ID)

	sus, err := store.SetState(ctx, slug, tenant.StateSuspended, tenanttest.Actor)
	require.NoError(t, err)
	require.Equal(t, tenant.StateSuspended, sus.State)
	res, err := store.SetState(ctx, slug, tenant.StateActive, tenanttest.Actor)
	require.NoError(t, err)
	require.Equal(t, tenant.StateActive, res.State)

	require.NoError(t, store.DeleteTenant(ctx, slug, tenanttest.Actor))
	require.False(t, schemaExists(t, store.DB(), "t_"+slug))
	_, err = store.Tenant(ctx, slug)
	require.ErrorIs(t, err, tenant.ErrNotFound)
	require.ErrorIs(t, store.DeleteTenant(ctx, slug, tenanttest.Actor), tenant.ErrNotFound)

	log, err := store.AuditLog(ctx, tn.ID, 10)
	require.NoError(t, err)
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action)
	}
	require.Equal(t, []string{"tenant.delete", "tenant.resume", "tenant.suspend", "tenant.create"}, actions)
}

func TestProvisionFailureLeavesNothingOrEverything(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	boom := errors.New("injected failure")
	for _, step := range []string{"row", "schema", "migrations", "activate"} {
		for _, crash := range []bool{false, true} {
			name := step
			if crash {
				name += "/crash"
			}
			t.Run(name, func(t *testing.T) {
				slug := tenanttest.RandomSlug("fail")
				injected := boom
				if crash {
					injected = tenant.ErrCrash
				}
				tenant.SetFailpoint(store, func(s string) error {
					if s == step {
						return injected
					}
					return nil
				})
				_, err := store.CreateTenant(ctx, tenant.NewTenant{Slug: slug}, tenanttest.Actor)
				tenant.SetFailpoint(store, nil)
				require.ErrorIs(t, err, injected)

				// No tenant is visible, whether or not clean-up ran.
				_, err = store.Tenant(ctx, slug)
				require.ErrorIs(t, err, tenant.ErrNotFound)
				all, err := store.ListTenants(ctx)
				require.NoError(t, err)
				for _, tn := range all {
					require.NotEqual(t, slug, string(tn.Slug))
				}
				if !crash {
					require.False(t, schemaExists(t, store.DB(), "t_"+slug), "failed create left its schema behind")
				}

				// Creating again yields a complete tenant.
				tn, err := store.CreateTenant(ctx, tenant.NewTenant{Slug: slug}, tenanttest.Actor)
				require.NoError(t, err)
				require.Equal(t, tenant.StateActive, tn.State)
				st, err := tenant.TenantSchemaStatus(ctx, store.DB(), tn.SchemaName())
				require.NoError(t, err)
				require.True(t, st.Current())
				require.NoError(t, store.DeleteTenant(ctx, slug, tenanttest.Actor))
			})
		}
	}
}

func TestCreateTenantValidation(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	for _, tc := range []struct {
		name  string
		in    tenant.NewTenant
		field string
	}{
		{"bad slug", tenant.NewTenant{Slug: "Bad Slug"}, "slug"},
		{"reserved slug", tenant.NewTenant{Slug: "admin"}, "slug"},
		{"bad wire schema", tenant.NewTenant{Slug: tenanttest.RandomSlug("v"), WireSchema: "App-1"}, "wire_schema"},
		{"unknown placement", tenant.NewTenant{Slug: tenanttest.RandomSlug("v"), Placement: "mars"}, "placement"},
		{"long name", tenant.NewTenant{Slug: tenanttest.RandomSlug("v"), Name: strings.Repeat("n", 201)}, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := store.CreateTenant(ctx, tc.in, tenanttest.Actor)
			var ve *tenant.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.field, ve.Field)
			require.NotEmpty(t, ve.Message)
		})
	}
}

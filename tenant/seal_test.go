package tenant_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

func TestParseSealKeys(t *testing.T) {
	k1, k2 := tenant.NewSealKey(), tenant.NewSealKey()
	raw, _ := base64.StdEncoding.DecodeString(k1)
	for _, tc := range []struct {
		in, wantErr string
		none        bool
	}{
		{in: "", none: true},
		{in: "  ", none: true},
		{in: k1},
		{in: k1 + " " + k2},
		{in: k1 + ",\n" + k2},
		{in: base64.RawURLEncoding.EncodeToString(raw)},
		{in: "not_base64!", wantErr: "key 1: not base64"},
		{in: k1 + " " + base64.StdEncoding.EncodeToString([]byte("short")), wantErr: "key 2: want the base64 of 32 bytes, got 5 bytes"},
		{in: k1 + " " + k2 + " " + k1, wantErr: "key 3: repeats an earlier key"},
	} {
		s, err := tenant.ParseSealKeys(tc.in)
		if tc.wantErr != "" {
			require.ErrorContains(t, err, tc.wantErr, "%q", tc.in)
			continue
		}
		require.NoError(t, err, "%q", tc.in)
		require.Equal(t, tc.none, s == nil, "%q", tc.in)
	}
}

// storedSettings is a tenant's tenant_auth document as the database holds it.
func storedSettings(t *testing.T, store *tenant.Store, id int64) string {
	t.Helper()
	var doc string
	require.NoError(t, store.DB().QueryRow(context.Background(),
		`SELECT settings::text FROM syncplane.tenant_auth WHERE tenant_id = $1`, id).Scan(&doc))
	return doc
}

// TestAuthSecretsSealed: with seal keys the database never holds an HS256
// secret in clear; the store reads it back; a value moved to another tenant,
// tampered with or left without its key does not open; reseal moves
// unsealed rows and rows of a retired key to the sealing key.
func TestAuthSecretsSealed(t *testing.T) {
	ctx := context.Background()
	// A database of its own: reseal rewrites every tenant of the control
	// plane, and other test processes' tenants must stay unsealed.
	db := tenanttest.FreshDatabase(t)
	newStore := func() *tenant.Store {
		pool := tenanttest.PoolFor(t, db)
		clusters := tenant.NewClusters(pool)
		t.Cleanup(clusters.Close)
		return tenant.NewStore(pool, clusters)
	}
	plain := newStore() // writes unsealed, like an installation before the keys
	a, b := tenanttest.Tenant(t, plain, ""), tenanttest.Tenant(t, plain, "")
	oldKey, newKey := tenant.NewSealKey(), tenant.NewSealKey()
	sealed := newStore()
	oldOnly, err := tenant.ParseSealKeys(oldKey)
	require.NoError(t, err)
	sealed.SetSealer(oldOnly)

	secretA := "a-secret-of-tenant-a-" + strings.Repeat("x", 24)
	secretA2 := "a-second-secret-of-a-" + strings.Repeat("y", 24)
	secretB := "the-secret-of-tenant-b-" + strings.Repeat("z", 24)
	require.NoError(t, sealed.SetAuth(ctx, a.ID, tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{secretA, secretA2}, Issuer: "https://a.example"}, tenanttest.Actor))
	require.NoError(t, plain.SetAuth(ctx, b.ID, tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{secretB}}, tenanttest.Actor))

	docA := storedSettings(t, sealed, a.ID)
	require.NotContains(t, docA, "tenant-a", "the stored settings hold a secret in clear")
	require.NotContains(t, docA, "hs256_secrets")
	require.Contains(t, docA, "hs256_sealed")
	require.Contains(t, docA, "https://a.example", "only the secrets are sealed")
	var audit string
	require.NoError(t, sealed.DB().QueryRow(ctx, `SELECT string_agg(detail::text, ' ') FROM syncplane.audit_log WHERE tenant_id = $1`, a.ID).Scan(&audit))
	require.NotContains(t, audit, "tenant-a", "the audit log holds a secret in clear")

	got, _, err := sealed.Auth(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, []string{secretA, secretA2}, got.HS256Secrets)
	require.Equal(t, "https://a.example", got.Issuer)
	got, _, err = sealed.Auth(ctx, b.ID)
	require.NoError(t, err, "unsealed rows stay readable")
	require.Equal(t, []string{secretB}, got.HS256Secrets)

	// Without the key, or with another key only: a clear error, never the
	// settings without their secrets.
	_, _, err = plain.Auth(ctx, a.ID)
	require.ErrorIs(t, err, tenant.ErrSealKeyMissing)
	other := newStore()
	otherOnly, err := tenant.ParseSealKeys(newKey)
	require.NoError(t, err)
	other.SetSealer(otherOnly)
	_, _, err = other.Auth(ctx, a.ID)
	require.ErrorIs(t, err, tenant.ErrSealKeyMissing)

	// A's sealed settings copied onto B's row do not open there.
	_, err = sealed.DB().Exec(ctx, `UPDATE syncplane.tenant_auth SET settings = (SELECT settings FROM syncplane.tenant_auth WHERE tenant_id = $1) WHERE tenant_id = $2`, a.ID, b.ID)
	require.NoError(t, err)
	_, _, err = sealed.Auth(ctx, b.ID)
	require.ErrorContains(t, err, "does not open")
	require.NoError(t, plain.SetAuth(ctx, b.ID, tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{secretB}}, tenanttest.Actor))

	// One changed character of the ciphertext is detected. It is the tenth
	// from the end: the last one or two characters of unpadded base64 may
	// hold bits the decoder ignores, so changing them can leave the bytes.
	_, err = sealed.DB().Exec(ctx, `UPDATE syncplane.tenant_auth
		SET settings = jsonb_set(settings, '{hs256_sealed,0}', to_jsonb(overlay(s PLACING CASE WHEN substr(s, length(s) - 9, 1) = 'A' THEN 'B' ELSE 'A' END FROM length(s) - 9 FOR 1)))
		FROM (SELECT settings->'hs256_sealed'->>0 AS s FROM syncplane.tenant_auth WHERE tenant_id = $1) old
		WHERE tenant_id = $1`, a.ID)
	require.NoError(t, err)
	_, _, err = sealed.Auth(ctx, a.ID)
	require.ErrorContains(t, err, "does not open")
	require.NoError(t, sealed.SetAuth(ctx, a.ID, tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{secretA, secretA2}, Issuer: "https://a.example"}, tenanttest.Actor))

	// Rotation: the new key first, the old one still opening; reseal
	// rewrites A (old key) and B (unsealed), after which the new key alone
	// reads both.
	both, err := tenant.ParseSealKeys(newKey + " " + oldKey)
	require.NoError(t, err)
	rotating := newStore()
	rotating.SetSealer(both)
	_, updatedBefore, err := rotating.Auth(ctx, a.ID)
	require.NoError(t, err)
	resealed, checked, err := rotating.ResealAuth(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, resealed)
	require.Equal(t, 2, checked)
	require.NotContains(t, storedSettings(t, rotating, b.ID), "tenant-b")
	for _, tc := range []struct {
		id   int64
		want []string
	}{{a.ID, []string{secretA, secretA2}}, {b.ID, []string{secretB}}} {
		got, updated, err := other.Auth(ctx, tc.id)
		require.NoError(t, err, "the new key alone opens every resealed row")
		require.Equal(t, tc.want, got.HS256Secrets)
		if tc.id == a.ID {
			require.Equal(t, updatedBefore, updated, "reseal does not count as a settings change")
		}
	}
	_, _, err = sealed.Auth(ctx, a.ID)
	require.ErrorIs(t, err, tenant.ErrSealKeyMissing, "the old key alone no longer opens")

	// A second reseal finds nothing to do.
	docA = storedSettings(t, rotating, a.ID)
	resealed, checked, err = rotating.ResealAuth(ctx)
	require.NoError(t, err)
	require.Equal(t, [2]int{0, 2}, [2]int{resealed, checked})
	require.Equal(t, docA, storedSettings(t, rotating, a.ID))

	// A row no configured key opens is reported and left alone; the others
	// are still resealed.
	c := tenanttest.Tenant(t, plain, "")
	require.NoError(t, plain.SetAuth(ctx, c.ID, tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{secretB}}, tenanttest.Actor))
	require.NoError(t, sealed.SetAuth(ctx, b.ID, tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{secretB}}, tenanttest.Actor))
	docB := storedSettings(t, other, b.ID)
	resealed, checked, err = other.ResealAuth(ctx)
	require.ErrorIs(t, err, tenant.ErrSealKeyMissing)
	require.ErrorContains(t, err, fmt.Sprintf("tenant %d", b.ID))
	require.Equal(t, [2]int{1, 2}, [2]int{resealed, checked}, "C resealed, A already current, B reported")
	require.Equal(t, docB, storedSettings(t, other, b.ID))
	require.NotContains(t, storedSettings(t, other, c.ID), "tenant-b")

	_, _, err = plain.ResealAuth(ctx)
	require.ErrorContains(t, err, "no seal key")
}

package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

func TestTenantCLI(t *testing.T) {
	tenanttest.Pool(t) // migrated control plane
	env := map[string]string{"SYNCPLANE_DATABASE_URL": tenanttest.DatabaseURL(t)}
	slug := tenanttest.RandomSlug("cli")
	ok := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, env, args...)
		require.Equal(t, 0, code, "syncplane %v\nstdout: %s\nstderr: %s", args, out, errOut)
		return out
	}
	fail := func(code int, want string, args ...string) {
		t.Helper()
		got, out, errOut := runCLI(t, env, args...)
		require.Equal(t, code, got, "syncplane %v\nstdout: %s", args, out)
		require.Contains(t, errOut, want)
	}

	require.Contains(t, ok("tenant", "create", slug, "--name", "CLI test", "--wire-schema", "business"), "created tenant "+slug)
	t.Cleanup(func() { runCLI(t, env, "tenant", "delete", slug, "--confirm", slug) })
	fail(1, "already exists", "tenant", "create", slug)
	fail(1, "is invalid", "tenant", "create", "Bad-Slug")
	require.Contains(t, ok("tenant", "list"), slug)

	out := ok("tenant", "key", "create", slug, "--kind", "publishable", "--label", "ios")
	key := regexp.MustCompile(`sp_pk_[0-9A-Za-z]{40}`).FindString(out)
	require.NotEmpty(t, key, out)
	fail(1, "key kind", "tenant", "key", "create", slug, "--kind", "root")
	list := ok("tenant", "key", "list", slug)
	require.Contains(t, list, key[:10])
	require.NotContains(t, list, key, "the full key is never shown again")

	require.Contains(t, ok("tenant", "auth", "set", slug, "--generate-hs256", "--issuer", "https://id.example.com"), "is now hs256")
	require.Contains(t, ok("tenant", "auth", "show", slug), `"issuer": "https://id.example.com"`)
	fail(2, "exactly one", "tenant", "auth", "set", slug)

	def := filepath.Join(t.TempDir(), "tables.json")
	require.NoError(t, os.WriteFile(def, []byte(`{"tables":[{"name":"todos","sync_key":"id","columns":[
		{"name":"id","type":"uuid"},{"name":"title","type":"text"}]}]}`), 0o600))
	dry := ok("tenant", "tables", "apply", slug, "--file", def, "--dry-run")
	require.Contains(t, dry, "todos")
	require.Contains(t, dry, "CREATE TABLE")
	require.Contains(t, ok("tenant", "tables", "apply", slug, "--file", def, "--yes"), "as version 1")
	require.Contains(t, ok("tenant", "tables", "apply", slug, "--file", def, "--yes"), "no changes")
	require.Contains(t, ok("tenant", "tables", "show", slug), `"name": "todos"`)
	require.Contains(t, ok("tenant", "tables", "versions", slug), "todos")
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"tables":[{"name":"todos","sync_key":"id","columns":[
		{"name":"id","type":"uuid"},{"name":"done","type":"bool"}]}]}`), 0o600))
	fail(1, "tables[0].columns[1].type", "tenant", "tables", "apply", slug, "--file", bad, "--yes")

	show := ok("tenant", "show", slug)
	require.Regexp(t, `wire schema\s+business`, show)
	require.Regexp(t, `tables\s+version 1: todos`, show)
	require.Contains(t, ok("tenant", "quota", "set", slug, "--plan", "pro", "--requests-per-second", "5", "--max-rows", "0"), "updated")
	q := ok("tenant", "quota", "show", slug)
	require.Contains(t, q, "plan pro")
	require.Contains(t, q, `"requests_per_second": 5`)
	require.Contains(t, q, `"max_rows": 0`)
	require.Contains(t, q, `"max_active_devices": 10000`, "unset limits come from the plan")
	require.Contains(t, ok("tenant", "quota", "set", slug, "--requests-per-second", "-1"), "updated")
	require.Contains(t, ok("tenant", "quota", "show", slug), `"requests_per_second": 2000`)
	fail(1, "unknown plan", "tenant", "quota", "set", slug, "--plan", "gold")
	fail(1, "must be 0 (unlimited) or positive", "tenant", "quota", "set", slug, "--max-watchers", "-5")
	fail(1, "must be 0 (unlimited) or positive", "tenant", "quota", "set", slug, "--requests-per-second", "-3")
	require.Contains(t, ok("tenant", "usage", slug), "tenant_id,tenant,hour,requests")
	require.Contains(t, ok("tenant", "usage", slug, "--format", "json"), "[")

	require.Contains(t, ok("tenant", "suspend", slug), "suspended")
	require.Contains(t, ok("tenant", "resume", slug), "active")
	keyID := regexp.MustCompile(`publishable key (\d+)`).FindStringSubmatch(out)[1]
	require.Contains(t, ok("tenant", "key", "revoke", slug, keyID), "revoked key "+keyID)
	require.Regexp(t, `(?m)^`+keyID+`\s+publishable.*Z\s*$`, ok("tenant", "key", "list", slug), "revocation time listed")
	fail(1, "has no key", "tenant", "key", "revoke", slug, "999999999")

	fail(2, "--confirm "+slug, "tenant", "delete", slug)
	require.Contains(t, ok("tenant", "delete", slug, "--confirm", slug), "deleted tenant")
	fail(1, "no tenant", "tenant", "show", slug)
}

// TestTenantCLIReseal: `tenant auth reseal` seals the HS256 secrets written
// before SYNCPLANE_SEAL_KEYS was set; afterwards the commands need the key.
func TestTenantCLIReseal(t *testing.T) {
	db := tenanttest.FreshDatabase(t) // reseal touches every tenant of its control plane
	tenanttest.PoolFor(t, db)
	slug := tenanttest.RandomSlug("cli")
	key := tenant.NewSealKey()
	secret := "cli-reseal-secret-" + strings.Repeat("s", 30)
	run := func(sealKeys string, args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, map[string]string{"SYNCPLANE_DATABASE_URL": db, "SYNCPLANE_SEAL_KEYS": sealKeys}, args...)
	}
	ok := func(sealKeys string, args ...string) string {
		t.Helper()
		code, out, errOut := run(sealKeys, args...)
		require.Equal(t, 0, code, "syncplane %v\nstdout: %s\nstderr: %s", args, out, errOut)
		return out
	}
	stored := func() string {
		t.Helper()
		var doc string
		require.NoError(t, tenanttest.PoolFor(t, db).QueryRow(context.Background(),
			`SELECT a.settings::text FROM syncplane.tenant_auth a JOIN syncplane.tenants t ON t.id = a.tenant_id WHERE t.slug = $1`, slug).Scan(&doc))
		return doc
	}

	ok("", "tenant", "create", slug)
	t.Cleanup(func() { run(key, "tenant", "delete", slug, "--confirm", slug) })
	ok("", "tenant", "auth", "set", slug, "--hs256-secret", secret)
	require.Contains(t, stored(), secret, "without keys the secret is stored as given")

	code, _, errOut := run("", "tenant", "auth", "reseal")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "SYNCPLANE_SEAL_KEYS is not set")
	code, _, errOut = run("c2hvcnQ=", "tenant", "auth", "reseal")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "SYNCPLANE_SEAL_KEYS: key 1: want the base64 of 32 bytes")

	require.Contains(t, ok(key, "tenant", "auth", "reseal"), "resealed the HS256 secrets of 1 of 1 tenants")
	require.NotContains(t, stored(), secret)
	require.Contains(t, ok(key, "tenant", "auth", "show", slug), `"mode": "hs256"`)
	require.Contains(t, ok(key, "tenant", "auth", "reseal"), "resealed the HS256 secrets of 0 of 1 tenants")

	code, _, errOut = run("", "tenant", "auth", "show", slug)
	require.Equal(t, 1, code, "sealed secrets cannot be read without the key")
	require.Contains(t, errOut, "no configured seal key (SYNCPLANE_SEAL_KEYS) opens them")
}

// TestDevSealer: dev mode makes its seal key once, private to the user, and
// keeps it, so the demo tenant's sealed secret opens after a restart.
func TestDevSealer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, err := devSealer(dir)
	require.NoError(t, err)
	require.NotNil(t, first)
	fi, err := os.Stat(filepath.Join(dir, "seal.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	key, err := os.ReadFile(filepath.Join(dir, "seal.key"))
	require.NoError(t, err)
	_, err = devSealer(dir)
	require.NoError(t, err)
	again, err := os.ReadFile(filepath.Join(dir, "seal.key"))
	require.NoError(t, err)
	require.Equal(t, key, again, "the key is kept across restarts")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "seal.key"), []byte("garbage!"), 0o600))
	_, err = devSealer(dir)
	require.ErrorContains(t, err, "seal.key")
}

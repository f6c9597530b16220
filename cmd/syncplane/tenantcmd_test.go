package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

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

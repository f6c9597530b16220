package sync

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/web/server"
)

// 15.1: missing or invalid tokens get 401 in the envelope. Token
// verification is the gateway's (web/server); this checks the sync routes
// sit behind it and render the protocol envelope.
func TestConf01Unauthenticated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, user := range []string{"", "bad"} {
		r := e.client(user, "dev").do("GET", "/sync/capabilities", nil)
		r.expect(t, 401, "authentication_failed")
	}
}

// 15.2: the source header is required on every /sync route.
func TestConf02SourceHeaderRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	routes := [][2]string{{"GET", "/sync/capabilities"}, {"POST", "/sync/connect"}, {"POST", "/sync/push-sessions"},
		{"DELETE", "/sync/push-sessions/x"}, {"GET", "/sync/pull"}, {"GET", "/sync/watch"}, {"DELETE", "/sync/snapshot-sessions/x"}}
	for _, src := range []string{"", "   "} {
		for _, rt := range routes {
			r := e.client("u1", src).do(rt[0], rt[1], nil)
			r.expect(t, 400, "invalid_request")
			require.Equal(t, "Oversync-Source-ID header is required", r.str("message"))
		}
	}
	e.client("u1", strings.Repeat("x", 300)).do("GET", "/sync/capabilities", nil).expect(t, 400, "invalid_request")
}

// 15.3: wrong method on a known path is 405 (engine-wide in the gateway;
// the stand-in engine mirrors it).
func TestConf03MethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.client("u1", "d").do("PUT", "/sync/pull", nil).expect(t, 405, "method_not_allowed")
}

// 15.4: errors are the JSON envelope without SQL text.
func TestConf04ErrorEnvelope(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "d")
	c.attach()
	id := newUUID()
	// A dangling FK: a constraint failure at commit names the constraint only.
	r := c.push(1, row("posts", "INSERT", id, 0, map[string]any{"id": id, "author_id": newUUID(), "title": "t"}))
	r.expect(t, 400, "push_commit_invalid")
	for _, bad := range []string{"SELECT", "INSERT INTO", "pg_", "ERROR:", "goroutine"} {
		require.NotContains(t, string(r.Body), bad)
	}
	require.Len(t, r.JSON, 2)
}

// 15.5: capabilities basics, sorted tables and specs.
func TestConf05Capabilities(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.client("u1", "d").do("GET", "/sync/capabilities", nil).expect(t, 200, "")
	require.Equal(t, "v1", r.str("protocol_version"))
	require.EqualValues(t, 1, r.num("schema_version"))
	tables := r.JSON["registered_tables"].([]any)
	require.Equal(t, []any{"app.posts", "app.tags", "app.users"}, tables)
	require.True(t, sort.SliceIsSorted(tables, func(i, j int) bool { return tables[i].(string) < tables[j].(string) }))
	specs := r.JSON["registered_table_specs"].([]any)
	require.Len(t, specs, 3)
	require.Equal(t, map[string]any{"schema": "app", "table": "tags", "sync_key_columns": []any{"name"}}, specs[1])
}

// 15.6: exactly the 20 feature flags.
func TestConf06Features(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.client("u1", "d").do("GET", "/sync/capabilities", nil).expect(t, 200, "").JSON["features"].(map[string]any)
	require.Len(t, f, 20)
	for k, v := range f {
		switch k {
		case "server_checkpoint_tracking":
			require.Equal(t, false, v)
		default:
			require.Equal(t, true, v, k)
		}
	}
	require.Equal(t, true, f["connect_lifecycle"])
}

// 15.7: bundle limits carry the 12.1 defaults and omit zero values.
func TestConf07BundleLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l := e.client("u1", "d").do("GET", "/sync/capabilities", nil).expect(t, 200, "").JSON["bundle_limits"].(map[string]any)
	want := map[string]int64{"max_bundles_per_pull": 5000, "default_rows_per_push_chunk": 1000, "max_rows_per_push_chunk": 5000,
		"push_session_ttl_seconds": 900, "default_rows_per_committed_bundle_chunk": 1000, "max_rows_per_committed_bundle_chunk": 5000,
		"default_rows_per_snapshot_chunk": 1000, "max_rows_per_snapshot_chunk": 5000, "snapshot_session_ttl_seconds": 900,
		"initialization_lease_ttl_seconds": 900}
	require.Len(t, l, len(want))
	for k, v := range want {
		require.Equal(t, v, (&resp{JSON: l}).num(k), k)
	}
	require.NotContains(t, l, "max_rows_per_bundle")
	require.NotContains(t, l, "max_rows_per_snapshot_session")
}

// 15.8: bundle_change_watch reflects tenant setting and policy.
func TestConf08WatchCapability(t *testing.T) {
	t.Parallel()
	flag := func(e *env, src string) any {
		return e.client("u1", src).do("GET", "/sync/capabilities", nil).expect(t, 200, "").JSON["features"].(map[string]any)["bundle_change_watch"]
	}
	require.Equal(t, true, flag(newEnv(t), "d"))
	require.Equal(t, false, flag(newEnv(t, withWatch(false)), "d"))
	policy := newEnv(t, withConfig(func(c *Config) {
		c.WatchAllowed = func(_ *server.SyncScope, src string) bool { return src != "blocked" }
	}))
	require.Equal(t, false, flag(policy, "blocked"))
	require.Equal(t, true, flag(policy, "ok"))
}

// 15.9: commit, DELETE and keep-source snapshot create need no body.
func TestConf09EmptyBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "d")
	c.attach()
	id := newUUID()
	cr := c.do("POST", "/sync/push-sessions", map[string]any{"source_bundle_id": 1, "planned_row_count": 1}).expect(t, 200, "")
	pid := cr.str("push_id")
	c.do("POST", "/sync/push-sessions/"+pid+"/chunks", map[string]any{"start_row_ordinal": 0,
		"rows": []any{row("users", "INSERT", id, 0, map[string]any{"id": id, "name": "a"})}}).expect(t, 200, "")
	c.do("POST", "/sync/push-sessions/"+pid+"/commit", nil).expect(t, 200, "")
	s := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "")
	c.do("DELETE", "/sync/snapshot-sessions/"+s.str("snapshot_id"), nil).expect(t, http.StatusNoContent, "")
	cr = c.do("POST", "/sync/push-sessions", map[string]any{"source_bundle_id": 2, "planned_row_count": 1}).expect(t, 200, "")
	c.do("DELETE", "/sync/push-sessions/"+cr.str("push_id"), nil).expect(t, http.StatusNoContent, "")
}

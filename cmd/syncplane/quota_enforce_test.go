package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// pushRows runs one push (create, one chunk, commit) of rows for a device
// and returns the status and body of the first step that did not answer
// 200, or of the commit.
func pushRows(t *testing.T, base string, dev map[string]string, sbid int, rows []map[string]any) (int, map[string]any) {
	t.Helper()
	status, body := doJSON(t, "POST", base+"/sync/push-sessions", dev, map[string]any{"source_bundle_id": sbid, "planned_row_count": len(rows)})
	if status != 200 {
		return status, body
	}
	id := body["push_id"].(string)
	anyRows := make([]any, len(rows))
	for i, r := range rows {
		anyRows[i] = r
	}
	status, body = doJSON(t, "POST", base+"/sync/push-sessions/"+id+"/chunks", dev, map[string]any{"start_row_ordinal": 0, "rows": anyRows})
	if status != 200 {
		return status, body
	}
	return doJSON(t, "POST", base+"/sync/push-sessions/"+id+"/commit", dev, nil)
}

func todo(wire string, n int, op string) map[string]any {
	r := map[string]any{"schema": wire, "table": "todos", "op": op, "base_row_version": 0,
		"key": map[string]any{"id": fmt.Sprintf("00000000-0000-4000-8000-%012d", n)}}
	if op != "DELETE" {
		r["payload"] = map[string]any{"title": fmt.Sprintf("todo %d", n), "done": 0}
	}
	return r
}

// TestQuotasRefuseWithTheirCodeAndWriteNothing covers every quota the sync
// core enforces: each refusal names its quota and leaves nothing behind.
func TestQuotasRefuseWithTheirCodeAndWriteNothing(t *testing.T) {
	ctx := context.Background()
	a, err := newApp(ctx, testConfig(t), discardLogger())
	require.NoError(t, err)
	defer a.Close()
	srv := httptest.NewServer(a.engine)
	defer srv.Close()
	store := tenanttest.Store(t)
	tt := newTestTenant(t, store, todosTables)
	base := srv.URL + "/k/" + tt.pk
	i64 := func(v int64) *int64 { return &v }
	setQuota := func(o tenant.QuotaOverride) {
		t.Helper()
		require.NoError(t, store.SetQuota(ctx, tt.ID, "", o, store.Plans(), tenanttest.Actor))
		// Wait until the app's gateway sees it (LISTEN/NOTIFY, milliseconds).
		require.Eventually(t, func() bool {
			rt, err := a.cache.TenantRuntime(ctx, tt.ID)
			return err == nil && rt.Limits == o.Apply(tenant.Limits{})
		}, 2*time.Second, 5*time.Millisecond)
	}
	dev := func(user, source string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + tt.token(t, user), "Oversync-Source-ID": source}
	}
	alice := dev("alice", "alice-phone")
	status, body := doJSON(t, "POST", base+"/sync/connect", alice, map[string]any{"has_local_pending_rows": false})
	require.Equal(t, 200, status, "%v", body)
	pulled := func(hdr map[string]string) int {
		status, body := doJSON(t, "GET", base+"/sync/pull", hdr, nil)
		require.Equal(t, 200, status, "%v", body)
		return len(body["bundles"].([]any))
	}
	refused := func(status int, body map[string]any, wantStatus int, code, quota, msg string) {
		t.Helper()
		require.Equal(t, wantStatus, status, "%v", body)
		require.Equal(t, code, body["error"])
		require.Equal(t, quota, body["quota"])
		require.Contains(t, body["message"], msg)
	}

	// Rows per chunk and bytes per bundle: 413, the session stages nothing.
	setQuota(tenant.QuotaOverride{MaxRowsPerChunk: i64(2)})
	status, body = pushRows(t, base, alice, 1, []map[string]any{todo(tt.WireSchema, 1, "INSERT"), todo(tt.WireSchema, 2, "INSERT"), todo(tt.WireSchema, 3, "INSERT")})
	refused(status, body, 413, "payload_too_large", "max_rows_per_chunk", "exceeds the limit of 2 rows per chunk")
	setQuota(tenant.QuotaOverride{MaxBundleBytes: i64(150)})
	status, body = pushRows(t, base, alice, 1, []map[string]any{todo(tt.WireSchema, 1, "INSERT"), todo(tt.WireSchema, 2, "INSERT")})
	refused(status, body, 413, "payload_too_large", "max_bundle_bytes", "bundle size limit of 150 bytes")
	require.Zero(t, pulled(alice))

	// Stored rows: 403 at commit; nothing of the push is visible, deletes still pass.
	setQuota(tenant.QuotaOverride{MaxRows: i64(2)})
	status, body = pushRows(t, base, alice, 1, []map[string]any{todo(tt.WireSchema, 1, "INSERT"), todo(tt.WireSchema, 2, "INSERT")})
	require.Equal(t, 200, status, "%v", body)
	status, body = pushRows(t, base, alice, 2, []map[string]any{todo(tt.WireSchema, 3, "INSERT")})
	refused(status, body, 403, "quota_exceeded", "max_rows", "row quota of 2 reached for tenant "+string(tt.Slug))
	require.Equal(t, 1, pulled(alice), "the refused push left no bundle")
	var lastErr string
	require.NoError(t, store.DB().QueryRow(ctx, `SELECT coalesce(last_error, '') FROM `+tt.SchemaName()+
		`._sync_source WHERE user_id = 'alice' AND source_id = 'alice-phone'`).Scan(&lastErr))
	require.Contains(t, lastErr, "quota_exceeded: row quota of 2", "the console shows the device's last error")
	del := todo(tt.WireSchema, 1, "DELETE")
	del["base_row_version"] = 1
	status, body = pushRows(t, base, alice, 2, []map[string]any{del})
	require.Equal(t, 200, status, "a push that frees rows passes: %v", body)

	// Storage: 403 at commit for a push that grows the tenant.
	setQuota(tenant.QuotaOverride{MaxStorageBytes: i64(1)})
	status, body = pushRows(t, base, alice, 3, []map[string]any{todo(tt.WireSchema, 4, "INSERT")})
	refused(status, body, 403, "quota_exceeded", "max_storage_bytes", "storage quota of 1 bytes reached")
	require.Equal(t, 2, pulled(alice))

	// Devices: alice's phone is the one active device; a second device is
	// refused at connect, the known one keeps working.
	setQuota(tenant.QuotaOverride{MaxActiveDevices: i64(1)})
	bob := dev("bob", "bob-phone")
	status, body = doJSON(t, "POST", base+"/sync/connect", bob, map[string]any{"has_local_pending_rows": false})
	refused(status, body, 403, "quota_exceeded", "max_active_devices", "device quota of 1 reached for tenant "+string(tt.Slug))
	status, body = doJSON(t, "POST", base+"/sync/connect", alice, map[string]any{"has_local_pending_rows": false})
	require.Equal(t, 200, status, "%v", body)
	status, body = pushRows(t, base, alice, 3, []map[string]any{todo(tt.WireSchema, 5, "INSERT")})
	require.Equal(t, 200, status, "%v", body)
	// A new source of a known user is a new device too; it is refused at commit.
	tablet := dev("alice", "alice-tablet")
	status, body = pushRows(t, base, tablet, 1, []map[string]any{todo(tt.WireSchema, 6, "INSERT")})
	refused(status, body, 403, "quota_exceeded", "max_active_devices", "device quota of 1 reached")
	require.Equal(t, 3, pulled(alice))
}

// TestWatcherQuotaAcrossReplicas: the concurrent-watchers quota counts the
// streams held by every replica; the refusal is the code clients decode to
// fall back to polling.
func TestWatcherQuotaAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	tt := newTestTenant(t, store, todosTables)
	two := int64(2)
	require.NoError(t, store.SetQuota(ctx, tt.ID, "", tenant.QuotaOverride{MaxWatchers: &two}, store.Plans(), tenanttest.Actor))
	s1, s2 := startServe(t, freeAddr(t)), startServe(t, freeAddr(t))
	dev := map[string]string{"Authorization": "Bearer " + tt.token(t, "alice"), "Oversync-Source-ID": "phone"}
	status, body := doJSON(t, "POST", s1.url()+"/k/"+tt.pk+"/sync/connect", dev, map[string]any{"has_local_pending_rows": false})
	require.Equal(t, 200, status, "%v", body)

	open := func(p *proc) (*http.Response, context.CancelFunc) {
		t.Helper()
		wctx, cancel := context.WithCancel(ctx)
		req, err := http.NewRequestWithContext(wctx, "GET", p.url()+"/k/"+tt.pk+"/sync/watch", nil)
		require.NoError(t, err)
		for k, v := range dev {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return res, cancel
	}
	r1, c1 := open(s1)
	defer c1()
	require.Equal(t, 200, r1.StatusCode)
	r2, c2 := open(s2)
	defer c2()
	require.Equal(t, 200, r2.StatusCode)
	r3, c3 := open(s1)
	require.Equal(t, http.StatusForbidden, r3.StatusCode)
	var refusal map[string]any
	require.NoError(t, json.NewDecoder(r3.Body).Decode(&refusal))
	c3()
	require.Equal(t, "bundle_change_watch_forbidden", refusal["error"])
	require.Equal(t, "max_watchers", refusal["quota"])
	require.Contains(t, refusal["message"], "watcher quota of 2 reached")

	// Closing a stream frees its place, on whichever replica.
	c2()
	r2.Body.Close()
	require.Eventually(t, func() bool {
		r, cancel := open(s1)
		defer cancel()
		r.Body.Close()
		return r.StatusCode == 200
	}, 5*time.Second, 50*time.Millisecond)
}

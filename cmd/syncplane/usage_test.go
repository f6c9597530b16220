package main

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// stop ends the process gracefully (SIGTERM) and waits.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of SIGTERM")
	}
}

// TestMeteringIsExactAcrossRestarts sends known traffic through two
// replicas that restart mid-run; the flushed hourly usage equals it.
func TestMeteringIsExactAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	tt := newTestTenant(t, store, todosTables)
	get := func(p *proc, path string, n int, want int) {
		t.Helper()
		for range n {
			res, err := http.Get(p.url() + "/k/" + tt.pk + path)
			require.NoError(t, err)
			res.Body.Close()
			require.Equal(t, want, res.StatusCode)
		}
	}
	s1, s2 := startServe(t, freeAddr(t)), startServe(t, freeAddr(t))
	get(s1, "/syncx/health", 7, 200)
	get(s2, "/syncx/health", 5, 200)
	get(s2, "/sync/capabilities", 3, 401) // no token: refused, still metered
	s1.stop(t)
	s1 = startServe(t, s1.addr)
	get(s1, "/syncx/health", 4, 200)
	get(s1, "/syncx/status", 2, 200)
	// Sync work: one bundle of two rows pushed through s1, pulled through s2.
	dev := map[string]string{"Authorization": "Bearer " + tt.token(t, "alice"), "Oversync-Source-ID": "phone"}
	status, body := doJSON(t, "POST", s1.url()+"/k/"+tt.pk+"/sync/connect", dev, map[string]any{"has_local_pending_rows": false})
	require.Equal(t, 200, status, "%v", body)
	status, body = pushRows(t, s1.url()+"/k/"+tt.pk, dev, 1, []map[string]any{todo(tt.WireSchema, 1, "INSERT"), todo(tt.WireSchema, 2, "INSERT")})
	require.Equal(t, 200, status, "%v", body)
	status, body = doJSON(t, "GET", s2.url()+"/k/"+tt.pk+"/sync/pull", dev, nil)
	require.Equal(t, 200, status, "%v", body)
	s1.stop(t)
	s2.stop(t)

	rows, err := store.Usage(ctx, tt.ID, time.Now().Add(-2*time.Hour), time.Now().Add(time.Hour))
	require.NoError(t, err)
	var total, bytesOut, bundles, pushed, pulled int64
	byEndpoint := map[string]int64{}
	for _, r := range rows {
		total += r.Requests
		bytesOut += r.BytesOut
		bundles += r.BundlesPushed
		pushed += r.RowsPushed
		pulled += r.RowsPulled
		for e, n := range r.ByEndpoint {
			byEndpoint[e] += n
		}
	}
	require.Equal(t, int64(7+5+3+4+2+5), total)
	require.Equal(t, map[string]int64{
		"GET /syncx/health": 16, "GET /sync/capabilities": 3, "GET /syncx/status": 2,
		"POST /sync/connect": 1, "POST /sync/push-sessions": 1, "POST /sync/push-sessions/:push_id/chunks": 1,
		"POST /sync/push-sessions/:push_id/commit": 1, "GET /sync/pull": 1,
	}, byEndpoint)
	require.Equal(t, int64(1), bundles)
	require.Equal(t, int64(2), pushed)
	require.Equal(t, int64(2), pulled)
	require.Positive(t, bytesOut)

	// The sampler records storage for the tenant (one replica at a time).
	ran, err := store.SampleUsage(ctx, 400*24*time.Hour)
	require.NoError(t, err)
	require.True(t, ran)
	rows, err = store.Usage(ctx, tt.ID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	require.Positive(t, rows[len(rows)-1].StorageBytes)
	require.Positive(t, rows[len(rows)-1].ActiveDevices, "the device that synced is counted")
}

package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// TestInFlightCapSparesWatchStreams: with a cap of one request in flight
// per tenant, a device's open watch streams (long-lived and mostly idle)
// take no slot, so its pushes and pulls still go through on the real
// server.
func TestInFlightCapSparesWatchStreams(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	tt := newTestTenant(t, store, todosTables)
	t.Setenv("SYNCPLANE_TENANT_MAX_IN_FLIGHT", "1")
	t.Setenv("SYNCPLANE_TENANT_QUEUE_WAIT", "0")
	srv := startServe(t, freeAddr(t))
	base := srv.url() + "/k/" + tt.pk
	dev := map[string]string{"Authorization": "Bearer " + tt.token(t, "alice"), "Oversync-Source-ID": "alice-phone"}
	status, body := doJSON(t, "POST", base+"/sync/connect", dev, map[string]any{"has_local_pending_rows": false})
	require.Equal(t, 200, status, "%v", body)

	for range 3 {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		req, err := http.NewRequestWithContext(wctx, "GET", base+"/sync/watch", nil)
		require.NoError(t, err)
		for k, v := range dev {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, 200, res.StatusCode)
	}
	for i := range 3 {
		status, body = pushRows(t, base, dev, i+1, []map[string]any{todo(tt.WireSchema, i, "INSERT")})
		require.Equal(t, 200, status, "%v", body)
		status, body = doJSON(t, "GET", base+"/sync/pull", dev, nil)
		require.Equal(t, 200, status, "%v", body)
	}
}

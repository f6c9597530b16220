package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// TestInFlightCapSparesWatchStreams: with a cap of one request in flight
// per tenant, devices' open watch streams (long-lived and mostly idle) take
// no slot, so pushes and pulls still go through on the real server. Two
// tenants hold three streams each: were streams counted, the six would fill
// the replica (--db-max-conns 6) and a tenant over its cap with another
// tenant busy would be refused at once.
func TestInFlightCapSparesWatchStreams(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	a, b := newTestTenant(t, store, todosTables), newTestTenant(t, store, todosTables)
	t.Setenv("SYNCPLANE_TENANT_MAX_IN_FLIGHT", "1")
	t.Setenv("SYNCPLANE_TENANT_QUEUE_WAIT", "0")
	srv := startServe(t, freeAddr(t))
	for _, tt := range []testTenant{a, b} {
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
	}
	base := srv.url() + "/k/" + a.pk
	dev := map[string]string{"Authorization": "Bearer " + a.token(t, "alice"), "Oversync-Source-ID": "alice-phone"}
	for i := range 3 {
		status, body := pushRows(t, base, dev, i+1, []map[string]any{todo(a.WireSchema, i, "INSERT")})
		require.Equal(t, 200, status, "%v", body)
		status, body = doJSON(t, "GET", base+"/sync/pull", dev, nil)
		require.Equal(t, 200, status, "%v", body)
	}
}

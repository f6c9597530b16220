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
	s1.stop(t)
	s2.stop(t)

	rows, err := store.Usage(ctx, tt.ID, time.Now().Add(-2*time.Hour), time.Now().Add(time.Hour))
	require.NoError(t, err)
	var total int64
	byEndpoint := map[string]int64{}
	var bytesOut int64
	for _, r := range rows {
		total += r.Requests
		bytesOut += r.BytesOut
		for e, n := range r.ByEndpoint {
			byEndpoint[e] += n
		}
	}
	require.Equal(t, int64(7+5+3+4+2), total)
	require.Equal(t, map[string]int64{
		"GET /syncx/health": 16, "GET /sync/capabilities": 3, "GET /syncx/status": 2,
	}, byEndpoint)
	require.Positive(t, bytesOut)

	// The sampler records storage for the tenant (one replica at a time).
	ran, err := store.SampleUsage(ctx, 400*24*time.Hour)
	require.NoError(t, err)
	require.True(t, ran)
	rows, err = store.Usage(ctx, tt.ID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	require.Positive(t, rows[len(rows)-1].StorageBytes)
}

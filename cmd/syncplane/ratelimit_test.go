package main

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// TestRateLimitAcrossTwoServerProcesses floods one tenant through two
// replicas; together they must hold it within 20% of its limit, while the
// over-limit requests get 429 rate_limited with Retry-After.
func TestRateLimitAcrossTwoServerProcesses(t *testing.T) {
	store := tenanttest.Store(t)
	tt := newTestTenant(t, store, "")
	const limit, burst = 100.0, 10
	rps, b := limit, int64(burst)
	require.NoError(t, store.SetQuota(context.Background(), tt.ID, "", tenant.QuotaOverride{RequestsPerSecond: &rps, RequestBurst: &b},
		store.Plans(), tenanttest.Actor))
	// Requests over the rate wait up to the queue wait for their token; at
	// 20 ms (one token at each replica's 50/s) the flood below overflows
	// it, so both the paced and the refused path run.
	t.Setenv("SYNCPLANE_TENANT_QUEUE_WAIT", "20ms")
	s1, s2 := startServe(t, freeAddr(t)), startServe(t, freeAddr(t))

	const window = 5 * time.Second
	var allowed, limited atomic.Int64
	var retryAfter atomic.Value
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	deadline := time.Now().Add(window)
	var wg sync.WaitGroup
	for i := range 8 {
		srv := s1
		if i%2 == 1 {
			srv = s2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// About 8 × 100 = 800 requests/s offered: well above the limit
			// without starving everything else on a small machine.
			for ; time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				res, err := client.Get(srv.url() + "/k/" + tt.pk + "/syncx/health")
				if err != nil {
					continue
				}
				res.Body.Close()
				switch res.StatusCode {
				case http.StatusOK:
					allowed.Add(1)
				case http.StatusTooManyRequests:
					limited.Add(1)
					retryAfter.Store(res.Header.Get("Retry-After"))
				}
			}
		}()
	}
	wg.Wait()
	got := float64(allowed.Load()) / window.Seconds()
	t.Logf("two replicas allowed %.1f req/s against a limit of %.0f/s (%d refused)", got, limit, limited.Load())
	require.Positive(t, limited.Load(), "the flood must exceed the limit for the test to mean anything")
	require.NotEmpty(t, retryAfter.Load())
	require.LessOrEqual(t, got, limit*1.2, "aggregate above the limit by more than 20%")
	require.GreaterOrEqual(t, got, limit*0.8, "aggregate below the limit by more than 20%")
}

package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
	"github.com/syncplane/syncplane/web/server"
)

// utilization returns the syncplane_quota_utilization_ratio series of one
// tenant, by quota.
func utilization(t *testing.T, c *server.TenantCollector, slug string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "syncplane_quota_utilization_ratio" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["tenant"] == slug {
				out[labels["quota"]] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestQuotaJobReportsUtilization(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	// busy has limits and traffic; idle has limits and no traffic;
	// unlimited has traffic and nothing limited.
	busy := tenanttest.Tenant(t, store, "")
	idle := tenanttest.Tenant(t, store, "")
	unlimited := tenanttest.Tenant(t, store, "")
	ten, gib := int64(10), int64(1<<30)
	limits := tenant.QuotaOverride{MaxRows: &ten, MaxActiveDevices: &ten, MaxStorageBytes: &gib}
	for _, tn := range []*tenant.Tenant{busy, idle} {
		require.NoError(t, store.SetQuota(ctx, tn.ID, "", limits, store.Plans(), tenanttest.Actor))
	}
	meter := tenant.NewMeter(store)
	meter.Request(busy.ID, "GET /syncx/health", 10, 20)
	meter.Request(unlimited.ID, "GET /syncx/health", 10, 20)
	require.NoError(t, meter.Flush(ctx))

	collector := server.NewTenantCollector(server.TenantCollectorOptions{})
	job := newQuotaJob(store, collector, nil, log)
	// Another process's job may hold the lock for a moment: retry.
	var ran bool
	for deadline := time.Now().Add(30 * time.Second); !ran && time.Now().Before(deadline); {
		var err error
		ran, _, err = job.once(ctx)
		require.NoError(t, err)
		if !ran {
			time.Sleep(200 * time.Millisecond)
		}
	}
	require.True(t, ran, "the job never got the lock")

	use, err := store.CurrentUse(ctx, busy)
	require.NoError(t, err)
	got := utilization(t, collector, string(busy.Slug))
	require.Len(t, got, 3)
	require.Zero(t, got["rows"])
	require.Zero(t, got["active_devices"])
	require.Positive(t, got["storage_bytes"])
	// Storage is measured again here; vacuum may have moved it a little.
	require.InEpsilon(t, float64(use.StorageBytes)/float64(gib), got["storage_bytes"], 0.05)
	require.Empty(t, utilization(t, collector, string(idle.Slug)), "no traffic in the last hour: not measured")
	require.Empty(t, utilization(t, collector, string(unlimited.Slug)), "nothing limited: not measured")

	// While another replica holds the lock, a run does nothing.
	tx, err := store.DB().Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('syncplane.quota_utilization', 0))`)
	require.NoError(t, err)
	other := server.NewTenantCollector(server.TenantCollectorOptions{})
	ran, n, err := newQuotaJob(store, other, nil, log).once(ctx)
	require.NoError(t, err)
	require.False(t, ran)
	require.Zero(t, n)
	require.Empty(t, utilization(t, other, string(busy.Slug)))
}

// TestQuotaJobRunRecordsItsRuns: the ticking loop records successful runs
// as syncplane_job_runs_total{job_name="quota_utilization"} and stops with
// its context.
func TestQuotaJobRunRecordsItsRuns(t *testing.T) {
	store := tenanttest.Store(t)
	reg := prometheus.NewRegistry()
	jobs := server.NewSyncMetrics(reg, nil)
	job := newQuotaJob(store, server.NewTenantCollector(server.TenantCollectorOptions{}), jobs,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		job.run(ctx, 100*time.Millisecond)
	}()
	successes := func() float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != "syncplane_job_runs_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["job_name"] == quotaJobName && labels["outcome"] == "success" {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	require.Eventually(t, func() bool { return successes() >= 1 }, 30*time.Second, 50*time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the job did not stop with its context")
	}
}

package main

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/syncplane/syncplane/web/server"
)

// Bounds of the per-tenant endpoint: a platform with 100,000 tenants
// reports at most tenantMetricsMax of them, those active within
// tenantMetricsWindow.
const (
	tenantMetricsWindow = time.Hour
	tenantMetricsMax    = 1000
)

// appMetrics are one process's metrics. Platform totals live on the app's
// registry (served on /metrics); per-tenant series on their own registry
// (served on /tenant-metrics, meant to be scraped less often).
type appMetrics struct {
	HTTP    *server.Metrics
	Sync    *server.SyncMetrics // hand to the sync engine and background jobs
	Tenants *server.TenantCollector

	tenantRegistry *prometheus.Registry
}

// newAppMetrics registers build info, the database pool collector over
// pools, HTTP and sync metrics on reg, and builds the per-tenant registry.
func newAppMetrics(reg prometheus.Registerer, pools server.PoolSource) *appMetrics {
	m := &appMetrics{
		Tenants:        server.NewTenantCollector(server.TenantCollectorOptions{Window: tenantMetricsWindow, Max: tenantMetricsMax}),
		tenantRegistry: prometheus.NewRegistry(),
	}
	m.tenantRegistry.MustRegister(m.Tenants)
	reg.MustRegister(server.NewBuildInfo(version), server.NewPoolCollector(pools))
	m.HTTP = server.NewMetrics(reg, m.Tenants)
	m.Sync = server.NewSyncMetrics(reg, m.Tenants)
	return m
}

// tenantHandler serves the per-tenant registry.
func (m *appMetrics) tenantHandler() http.Handler {
	return promhttp.HandlerFor(m.tenantRegistry, promhttp.HandlerOpts{Registry: m.tenantRegistry})
}

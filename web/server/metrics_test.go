package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// metricsEngine is an engine with metrics and a few routes; "/t/:id" acts
// like a gateway route resolved to tenant "acme".
func metricsEngine(t *testing.T) (*gin.Engine, *prometheus.Registry, *TenantCollector) {
	t.Helper()
	reg := prometheus.NewRegistry()
	tc := NewTenantCollector(TenantCollectorOptions{})
	e := NewEngine(quietLog(), WithMetrics(NewMetrics(reg, tc)))
	e.GET("/items/:id", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	e.POST("/items/:id", func(c *gin.Context) { RenderError(c, NewError(http.StatusConflict, "conflict", "no")) })
	e.GET("/boom", func(c *gin.Context) { panic("boom") })
	e.GET("/t/:id", func(c *gin.Context) {
		WithScope(c, &SyncScope{Tenant: &tenant.Tenant{Slug: "acme"}})
		c.Status(http.StatusOK)
	})
	return e, reg, tc
}

// series gathers g and returns the samples of the named families (all
// families when none are named) as name{label="value",...} → value;
// histograms appear as their _count.
func series(t *testing.T, g prometheus.Gatherer, names ...string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if len(names) > 0 && !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func gathererOf(c prometheus.Collector) prometheus.Gatherer {
	r := prometheus.NewPedanticRegistry()
	r.MustRegister(c)
	return r
}

func do(t *testing.T, e http.Handler, method, path string) int {
	t.Helper()
	w := httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w.Code
}

func TestHTTPMetricsByRouteTemplate(t *testing.T) {
	e, reg, tc := metricsEngine(t)
	cases := []struct {
		method, path string
		status       int
	}{
		{"GET", "/items/1", 204},
		{"GET", "/items/2", 204},
		{"POST", "/items/3", 409},
		{"GET", "/no/such/secret-key-path", 404},
		{"DELETE", "/items/4", 405},
		{"GET", "/boom", 500},
		{"GET", "/t/x", 200},
		{"PROPFIND", "/items/5", 405},
	}
	for _, tc := range cases {
		require.Equal(t, tc.status, do(t, e, tc.method, tc.path), "%s %s", tc.method, tc.path)
	}
	want := map[string]float64{
		`syncplane_http_requests_total{method="DELETE",route="unmatched",status_class="4xx"}`: 1,
		`syncplane_http_requests_total{method="GET",route="/boom",status_class="5xx"}`:        1,
		`syncplane_http_requests_total{method="GET",route="/items/:id",status_class="2xx"}`:   2,
		`syncplane_http_requests_total{method="GET",route="/t/:id",status_class="2xx"}`:       1,
		`syncplane_http_requests_total{method="GET",route="unmatched",status_class="4xx"}`:    1,
		`syncplane_http_requests_total{method="POST",route="/items/:id",status_class="4xx"}`:  1,
		`syncplane_http_requests_total{method="other",route="unmatched",status_class="4xx"}`:  1,
	}
	require.Equal(t, want, series(t, reg, "syncplane_http_requests_total"))
	require.Len(t, series(t, reg, "syncplane_http_request_duration_seconds"), 7)
	require.Equal(t, map[string]float64{"syncplane_http_requests_in_flight": 0}, series(t, reg, "syncplane_http_requests_in_flight"))

	wantTenant := map[string]float64{
		`syncplane_tenant_http_requests_total{status_class="2xx",tenant="acme"}`: 1,
	}
	require.Equal(t, wantTenant, series(t, gathererOf(tc), "syncplane_tenant_http_requests_total"))
}

func TestTwoServersInOneProcess(t *testing.T) {
	for range 2 {
		reg := prometheus.NewRegistry()
		tc := NewTenantCollector(TenantCollectorOptions{})
		require.NotPanics(t, func() {
			NewMetrics(reg, tc)
			NewSyncMetrics(reg, tc)
			reg.MustRegister(NewBuildInfo("test"), NewPoolCollector(staticPools{}))
		})
	}
}

func TestSyncMetricsNilIsNoop(t *testing.T) {
	var m *SyncMetrics
	m.ObservePushChunk("a", 1, 2)
	m.ObserveCommit("a", 1)
	m.ObserveError("a", "x")
	m.ObserveJob("j", time.Second, nil)
	m.PushSessionOpened("a")
	m.WatcherConnected("a")()
	var tc *TenantCollector
	tc.ObserveRequest("a", "2xx")
}

func TestSyncMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	now := time.Unix(1_700_000_000, 0)
	tc := NewTenantCollector(TenantCollectorOptions{Now: func() time.Time { return now }})
	m := NewSyncMetrics(reg, tc)
	m.now = func() time.Time { return now }

	m.ObservePushChunk("acme", 10, 1000)
	m.ObservePushChunk("acme", 5, 500)
	m.ObserveCommit("acme", 15)
	m.ObserveConflict("acme", 2)
	m.ObservePull("acme", 7, 700)
	m.ObserveSnapshot("beta", 100, 9000)
	m.ObserveWatchWakeup("beta")
	m.ObserveHistoryPruned("beta")
	m.ObserveError("acme", "push_conflict")
	m.ObserveError("acme", "Robert'); DROP TABLE") // not an identifier: "other"
	m.PushSessionOpened("acme")
	m.SnapshotSessionOpened("beta")
	m.SnapshotSessionClosed("beta")
	done := m.WatcherConnected("beta")
	m.WatcherConnected("beta")
	done()
	done() // idempotent
	m.ObserveJob("session_sweeper", 2*time.Second, nil)
	m.ObserveJob("session_sweeper", time.Second, errors.New("db down"))

	want := map[string]float64{
		`syncplane_sync_bytes_total{direction="in"}`:                               1500,
		`syncplane_sync_bytes_total{direction="out"}`:                              9700,
		`syncplane_sync_rows_total{direction="in"}`:                                15,
		`syncplane_sync_rows_total{direction="out"}`:                               107,
		`syncplane_sync_errors_total{code="other"}`:                                1,
		`syncplane_sync_errors_total{code="push_conflict"}`:                        1,
		`syncplane_sync_push_chunks_total`:                                         2,
		`syncplane_sync_commits_total`:                                             1,
		`syncplane_sync_conflicts_total`:                                           2,
		`syncplane_sync_push_sessions_open`:                                        1,
		`syncplane_sync_snapshot_sessions_open`:                                    0,
		`syncplane_sync_watchers_connected`:                                        1,
		`syncplane_job_runs_total{job_name="session_sweeper",outcome="error"}`:     1,
		`syncplane_job_runs_total{job_name="session_sweeper",outcome="success"}`:   1,
		`syncplane_job_last_success_timestamp_seconds{job_name="session_sweeper"}`: 1.7e+09,
	}
	require.Equal(t, want, series(t, reg,
		"syncplane_sync_bytes_total", "syncplane_sync_rows_total", "syncplane_sync_errors_total",
		"syncplane_sync_push_chunks_total", "syncplane_sync_commits_total", "syncplane_sync_conflicts_total",
		"syncplane_sync_push_sessions_open", "syncplane_sync_snapshot_sessions_open", "syncplane_sync_watchers_connected",
		"syncplane_job_runs_total", "syncplane_job_last_success_timestamp_seconds"))

	wantTenant := map[string]float64{
		`syncplane_tenant_rows_total{direction="in",tenant="acme"}`:  15,
		`syncplane_tenant_rows_total{direction="in",tenant="beta"}`:  0,
		`syncplane_tenant_rows_total{direction="out",tenant="acme"}`: 7,
		`syncplane_tenant_rows_total{direction="out",tenant="beta"}`: 100,
		`syncplane_tenant_sync_errors_total{tenant="acme"}`:          2,
		`syncplane_tenant_sync_errors_total{tenant="beta"}`:          0,
		`syncplane_tenant_watchers_connected{tenant="acme"}`:         0,
		`syncplane_tenant_watchers_connected{tenant="beta"}`:         1,
	}
	require.Equal(t, wantTenant, series(t, gathererOf(tc),
		"syncplane_tenant_rows_total", "syncplane_tenant_sync_errors_total", "syncplane_tenant_watchers_connected"))
}

func TestBoundedLabelValues(t *testing.T) {
	var b boundedLabel
	for i := range maxLabelValues + 10 {
		b.value("code_" + strings.Repeat("x", i%60) + string(rune('a'+i/60)))
	}
	require.Len(t, b.seen, maxLabelValues)
	require.Equal(t, "other", b.value("a_new_code"))
	require.Equal(t, "code_a", b.value("code_a"))
	require.Equal(t, "other", b.value(""))
	require.Equal(t, "other", b.value("UPPER"))
}

func TestTenantCollectorWindowAndCap(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	tc := NewTenantCollector(TenantCollectorOptions{Window: time.Hour, Max: 3, Now: clock})
	m := NewSyncMetrics(prometheus.NewRegistry(), tc)

	m.ObserveCommit("a", 1)
	now = now.Add(time.Minute)
	m.ObserveCommit("b", 1)
	now = now.Add(time.Minute)
	m.ObserveCommit("c", 1)
	now = now.Add(time.Minute)
	m.ObserveCommit("a", 1) // a is now the most recent; b the least
	require.Equal(t, []string{"a", "c", "b"}, tc.Tenants())

	m.ObserveCommit("d", 1) // over the cap: b goes
	require.Equal(t, []string{"d", "a", "c"}, tc.Tenants())
	m.PushSessionClosed("b") // a dropped tenant does not come back
	require.Equal(t, []string{"d", "a", "c"}, tc.Tenants())

	// c holds a watcher open: it stays past the window; the others expire.
	m.WatcherConnected("c")
	now = now.Add(2 * time.Hour)
	m.ObserveCommit("e", 1)
	require.Equal(t, []string{"e", "c"}, tc.Tenants())

	// An expired tenant starts from zero when it comes back.
	m.ObserveCommit("a", 1)
	want := map[string]float64{
		`syncplane_tenant_commits_total{tenant="a"}`: 1,
		`syncplane_tenant_commits_total{tenant="c"}`: 1,
		`syncplane_tenant_commits_total{tenant="e"}`: 1,
		`syncplane_tenant_metrics_evictions_total`:   1,
		`syncplane_tenant_metrics_tenants`:           3,
	}
	require.Equal(t, want, series(t, gathererOf(tc),
		"syncplane_tenant_commits_total", "syncplane_tenant_metrics_evictions_total", "syncplane_tenant_metrics_tenants"))

	tc.SetQuotaUtilization("a", "rows", 0.97)
	tc.SetQuotaUtilization("a", "Bad Label", 0.5)
	wantQuota := map[string]float64{
		`syncplane_quota_utilization_ratio{quota="other",tenant="a"}`: 0.5,
		`syncplane_quota_utilization_ratio{quota="rows",tenant="a"}`:  0.97,
	}
	require.Equal(t, wantQuota, series(t, gathererOf(tc), "syncplane_quota_utilization_ratio"))
}

func TestTenantCollectorStaysBounded(t *testing.T) {
	tc := NewTenantCollector(TenantCollectorOptions{Max: 50})
	m := NewSyncMetrics(prometheus.NewRegistry(), tc)
	for i := range 10_000 {
		m.ObservePull("t"+string(rune('a'+i%26))+strings.Repeat("x", i/26%30)+string(rune('a'+i/780)), 1, 1)
	}
	require.Len(t, tc.Tenants(), 50)
}

type staticPools map[string]*pgxpool.Pool

func (s staticPools) Placements() []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	return out
}

func (s staticPools) Pool(p string) (*pgxpool.Pool, error) {
	if pool, ok := s[p]; ok {
		return pool, nil
	}
	return nil, errors.New("no such placement")
}

func TestPoolCollector(t *testing.T) {
	url := os.Getenv("SYNCPLANE_TEST_DATABASE_URL")
	if url == "" {
		t.Skip("SYNCPLANE_TEST_DATABASE_URL not set")
	}
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.MaxConns = 3
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	conn, err := pool.Acquire(context.Background())
	require.NoError(t, err)
	defer conn.Release()

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewPoolCollector(staticPools{"eu1": pool}))
	want := map[string]float64{
		`syncplane_db_pool_acquired_connections{placement="eu1",pool="cluster"}`: 1,
		`syncplane_db_pool_max_connections{placement="eu1",pool="cluster"}`:      3,
		`syncplane_db_pool_acquires_total{placement="eu1",pool="cluster"}`:       1,
	}
	require.Equal(t, want, series(t, reg,
		"syncplane_db_pool_acquired_connections", "syncplane_db_pool_max_connections", "syncplane_db_pool_acquires_total"))
	require.Len(t, series(t, gathererOf(NewPoolCollector(staticPools{"eu1": pool}))), 13)
}

// TestExpositionPassesPromtool lints what /metrics and /tenant-metrics
// serve with the real promtool (skipped when it is not installed).
func TestExpositionPassesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (scripts/test.sh installs it)")
	}
	e, reg, tc := metricsEngine(t)
	m := NewSyncMetrics(reg, tc)
	reg.MustRegister(NewBuildInfo("v1.2.3"))
	do(t, e, "GET", "/items/1")
	do(t, e, "GET", "/t/1")
	m.ObservePushChunk("acme", 1, 10)
	m.ObserveError("acme", "push_conflict")
	m.ObserveJob("session_sweeper", time.Second, nil)
	tc.SetQuotaUtilization("acme", "rows", 0.5)
	treg := prometheus.NewRegistry()
	treg.MustRegister(tc)

	for name, g := range map[string]prometheus.Gatherer{"metrics": reg, "tenant-metrics": treg} {
		w := httptest.NewRecorder()
		promhttp.HandlerFor(g, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(w.Body.Bytes())
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool check metrics on /%s:\n%s", name, out)
	}
}

// shardedPools is a placement with a cluster pool and request shards, as
// tenant.Clusters reports it.
type shardedPools struct {
	staticPools
	shards []*pgxpool.Pool
}

func (s shardedPools) RequestShards(string) []*pgxpool.Pool { return s.shards }

// The request shards carry the sync requests: their figures come summed
// beside the cluster pool's, so the saturation alert sees them.
func TestPoolCollectorReportsShards(t *testing.T) {
	url := os.Getenv("SYNCPLANE_TEST_DATABASE_URL")
	if url == "" {
		t.Skip("SYNCPLANE_TEST_DATABASE_URL not set")
	}
	open := func(max int32) *pgxpool.Pool {
		cfg, err := pgxpool.ParseConfig(url)
		require.NoError(t, err)
		cfg.MaxConns = max
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return pool
	}
	base, s1, s2 := open(3), open(4), open(5)
	for _, p := range []*pgxpool.Pool{base, s1, s2, s2} {
		conn, err := p.Acquire(context.Background())
		require.NoError(t, err)
		defer conn.Release()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewPoolCollector(shardedPools{staticPools{"eu1": base}, []*pgxpool.Pool{s1, s2}}))
	require.Equal(t, map[string]float64{
		`syncplane_db_pool_acquired_connections{placement="eu1",pool="cluster"}`:  1,
		`syncplane_db_pool_max_connections{placement="eu1",pool="cluster"}`:       3,
		`syncplane_db_pool_acquired_connections{placement="eu1",pool="requests"}`: 3,
		`syncplane_db_pool_max_connections{placement="eu1",pool="requests"}`:      9,
	}, series(t, reg, "syncplane_db_pool_acquired_connections", "syncplane_db_pool_max_connections"))
}

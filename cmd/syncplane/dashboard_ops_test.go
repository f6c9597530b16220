package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// descRecorder is a Registerer that keeps the metric names its collectors
// describe.
type descRecorder map[string]bool

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqNameRE.FindStringSubmatch(desc.String()); m != nil {
			d[m[1]] = true
		}
	}
	return nil
}

func (d descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d descRecorder) Unregister(prometheus.Collector) bool { return false }

// knows reports whether name (or the histogram series it belongs to) exists.
func (d descRecorder) knows(name string) bool {
	for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
		if strings.HasSuffix(name, suffix) && d[strings.TrimSuffix(name, suffix)] {
			return true
		}
	}
	return false
}

type noPools struct{}

func (noPools) Placements() []string               { return nil }
func (noPools) Pool(string) (*pgxpool.Pool, error) { return nil, nil }
func readChartFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, name))
	require.NoError(t, err)
	return b
}

// TestDashboardAndAlertsUseRealMetrics: every syncplane_* name the
// dashboard and the alert rules query is one the server exports (on
// /metrics or /tenant-metrics), and the dashboard covers what operators
// need.
func TestDashboardAndAlertsUseRealMetrics(t *testing.T) {
	names := descRecorder{}
	m := newAppMetrics(names, noPools{})
	names.MustRegister(m.Tenants)

	dashboard := readChartFile(t, "files/dashboard.json")
	alerts := readChartFile(t, "files/alerts.yaml")
	used := map[string]bool{}
	for _, expr := range dashboardExprs(t) {
		for _, n := range metricNameRE.FindAllString(expr, -1) {
			used[n] = true
			require.True(t, names.knows(n), "dashboard queries %s, which the server does not export", n)
		}
	}
	for _, n := range metricNameRE.FindAllString(string(alerts), -1) {
		require.True(t, names.knows(n), "alerts.yaml uses %s, which the server does not export", n)
	}
	for _, n := range []string{
		"syncplane_http_requests_total", "syncplane_http_request_duration_seconds_bucket",
		"syncplane_sync_commits_total", "syncplane_sync_rows_total", "syncplane_sync_bytes_total",
		"syncplane_sync_errors_total", "syncplane_sync_push_sessions_open", "syncplane_sync_snapshot_sessions_open",
		"syncplane_sync_watchers_connected", "syncplane_db_pool_acquired_connections",
		"syncplane_db_pool_acquire_wait_seconds_total", "syncplane_job_runs_total",
		"syncplane_quota_utilization_ratio",
	} {
		require.True(t, used[n], "the dashboard has no panel on %s", n)
	}

	var d struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct{ Name, Type string } `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			GridPos struct{ X, Y, W, H int } `json:"gridPos"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(dashboard, &d))
	require.Equal(t, "syncplane-overview", d.UID)
	require.Equal(t, "datasource", d.Templating.List[0].Type, "the data source is a variable, so any Prometheus works")
	ids := map[int]bool{}
	for _, p := range d.Panels {
		require.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		require.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, "panel %q is wider than the grid", p.Title)
		if p.Type == "row" {
			continue
		}
		require.NotNil(t, p.Datasource, "panel %q", p.Title)
		require.Equal(t, "${datasource}", p.Datasource.UID, "panel %q", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			if strings.Contains(tg.Expr, "syncplane_") {
				require.Contains(t, tg.Expr, `namespace=~"$namespace"`, "panel %q ignores the namespace variable", p.Title)
			}
		}
	}
}

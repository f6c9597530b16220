package main

// The real scrape: a built `syncplane serve` against the test database, a
// real Prometheus scraping it every second (with the chart's alert rules
// loaded), real HTTP and sync traffic, then Prometheus' HTTP API must show
// the series with the expected labels and values; promtool checks the
// exposition. Runs when SYNCPLANE_SCRAPE_TEST=1 (scripts/test.sh step
// "scrape"), which also puts prometheus and promtool on PATH.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

const scrapeVersion = "v0.0.0-scrape"

func TestRealScrape(t *testing.T) {
	if os.Getenv("SYNCPLANE_SCRAPE_TEST") != "1" {
		t.Skip("SYNCPLANE_SCRAPE_TEST is not 1 (scripts/test.sh step scrape sets it)")
	}
	prometheusBin, err := exec.LookPath("prometheus")
	require.NoError(t, err, "prometheus must be on PATH")
	promtool, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool must be on PATH")

	// A database of its own: `migrate up` visits every tenant, and other
	// test runs may share the test cluster.
	dbURL := tenanttest.FreshDatabase(t)
	bin := filepath.Join(t.TempDir(), "syncplane")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+scrapeVersion, "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)

	env := append(os.Environ(), "SYNCPLANE_DATABASE_URL="+dbURL, "SYNCPLANE_HTTP_ADDR=127.0.0.1:0",
		"SYNCPLANE_METRICS_ADDR=127.0.0.1:0", "SYNCPLANE_LOG_FORMAT=json", "SYNCPLANE_LOG_LEVEL=info",
		"SYNCPLANE_DB_MAX_CONNS=9", "SYNCPLANE_AUTO_MIGRATE=false", "SYNCPLANE_DEFAULT_TENANT=")
	// What the chart's hook Job runs.
	migrate := exec.Command(bin, "migrate", "up")
	migrate.Env = env
	out, err = migrate.CombinedOutput()
	require.NoError(t, err, "syncplane migrate up:\n%s", out)

	pool := tenanttest.PoolFor(t, dbURL)
	tt := newTestTenant(t, tenant.NewStore(pool, tenant.NewClusters(pool)), todosTables)

	srv := startBinary(t, bin, env, "serve")
	httpAddr, metricsAddr := srv.waitFor(t, "syncplane listening"), srv.waitFor(t, "metrics listening")
	api, metrics := "http://"+httpAddr, "http://"+metricsAddr

	prom := startPrometheus(t, prometheusBin, metricsAddr)

	// Traffic: health checks, wrong keys, an unknown path, real sync.
	get := func(path string, header map[string]string) int {
		req, err := http.NewRequest("GET", api+path, nil)
		require.NoError(t, err)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for range 5 {
		require.Equal(t, 200, get("/healthz", nil))
	}
	for range 3 {
		require.Equal(t, 200, get("/readyz", nil))
	}
	require.Equal(t, 401, get("/k/sk_bogus_scrape_key/sync/capabilities", nil))
	require.Equal(t, 401, get("/sync/pull", map[string]string{"X-Syncplane-Key": "pk_bogus_scrape_key"}))
	require.Equal(t, 404, get("/no/such/scrape/path", nil))

	dev := map[string]string{"Authorization": "Bearer " + tt.token(t, "alice"), "Oversync-Source-ID": "scrape-device"}
	base := api + "/k/" + tt.pk
	status, body := doJSON(t, "POST", base+"/sync/connect", dev, map[string]any{"has_local_pending_rows": false})
	require.Equal(t, 200, status, "%v", body)
	status, body = doJSON(t, "POST", base+"/sync/push-sessions", dev, map[string]any{"source_bundle_id": 1, "planned_row_count": 1})
	require.Equal(t, 200, status, "%v", body)
	pushID := body["push_id"].(string)
	row := map[string]any{"schema": tt.WireSchema, "table": "todos", "op": "INSERT", "base_row_version": 0,
		"key": map[string]any{"id": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}, "payload": map[string]any{"title": "scraped", "done": 0}}
	status, body = doJSON(t, "POST", base+"/sync/push-sessions/"+pushID+"/chunks", dev, map[string]any{"start_row_ordinal": 0, "rows": []any{row}})
	require.Equal(t, 200, status, "%v", body)
	status, body = doJSON(t, "POST", base+"/sync/push-sessions/"+pushID+"/commit", dev, nil)
	require.Equal(t, 200, status, "%v", body)
	status, body = doJSON(t, "GET", base+"/sync/pull?after_bundle_seq=0", dev, nil)
	require.Equal(t, 200, status, "%v", body)

	// What Prometheus must have scraped.
	slug := string(tt.Slug)
	checks := []struct {
		query string
		ok    func(float64) bool
		want  string
	}{
		{`up{job="syncplane"}`, eq(1), "== 1"},
		{`up{job="syncplane-tenants"}`, eq(1), "== 1"},
		{`syncplane_http_requests_total{job="syncplane",route="/healthz",method="GET",status_class="2xx"}`, ge(5), ">= 5"},
		{`syncplane_http_requests_total{route="/readyz",method="GET",status_class="2xx"}`, ge(3), ">= 3"},
		{`syncplane_http_request_duration_seconds_count{route="/healthz",method="GET",status_class="2xx"}`, ge(5), ">= 5"},
		{`syncplane_http_requests_total{route="/k/:apikey/sync/capabilities",method="GET",status_class="4xx"}`, ge(1), ">= 1 (bad key, by route template)"},
		{`syncplane_http_requests_total{route="/sync/pull",method="GET",status_class="4xx"}`, ge(1), ">= 1 (bad key header)"},
		{`syncplane_http_requests_total{route="unmatched",method="GET",status_class="4xx"}`, ge(1), ">= 1"},
		{`syncplane_http_requests_total{route="/k/:apikey/sync/push-sessions/:push_id/commit",method="POST",status_class="2xx"}`, ge(1), ">= 1"},
		{`syncplane_build_info{version="` + scrapeVersion + `",goversion="` + runtime.Version() + `"}`, eq(1), "== 1"},
		{`syncplane_db_pool_max_connections{placement="default",pool="cluster"}`, eq(9), "== 9 (SYNCPLANE_DB_MAX_CONNS)"},
		{`syncplane_db_pool_max_connections{placement="default",pool="requests"}`, eq(9), "== 9 (two request shards, 4 + 5)"},
		{`syncplane_db_pool_acquires_total{placement="default",pool="requests"}`, ge(1), ">= 1 (the sync requests)"},
		{`syncplane_db_pool_acquires_total{placement="default",pool="cluster"}`, ge(1), ">= 1"},
		{`syncplane_sync_commits_total{job="syncplane"}`, ge(0), "present"},
		{`syncplane_sync_rows_total{job="syncplane",direction="in"}`, ge(0), "present"},
		{`syncplane_tenant_http_requests_total{job="syncplane-tenants",tenant="` + slug + `",status_class="2xx"}`, ge(5), ">= 5 (connect, push, chunk, commit, pull)"},
		{`syncplane_tenant_metrics_tenants{job="syncplane-tenants"}`, ge(1), ">= 1"},
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		var failed []string
		for _, c := range checks {
			v, n := prom.value(t, c.query)
			if n != 1 || !c.ok(v) {
				failed = append(failed, fmt.Sprintf("%s: got %d series, value %v; want one series %s", c.query, n, v, c.want))
			}
		}
		if len(failed) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not scrape the expected series:\n  %s\nserver log:\n%s", strings.Join(failed, "\n  "), srv.log())
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Raw paths and keys never become label values.
	for _, q := range []string{
		`syncplane_http_requests_total{route=~".*(bogus|scrape/path|` + tt.pk + `).*"}`,
		`syncplane_http_requests_total{route=~"/k/[^:].*"}`,
	} {
		_, n := prom.value(t, q)
		require.Zero(t, n, "%s must match nothing", q)
	}
	if v, _ := prom.value(t, `syncplane_sync_commits_total{job="syncplane"}`); v == 0 {
		t.Log("note: syncplane_sync_commits_total is 0: the sync engine does not report to server.SyncMetrics yet")
	}

	// The chart's alert rules load and evaluate in a real Prometheus.
	var rules struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				}
			}
		}
	}
	for {
		prom.api(t, "/api/v1/rules", nil, &rules)
		var n, healthy int
		for _, g := range rules.Data.Groups {
			for _, r := range g.Rules {
				n++
				if r.Health == "ok" {
					healthy++
				}
				require.NotEqual(t, "err", r.Health, "rule %s: %s", r.Name, r.LastError)
			}
		}
		require.Equal(t, 7, n, "alert rules loaded")
		if healthy == n {
			break
		}
		require.True(t, time.Now().Before(deadline), "rules not evaluated: %+v", rules)
		time.Sleep(500 * time.Millisecond)
	}

	// Every dashboard query is valid PromQL against the real series.
	for _, expr := range dashboardExprs(t) {
		q := strings.NewReplacer("$__rate_interval", "1m", "$namespace", ".*").Replace(expr)
		var res struct{ Status, Error string }
		prom.api(t, "/api/v1/query", url.Values{"query": {q}}, &res)
		require.Equal(t, "success", res.Status, "dashboard query %s: %s", q, res.Error)
	}

	// promtool lints the real exposition.
	for _, path := range []string{"/metrics", "/tenant-metrics"} {
		res, err := http.Get(metrics + path)
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		require.Equal(t, 200, res.StatusCode)
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool check metrics %s:\n%s", path, out)
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func ge(want float64) func(float64) bool { return func(v float64) bool { return v >= want } }

// binary is a started process whose JSON log lines are kept.
type binary struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	logs []map[string]any
	raw  bytes.Buffer
}

func startBinary(t *testing.T, bin string, env []string, args ...string) *binary {
	t.Helper()
	b := &binary{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	b.cmd.Env = env
	stderr, err := b.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, b.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m map[string]any
			_ = json.Unmarshal(sc.Bytes(), &m)
			b.mu.Lock()
			b.raw.Write(sc.Bytes())
			b.raw.WriteByte('\n')
			if m != nil {
				b.logs = append(b.logs, m)
			}
			b.mu.Unlock()
		}
		_ = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(30 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

func (b *binary) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.raw.String()
}

// waitFor returns the addr of the first log line with message msg.
func (b *binary) waitFor(t *testing.T, msg string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.mu.Lock()
		for _, l := range b.logs {
			if l["msg"] == msg {
				b.mu.Unlock()
				return l["addr"].(string)
			}
		}
		b.mu.Unlock()
		select {
		case <-b.done:
			t.Fatalf("%s exited before logging %q:\n%s", b.cmd.Path, msg, b.log())
		default:
		}
		require.True(t, time.Now().Before(deadline), "no %q in 30s:\n%s", msg, b.log())
		time.Sleep(20 * time.Millisecond)
	}
}

type prometheusProc struct{ url string }

// startPrometheus runs Prometheus with a private data directory under
// .syncplane/, scraping target every second as the ServiceMonitor would.
func startPrometheus(t *testing.T, bin, target string) *prometheusProc {
	t.Helper()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(root, ".syncplane"), 0o755))
	dir, err := os.MkdirTemp(filepath.Join(root, ".syncplane"), "prometheus-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: syncplane
    static_configs: [{targets: [%q]}]
  - job_name: syncplane-tenants
    metrics_path: /tenant-metrics
    static_configs: [{targets: [%q]}]
`, filepath.Join(root, "charts/syncplane/files/alerts.yaml"), target, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(config), 0o644))

	for attempt := 0; ; attempt++ {
		addr := freeAddr(t)
		p := startBinary(t, bin, os.Environ(), "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr, "--log.level=warn", "--log.format=json")
		pp := &prometheusProc{url: "http://" + addr}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if res, err := http.Get(pp.url + "/-/ready"); err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					return pp
				}
			}
			select {
			case <-p.done:
				deadline = time.Time{} // exited: maybe the port was taken
			default:
				time.Sleep(100 * time.Millisecond)
			}
		}
		require.Less(t, attempt, 2, "prometheus did not become ready:\n%s", p.log())
	}
}

func (p *prometheusProc) api(t *testing.T, path string, q url.Values, out any) {
	t.Helper()
	u := p.url + path
	if q != nil {
		u += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.NoError(t, json.NewDecoder(res.Body).Decode(out), "GET %s", u)
}

// value runs an instant query and returns the first sample's value and the
// number of series.
func (p *prometheusProc) value(t *testing.T, query string) (float64, int) {
	t.Helper()
	var res struct {
		Status, Error string
		Data          struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		}
	}
	p.api(t, "/api/v1/query", url.Values{"query": {query}}, &res)
	require.Equal(t, "success", res.Status, "%s: %s", query, res.Error)
	if len(res.Data.Result) == 0 {
		return 0, 0
	}
	var v float64
	_, _ = fmt.Sscanf(res.Data.Result[0].Value[1].(string), "%g", &v)
	return v, len(res.Data.Result)
}

// dashboardExprs lists the PromQL of every panel of the chart's dashboard.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "files/dashboard.json"))
	require.NoError(t, err)
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(b, &d))
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

var metricNameRE = regexp.MustCompile(`\bsyncplane_[a-z0-9_]+`)

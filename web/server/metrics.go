package server

import (
	"container/list"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names follow syncplane_<subsystem>_<thing>_{total,seconds,bytes}.
// Everything here registers on a registry passed in by cmd: there is no
// global registration, so two servers in one process do not collide.
//
// Platform totals (no tenant label) go to the registry served on /metrics;
// per-tenant series go to a TenantCollector, served on /tenant-metrics and
// bounded to the tenants active recently.

// UnmatchedRoute is the route label of requests no route matched (404, 405):
// the raw path is never a label value.
const UnmatchedRoute = "unmatched"

// httpBuckets cover fast API calls up to slow snapshot pages; long-lived
// streams (/sync/watch) land in the last buckets and are excluded from
// latency alerts by route.
var httpBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// Metrics records HTTP traffic by route template, method and status class.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
	refusals *prometheus.CounterVec
	waits    *prometheus.HistogramVec
	tenants  *TenantCollector
}

// waitBuckets cover the gateway's queue waits, bounded by its QueueWait.
var waitBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

// NewMetrics registers the HTTP metrics on reg. tenants, if not nil, also
// counts each request the gateway resolved to a tenant under that tenant.
func NewMetrics(reg prometheus.Registerer, tenants *TenantCollector) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncplane_http_requests_total",
			Help: "HTTP requests served, by route template, method and status class.",
		}, []string{"route", "method", "status_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "syncplane_http_request_duration_seconds",
			Help:    "Time from the request reaching the metrics middleware to the handler returning, by route template, method and status class.",
			Buckets: httpBuckets,
		}, []string{"route", "method", "status_class"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "syncplane_http_requests_in_flight",
			Help: "HTTP requests being served now, including open watch streams.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncplane_gateway_refusals_total",
			Help: "Requests the gateway refused with 429 because their tenant was over a limit: requests_per_second (rate quota) or requests_in_flight (per-tenant concurrency cap).",
		}, []string{"limit"}),
		waits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "syncplane_gateway_queue_wait_seconds",
			Help:    "Time requests over their tenant's rate or concurrency limit waited in the gateway, by limit and outcome (admitted or refused); limit yield is a request paced by its tenant's rate giving way to other tenants' requests (always admitted); requests that did not wait are not observed.",
			Buckets: waitBuckets,
		}, []string{"limit", "outcome"}),
		tenants: tenants,
	}
	for _, l := range []string{limitRate, limitInFlight} {
		m.refusals.WithLabelValues(l)
	}
	reg.MustRegister(m.requests, m.duration, m.inflight, m.refusals, m.waits)
	return m
}

// observeRefusal counts a 429 for limit; nil m does nothing.
func (m *Metrics) observeRefusal(limit string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(limit).Inc()
}

// observeWait records a request's wait for limit; nil m does nothing.
func (m *Metrics) observeWait(limit string, d time.Duration, admitted bool) {
	if m == nil {
		return
	}
	outcome := "refused"
	if admitted {
		outcome = "admitted"
	}
	m.waits.WithLabelValues(limit, outcome).Observe(d.Seconds())
}

// Middleware records every request once it finished. A panicking handler
// counts as a 5xx: the recovery middleware further out renders it.
func (m *Metrics) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		m.inflight.Inc()
		panicked := true
		defer func() {
			m.inflight.Dec()
			status := c.Writer.Status()
			if panicked {
				status = http.StatusInternalServerError
			}
			route := c.FullPath()
			if route == "" {
				route = UnmatchedRoute
			}
			class := StatusClass(status)
			method := methodLabel(c.Request.Method)
			m.requests.WithLabelValues(route, method, class).Inc()
			m.duration.WithLabelValues(route, method, class).Observe(time.Since(start).Seconds())
			if s := ScopeFrom(c); s != nil && s.Tenant != nil {
				m.tenants.ObserveRequest(string(s.Tenant.Slug), class)
			}
		}()
		c.Next()
		panicked = false
	}
}

// StatusClass returns "1xx" … "5xx" for an HTTP status, "other" outside.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// EngineOption configures NewEngine.
type EngineOption func(*engineOptions)

type engineOptions struct {
	metrics *Metrics
}

// WithMetrics adds m's middleware to the engine, right after the access log.
func WithMetrics(m *Metrics) EngineOption {
	return func(o *engineOptions) { o.metrics = m }
}

// NewBuildInfo returns the constant syncplane_build_info{version,goversion} 1.
func NewBuildInfo(version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "syncplane_build_info",
		Help:        "Always 1; the labels say which Syncplane build this process runs.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

// PoolSource lists the connection pools to report by placement;
// *tenant.Clusters implements it.
type PoolSource interface {
	Placements() []string
	Pool(placement string) (*pgxpool.Pool, error)
}

// requestShards is implemented by a PoolSource whose placements split
// their sync requests over request shards beside the cluster's pool
// (*tenant.Clusters). The collector reports the cluster's pool as
// pool="cluster" and the shards summed as pool="requests", so that the
// saturation alert (acquired versus max connections) watches each.
type requestShards interface {
	RequestShards(placement string) []*pgxpool.Pool
}

// PoolCollector reports pgxpool statistics of every pool of a PoolSource,
// labelled by placement and pool (see requestShards). Pools added later are
// picked up at the next scrape.
type PoolCollector struct {
	src PoolSource

	acquired, idle, total, constructing, max      *prometheus.Desc
	acquires, emptyAcquires, canceled             *prometheus.Desc
	emptyWait, acquireTime, newConns, destroyIdle *prometheus.Desc
	destroyLifetime                               *prometheus.Desc
}

// NewPoolCollector returns a collector over src's pools.
func NewPoolCollector(src PoolSource) *PoolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("syncplane_db_pool_"+name, help, []string{"placement", "pool"}, nil)
	}
	return &PoolCollector{
		src:             src,
		acquired:        d("acquired_connections", "Connections currently checked out of the pool."),
		idle:            d("idle_connections", "Idle connections in the pool."),
		total:           d("total_connections", "Open connections in the pool (acquired, idle and being constructed)."),
		constructing:    d("constructing_connections", "Connections being opened."),
		max:             d("max_connections", "Configured maximum size of the pool."),
		acquires:        d("acquires_total", "Successful connection acquisitions."),
		emptyAcquires:   d("empty_acquires_total", "Acquisitions that had to wait because no connection was idle."),
		canceled:        d("canceled_acquires_total", "Acquisitions canceled by their context while waiting."),
		emptyWait:       d("acquire_wait_seconds_total", "Total time acquisitions spent waiting for a connection when none was idle."),
		acquireTime:     d("acquire_seconds_total", "Total time spent in successful acquisitions."),
		newConns:        d("new_connections_total", "Connections opened."),
		destroyIdle:     d("idle_closed_connections_total", "Connections closed for exceeding the maximum idle time."),
		destroyLifetime: d("lifetime_closed_connections_total", "Connections closed for exceeding the maximum lifetime."),
	}
}

// Describe implements prometheus.Collector.
func (p *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range p.descs() {
		ch <- d
	}
}

// descs lists the descriptors: the five gauges first, then the counters,
// in the order Collect sums pool statistics.
func (p *PoolCollector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{p.acquired, p.idle, p.total, p.constructing, p.max, p.acquires,
		p.emptyAcquires, p.canceled, p.emptyWait, p.acquireTime, p.newConns, p.destroyIdle, p.destroyLifetime}
}

// Collect implements prometheus.Collector.
func (p *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, placement := range p.src.Placements() {
		if pool, err := p.src.Pool(placement); err == nil && pool != nil {
			p.collect(ch, placement, "cluster", []*pgxpool.Pool{pool})
		}
		if rs, ok := p.src.(requestShards); ok {
			if shards := rs.RequestShards(placement); len(shards) > 0 {
				p.collect(ch, placement, "requests", shards)
			}
		}
	}
}

// collect reports the summed statistics of pools.
func (p *PoolCollector) collect(ch chan<- prometheus.Metric, placement, kind string, pools []*pgxpool.Pool) {
	var t [13]float64
	for _, pool := range pools {
		s := pool.Stat()
		for i, v := range [13]float64{float64(s.AcquiredConns()), float64(s.IdleConns()), float64(s.TotalConns()),
			float64(s.ConstructingConns()), float64(s.MaxConns()), float64(s.AcquireCount()),
			float64(s.EmptyAcquireCount()), float64(s.CanceledAcquireCount()), s.EmptyAcquireWaitTime().Seconds(),
			s.AcquireDuration().Seconds(), float64(s.NewConnsCount()), float64(s.MaxIdleDestroyCount()),
			float64(s.MaxLifetimeDestroyCount())} {
			t[i] += v
		}
	}
	for i, d := range p.descs() {
		vt := prometheus.CounterValue
		if i < 5 {
			vt = prometheus.GaugeValue
		}
		ch <- prometheus.MustNewConstMetric(d, vt, t[i], placement, kind)
	}
}

// Label values that come from code (error codes, job names) must look like
// identifiers, and only so many distinct ones are kept; the rest count as
// "other". This keeps a bug from turning a label into an unbounded one.
var labelValueRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

const maxLabelValues = 100

type boundedLabel struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (b *boundedLabel) value(v string) string {
	if !labelValueRE.MatchString(v) {
		return "other"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	if !b.seen[v] {
		if len(b.seen) >= maxLabelValues {
			return "other"
		}
		b.seen[v] = true
	}
	return v
}

// SyncMetrics records what the sync engine and background jobs do. The
// tenant argument is the tenant's slug; every observation counts in the
// platform totals and, when a TenantCollector is attached, under the tenant.
//
// All methods are safe for concurrent use and do nothing on a nil
// *SyncMetrics, so code and tests may run without metrics.
type SyncMetrics struct {
	pushChunks, commits, committedRows, conflicts, pulls prometheus.Counter
	snapshots, wakeups, pruned                           prometheus.Counter
	errors, rows, bytes                                  *prometheus.CounterVec
	pushSessions, snapshotSessions, watchers             prometheus.Gauge
	jobRuns                                              *prometheus.CounterVec
	jobDuration                                          *prometheus.HistogramVec
	jobLastSuccess                                       *prometheus.GaugeVec

	codes, jobs boundedLabel
	tenants     *TenantCollector
	now         func() time.Time
}

// NewSyncMetrics registers the sync and job metrics on reg. tenants may be
// nil (no per-tenant series).
func NewSyncMetrics(reg prometheus.Registerer, tenants *TenantCollector) *SyncMetrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "syncplane_sync_" + name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "syncplane_sync_" + name, Help: help})
	}
	m := &SyncMetrics{
		pushChunks:    counter("push_chunks_total", "Push chunks accepted."),
		commits:       counter("commits_total", "Push sessions committed into a bundle."),
		committedRows: counter("committed_rows_total", "Rows in committed bundles."),
		conflicts:     counter("conflicts_total", "Pushed rows rejected as conflicts."),
		pulls:         counter("pulls_total", "Pull requests answered."),
		snapshots:     counter("snapshot_chunks_total", "Snapshot pages served."),
		wakeups:       counter("watch_wakeups_total", "Watch streams woken by a commit."),
		pruned:        counter("history_pruned_total", "Requests answered history_pruned (the client must rebuild from a snapshot)."),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncplane_sync_errors_total", Help: "Sync requests that failed, by protocol error code.",
		}, []string{"code"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncplane_sync_rows_total", Help: "Rows received in push chunks (in) and sent in pulls and snapshots (out).",
		}, []string{"direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncplane_sync_bytes_total", Help: "Sync payload bytes received (in) and sent (out).",
		}, []string{"direction"}),
		pushSessions:     gauge("push_sessions_open", "Push sessions open, as counted by the session sweeper this replica leads (sum over replicas)."),
		snapshotSessions: gauge("snapshot_sessions_open", "Snapshot sessions open, as counted by the session sweeper this replica leads (sum over replicas)."),
		watchers:         gauge("watchers_connected", "Watch streams connected to this replica."),
		// The label is job_name, not job: Prometheus owns "job" (the scrape job).
		jobRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncplane_job_runs_total", Help: "Background job runs, by job and outcome (success or error).",
		}, []string{"job_name", "outcome"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "syncplane_job_duration_seconds", Help: "Duration of background job runs.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900},
		}, []string{"job_name"}),
		jobLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "syncplane_job_last_success_timestamp_seconds", Help: "Unix time of the job's last successful run.",
		}, []string{"job_name"}),
		tenants: tenants,
		now:     time.Now,
	}
	for _, d := range []string{"in", "out"} {
		m.rows.WithLabelValues(d)
		m.bytes.WithLabelValues(d)
	}
	reg.MustRegister(m.pushChunks, m.commits, m.committedRows, m.conflicts, m.pulls, m.snapshots, m.wakeups,
		m.pruned, m.errors, m.rows, m.bytes, m.pushSessions, m.snapshotSessions, m.watchers,
		m.jobRuns, m.jobDuration, m.jobLastSuccess)
	return m
}

// ObservePushChunk counts an accepted push chunk of rows rows and bytes
// request bytes.
func (m *SyncMetrics) ObservePushChunk(tenant string, rows, bytes int) {
	if m == nil {
		return
	}
	m.pushChunks.Inc()
	m.rows.WithLabelValues("in").Add(nonNeg(rows))
	m.bytes.WithLabelValues("in").Add(nonNeg(bytes))
	m.tenants.update(tenant, func(s *tenantSeries) {
		s.pushChunks++
		s.rowsIn += nonNeg(rows)
		s.bytesIn += nonNeg(bytes)
	})
}

// ObserveCommit counts a committed push session whose bundle has rows rows.
func (m *SyncMetrics) ObserveCommit(tenant string, rows int) {
	if m == nil {
		return
	}
	m.commits.Inc()
	m.committedRows.Add(nonNeg(rows))
	m.tenants.update(tenant, func(s *tenantSeries) {
		s.commits++
		s.committedRows += nonNeg(rows)
	})
}

// ObserveConflict counts n pushed rows rejected as conflicts.
func (m *SyncMetrics) ObserveConflict(tenant string, n int) {
	if m == nil {
		return
	}
	m.conflicts.Add(nonNeg(n))
	m.tenants.update(tenant, func(s *tenantSeries) { s.conflicts += nonNeg(n) })
}

// ObservePull counts an answered pull that sent rows rows in bytes bytes.
func (m *SyncMetrics) ObservePull(tenant string, rows, bytes int) {
	if m == nil {
		return
	}
	m.pulls.Inc()
	m.out(rows, bytes)
	m.tenants.update(tenant, func(s *tenantSeries) {
		s.pulls++
		s.rowsOut += nonNeg(rows)
		s.bytesOut += nonNeg(bytes)
	})
}

// ObserveSnapshot counts a served snapshot page of rows rows in bytes bytes.
func (m *SyncMetrics) ObserveSnapshot(tenant string, rows, bytes int) {
	if m == nil {
		return
	}
	m.snapshots.Inc()
	m.out(rows, bytes)
	m.tenants.update(tenant, func(s *tenantSeries) {
		s.snapshots++
		s.rowsOut += nonNeg(rows)
		s.bytesOut += nonNeg(bytes)
	})
}

// ObserveSent counts rows and bytes sent outside pulls and snapshot pages
// (committed bundle rows, for example).
func (m *SyncMetrics) ObserveSent(tenant string, rows, bytes int) {
	if m == nil {
		return
	}
	m.out(rows, bytes)
	m.tenants.update(tenant, func(s *tenantSeries) {
		s.rowsOut += nonNeg(rows)
		s.bytesOut += nonNeg(bytes)
	})
}

func (m *SyncMetrics) out(rows, bytes int) {
	m.rows.WithLabelValues("out").Add(nonNeg(rows))
	m.bytes.WithLabelValues("out").Add(nonNeg(bytes))
}

// ObserveWatchWakeup counts a watch stream woken by a commit.
func (m *SyncMetrics) ObserveWatchWakeup(tenant string) {
	if m == nil {
		return
	}
	m.wakeups.Inc()
	m.tenants.update(tenant, func(s *tenantSeries) { s.wakeups++ })
}

// ObserveHistoryPruned counts a request answered history_pruned.
func (m *SyncMetrics) ObserveHistoryPruned(tenant string) {
	if m == nil {
		return
	}
	m.pruned.Inc()
	m.tenants.update(tenant, func(s *tenantSeries) { s.historyPruned++ })
}

// ObserveError counts a failed sync request by its protocol error code
// (the "error" field of the JSON envelope, e.g. "push_conflict").
func (m *SyncMetrics) ObserveError(tenant, code string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(m.codes.value(code)).Inc()
	m.tenants.update(tenant, func(s *tenantSeries) { s.errors++ })
}

// PushSessionOpened counts a push session created on this replica; call
// PushSessionClosed when it commits, is discarded or expires here.
func (m *SyncMetrics) PushSessionOpened(tenant string) {
	if m == nil {
		return
	}
	m.pushSessions.Inc()
	m.tenants.update(tenant, func(s *tenantSeries) { s.pushSessions++ })
}

// PushSessionClosed undoes PushSessionOpened.
func (m *SyncMetrics) PushSessionClosed(tenant string) {
	if m == nil {
		return
	}
	m.pushSessions.Dec()
	m.tenants.updateExisting(tenant, func(s *tenantSeries) { s.pushSessions-- })
}

// SnapshotSessionOpened counts a snapshot session created on this replica;
// call SnapshotSessionClosed when it is deleted or expires here.
func (m *SyncMetrics) SnapshotSessionOpened(tenant string) {
	if m == nil {
		return
	}
	m.snapshotSessions.Inc()
	m.tenants.update(tenant, func(s *tenantSeries) { s.snapshotSessions++ })
}

// SnapshotSessionClosed undoes SnapshotSessionOpened.
func (m *SyncMetrics) SnapshotSessionClosed(tenant string) {
	if m == nil {
		return
	}
	m.snapshotSessions.Dec()
	m.tenants.updateExisting(tenant, func(s *tenantSeries) { s.snapshotSessions-- })
}

// WatcherConnected counts a connected watch stream until the returned
// function is called (once; later calls do nothing):
//
//	defer metrics.WatcherConnected(slug)()
func (m *SyncMetrics) WatcherConnected(tenant string) (disconnected func()) {
	if m == nil {
		return func() {}
	}
	m.watchers.Inc()
	m.tenants.update(tenant, func(s *tenantSeries) { s.watchers++ })
	var once sync.Once
	return func() {
		once.Do(func() {
			m.watchers.Dec()
			m.tenants.updateExisting(tenant, func(s *tenantSeries) { s.watchers-- })
		})
	}
}

// ObserveJob records one run of background job job (a constant name such
// as "session_sweeper") that took d and ended with err.
func (m *SyncMetrics) ObserveJob(job string, d time.Duration, err error) {
	if m == nil {
		return
	}
	job = m.jobs.value(job)
	m.jobDuration.WithLabelValues(job).Observe(d.Seconds())
	if err != nil {
		m.jobRuns.WithLabelValues(job, "error").Inc()
		return
	}
	m.jobRuns.WithLabelValues(job, "success").Inc()
	m.jobLastSuccess.WithLabelValues(job).Set(float64(m.now().UnixNano()) / 1e9)
}

func nonNeg(n int) float64 {
	if n < 0 {
		return 0
	}
	return float64(n)
}

// TenantCollectorOptions configure a TenantCollector.
type TenantCollectorOptions struct {
	// Window is how long a tenant stays reported after its last activity
	// (default 1 hour). Tenants with open sessions or watchers stay longer.
	Window time.Duration
	// Max bounds the number of tenants reported (default 1000); past it,
	// the least recently active tenant is dropped.
	Max int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// TenantCollector keeps per-tenant activity counters for the tenants active
// within a window, at most Max of them, and exposes them with a tenant
// label. A tenant that is dropped and comes back starts its counters from
// zero, which Prometheus treats as a counter reset.
//
// It is meant for its own registry and endpoint (/tenant-metrics), scraped
// less often than /metrics. A nil *TenantCollector records nothing.
type TenantCollector struct {
	opts TenantCollectorOptions

	mu      sync.Mutex
	lru     *list.List // of *tenantSeries; front is the most recently active
	byName  map[string]*list.Element
	evicted float64

	requests, pushChunks, commits, committedRows, conflicts, pulls, snapshots *prometheus.Desc
	wakeups, historyPruned, errors, rows, bytes                               *prometheus.Desc
	pushSessions, snapshotSessions, watchers, lastActive, quota               *prometheus.Desc
	tracked, evictions                                                        *prometheus.Desc
}

type tenantSeries struct {
	name     string
	lastSeen time.Time

	requests                                             map[string]float64 // by status class
	pushChunks, commits, committedRows, conflicts, pulls float64
	snapshots, wakeups, historyPruned, errors            float64
	rowsIn, rowsOut, bytesIn, bytesOut                   float64
	pushSessions, snapshotSessions, watchers             float64
	quota                                                map[string]float64 // utilization by quota name
}

func (s *tenantSeries) open() bool {
	return s.pushSessions > 0 || s.snapshotSessions > 0 || s.watchers > 0
}

// NewTenantCollector returns an empty collector.
func NewTenantCollector(opts TenantCollectorOptions) *TenantCollector {
	if opts.Window <= 0 {
		opts.Window = time.Hour
	}
	if opts.Max <= 0 {
		opts.Max = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append([]string{"tenant"}, labels...), nil)
	}
	return &TenantCollector{
		opts:   opts,
		lru:    list.New(),
		byName: map[string]*list.Element{},

		requests:         d("syncplane_tenant_http_requests_total", "HTTP requests the gateway resolved to the tenant, by status class.", "status_class"),
		pushChunks:       d("syncplane_tenant_push_chunks_total", "Push chunks accepted for the tenant."),
		commits:          d("syncplane_tenant_commits_total", "Push sessions the tenant committed."),
		committedRows:    d("syncplane_tenant_committed_rows_total", "Rows in the tenant's committed bundles."),
		conflicts:        d("syncplane_tenant_conflicts_total", "The tenant's pushed rows rejected as conflicts."),
		pulls:            d("syncplane_tenant_pulls_total", "Pull requests answered for the tenant."),
		snapshots:        d("syncplane_tenant_snapshot_chunks_total", "Snapshot pages served to the tenant."),
		wakeups:          d("syncplane_tenant_watch_wakeups_total", "The tenant's watch streams woken by a commit."),
		historyPruned:    d("syncplane_tenant_history_pruned_total", "The tenant's requests answered history_pruned."),
		errors:           d("syncplane_tenant_sync_errors_total", "The tenant's failed sync requests (codes are on /metrics)."),
		rows:             d("syncplane_tenant_rows_total", "Rows the tenant pushed (in) and was sent (out).", "direction"),
		bytes:            d("syncplane_tenant_bytes_total", "Sync payload bytes the tenant pushed (in) and was sent (out).", "direction"),
		pushSessions:     d("syncplane_tenant_push_sessions_open", "The tenant's push sessions open on this replica."),
		snapshotSessions: d("syncplane_tenant_snapshot_sessions_open", "The tenant's snapshot sessions open on this replica."),
		watchers:         d("syncplane_tenant_watchers_connected", "The tenant's watch streams connected to this replica."),
		lastActive:       d("syncplane_tenant_last_active_timestamp_seconds", "Unix time of the tenant's last recorded activity on this replica."),
		quota:            d("syncplane_quota_utilization_ratio", "Used fraction of a tenant quota (1 = at the limit).", "quota"),
		tracked:          prometheus.NewDesc("syncplane_tenant_metrics_tenants", "Tenants currently reported on this endpoint.", nil, nil),
		evictions: prometheus.NewDesc("syncplane_tenant_metrics_evictions_total",
			"Tenants dropped from this endpoint because more than the maximum were active.", nil, nil),
	}
}

// ObserveRequest counts an HTTP request resolved to tenant.
func (t *TenantCollector) ObserveRequest(tenant, statusClass string) {
	t.update(tenant, func(s *tenantSeries) {
		if s.requests == nil {
			s.requests = map[string]float64{}
		}
		s.requests[statusClass]++
	})
}

// SetQuotaUtilization reports the used fraction of one of tenant's quotas
// (quota is a constant name such as "rows" or "storage_bytes"; 1 means at
// the limit) as syncplane_quota_utilization_ratio. Setting it counts as
// activity.
func (t *TenantCollector) SetQuotaUtilization(tenant, quota string, ratio float64) {
	if !labelValueRE.MatchString(quota) {
		quota = "other"
	}
	t.update(tenant, func(s *tenantSeries) {
		if s.quota == nil {
			s.quota = map[string]float64{}
		}
		s.quota[quota] = ratio
	})
}

// update applies fn to tenant's series, creating it (and evicting the least
// recently active tenant past the maximum) and marking it active.
func (t *TenantCollector) update(tenant string, fn func(*tenantSeries)) {
	if t == nil || tenant == "" {
		return
	}
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.byName[tenant]
	if ok {
		t.lru.MoveToFront(el)
	} else {
		cutoff := now.Add(-t.opts.Window)
		for t.lru.Len() >= t.opts.Max {
			back := t.lru.Back()
			if s := back.Value.(*tenantSeries); !s.lastSeen.Before(cutoff) || s.open() {
				t.evicted++ // still active: an eviction, not an expiry
			}
			t.remove(back)
		}
		el = t.lru.PushFront(&tenantSeries{name: tenant})
		t.byName[tenant] = el
	}
	s := el.Value.(*tenantSeries)
	s.lastSeen = now
	fn(s)
}

// updateExisting applies fn only to a tenant still tracked: closing a
// session of a dropped tenant must not bring it back with a negative gauge.
func (t *TenantCollector) updateExisting(tenant string, fn func(*tenantSeries)) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.byName[tenant]; ok {
		s := el.Value.(*tenantSeries)
		fn(s)
		for _, g := range []*float64{&s.pushSessions, &s.snapshotSessions, &s.watchers} {
			if *g < 0 {
				*g = 0
			}
		}
	}
}

func (t *TenantCollector) remove(el *list.Element) {
	delete(t.byName, el.Value.(*tenantSeries).name)
	t.lru.Remove(el)
}

// Tenants returns the tenants currently reported, most recently active first.
func (t *TenantCollector) Tenants() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	out := make([]string, 0, t.lru.Len())
	for el := t.lru.Front(); el != nil; el = el.Next() {
		out = append(out, el.Value.(*tenantSeries).name)
	}
	return out
}

// expire drops tenants idle for longer than the window with nothing open.
// Caller holds t.mu.
func (t *TenantCollector) expire() {
	cutoff := t.opts.Now().Add(-t.opts.Window)
	for el := t.lru.Back(); el != nil; {
		prev := el.Prev()
		s := el.Value.(*tenantSeries)
		if s.lastSeen.Before(cutoff) && !s.open() {
			t.remove(el)
		}
		el = prev
	}
}

// Describe implements prometheus.Collector.
func (t *TenantCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{t.requests, t.pushChunks, t.commits, t.committedRows, t.conflicts,
		t.pulls, t.snapshots, t.wakeups, t.historyPruned, t.errors, t.rows, t.bytes, t.pushSessions,
		t.snapshotSessions, t.watchers, t.lastActive, t.quota, t.tracked, t.evictions} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (t *TenantCollector) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	ch <- prometheus.MustNewConstMetric(t.tracked, prometheus.GaugeValue, float64(t.lru.Len()))
	ch <- prometheus.MustNewConstMetric(t.evictions, prometheus.CounterValue, t.evicted)
	for el := t.lru.Front(); el != nil; el = el.Next() {
		s := el.Value.(*tenantSeries)
		c := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append([]string{s.name}, labels...)...)
		}
		g := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{s.name}, labels...)...)
		}
		for class, v := range s.requests {
			c(t.requests, v, class)
		}
		c(t.pushChunks, s.pushChunks)
		c(t.commits, s.commits)
		c(t.committedRows, s.committedRows)
		c(t.conflicts, s.conflicts)
		c(t.pulls, s.pulls)
		c(t.snapshots, s.snapshots)
		c(t.wakeups, s.wakeups)
		c(t.historyPruned, s.historyPruned)
		c(t.errors, s.errors)
		c(t.rows, s.rowsIn, "in")
		c(t.rows, s.rowsOut, "out")
		c(t.bytes, s.bytesIn, "in")
		c(t.bytes, s.bytesOut, "out")
		g(t.pushSessions, s.pushSessions)
		g(t.snapshotSessions, s.snapshotSessions)
		g(t.watchers, s.watchers)
		g(t.lastActive, float64(s.lastSeen.UnixNano())/1e9)
		for q, v := range s.quota {
			g(t.quota, v, q)
		}
	}
}

// SetOpenSessions sets the open push and snapshot sessions counted by the
// session sweeper. Sessions live in the database and any replica may open
// or close them, so the sweeper (one leader per cluster) counts them; other
// replicas report 0 and sum() over replicas is the platform total.
func (m *SyncMetrics) SetOpenSessions(push, snapshot int64) {
	if m == nil {
		return
	}
	m.pushSessions.Set(float64(push))
	m.snapshotSessions.Set(float64(snapshot))
}

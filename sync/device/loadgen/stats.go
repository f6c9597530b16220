package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"
)

// Group names of the recorded traffic: the tenants under test, and the
// noisy tenant whose traffic is kept apart so it never blurs the figures of
// the others.
const (
	GroupMain  = "main"
	GroupNoisy = "noisy"
)

type groupKey struct{}

// withGroup tags a context so that requests sent with it are recorded under
// group.
func withGroup(ctx context.Context, group string) context.Context {
	return context.WithValue(ctx, groupKey{}, group)
}

func groupOf(ctx context.Context) string {
	if g, ok := ctx.Value(groupKey{}).(string); ok {
		return g
	}
	return GroupMain
}

// endpointOf names a protocol path by its route template, so latencies of
// one endpoint land in one series whatever the ids in the path.
func endpointOf(method, path string) string {
	i := strings.Index(path, "/sync/")
	if i < 0 {
		return method + " other"
	}
	p := path[i:]
	switch {
	case p == "/sync/capabilities", p == "/sync/connect", p == "/sync/pull", p == "/sync/watch":
		return method + " " + p
	case p == "/sync/push-sessions":
		return "POST /sync/push-sessions"
	case strings.HasSuffix(p, "/chunks"):
		return "POST /sync/push-sessions/{id}/chunks"
	case strings.HasSuffix(p, "/commit"):
		return "POST /sync/push-sessions/{id}/commit"
	case strings.HasPrefix(p, "/sync/push-sessions/"):
		return method + " /sync/push-sessions/{id}"
	case strings.HasPrefix(p, "/sync/committed-bundles/"):
		return "GET /sync/committed-bundles/{seq}/rows"
	case p == "/sync/snapshot-sessions":
		return "POST /sync/snapshot-sessions"
	case strings.HasPrefix(p, "/sync/snapshot-sessions/"):
		return method + " /sync/snapshot-sessions/{id}"
	}
	return method + " " + p
}

// series collects latency samples (kept whole: a run holds at most a few
// million, and exact percentiles are worth the memory).
type series struct {
	mu      gosync.Mutex
	samples []time.Duration
}

func (s *series) add(d time.Duration) {
	s.mu.Lock()
	s.samples = append(s.samples, d)
	s.mu.Unlock()
}

func (s *series) summary() Latency {
	s.mu.Lock()
	v := slices.Clone(s.samples)
	s.mu.Unlock()
	return summarize(v)
}

// Latency summarizes a series; times are milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

func summarize(v []time.Duration) Latency {
	if len(v) == 0 {
		return Latency{}
	}
	slices.Sort(v)
	var sum time.Duration
	for _, d := range v {
		sum += d
	}
	return Latency{Count: len(v), P50: ms(quantile(v, 0.50)), P95: ms(quantile(v, 0.95)),
		P99: ms(quantile(v, 0.99)), Max: ms(v[len(v)-1]), Mean: ms(sum / time.Duration(len(v)))}
}

// quantile is the nearest-rank quantile of sorted v.
func quantile(v []time.Duration, q float64) time.Duration {
	i := int(float64(len(v))*q+0.999999) - 1
	return v[max(0, min(i, len(v)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// group is the recorded traffic of one group.
type group struct {
	mu         gosync.Mutex
	endpoints  map[string]*series
	ops        map[string]*series // whole client operations: push, pull, attach
	errors     map[string]int64   // "429 rate_limited" -> count
	requests   atomic.Int64
	pushedRows atomic.Int64
	pulledRows atomic.Int64
	snapRows   atomic.Int64
	pushes     atomic.Int64
	pulls      atomic.Int64
	failedOps  atomic.Int64
}

func newGroup() *group {
	return &group{endpoints: map[string]*series{}, ops: map[string]*series{}, errors: map[string]int64{}}
}

func (g *group) series(m map[string]*series, name string) *series {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := m[name]
	if s == nil {
		s = &series{}
		m[name] = s
	}
	return s
}

func (g *group) addError(code string) {
	g.mu.Lock()
	g.errors[code]++
	g.mu.Unlock()
}

// recorder holds every group of a run.
type recorder struct {
	mu     gosync.Mutex
	groups map[string]*group
	// closed is set when the measured phase ends, and the phase also ends
	// when the context given to endWith is done: the requests devices send
	// while stopping (best-effort DELETEs of interrupted pushes, which may
	// find the session already committed) are not part of the figures.
	closed atomic.Bool
	end    atomic.Value // <-chan struct{}
}

// endWith ends the measured phase when ctx is done. A device's request
// interrupted by that cancellation, and anything it sends afterwards,
// finishes after ctx is done, so none of it is recorded.
func (r *recorder) endWith(ctx context.Context) { r.end.Store(ctx.Done()) }

// ended reports whether the measured phase is over.
func (r *recorder) ended() bool {
	if r.closed.Load() {
		return true
	}
	if done, ok := r.end.Load().(<-chan struct{}); ok {
		select {
		case <-done:
			return true
		default:
		}
	}
	return false
}

func newRecorder() *recorder { return &recorder{groups: map[string]*group{}} }

func (r *recorder) group(name string) *group {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[name]
	if g == nil {
		g = newGroup()
		r.groups[name] = g
	}
	return g
}

// op records one whole client operation (e.g. a push: create, chunks,
// commit and the committed-bundle fetch).
func (r *recorder) op(ctx context.Context, name string, start time.Time, err error) {
	g := r.group(groupOf(ctx))
	if err != nil {
		g.failedOps.Add(1)
		return
	}
	g.series(g.ops, name).add(time.Since(start))
}

// transport records every request: latency until the whole body is read
// (until the headers for watch streams), the status and error code of
// failures, and the rows carried by commits, pulls and snapshot pages.
type transport struct {
	base http.RoundTripper
	rec  *recorder
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	g := t.rec.group(groupOf(req.Context()))
	ep := endpointOf(req.Method, req.URL.Path)
	resp, err := t.base.RoundTrip(req)
	if t.rec.ended() {
		return resp, err
	}
	if err != nil {
		if req.Context().Err() == nil {
			g.addError("network " + shortNetErr(err))
		}
		return nil, err
	}
	g.requests.Add(1)
	if ep == "GET /sync/watch" && resp.StatusCode == http.StatusOK {
		g.series(g.endpoints, ep).add(time.Since(start))
		return resp, nil
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		if req.Context().Err() == nil {
			g.addError("network " + shortNetErr(rerr))
		}
		return resp, nil
	}
	g.series(g.endpoints, ep).add(time.Since(start))
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent:
		switch ep {
		case "POST /sync/push-sessions/{id}/commit":
			var c struct {
				RowCount int64 `json:"row_count"`
			}
			if json.Unmarshal(body, &c) == nil {
				g.pushedRows.Add(c.RowCount)
				g.pushes.Add(1)
			}
		case "GET /sync/pull":
			g.pulledRows.Add(int64(bytes.Count(body, []byte(`"row_version":`))))
		case "GET /sync/snapshot-sessions/{id}":
			g.snapRows.Add(int64(bytes.Count(body, []byte(`"row_version":`))))
		}
	default:
		var env struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &env)
		if env.Error == "" {
			env.Error = strings.ToLower(strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "_"))
		}
		g.addError(strconv.Itoa(resp.StatusCode) + " " + env.Error)
	}
	return resp, nil
}

func shortNetErr(err error) string {
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "broken pipe", "EOF", "timeout", "too many open files"} {
		if strings.Contains(s, k) {
			return strings.ReplaceAll(k, " ", "_")
		}
	}
	return "error"
}

// GroupResult is the figures of one group of tenants.
type GroupResult struct {
	Tenants       int                `json:"tenants"`
	Devices       int                `json:"devices"`
	Requests      int64              `json:"requests"`
	Pushes        int64              `json:"pushes"`
	PushedRows    int64              `json:"pushed_rows"`
	PulledRows    int64              `json:"pulled_rows"`
	SnapshotRows  int64              `json:"snapshot_rows"`
	PushRowsPerS  float64            `json:"push_rows_per_s"`
	PullRowsPerS  float64            `json:"pull_rows_per_s"`
	OpsPerS       float64            `json:"ops_per_s"`
	RequestsPerS  float64            `json:"requests_per_s"`
	FailedOps     int64              `json:"failed_ops"`
	Endpoints     map[string]Latency `json:"endpoints"`
	Ops           map[string]Latency `json:"ops"`
	AllRequests   Latency            `json:"all_requests"`
	ErrorsByCode  map[string]int64   `json:"errors_by_code"`
	PerTenantOpsS float64            `json:"per_tenant_ops_per_s"`
}

func (g *group) result(elapsed time.Duration, tenants, devices int) GroupResult {
	g.mu.Lock()
	eps := make(map[string]*series, len(g.endpoints))
	for k, v := range g.endpoints {
		eps[k] = v
	}
	ops := make(map[string]*series, len(g.ops))
	for k, v := range g.ops {
		ops[k] = v
	}
	errs := make(map[string]int64, len(g.errors))
	for k, v := range g.errors {
		errs[k] = v
	}
	g.mu.Unlock()
	secs := max(elapsed.Seconds(), 1e-9)
	r := GroupResult{Tenants: tenants, Devices: devices, Requests: g.requests.Load(), Pushes: g.pushes.Load(),
		PushedRows: g.pushedRows.Load(), PulledRows: g.pulledRows.Load(), SnapshotRows: g.snapRows.Load(),
		FailedOps: g.failedOps.Load(), Endpoints: map[string]Latency{}, Ops: map[string]Latency{}, ErrorsByCode: errs}
	r.PushRowsPerS = float64(r.PushedRows) / secs
	r.PullRowsPerS = float64(r.PulledRows) / secs
	r.RequestsPerS = float64(r.Requests) / secs
	var all []time.Duration
	for k, s := range eps {
		r.Endpoints[k] = s.summary()
		if k != "GET /sync/watch" {
			s.mu.Lock()
			all = append(all, s.samples...)
			s.mu.Unlock()
		}
	}
	r.AllRequests = summarize(all)
	var nops int
	for k, s := range ops {
		r.Ops[k] = s.summary()
		if k == "push" || k == "pull" {
			nops += r.Ops[k].Count
		}
	}
	r.OpsPerS = float64(nops) / secs
	if tenants > 0 {
		r.PerTenantOpsS = r.OpsPerS / float64(tenants)
	}
	return r
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

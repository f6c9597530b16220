package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The performance report: scripts/perf.sh leaves the raw results of every
// workload in one directory (loadgen JSON results, go test benchmark
// output, pprof tops) and Report turns them into docs/performance.md and
// docs/performance.json.

// Machine describes where the figures were measured.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	MemoryGiB  int    `json:"memory_gib"`
	PostgreSQL string `json:"postgresql"`
	Go         string `json:"go"`
	Kernel     string `json:"kernel"`
}

// Workload is one figure of the performance document.
type Workload struct {
	Name   string  `json:"name"`
	Title  string  `json:"-"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target"`
	// Met is nil for figures that are only reported.
	Met *bool `json:"met"`
	// Miss says by how much a target was missed, in words.
	Miss string `json:"miss,omitempty"`
	// Reps are the per-repetition values the median comes from.
	Reps []float64 `json:"reps,omitempty"`
	// Extra holds workload-specific figures (e.g. copy_rows_per_s, ratio).
	Extra map[string]any `json:"-"`
	// Detail is Markdown shown under the workload's heading.
	Detail string `json:"-"`
}

// MarshalJSON flattens Extra into the object.
func (w Workload) MarshalJSON() ([]byte, error) {
	type plain Workload
	data, err := json.Marshal(plain(w))
	if err != nil || len(w.Extra) == 0 {
		return data, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	for k, v := range w.Extra {
		m[k] = v
	}
	return json.Marshal(m)
}

// PerfDoc is docs/performance.json.
type PerfDoc struct {
	GeneratedAt time.Time  `json:"generated_at"`
	Commit      string     `json:"commit,omitempty"`
	Command     string     `json:"command"`
	Machine     Machine    `json:"machine"`
	Reps        int        `json:"reps"`
	Workloads   []Workload `json:"workloads"`
}

// ReportOptions locate the inputs of Report.
type ReportOptions struct {
	Dir         string // raw results of scripts/perf.sh
	DatabaseURL string // for the PostgreSQL version
	Commit      string
	Command     string
	// Notes is the hand-written analysis kept between runs: the block
	// between notesBegin and notesEnd of the previous document.
	Notes string
}

const (
	notesBegin = "<!-- notes:begin (kept by scripts/perf.sh across runs) -->"
	notesEnd   = "<!-- notes:end -->"
)

// ExtractNotes returns the hand-written block of an earlier document.
func ExtractNotes(md string) string {
	i := strings.Index(md, notesBegin)
	j := strings.Index(md, notesEnd)
	if i < 0 || j < i {
		return ""
	}
	return strings.TrimSpace(md[i+len(notesBegin) : j])
}

// Report reads the raw results and returns the JSON document and the
// Markdown page.
func Report(ctx context.Context, o ReportOptions) (*PerfDoc, string, error) {
	doc := &PerfDoc{GeneratedAt: time.Now().UTC().Truncate(time.Second), Commit: o.Commit, Command: o.Command,
		Machine: describeMachine(ctx, o.DatabaseURL)}
	var errs []string
	add := func(w *Workload, err error) {
		if err != nil {
			errs = append(errs, err.Error())
			return
		}
		if w != nil {
			doc.Workloads = append(doc.Workloads, *w)
			doc.Reps = max(doc.Reps, len(w.Reps))
		}
	}
	add(reportPush(o.Dir))
	add(reportSnapshot(o.Dir))
	add(reportTenants(o.Dir))
	ws, err := reportWatchers(o.Dir)
	for _, w := range ws {
		add(&w, nil)
	}
	add(nil, err)
	ws, err = reportSmallPushes(o.Dir)
	for _, w := range ws {
		add(&w, nil)
	}
	add(nil, err)
	add(reportNoisy(o.Dir, "noisy_flood", "noisy_neighbour_p99_increase",
		"Noisy neighbour: tenant B's p99 while tenant A floods at its rate limit"))
	add(reportNoisy(o.Dir, "noisy_ref", "noisy_neighbour_p99_increase_reference_client",
		"Noisy neighbour, reference-like client: tenant B's p99 while tenant A's devices back off like real clients"))
	md := renderMarkdown(doc, o, errs)
	return doc, md, nil
}

func describeMachine(ctx context.Context, dbURL string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if kb, err := meminfo("MemTotal"); err == nil {
		m.MemoryGiB = int((kb + (1 << 19)) >> 20)
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if dbURL != "" {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(cctx, dbURL); err == nil {
			_ = conn.QueryRow(cctx, `SELECT version()`).Scan(&m.PostgreSQL)
			if i := strings.Index(m.PostgreSQL, " on "); i > 0 {
				m.PostgreSQL = m.PostgreSQL[:i]
			}
			conn.Close(cctx)
		}
	}
	return m
}

func meminfo(field string) (int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s", field)
}

func readResult(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// readReps reads <prefix>_1.json, <prefix>_2.json, … in order.
func readReps(dir, prefix string) ([]*Result, error) {
	paths, _ := filepath.Glob(filepath.Join(dir, prefix+"_*.json"))
	sort.Slice(paths, func(i, j int) bool { return repNum(paths[i]) < repNum(paths[j]) })
	var out []*Result
	for _, p := range paths {
		r, err := readResult(p)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s_*.json in %s", prefix, dir)
	}
	return out, nil
}

func repNum(p string) int {
	base := strings.TrimSuffix(filepath.Base(p), ".json")
	n, _ := strconv.Atoi(base[strings.LastIndexByte(base, '_')+1:])
	return n
}

func readText(dir, name string) string {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(data), "\n")
}

func boolp(b bool) *bool { return &b }

func pct(v float64) string { return strconv.FormatFloat(v*100, 'f', 1, 64) + "%" }

func fmtReps(v []float64, prec int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', prec, 64)
	}
	return strings.Join(s, ", ")
}

func profileBlock(dir, name, title string) string {
	top := readText(dir, name)
	if top == "" {
		return ""
	}
	return fmt.Sprintf("\n<details><summary>%s</summary>\n\n```text\n%s\n```\n</details>\n", title, top)
}

var benchLine = regexp.MustCompile(`^BenchmarkPush10k/(sync_push|plain_copy|floor_stage_apply_log|floor_decode_stage_apply|floor_live_history|floor_stage_apply)(?:-\d+)?\s+\d+\s.*?([\d.]+) rows/s`)

func reportPush(dir string) (*Workload, error) {
	f, err := os.Open(filepath.Join(dir, "push_bench.txt"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rates := map[string][]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := benchLine.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			rates[m[1]] = append(rates[m[1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("push_bench.txt: %w", err)
	}
	syncRates, copyRates := rates["sync_push"], rates["plain_copy"]
	if len(syncRates) == 0 || len(copyRates) == 0 {
		return nil, fmt.Errorf("push_bench.txt: no BenchmarkPush10k results")
	}
	s, c := median(syncRates), median(copyRates)
	ratio := s / c
	w := &Workload{Name: "push_ingest_10k_rows", Title: "Push ingest, 10,000-row bundles from one device",
		Value: round(s, 0), Unit: "rows/s", Target: ">= 50% of plain COPY", Met: boolp(ratio >= 0.5), Reps: syncRates,
		Extra: map[string]any{"copy_rows_per_s": round(c, 0), "ratio": round(ratio, 3), "copy_reps": copyRates}}
	if ratio < 0.5 {
		w.Miss = fmt.Sprintf("%s of COPY; needs %.1f× more to reach 50%%", pct(ratio), 0.5/ratio)
	}
	w.Detail = fmt.Sprintf("`go test ./sync -bench '^BenchmarkPush10k$'` (a 10,000-row push: create, two 5,000-row chunks over HTTP, commit; "+
		"versus `COPY` of the same rows into an equivalent plain table in the same run).\n\n"+
		"| | median rows/s | of COPY | repetitions |\n|---|---:|---:|---|\n| Syncplane push | %.0f | %s | %s |\n| plain COPY | %.0f | 100%% | %s |\n",
		s, pct(ratio), fmtReps(syncRates, 0), c, fmtReps(copyRates, 0))
	// The floors: plain SQL doing only the writes a staged push needs.
	for _, fl := range []struct{ name, what string }{
		{"floor_stage_apply", "floor: stage the chunks, then move them into the table"},
		{"floor_decode_stage_apply", "floor with the server's JSON decoding and bundle hash"},
		{"floor_live_history", "the same, into rows that are their own history (bundle and ordinal indexed)"},
		{"floor_stage_apply_log", "floor with the after-image history"},
	} {
		if v := rates[fl.name]; len(v) > 0 {
			m := median(v)
			w.Extra[fl.name+"_rows_per_s"] = round(m, 0)
			w.Extra[fl.name+"_ratio"] = round(m/c, 3)
			w.Detail += fmt.Sprintf("| %s | %.0f | %s | %s |\n", fl.what, m, pct(m/c), fmtReps(v, 0))
		}
	}
	w.Detail += fmt.Sprintf("\nRatio: **%s** of COPY.", pct(ratio))
	if _, ok := rates["floor_stage_apply_log"]; ok {
		w.Detail += " The floors are plain SQL with none of the sync work (see `benchFloor`): they bound what any design that " +
			"stages chunks between requests can reach on this machine, one that also decodes the JSON the protocol sends and hashes the bundle, " +
			"one that keeps the history pull serves in the live rows, and one that writes it at commit."
	}
	w.Detail += "\n"
	w.Detail += profileBlock(dir, "push_cpu_top.txt", "CPU profile of BenchmarkPush10k (the Go side: handler, decoding, pgx; PostgreSQL's own time is not in it)")
	return w, nil
}

func reportSnapshot(dir string) (*Workload, error) {
	r, err := readResult(filepath.Join(dir, "snapshot.json"))
	if err != nil {
		return nil, err
	}
	s := r.Snapshot
	if s == nil {
		return nil, fmt.Errorf("snapshot.json: no snapshot figures")
	}
	value, reps, what := s.MedianS, s.RepsS, "a fresh device (real SQLite client) from open to attached"
	if r.Mode == ModeHTTP {
		what = "a fresh light client (no SQLite)"
	}
	w := &Workload{Name: "snapshot_1m_rows_fresh_device", Title: "Snapshot of " + thousands(s.Rows) + " rows to a fresh device",
		Value: round(value, 2), Unit: "s", Target: "< 10 s end to end", Met: boolp(value > 0 && value < 10), Reps: reps,
		Extra: map[string]any{"rows": s.Rows, "rows_per_s": round(s.RowsPerS, 0), "http_only_median_s": round(s.HTTPMedianS, 2),
			"http_only_reps_s": s.HTTPRepsS}}
	if value >= 10 {
		w.Miss = fmt.Sprintf("%.1f s, %.1f× the 10 s target", value, value/10)
	}
	w.Detail = fmt.Sprintf("%d rows of one user (seeded in 10,000-row pushes at %.0f rows/s), hydrated by %s: capabilities, connect, "+
		"snapshot session, pages of 5,000 rows (the protocol's cap), applied in one SQLite transaction. Repetitions (s): %s; median **%.2f s** (%.0f rows/s).\n\n"+
		"The same snapshot read by the light client, without SQLite: it reads pages of 1,000 rows, as the reference client does, decodes them with `encoding/json` and drops them. It is no lower bound for the device, whose pages are of 5,000 rows and whose decoder is faster: %s s; median **%.2f s**.\n",
		s.Rows, s.SeedRowsPerS, what, fmtReps(reps, 2), value, s.RowsPerS, fmtReps(s.HTTPRepsS, 2), s.HTTPMedianS)
	if r.Server != nil {
		w.Detail += fmt.Sprintf("\nServer peak RSS during the hydrations: %.0f MiB.\n", float64(r.Server.PeakRSSBytes)/(1<<20))
	}
	w.Detail += profileBlock(dir, "snapshot_cpu_top.txt", "CPU profile of BenchmarkSnapshot100k (server side, in-process)")
	return w, nil
}

func reportTenants(dir string) (*Workload, error) {
	single, err := readReps(dir, "tenants_single")
	if err != nil {
		return nil, err
	}
	multi, err := readReps(dir, "tenants_multi")
	if err != nil {
		return nil, err
	}
	var s, m []float64
	for _, r := range single {
		s = append(s, r.Main.OpsPerS)
	}
	for _, r := range multi {
		m = append(m, r.Main.OpsPerS)
	}
	ms, mm := median(s), median(m)
	ratio := mm / ms
	active := multi[0].Main.Tenants
	devices := multi[0].Main.Devices
	w := &Workload{Name: "tenants_1000_provisioned_100_active", Title: "1,000 tenants provisioned, 100 active (10 devices each)",
		Value: round(ratio*100, 1), Unit: "% of single-tenant throughput", Target: ">= 90% (within 10%)", Met: boolp(ratio >= 0.9), Reps: m,
		Extra: map[string]any{"single_tenant_ops_per_s": round(ms, 1), "multi_tenant_ops_per_s": round(mm, 1),
			"per_tenant_ops_per_s": round(mm/float64(active), 2), "single_tenant_share_ops_per_s": round(ms/float64(active), 2),
			"single_reps": s, "provisioned": readText(dir, "tenants_provisioned.txt")}}
	if ratio < 0.9 {
		w.Miss = fmt.Sprintf("%s below the single-tenant figure (allowed 10%%)", pct(1-ratio))
	}
	w.Detail = fmt.Sprintf("The same load — %d light devices (2 per user), each looping 1-row push or pull (50/50) back to back for %.0f s — "+
		"once in **one tenant**, the only one of its database, and once spread over **%d tenants × %d devices** with %s tenants provisioned. "+
		"Repetitions alternate the two, each on a fresh server after a `CHECKPOINT`, measured after a warm-up (below). "+
		"A 2-core server is saturated by either, so the fair per-tenant comparison is at equal total load: per-tenant throughput = "+
		"aggregate / %d in both cases.\n\n"+
		"| | median ops/s (aggregate) | per tenant (÷%d) | repetitions |\n|---|---:|---:|---|\n"+
		"| one tenant | %.1f | %.2f | %s |\n| %d of %s tenants | %.1f | %.2f | %s |\n\nRatio: **%s**.\n",
		devices, single[0].ElapsedS, active, devices/max(active, 1), readText(dir, "tenants_provisioned.txt"), active, active,
		ms, ms/float64(active), fmtReps(s, 1), active, readText(dir, "tenants_provisioned.txt"), mm, mm/float64(active), fmtReps(m, 1), pct(ratio))
	if cs, cm, err := coldReps(dir); err == nil {
		a, b := median(mapf(cs, opsPerS)), median(mapf(cm, opsPerS))
		w.Extra["cold_single_ops_per_s"], w.Extra["cold_multi_ops_per_s"] = round(a, 1), round(b, 1)
		w.Detail += fmt.Sprintf("Each repetition first ran the same load for %.0f s on the fresh server, unmeasured: its connections "+
			"start with cold caches (prepared statements, plans, relcache), which are per tenant. Those cold runs gave one tenant %.1f "+
			"and %d tenants %.1f ops/s (median): **%s** while the caches warm.\n", cs[0].ElapsedS, a, active, b, pct(b/a))
	}
	w.Detail += cpuCompare("one tenant", single, fmt.Sprintf("%d tenants", active), multi, w.Extra)
	w.Detail += latencyCompare("one tenant", single, fmt.Sprintf("%d tenants", active), multi)
	return w, nil
}

// coldReps reads the tenant workload's unmeasured warm-up runs.
func coldReps(dir string) (single, multi []*Result, err error) {
	if single, err = readReps(dir, "tenants_warm-single"); err != nil {
		return nil, nil, err
	}
	multi, err = readReps(dir, "tenants_warm-multi")
	return single, multi, err
}

func opsPerS(r *Result) float64 { return r.Main.OpsPerS }

// cpuCompare renders the median CPU time per operation of the server and of
// the local PostgreSQL in two series of mixed-workload runs (what each
// operation costs, steadier than throughput on a noisy machine), and adds
// the figures to extra. It renders nothing when the runs carry no CPU times.
func cpuCompare(an string, a []*Result, bn string, b []*Result, extra map[string]any) string {
	perOp := func(rs []*Result, pg bool) (float64, bool) {
		var v []float64
		for _, r := range rs {
			ops := r.Main.OpsPerS * r.ElapsedS
			if r.Server == nil || r.Server.CPUS <= 0 || ops <= 0 {
				return 0, false
			}
			c := r.Server.CPUS
			if pg {
				c = r.Server.PostgresCPUS
			}
			v = append(v, 1000*c/ops)
		}
		return median(v), len(v) > 0
	}
	as, ok1 := perOp(a, false)
	bs, ok2 := perOp(b, false)
	ap, _ := perOp(a, true)
	bp, _ := perOp(b, true)
	if !ok1 || !ok2 {
		return ""
	}
	extra["cpu_ms_per_op"] = map[string]any{"server": map[string]float64{"single": round(as, 3), "multi": round(bs, 3)},
		"postgres": map[string]float64{"single": round(ap, 3), "multi": round(bp, 3)}}
	return fmt.Sprintf("\n| CPU time per operation, ms (median of repetitions) | %s | %s | ratio |\n|---|---:|---:|---:|\n"+
		"| server process | %.2f | %.2f | %.2f |\n| PostgreSQL (all its processes) | %.2f | %.2f | %.2f |\n| both | %.2f | %.2f | %.2f |\n",
		an, bn, as, bs, bs/as, ap, bp, bp/ap, as+ap, bs+bp, (bs+bp)/(as+ap))
}

// latencyCompare renders the median over repetitions of each endpoint's p99.
func latencyCompare(an string, a []*Result, bn string, b []*Result) string {
	eps := map[string]bool{}
	for _, r := range append(append([]*Result{}, a...), b...) {
		for k := range r.Main.Endpoints {
			eps[k] = true
		}
	}
	p99 := func(rs []*Result, ep string) float64 {
		var v []float64
		for _, r := range rs {
			if l, ok := r.Main.Endpoints[ep]; ok {
				v = append(v, l.P99)
			}
		}
		return median(v)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n| p99 latency, ms (median of repetitions) | %s | %s |\n|---|---:|---:|\n", an, bn)
	for _, ep := range sortedKeys(eps) {
		fmt.Fprintf(&sb, "| `%s` | %.1f | %.1f |\n", ep, p99(a, ep), p99(b, ep))
	}
	all := func(rs []*Result) float64 {
		var v []float64
		for _, r := range rs {
			v = append(v, r.Main.AllRequests.P99)
		}
		return median(v)
	}
	fmt.Fprintf(&sb, "| all requests | %.1f | %.1f |\n", all(a), all(b))
	return sb.String()
}

func reportWatchers(dir string) ([]Workload, error) {
	r, err := readResult(filepath.Join(dir, "watchers.json"))
	if err != nil {
		return nil, err
	}
	wr := r.Watch
	if wr == nil || r.Server == nil {
		return nil, fmt.Errorf("watchers.json: no watch or server figures")
	}
	rss := float64(r.Server.PeakRSSBytes) / (1 << 20)
	a := Workload{Name: "watchers_10k_server_rss", Title: thousands(int64(wr.Watchers)) + " concurrent watchers: server RSS",
		Value: round(rss, 1), Unit: "MiB", Target: "< 1024 MiB", Met: boolp(rss < 1024 && wr.Open == wr.Watchers),
		Extra: map[string]any{"watchers": wr.Watchers, "open": wr.Open, "users": wr.Users, "hwm_mib": round(float64(r.Server.HWMBytes)/(1<<20), 1)}}
	if !*a.Met {
		a.Miss = fmt.Sprintf("%.0f MiB with %d of %d streams open", rss, wr.Open, wr.Watchers)
	}
	a.Detail = fmt.Sprintf("One `syncplane serve` process, fresh for this workload; %d light watch streams (%v per user, %d users) "+
		"opened in %.1f s. Peak RSS sampled every 100 ms while the streams were open and commits ran: **%.0f MiB** "+
		"(process high-water mark %.0f MiB).\n", wr.Watchers, r.Settings["watchers_per_user"], wr.Users, wr.OpenS, rss,
		float64(r.Server.HWMBytes)/(1<<20))
	v := wr.MedianOfRepsMS
	b := Workload{Name: "watchers_10k_commit_wakeup_median", Title: "Commit → wake-up of all of the user's watchers (" + thousands(int64(wr.Open)) + " open)",
		Value: round(v, 1), Unit: "ms", Target: "< 100 ms median", Met: boolp(v > 0 && v < 100 && wr.Missed == 0), Reps: wr.RepMediansMS,
		Extra: map[string]any{"p99_ms": wr.AllWokenFromSend.P99, "from_commit_answered_median_ms": wr.AllWokenFromAnswer.P50,
			"each_watcher_median_ms": wr.EachFromSend.P50, "commit_median_ms": wr.Commit.P50, "commits": wr.Commits, "missed": wr.Missed}}
	if !*b.Met {
		b.Miss = fmt.Sprintf("median %.1f ms, %d commits not seen by every watcher within 5 s", v, wr.Missed)
	}
	b.Detail = fmt.Sprintf("%d repetitions of %v one-row commits (4 committers, distinct users). Measured per commit from the moment "+
		"the commit request is sent until the **last** of that user's %v watchers received the event — an upper bound that includes "+
		"the commit itself (commit median %.1f ms). Per-repetition medians (ms): %s; median **%.1f ms**, p99 %.1f ms. "+
		"From the commit's 200 answer: median %.1f ms. Each single watcher: median %.1f ms. Missed wake-ups: %d.\n",
		len(wr.RepMediansMS), r.Settings["commits_per_rep"], r.Settings["watchers_per_user"], wr.Commit.P50, fmtReps(wr.RepMediansMS, 1), v,
		wr.AllWokenFromSend.P99, wr.AllWokenFromAnswer.P50, wr.EachFromSend.P50, wr.Missed)
	return []Workload{a, b}, nil
}

func reportSmallPushes(dir string) ([]Workload, error) {
	var out []Workload
	var p99s []float64
	var labels []int
	for _, n := range []int{50, 200} {
		rs, err := readReps(dir, fmt.Sprintf("small%d", n))
		if err != nil {
			return nil, err
		}
		var p99, commit, pushes []float64
		for _, r := range rs {
			p99 = append(p99, r.Main.Ops["push"].P99)
			commit = append(commit, r.Main.Endpoints["POST /sync/push-sessions/{id}/commit"].P99)
			pushes = append(pushes, float64(r.Main.Pushes)/max(r.ElapsedS, 1e-9))
		}
		v := median(p99)
		p99s = append(p99s, v)
		labels = append(labels, n)
		w := Workload{Name: fmt.Sprintf("small_push_p99_%d_devices", n), Title: fmt.Sprintf("1-row pushes from %d concurrent devices: p99", n),
			Value: round(v, 1), Unit: "ms", Target: "reported", Reps: p99,
			Extra: map[string]any{"commit_p99_ms": round(median(commit), 1), "pushes_per_s": round(median(pushes), 1),
				"push_p50_ms": round(median(mapf(rs, func(r *Result) float64 { return r.Main.Ops["push"].P50 })), 1),
				"errors":      sumErrors(rs)}}
		w.Detail = fmt.Sprintf("%d real device clients (SQLite), one user each, back to back: insert one row, `Push` "+
			"(create, chunk, commit, committed-bundle fetch). p99 of the whole push per repetition (ms): %s; median **%.1f ms** "+
			"(p50 %.1f ms); commit endpoint p99 %.1f ms; %.0f pushes/s.\n",
			n, fmtReps(p99, 1), v, w.Extra["push_p50_ms"], median(commit), median(pushes))
		if n == 200 {
			w.Extra["growth_vs_50"] = round(v/p99s[0], 2)
			w.Detail += fmt.Sprintf("\nFrom 50 to 200 devices the p99 grows **%.2f×** (4× the devices). With a saturated 2-core machine "+
				"(server, PostgreSQL and the 200 clients share it) throughput stays flat and latency grows with the queue.\n", v/p99s[0])
			rs50, _ := readReps(dir, "small50")
			w.Detail += latencyCompare("50 devices", rs50, "200 devices", rs)
		}
		out = append(out, w)
	}
	return out, nil
}

func mapf(rs []*Result, f func(*Result) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func sumErrors(rs []*Result) map[string]int64 {
	m := map[string]int64{}
	for _, r := range rs {
		for k, v := range r.Main.ErrorsByCode {
			m[k] += v
		}
	}
	return m
}

// reportNoisy compares tenant B's p99 alone (noisy_base_<i>.json) and with
// tenant A flooding (<floodPrefix>_<i>.json, run right after base i): the
// harsh fixed-backoff flood (noisy_flood) is the target workload; the
// reference-like client (noisy_ref) is reported beside it when present.
func reportNoisy(dir, floodPrefix, name, title string) (*Workload, error) {
	base, err := readReps(dir, "noisy_base")
	if err != nil {
		return nil, err
	}
	flood, err := readReps(dir, floodPrefix)
	if err != nil {
		if floodPrefix != "noisy_flood" {
			return nil, nil // an older run without this variant
		}
		return nil, err
	}
	b := mapf(base, func(r *Result) float64 { return r.Main.AllRequests.P99 })
	f := mapf(flood, func(r *Result) float64 { return r.Main.AllRequests.P99 })
	mb, mf := median(b), median(f)
	inc := mf/mb - 1
	// Background load drifts over a run; each flood repetition runs right
	// after its base, so the median of the per-pair ratios is the steadier
	// figure (reported beside the ratio of medians).
	var ratios []float64
	for i := range min(len(b), len(f)) {
		if b[i] > 0 {
			ratios = append(ratios, f[i]/b[i])
		}
	}
	pairInc := median(ratios) - 1
	// Tenant A's figures: in B's files when one process ran both, else in
	// the flood process's own files (<prefix>-a_N.json, --noisy-only).
	aSide, apart := flood, false
	if flood[0].Noisy == nil {
		if aSide, err = readReps(dir, floodPrefix+"-a"); err != nil {
			return nil, err
		}
		apart = true
	}
	admitted := mapf(aSide, func(r *Result) float64 {
		if r.Noisy == nil {
			return 0
		}
		return float64(r.Noisy.Requests-r.Noisy.ErrorsByCode["429 rate_limited"]) / max(r.ElapsedS, 1e-9)
	})
	refused := mapf(aSide, func(r *Result) float64 {
		if r.Noisy == nil {
			return 0
		}
		return float64(r.Noisy.ErrorsByCode["429 rate_limited"]) / max(r.ElapsedS, 1e-9)
	})
	w := &Workload{Name: name, Title: title,
		Value: round(inc*100, 1), Unit: "% p99 increase", Target: "<= +20%", Met: boolp(inc <= 0.2), Reps: f,
		Extra: map[string]any{"base_p99_ms": round(mb, 1), "flood_p99_ms": round(mf, 1), "base_reps_ms": b,
			"noisy_admitted_rps": round(median(admitted), 1), "noisy_refused_rps": round(median(refused), 1),
			"pair_ratio_increase_pct": round(pairInc*100, 1)}}
	if inc > 0.2 {
		w.Miss = fmt.Sprintf("+%s, %.1f points over the allowed +20%%", pct(inc), (inc-0.2)*100)
	}
	set := aSide[0].Settings
	retry := fmt.Sprintf("retrying each 429 after %v ms", set["noisy_backoff_ms"])
	if set["noisy_client"] == "reference" {
		retry = "backing off from each 429 like the reference client (100 ms–1 s, honouring Retry-After)"
	}
	w.Detail = fmt.Sprintf("Tenant B: %v light devices, each paced to one operation every %v ms (1-row push or pull, 50/50), %.0f s per run. "+
		"Tenant A: rate limit %s requests/s; %v devices flood it back to back, %s. "+
		"Repetitions alternate B alone and B with A. B's p99 over all its requests (ms): alone %s (median **%.1f**), "+
		"with A flooding %s (median **%.1f**): **%+.1f%%** (median of the per-pair ratios: %+.1f%%). "+
		"A got %.0f requests/s admitted and %.0f/s refused with 429.\n",
		flood[0].Main.Devices, flood[0].Settings["op_interval_ms"], flood[0].ElapsedS, readText(dir, "noisy_rps.txt"), set["noisy_devices"], retry,
		fmtReps(b, 1), mb, fmtReps(f, 1), mf, inc*100, pairInc*100, median(admitted), median(refused))
	if apart {
		w.Detail += "A's devices run in a load-generator process of their own at the lowest CPU priority (`nice -n 19`), " +
			"started before B's run and ending after it: on a real deployment they are A's users' devices, so their client CPU " +
			"does not come out of the server's two cores; B's client and the server run at normal priority.\n"
	}
	w.Detail += latencyCompare("B alone", base, "B with A flooding", flood)
	return w, nil
}

// thousands formats n with comma separators (1,000,000).
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func round(v float64, prec int) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', prec, 64), 64)
	return r
}

func renderMarkdown(doc *PerfDoc, o ReportOptions, errs []string) string {
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	w("# Performance\n\n")
	w("Generated by `scripts/perf.sh` on %s", doc.GeneratedAt.Format("2006-01-02 15:04 UTC"))
	if doc.Commit != "" {
		w(" at commit `%s`", doc.Commit)
	}
	w(". Every figure comes from one run on the machine below: a private PostgreSQL cluster (`syncplane localpg`), "+
		"a real `syncplane serve` process (fresh for each workload) and `syncplane loadgen` or the Go benchmarks of `sync/`. "+
		"Values are **medians of %d repetitions**; the repetitions are listed under each workload. "+
		"The same figures are in [`performance.json`](performance.json) for comparison release to release.\n\n", doc.Reps)
	w("Reproduce: `%s`\n\n", doc.Command)
	m := doc.Machine
	w("| machine | |\n|---|---|\n| CPU | %s |\n| cores | %d |\n| memory | %d GiB |\n| PostgreSQL | %s |\n| Go | %s |\n| kernel | %s |\n",
		m.CPU, m.Cores, m.MemoryGiB, m.PostgreSQL, m.Go, m.Kernel)
	if la := readText(o.Dir, "loadavg.txt"); la != "" {
		w("\nThe load generator runs on the same machine as the server and PostgreSQL, so client, server and database share "+
			"the %d cores. Load average around each workload (other work on the machine shows here):\n\n```text\n%s\n```\n", m.Cores, la)
	}
	w("\n## Summary\n\n| workload | value | target | met |\n|---|---:|---|---|\n")
	for _, x := range doc.Workloads {
		met := "reported"
		if x.Met != nil {
			met = "**yes**"
			if !*x.Met {
				met = "**no** — " + x.Miss
			}
		}
		w("| %s | %s %s | %s | %s |\n", x.Title, strconv.FormatFloat(x.Value, 'f', -1, 64), x.Unit, x.Target, met)
	}
	if len(errs) > 0 {
		w("\nMissing results (the workload failed or did not run):\n\n")
		for _, e := range errs {
			w("- %s\n", e)
		}
	}
	w("\n## Findings and what would fix them\n\n%s\n", notesBegin)
	if o.Notes != "" {
		w("%s\n", o.Notes)
	} else {
		w("_(No analysis written yet.)_\n")
	}
	w("%s\n", notesEnd)
	w("\n## Workloads\n")
	for _, x := range doc.Workloads {
		w("\n### %s\n\n`%s` — **%s %s**, target %s.\n\n%s", x.Title, x.Name, strconv.FormatFloat(x.Value, 'f', -1, 64), x.Unit, x.Target, x.Detail)
	}
	return sb.String()
}

// WriteReport writes the Markdown and JSON documents.
func WriteReport(doc *PerfDoc, md string, mdPath, jsonPath string) error {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(mdPath, []byte(md), 0o644)
}

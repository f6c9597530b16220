// Package loadgen is Syncplane's load generator, the library behind
// `syncplane loadgen` and every figure in docs/performance.md. It simulates
// tenants × devices against one server URL and reports push and pull rows/s,
// p50/p95/p99 latency per endpoint and per client operation, errors by
// status and code, and the server's peak RSS when the server runs on this
// machine.
//
// Devices run in one of two modes:
//
//   - ModeDevice: each device is a real sync/device client with its own
//     SQLite file; pushes insert rows with SQL and call Push, exactly as an
//     app would.
//   - ModeHTTP: a light device that speaks the protocol's client flows over
//     HTTP without SQLite (rows received are counted and dropped), for very
//     high device and watcher counts. Its figures measure the server, not a
//     device.
//
// Workloads: WorkloadMixed (each device loops push-or-pull, optionally
// watching), WorkloadWatchers (many open watch streams; commits measure the
// commit→wake-up latency of all of the committing user's watchers) and
// WorkloadSnapshot (seed a user with many rows, then time fresh devices
// hydrating from a snapshot). A run always ends by itself: after Duration
// or Ops, and never later than MaxTime. It sends traffic only to URL.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/syncplane/syncplane/tenant"
)

// Modes of simulated devices.
const (
	ModeDevice = "device"
	ModeHTTP   = "http"
)

// Workloads.
const (
	WorkloadMixed    = "mixed"
	WorkloadWatchers = "watchers"
	WorkloadSnapshot = "snapshot"
)

// Config configures a run. Zero values take the documented defaults.
type Config struct {
	// URL is the server's base URL (http://host:port); tenants are reached
	// at URL/k/<publishable key>/sync/…. Nothing else is ever contacted.
	URL string
	// Tenants are the tenants to load; at most one may be Noisy.
	Tenants []Tenant
	// Mode is ModeDevice (default) or ModeHTTP.
	Mode string
	// Workload is WorkloadMixed (default), WorkloadWatchers or
	// WorkloadSnapshot.
	Workload string

	// Devices per (non-noisy) tenant (default 10) and DevicesPerUser
	// (default 1): devices of one user share its data.
	Devices        int
	DevicesPerUser int
	// Duration of the measured phase (default 30 s unless Ops is set).
	Duration time.Duration
	// Ops ends the measured phase after this many push or pull operations
	// of the non-noisy tenants.
	Ops int64
	// MaxTime bounds the whole run, setup included (default Duration + 10
	// min).
	MaxTime time.Duration
	// RowsPerPush rows per push operation (default 1), ChunkSize rows per
	// push chunk (default 1000).
	RowsPerPush int
	ChunkSize   int
	// PushRatio is the fraction of operations that are pushes (0..1,
	// default 0.5); the rest are pulls.
	PushRatio float64
	// OpInterval paces each device: it starts an operation at most every
	// OpInterval (0: back to back).
	OpInterval time.Duration
	// Watch keeps a watch stream open per device, pulling on every event.
	Watch bool
	// NoisyDevices of the Noisy tenant (default 20) run back to back and
	// retry every 429 without ever giving up, so the tenant presses at its
	// rate limit for the whole run. With NoisyBackoff 0 (default) they back
	// off like the reference client (100 ms doubling to 1 s with jitter, or
	// the answer's Retry-After when longer, up to 5 s); NoisyBackoff > 0 is
	// a harsh flood that retries after that fixed pause (perf.sh: 20 ms).
	NoisyDevices int
	NoisyBackoff time.Duration

	// Watchers (WorkloadWatchers, default 1000) spread over users of
	// WatchersPerUser (default 10); Commits per repetition (default 50) by
	// CommitConcurrency committers (default 4), Reps repetitions (default 5).
	Watchers          int
	WatchersPerUser   int
	Commits           int
	CommitConcurrency int
	Reps              int

	// SnapshotRows seeded for WorkloadSnapshot (default 100,000); each of
	// Reps fresh devices then hydrates.
	SnapshotRows int
	// DeviceReps bounds the device-mode hydrations of WorkloadSnapshot
	// (default Reps); every repetition also reads the snapshot over HTTP.
	DeviceReps int

	// AttachParallel devices attach at once (default 32).
	AttachParallel int
	// Dir holds SQLite files in ModeDevice ("" = a temporary directory,
	// removed afterwards).
	Dir string
	// ServerPID is the server process to sample RSS from; 0 finds the
	// process listening on URL's port (only when the host is local); -1
	// disables sampling.
	ServerPID int
	// Progress receives the progress bar and phase lines (nil: none).
	Progress io.Writer
}

// Result is what a run measured. Times are milliseconds unless named.
type Result struct {
	Workload   string         `json:"workload"`
	Mode       string         `json:"mode"`
	URL        string         `json:"url"`
	StartedAt  time.Time      `json:"started_at"`
	ElapsedS   float64        `json:"elapsed_s"`
	Settings   map[string]any `json:"settings"`
	Main       GroupResult    `json:"main"`
	Noisy      *GroupResult   `json:"noisy,omitempty"`
	Server     *ServerStats   `json:"server,omitempty"`
	Watch      *WatchResult   `json:"watch,omitempty"`
	Snapshot   *SnapResult    `json:"snapshot,omitempty"`
	StoppedBy  string         `json:"stopped_by"`
	SetupS     float64        `json:"setup_s"`
	AttachFail int            `json:"attach_failures"`
}

type runner struct {
	cfg    Config
	rec    *recorder
	hc     *http.Client
	schema *tenant.Schema
	dir    string
	rss    *rssSampler
	runID  string
}

func (c *Config) defaults() error {
	if c.URL == "" {
		return errors.New("loadgen: a server URL is required")
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if len(c.Tenants) == 0 {
		return errors.New("loadgen: no tenants")
	}
	if c.Mode == "" {
		c.Mode = ModeDevice
	}
	if c.Mode != ModeDevice && c.Mode != ModeHTTP {
		return fmt.Errorf("loadgen: mode %q is neither %q nor %q", c.Mode, ModeDevice, ModeHTTP)
	}
	if c.Workload == "" {
		c.Workload = WorkloadMixed
	}
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.Devices, 10)
	def(&c.DevicesPerUser, 1)
	def(&c.RowsPerPush, 1)
	def(&c.ChunkSize, 1000)
	def(&c.NoisyDevices, 20)
	def(&c.Watchers, 1000)
	def(&c.WatchersPerUser, 10)
	def(&c.Commits, 50)
	def(&c.CommitConcurrency, 4)
	def(&c.Reps, 5)
	def(&c.SnapshotRows, 100000)
	def(&c.AttachParallel, 32)
	def(&c.DeviceReps, c.Reps)
	if c.ChunkSize > 5000 {
		return errors.New("loadgen: chunk size above the protocol's 5000")
	}
	if c.PushRatio < 0 || c.PushRatio > 1 {
		return errors.New("loadgen: push ratio must be between 0 and 1")
	}
	if c.NoisyBackoff < 0 {
		c.NoisyBackoff = 0
	}
	if c.Duration <= 0 && c.Ops <= 0 {
		c.Duration = 30 * time.Second
	}
	if c.MaxTime <= 0 {
		c.MaxTime = c.Duration + 10*time.Minute
		if c.Duration <= 0 {
			c.MaxTime = 30 * time.Minute
		}
	}
	return nil
}

// Run runs the configured workload and returns its figures.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxTime)
	defer cancel()
	schema, err := Schema()
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, rec: newRecorder(), schema: schema, runID: fmt.Sprintf("%x", rand.Uint32())}
	maxConns := 1024
	if cfg.Workload == WorkloadWatchers {
		maxConns = cfg.Watchers + 256
	}
	r.hc = newHTTPClient(r.rec, maxConns)
	if cfg.Mode == ModeDevice {
		r.dir = cfg.Dir
		if r.dir == "" {
			if r.dir, err = os.MkdirTemp("", "syncplane-loadgen-"); err != nil {
				return nil, err
			}
			defer os.RemoveAll(r.dir)
		} else if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return nil, err
		}
	}
	if cfg.ServerPID >= 0 {
		pid := cfg.ServerPID
		if pid == 0 {
			pid, _ = findListener(cfg.URL)
		}
		if pid > 0 {
			r.rss = startRSS(pid)
			defer r.rss.stop()
		}
	}
	res := &Result{Workload: cfg.Workload, Mode: cfg.Mode, URL: cfg.URL, StartedAt: time.Now().UTC(), Settings: r.settings()}
	switch cfg.Workload {
	case WorkloadMixed:
		err = r.mixed(ctx, res)
	case WorkloadWatchers:
		err = r.watchers(ctx, res)
	case WorkloadSnapshot:
		err = r.snapshot(ctx, res)
	default:
		err = fmt.Errorf("loadgen: unknown workload %q", cfg.Workload)
	}
	if r.rss != nil {
		res.Server = r.rss.stats()
	}
	r.closeIdle()
	return res, err
}

func (r *runner) closeIdle() {
	if tr, ok := r.hc.Transport.(*transport); ok {
		if ht, ok := tr.base.(*http.Transport); ok {
			ht.CloseIdleConnections()
		}
	}
}

func (r *runner) settings() map[string]any {
	c := r.cfg
	m := map[string]any{"tenants": len(r.mainTenants()), "noisy": r.noisyTenant() != nil}
	switch c.Workload {
	case WorkloadMixed:
		m["devices_per_tenant"] = c.Devices
		m["devices_per_user"] = c.DevicesPerUser
		m["rows_per_push"] = c.RowsPerPush
		m["push_ratio"] = c.PushRatio
		m["watch"] = c.Watch
		m["op_interval_ms"] = c.OpInterval.Milliseconds()
		m["duration_s"] = c.Duration.Seconds()
		m["ops"] = c.Ops
		if r.noisyTenant() != nil {
			m["noisy_devices"] = c.NoisyDevices
			m["noisy_backoff_ms"] = c.NoisyBackoff.Milliseconds()
			m["noisy_client"] = "reference"
			if c.NoisyBackoff > 0 {
				m["noisy_client"] = "fixed_backoff"
			}
		}
	case WorkloadWatchers:
		m["watchers"] = c.Watchers
		m["watchers_per_user"] = c.WatchersPerUser
		m["commits_per_rep"] = c.Commits
		m["reps"] = c.Reps
	case WorkloadSnapshot:
		m["snapshot_rows"] = c.SnapshotRows
		m["reps"] = c.Reps
		m["device_reps"] = c.DeviceReps
	}
	return m
}

func (r *runner) mainTenants() []Tenant {
	var out []Tenant
	for _, t := range r.cfg.Tenants {
		if !t.Noisy {
			out = append(out, t)
		}
	}
	return out
}

func (r *runner) noisyTenant() *Tenant {
	for i := range r.cfg.Tenants {
		if r.cfg.Tenants[i].Noisy {
			return &r.cfg.Tenants[i]
		}
	}
	return nil
}

func (r *runner) phase(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
	}
}

func (r *runner) bar(max int64, desc string) *progressbar.ProgressBar {
	w := r.cfg.Progress
	if w == nil {
		w = io.Discard
	}
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		progressbar.OptionSetPredictTime(true),
	)
}

type simSlot struct {
	sim   simDevice
	noisy bool
}

// attachAll builds and attaches the devices of every tenant.
func (r *runner) attachAll(ctx context.Context) ([]simSlot, int, error) {
	type spec struct {
		t     Tenant
		user  string
		noisy bool
	}
	var specs []spec
	for ti, t := range r.mainTenants() {
		for d := range r.cfg.Devices {
			specs = append(specs, spec{t, fmt.Sprintf("lg-%s-t%d-u%d", r.runID, ti, d/r.cfg.DevicesPerUser), false})
		}
	}
	if nt := r.noisyTenant(); nt != nil {
		for d := range r.cfg.NoisyDevices {
			specs = append(specs, spec{*nt, fmt.Sprintf("lg-%s-noisy-u%d", r.runID, d), true})
		}
	}
	r.phase("attaching %d devices (%s mode)", len(specs), r.cfg.Mode)
	bar := r.bar(int64(len(specs)), "attach")
	slots := make([]simSlot, len(specs))
	var failed atomic.Int64
	var firstErr error
	var mu gosync.Mutex
	sem := make(chan struct{}, r.cfg.AttachParallel)
	var wg gosync.WaitGroup
	for i, s := range specs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			gctx := ctx
			if s.noisy {
				gctx = withGroup(ctx, GroupNoisy)
			}
			start := time.Now()
			sim, err := r.newSim(gctx, s.t, s.user, i, s.noisy)
			if err == nil {
				err = sim.attach(gctx)
				if err != nil {
					sim.close()
				}
			}
			r.rec.op(gctx, "attach", start, err)
			if err != nil {
				failed.Add(1)
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			} else {
				slots[i] = simSlot{sim, s.noisy}
			}
			bar.Add(1)
		}()
	}
	wg.Wait()
	bar.Finish()
	var ok []simSlot
	for _, s := range slots {
		if s.sim != nil {
			ok = append(ok, s)
		}
	}
	if ctx.Err() != nil {
		return ok, int(failed.Load()), ctx.Err()
	}
	if len(ok) == 0 {
		return nil, int(failed.Load()), fmt.Errorf("loadgen: no device could attach: %w", firstErr)
	}
	if firstErr != nil {
		r.phase("warning: %d devices failed to attach; first error: %v", failed.Load(), firstErr)
	}
	return ok, int(failed.Load()), nil
}

// mixed runs every device's push/pull loop for the duration or op count.
func (r *runner) mixed(ctx context.Context, res *Result) error {
	setup := time.Now()
	slots, failed, err := r.attachAll(ctx)
	res.AttachFail = failed
	defer func() {
		for _, s := range slots {
			s.sim.close()
		}
	}()
	res.SetupS = time.Since(setup).Seconds()
	if err != nil {
		return err
	}
	// Fresh figures for the measured phase (attach has its own op series).
	attach := r.rec.groups
	r.rec = newRecorder()
	r.hc.Transport.(*transport).rec = r.rec
	for name, g := range attach {
		r.rec.group(name).ops["attach"] = g.ops["attach"]
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if r.cfg.Duration > 0 {
		var c context.CancelFunc
		runCtx, c = context.WithTimeout(runCtx, r.cfg.Duration)
		defer c()
	}
	r.rec.endWith(runCtx)
	var remaining atomic.Int64
	remaining.Store(r.cfg.Ops)
	var done atomic.Int64
	var barMax int64
	if r.cfg.Ops > 0 {
		barMax = r.cfg.Ops
	} else {
		barMax = int64(r.cfg.Duration.Seconds())
	}
	desc := fmt.Sprintf("%s %d devices", r.cfg.Mode, len(slots))
	r.phase("running: %s", desc)
	bar := r.bar(barMax, "load")
	if r.rss != nil {
		r.rss.markCPU(true)
	}
	start := time.Now()
	tickDone := make(chan struct{})
	go func() {
		defer close(tickDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if r.cfg.Ops > 0 {
					_ = bar.Set64(done.Load())
				} else {
					_ = bar.Set64(int64(time.Since(start).Seconds()))
				}
			}
		}
	}()
	var wg gosync.WaitGroup
	for _, s := range slots {
		dctx := runCtx
		if s.noisy {
			dctx = withGroup(runCtx, GroupNoisy)
		}
		if r.cfg.Watch && !s.noisy {
			wg.Add(1)
			go func() { defer wg.Done(); s.sim.watchLoop(dctx) }()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := time.Now()
			for dctx.Err() == nil {
				if !s.noisy && r.cfg.Ops > 0 {
					if remaining.Add(-1) < 0 {
						stop()
						return
					}
				}
				if r.cfg.OpInterval > 0 && !s.noisy {
					if wait := time.Until(next); wait > 0 {
						select {
						case <-dctx.Done():
							return
						case <-time.After(wait):
						}
					}
					next = next.Add(r.cfg.OpInterval)
					if time.Until(next) < -r.cfg.OpInterval {
						next = time.Now() // fell behind: do not burst to catch up
					}
				}
				t0 := time.Now()
				var err error
				name := "pull"
				if rand.Float64() < r.cfg.PushRatio {
					name = "push"
					err = s.sim.push(dctx, r.cfg.RowsPerPush)
				} else {
					err = s.sim.pull(dctx)
				}
				if dctx.Err() != nil {
					return
				}
				r.rec.op(dctx, name, t0, err)
				if err != nil && !s.noisy {
					r.rec.group(GroupMain).addError("op " + shortOpErr(err))
				}
				if !s.noisy {
					done.Add(1)
				}
			}
		}()
	}
	<-runCtx.Done()
	elapsed := time.Since(start)
	if r.rss != nil {
		r.rss.markCPU(false)
	}
	r.rec.closed.Store(true)
	wg.Wait()
	stop()
	<-tickDone
	_ = bar.Finish()
	res.ElapsedS = elapsed.Seconds()
	res.StoppedBy = "duration"
	if r.cfg.Ops > 0 && remaining.Load() < 0 {
		res.StoppedBy = "ops"
	}
	if ctx.Err() != nil {
		res.StoppedBy = "max_time"
	}
	res.Main = r.rec.group(GroupMain).result(elapsed, len(r.mainTenants()), r.cfg.Devices*len(r.mainTenants()))
	if r.noisyTenant() != nil {
		g := r.rec.group(GroupNoisy).result(elapsed, 1, r.cfg.NoisyDevices)
		res.Noisy = &g
	}
	return nil
}

// shortOpErr names a failed operation's cause by its protocol code.
func shortOpErr(err error) string {
	s := err.Error()
	for _, code := range []string{"rate_limited", "push_conflict", "history_pruned", "source_sequence", "scope_", "initialization_",
		"_failed", "context deadline", "connection"} {
		if strings.Contains(s, code) {
			return strings.TrimSuffix(strings.TrimPrefix(code, "_"), "_")
		}
	}
	return "other"
}

// Print writes a human summary of res.
func Print(w io.Writer, res *Result) {
	fmt.Fprintf(w, "\nsyncplane loadgen: %s workload, %s mode, %s, %.1f s measured (stopped by %s)\n",
		res.Workload, res.Mode, res.URL, res.ElapsedS, res.StoppedBy)
	if res.Mode == ModeHTTP {
		fmt.Fprintln(w, "  (http mode: light protocol clients without SQLite; the figures measure the server)")
	}
	printGroup := func(name string, g GroupResult) {
		if g.Requests == 0 && len(g.Ops) == 0 {
			return
		}
		fmt.Fprintf(w, "\n[%s] %d tenant(s), %d device(s): %d requests (%.0f/s), %.1f ops/s (%.2f per tenant)\n",
			name, g.Tenants, g.Devices, g.Requests, g.RequestsPerS, g.OpsPerS, g.PerTenantOpsS)
		fmt.Fprintf(w, "  push rows/s %.0f (%d rows in %d bundles)   pull rows/s %.0f (%d rows)   snapshot rows %d\n",
			g.PushRowsPerS, g.PushedRows, g.Pushes, g.PullRowsPerS, g.PulledRows, g.SnapshotRows)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  latency (ms)\tcount\tp50\tp95\tp99\tmax\t")
		row := func(label string, l Latency) {
			fmt.Fprintf(tw, "  %s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t\n", label, l.Count, l.P50, l.P95, l.P99, l.Max)
		}
		for _, k := range sortedKeys(g.Ops) {
			row("op "+k, g.Ops[k])
		}
		for _, k := range sortedKeys(g.Endpoints) {
			row(k, g.Endpoints[k])
		}
		row("all requests", g.AllRequests)
		tw.Flush()
		if len(g.ErrorsByCode) > 0 {
			fmt.Fprintf(w, "  errors:")
			for _, k := range sortedKeys(g.ErrorsByCode) {
				fmt.Fprintf(w, " %s×%d", k, g.ErrorsByCode[k])
			}
			fmt.Fprintln(w)
		} else {
			fmt.Fprintln(w, "  errors: none")
		}
		if g.FailedOps > 0 {
			fmt.Fprintf(w, "  failed operations: %d\n", g.FailedOps)
		}
	}
	printGroup(GroupMain, res.Main)
	if res.Noisy != nil {
		printGroup("noisy tenant", *res.Noisy)
	}
	if s := res.Watch; s != nil {
		fmt.Fprintf(w, "\nwatchers: %d open of %d (%d users), opened in %.1f s; %d commits, %d missed wake-ups\n",
			s.Open, s.Watchers, s.Users, s.OpenS, s.Commits, s.Missed)
		fmt.Fprintf(w, "  all of a user's watchers woken, from commit sent:     median %.1f ms, p99 %.1f ms (per rep medians %v)\n",
			s.AllWokenFromSend.P50, s.AllWokenFromSend.P99, s.RepMediansMS)
		fmt.Fprintf(w, "  all of a user's watchers woken, from commit answered: median %.1f ms, p99 %.1f ms\n",
			s.AllWokenFromAnswer.P50, s.AllWokenFromAnswer.P99)
		fmt.Fprintf(w, "  each watcher, from commit sent: median %.1f ms, p99 %.1f ms\n", s.EachFromSend.P50, s.EachFromSend.P99)
	}
	if s := res.Snapshot; s != nil {
		fmt.Fprintf(w, "\nsnapshot: %d rows seeded in %.1f s (%.0f rows/s); fresh %s device hydration per rep (s): %v, median %.2f s (%.0f rows/s)\n",
			s.Rows, s.SeedS, s.SeedRowsPerS, res.Mode, s.RepsS, s.MedianS, s.RowsPerS)
		if len(s.HTTPRepsS) > 0 {
			fmt.Fprintf(w, "  the same snapshot read over HTTP without SQLite: %v, median %.2f s\n", s.HTTPRepsS, s.HTTPMedianS)
		}
	}
	if s := res.Server; s != nil {
		fmt.Fprintf(w, "\nserver pid %d: peak RSS during the run %.1f MiB (process high-water mark %.1f MiB)\n",
			s.PID, float64(s.PeakRSSBytes)/(1<<20), float64(s.HWMBytes)/(1<<20))
		if s.CPUS > 0 && res.Main.OpsPerS > 0 {
			ops := res.Main.OpsPerS * res.ElapsedS
			fmt.Fprintf(w, "CPU in the measured phase: server %.1f s (%.2f ms per op), local PostgreSQL %.1f s (%.2f ms per op)\n",
				s.CPUS, 1000*s.CPUS/ops, s.PostgresCPUS, 1000*s.PostgresCPUS/ops)
		}
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

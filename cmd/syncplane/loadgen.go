package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/syncplane/syncplane/sync/device/loadgen"
	"github.com/syncplane/syncplane/tenant"
)

const loadgenUsage = `usage: syncplane loadgen --url URL (--database-url DB | --tenants-file F) [flags]

Simulates tenants × devices against one Syncplane server and reports push and
pull rows/s, p50/p95/p99 latency per endpoint and per operation, errors by
status and code, and the server's peak RSS when it runs on this machine.
Traffic goes only to --url; the run always ends by itself (--duration or
--ops, and never after --max-time).

How it reaches tenants (pick one):
  --database-url URL   create --tenants fresh tenants (plan --plan, the loadgen
                       tables, a publishable key and an HS256 secret each)
                       through the control plane, and delete them afterwards
                       (keep them with --write-tenants F; --setup-only stops
                       after writing F).
  --tenants-file F     reuse tenants from a JSON file written by --write-tenants:
                       {"tenants": [{"slug": "acme", "publishable_key": "sp_pk_…",
                        "hs256_secret": "…", "wire_schema": "app", "noisy": false}]}
                       The tenants need the loadgen tables (--print-tables) and
                       HS256 end-user auth with that secret.
  --active N uses only the first N non-noisy tenants of either.

Modes: --mode device (default) runs real sync/device clients, each with its
own SQLite file; --mode http runs light protocol clients without SQLite (for
thousands of devices; the figures then measure the server, not a device).

Workloads (--workload):
  mixed     every device loops: push --rows-per-push rows (probability
            --push-ratio) or pull; --watch keeps a watch stream per device.
  watchers  opens --watchers streams (http mode), --watchers-per-user per
            user, then --reps rounds of --commits one-row commits: the
            commit→wake-up latency of all of a user's watchers.
  snapshot  seeds one user with --snapshot-rows rows, then --reps fresh
            devices hydrate from a snapshot, timed end to end.

Noisy neighbour: --noisy adds one tenant (with --database-url: rate-limited to
--noisy-rps; with --tenants-file: the entry marked "noisy") whose
--noisy-devices flood it back to back and never give up on a 429: by default
they back off like the reference client (100 ms doubling to 1 s, ±20 % jitter,
or the answer's Retry-After when longer, up to 5 s); --noisy-backoff 20ms makes
them a harsh flood retrying after that fixed pause. Its traffic is reported
apart from the other tenants'. --noisy-only runs the flood alone, so that it
can run in a process of its own (scripts/perf.sh runs it at nice 19: on a real
deployment the flooding devices are not on the server's cores).

Examples:
  syncplane loadgen --url http://127.0.0.1:8080 --database-url $DB --tenants 2 --devices 20 --duration 30s
  syncplane loadgen --url http://127.0.0.1:8080 --tenants-file t.json --mode http --devices 200 \
      --rows-per-push 1 --push-ratio 1 --json out.json
  syncplane loadgen --url http://127.0.0.1:8080 --database-url $DB --workload watchers --watchers 10000

Flags:
`

// provisionParallel tenants are created at once.
const provisionParallel = 4

func runLoadgen(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "report" {
		return runLoadgenReport(ctx, args[1:], stderr)
	}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, loadgenUsage)
		fs.PrintDefaults()
	}
	var cfg loadgen.Config
	fs.StringVar(&cfg.URL, "url", "", "server base URL, e.g. http://127.0.0.1:8080 (required)")
	dbURL := fs.String("database-url", os.Getenv("SYNCPLANE_DATABASE_URL"), "control-plane PostgreSQL, to create the tenants ($SYNCPLANE_DATABASE_URL)")
	tenantsFile := fs.String("tenants-file", "", "JSON file(s) of tenants to use instead of creating them, comma-separated")
	nTenants := fs.Int("tenants", 1, "tenants to create (with --database-url)")
	plan := fs.String("plan", "unlimited", "plan of created tenants")
	active := fs.Int("active", 0, "use only the first N tenants (0: all)")
	writeTenants := fs.String("write-tenants", "", "write the created tenants to this file and keep them")
	setupOnly := fs.Bool("setup-only", false, "create the tenants, write --write-tenants and exit")
	printTables := fs.Bool("print-tables", false, "print the table definition loadgen tenants need and exit")
	fs.StringVar(&cfg.Mode, "mode", loadgen.ModeDevice, "device (real SQLite clients) or http (light clients without SQLite)")
	fs.StringVar(&cfg.Workload, "workload", loadgen.WorkloadMixed, "mixed, watchers or snapshot")
	fs.IntVar(&cfg.Devices, "devices", 10, "devices per tenant")
	fs.IntVar(&cfg.DevicesPerUser, "devices-per-user", 1, "devices sharing one user")
	fs.DurationVar(&cfg.Duration, "duration", 0, "measured phase length (default 30s unless --ops)")
	fs.Int64Var(&cfg.Ops, "ops", 0, "stop after this many push or pull operations")
	fs.DurationVar(&cfg.MaxTime, "max-time", 0, "hard bound of the whole run (default duration + 10m)")
	fs.IntVar(&cfg.RowsPerPush, "rows-per-push", 1, "rows per push")
	fs.IntVar(&cfg.ChunkSize, "chunk-size", 1000, "rows per push chunk (1..5000)")
	fs.Float64Var(&cfg.PushRatio, "push-ratio", 0.5, "fraction of operations that are pushes; the rest pull")
	fs.DurationVar(&cfg.OpInterval, "op-interval", 0, "pace each device to one operation per interval (0: back to back)")
	fs.BoolVar(&cfg.Watch, "watch", false, "keep a watch stream per device and pull on every event")
	noisy := fs.Bool("noisy", false, "add a noisy tenant flooding at its rate limit")
	noisyOnly := fs.Bool("noisy-only", false, "run only the noisy tenant's devices (the flood in a process of its own; implies --noisy)")
	noisyRPS := fs.Float64("noisy-rps", 100, "the noisy tenant's requests per second (with --database-url)")
	fs.IntVar(&cfg.NoisyDevices, "noisy-devices", 20, "devices of the noisy tenant")
	fs.DurationVar(&cfg.NoisyBackoff, "noisy-backoff", 0, "the noisy devices' fixed pause after a 429 (0: back off like the reference client)")
	fs.IntVar(&cfg.Watchers, "watchers", 1000, "watch streams (watchers workload)")
	fs.IntVar(&cfg.WatchersPerUser, "watchers-per-user", 10, "watch streams per user (watchers workload)")
	fs.IntVar(&cfg.Commits, "commits", 50, "commits per repetition (watchers workload)")
	fs.IntVar(&cfg.Reps, "reps", 5, "repetitions (watchers and snapshot workloads)")
	fs.IntVar(&cfg.DeviceReps, "device-reps", 0, "device-mode hydrations of the snapshot workload (default --reps; every rep also reads over HTTP)")
	fs.IntVar(&cfg.SnapshotRows, "snapshot-rows", 100000, "rows seeded for the snapshot workload")
	fs.IntVar(&cfg.AttachParallel, "attach-parallel", 32, "devices attaching at once")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for device SQLite files (default: a temporary one)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server process for RSS (0: the local process listening on --url's port; -1: off)")
	jsonOut := fs.String("json", "", "also write the result as JSON to this file")
	quiet := fs.Bool("quiet", false, "no progress bar")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load generator's run (its devices' side) to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *printTables {
		fmt.Fprintln(stdout, loadgen.Tables)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "syncplane loadgen: unexpected arguments %v\n", fs.Args())
		return 2
	}
	if (cfg.URL == "" && !*setupOnly) || (*dbURL == "" && *tenantsFile == "") {
		fs.Usage()
		return 2
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "syncplane loadgen:", err)
		return 1
	}

	var tenants []loadgen.Tenant
	if *tenantsFile != "" {
		for _, f := range strings.Split(*tenantsFile, ",") {
			ts, err := loadgen.ReadTenantsFile(f)
			if err != nil {
				return fail(err)
			}
			tenants = append(tenants, ts...)
		}
	} else {
		// Creating a tenant holds one connection for its lock and uses
		// others meanwhile: the pool must be well above the parallelism.
		pool, err := openPool(ctx, *dbURL, 4*provisionParallel)
		if err != nil {
			return fail(err)
		}
		defer pool.Close()
		store := tenant.NewStore(pool, tenant.NewClusters(pool))
		// Seal like the server when the operator gives its keys; unsealed
		// secrets are read by a server with keys too.
		sealer, err := tenant.ParseSealKeys(os.Getenv("SYNCPLANE_SEAL_KEYS"))
		if err != nil {
			return fail(fmt.Errorf("SYNCPLANE_SEAL_KEYS: %w", err))
		}
		store.SetSealer(sealer)
		p := loadgen.Provision{Count: *nTenants, Plan: *plan, Parallel: provisionParallel}
		if *noisy {
			p.NoisyRPS = *noisyRPS
		}
		fmt.Fprintf(stderr, "creating %d tenant(s)\n", *nTenants+btoi(*noisy))
		bar := newCountPrinter(stderr, *nTenants+btoi(*noisy), *quiet)
		p.Progress = bar
		ts, err := loadgen.CreateTenants(ctx, store, p)
		if err != nil {
			return fail(err)
		}
		tenants = ts
		if *writeTenants != "" {
			if err := loadgen.WriteTenantsFile(*writeTenants, ts); err != nil {
				return fail(err)
			}
			fmt.Fprintf(stderr, "wrote %d tenants to %s\n", len(ts), *writeTenants)
		} else {
			defer func() {
				fmt.Fprintf(stderr, "deleting %d tenant(s)\n", len(ts))
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
				defer cancel()
				if err := loadgen.DeleteTenants(cctx, store, ts); err != nil {
					fmt.Fprintln(stderr, "syncplane loadgen:", err)
				}
			}()
		}
		if *setupOnly {
			return 0
		}
	}
	cfg.Tenants = selectTenants(tenants, *active, *noisy || *noisyOnly)
	if *noisyOnly {
		cfg.Tenants = slices.DeleteFunc(cfg.Tenants, func(t loadgen.Tenant) bool { return !t.Noisy })
		if len(cfg.Tenants) == 0 {
			return fail(errors.New("--noisy-only: no noisy tenant (create one with --noisy, or mark one \"noisy\" in --tenants-file)"))
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := loadgen.Run(ctx, cfg)
	if res != nil {
		loadgen.Print(stdout, res)
		if *jsonOut != "" {
			data, jerr := json.MarshalIndent(res, "", "  ")
			if jerr == nil {
				jerr = os.WriteFile(*jsonOut, append(data, '\n'), 0o644)
			}
			if jerr != nil {
				return fail(jerr)
			}
		}
	}
	if err != nil {
		return fail(err)
	}
	return 0
}

// selectTenants keeps the first active non-noisy tenants (all when 0) and
// the noisy one only when asked for.
func selectTenants(ts []loadgen.Tenant, active int, noisy bool) []loadgen.Tenant {
	var out []loadgen.Tenant
	n := 0
	for _, t := range ts {
		switch {
		case t.Noisy:
			if noisy {
				out = append(out, t)
			}
		case active <= 0 || n < active:
			out = append(out, t)
			n++
		}
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// newCountPrinter reports provisioning progress every 50 tenants.
func newCountPrinter(w io.Writer, total int, quiet bool) func() {
	var mu gosync.Mutex
	done := 0
	return func() {
		mu.Lock()
		defer mu.Unlock()
		done++
		if !quiet && (done%50 == 0 || done == total) {
			fmt.Fprintf(w, "  %d/%d tenants\n", done, total)
		}
	}
}

// runLoadgenReport is `syncplane loadgen report`, the last step of
// scripts/perf.sh: it turns the raw results into docs/performance.md and
// docs/performance.json, keeping the hand-written findings of the previous
// document.
func runLoadgenReport(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o loadgen.ReportOptions
	fs.StringVar(&o.Dir, "dir", "", "directory of raw results written by scripts/perf.sh")
	fs.StringVar(&o.DatabaseURL, "database-url", "", "PostgreSQL the run used (for its version)")
	fs.StringVar(&o.Commit, "commit", "", "commit the run measured")
	fs.StringVar(&o.Command, "command", "./scripts/perf.sh", "command that reproduces the run")
	md := fs.String("md", "docs/performance.md", "Markdown output")
	js := fs.String("json", "docs/performance.json", "JSON output")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.Dir == "" {
		fmt.Fprintln(stderr, "usage: syncplane loadgen report --dir D [--md F] [--json F] [--database-url U] [--commit C]")
		return 2
	}
	if old, err := os.ReadFile(*md); err == nil {
		o.Notes = loadgen.ExtractNotes(string(old))
	}
	doc, text, err := loadgen.Report(ctx, o)
	if err == nil {
		err = loadgen.WriteReport(doc, text, *md, *js)
	}
	if err != nil {
		fmt.Fprintln(stderr, "syncplane loadgen report:", err)
		return 1
	}
	return 0
}

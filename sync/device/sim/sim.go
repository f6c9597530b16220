// Package sim is the scenario suite behind `syncplane sim`: end-to-end
// scenarios that drive real device clients (package device, each with its
// own SQLite file) against any Syncplane URL with a tenant key, print live
// progress and a final table (scenario, devices, rows, bundles, result,
// time), and verify convergence by comparing every device's tables with each
// other and, when given the tenant's PostgreSQL, with the server's rows for
// that user.
//
// The tenant must have the table definition in Tables applied and HS256
// end-user auth whose secret the runner knows (it mints a token per
// scenario user). Every run uses fresh, run-unique user ids, so runs never
// see each other's data and the suite can run against a live tenant.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/syncplane/syncplane/sync/device"
	"github.com/syncplane/syncplane/tenant"
)

// Tables is the table definition the scenarios use; apply it to the tenant
// (syncplane tenant tables apply <slug> --file …) before running.
const Tables = `{"tables": [
  {"name": "users", "sync_key": "id", "columns": [
    {"name": "id", "type": "uuid"},
    {"name": "name", "type": "text"},
    {"name": "email", "type": "text", "nullable": true},
    {"name": "created_at", "type": "timestamp"}]},
  {"name": "notes", "sync_key": "id", "columns": [
    {"name": "id", "type": "uuid"},
    {"name": "user_id", "type": "uuid"},
    {"name": "title", "type": "text"},
    {"name": "body", "type": "text", "nullable": true},
    {"name": "pinned", "type": "integer", "default": 0},
    {"name": "score", "type": "real", "nullable": true},
    {"name": "big", "type": "integer", "nullable": true},
    {"name": "attachment", "type": "blob", "nullable": true},
    {"name": "meta", "type": "json", "nullable": true},
    {"name": "updated_at", "type": "timestamp"}],
   "foreign_keys": [{"column": "user_id", "references": "users", "on_delete": "cascade"}],
   "indexes": [{"columns": ["user_id"]}]},
  {"name": "tags", "sync_key": "name", "columns": [
    {"name": "name", "type": "text"},
    {"name": "color", "type": "text", "nullable": true}]}
]}`

// Schema returns Tables as a validated schema.
func Schema() (*tenant.Schema, error) {
	def, err := tenant.ParseDefinition([]byte(Tables))
	if err != nil {
		return nil, err
	}
	return tenant.NewSchema(def)
}

// Config configures a run.
type Config struct {
	// BaseURL is the tenant's base URL: http://host/k/<publishable key>.
	BaseURL string
	// HS256Secret signs the end-user tokens the runner mints.
	HS256Secret string
	// SecretKey, if set, is a secret API key (sp_sk_…) of the tenant; the
	// server-originated-writes scenario uses it with POST /v1/users/…/writes
	// on the base URL's host.
	SecretKey string
	// WireSchema is the tenant's wire schema; "" means "app".
	WireSchema string
	// Verifier, if set, also compares device rows with the server's rows
	// (see NewPGVerifier).
	Verifier Verifier
	// Dir holds the device databases; "" means a temporary directory that
	// is removed afterwards.
	Dir string
	// Run selects scenarios by name; nil runs all.
	Run *regexp.Regexp
	// LargeRows is the row count of the large-push scenario (default 50000).
	LargeRows int
	// RetainedWindow is the tenant's retained bundle window per user, if
	// known; the history-pruned scenario runs only when it is at most 200.
	RetainedWindow int
	// RunID prefixes every scenario user id; "" means a fresh, time-based
	// one. RunParallel gives all tenants the same RunID, so their users
	// collide on purpose.
	RunID string
	// Out receives progress and the final table; nil means os.Stdout.
	Out io.Writer
	// Verbose also prints each device's log lines.
	Verbose bool
}

// Verifier compares a device's tables with the server's rows of a user.
type Verifier interface {
	Verify(ctx context.Context, user string, schema *tenant.Schema, d *device.Client) error
}

// Result is one scenario's outcome.
type Result struct {
	Scenario string
	Devices  int
	Rows     int64 // rows written by the scenario's devices
	Bundles  int64 // bundles committed for the scenario's users
	Err      error
	Skipped  string
	Elapsed  time.Duration
}

// Scenario is one named end-to-end story.
type Scenario struct {
	Name string
	Run  func(t *T)
}

// Run runs the selected scenarios one after another, printing progress and
// the final table. ok is false if any scenario failed.
func Run(ctx context.Context, cfg Config) (results []Result, ok bool, err error) {
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.WireSchema == "" {
		cfg.WireSchema = "app"
	}
	if cfg.LargeRows == 0 {
		cfg.LargeRows = 50000
	}
	if cfg.BaseURL == "" || cfg.HS256Secret == "" {
		return nil, false, errors.New("sim: a base URL and an HS256 secret are required")
	}
	schema, err := Schema()
	if err != nil {
		return nil, false, err
	}
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "syncplane-sim-"); err != nil {
			return nil, false, err
		}
		defer os.RemoveAll(dir)
	}
	runID := cfg.RunID
	if runID == "" {
		runID = fmt.Sprintf("sim-%d", time.Now().UnixNano())
	}
	ok = true
	for _, sc := range Scenarios() {
		if cfg.Run != nil && !cfg.Run.MatchString(sc.Name) {
			continue
		}
		fmt.Fprintf(cfg.Out, "▶ %s\n", sc.Name)
		t := &T{ctx: ctx, cfg: &cfg, schema: schema, name: sc.Name, runID: runID,
			dir: filepath.Join(dir, sc.Name), users: map[string]bool{}}
		res := t.run(sc.Run)
		results = append(results, res)
		switch {
		case res.Skipped != "":
			fmt.Fprintf(cfg.Out, "  – skipped: %s\n", res.Skipped)
		case res.Err != nil:
			ok = false
			fmt.Fprintf(cfg.Out, "  ✗ FAIL after %s: %v\n", res.Elapsed.Round(time.Millisecond), res.Err)
		default:
			fmt.Fprintf(cfg.Out, "  ✓ ok in %s\n", res.Elapsed.Round(time.Millisecond))
		}
		if ctx.Err() != nil {
			return results, false, ctx.Err()
		}
	}
	PrintTable(cfg.Out, results)
	return results, ok, nil
}

// RunParallel runs the suite against several tenants at the same time with
// identical user ids, so any leak between tenants shows up as a convergence
// failure (each tenant's devices are checked against that tenant only).
// ok is false if any run failed.
func RunParallel(ctx context.Context, cfgs []Config) (results [][]Result, ok bool, err error) {
	runID := fmt.Sprintf("sim-%d", time.Now().UnixNano())
	results = make([][]Result, len(cfgs))
	oks := make([]bool, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i := range cfgs {
		cfg := cfgs[i]
		cfg.RunID = runID
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], oks[i], errs[i] = Run(ctx, cfg)
		}()
	}
	wg.Wait()
	ok = true
	for i := range cfgs {
		ok = ok && oks[i]
	}
	return results, ok, errors.Join(errs...)
}

// PrintTable writes the final results table.
func PrintTable(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSCENARIO\tDEVICES\tROWS\tBUNDLES\tRESULT\tTIME")
	for _, r := range results {
		result := "ok"
		switch {
		case r.Skipped != "":
			result = "skipped"
		case r.Err != nil:
			result = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", r.Scenario, r.Devices, r.Rows, r.Bundles, result, r.Elapsed.Round(time.Millisecond))
	}
	tw.Flush()
}

// T is a running scenario: it makes devices and checks results. Failing
// helpers stop the scenario (like testing.T's Fatal).
type T struct {
	ctx     context.Context
	cfg     *Config
	schema  *tenant.Schema
	name    string
	runID   string
	dir     string
	devices []*device.Client
	devUser []string
	users   map[string]bool
	rows    int64
	skipped string
}

type failure struct{ err error }
type skip struct{}

func (t *T) run(fn func(*T)) (res Result) {
	start := time.Now()
	defer func() {
		res = Result{Scenario: t.name, Devices: len(t.devices), Rows: t.rows, Elapsed: time.Since(start), Skipped: t.skipped}
		if r := recover(); r != nil {
			switch x := r.(type) {
			case failure:
				res.Err = x.err
			case skip:
			default:
				res.Err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}
		res.Bundles = t.bundles()
		for _, d := range t.devices {
			d.Close()
		}
	}()
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	fn(t)
	return
}

// Context returns the run's context.
func (t *T) Context() context.Context { return t.ctx }

// Fatalf stops the scenario with a failure.
func (t *T) Fatalf(format string, args ...any) {
	panic(failure{fmt.Errorf(format, args...)})
}

// Skipf stops the scenario as skipped.
func (t *T) Skipf(format string, args ...any) {
	t.skipped = fmt.Sprintf(format, args...)
	panic(skip{})
}

// Must fails the scenario on a non-nil error.
func (t *T) Must(err error) {
	if err != nil {
		t.Fatalf("%v", err)
	}
}

// Logf prints a progress line.
func (t *T) Logf(format string, args ...any) {
	fmt.Fprintf(t.cfg.Out, "  · "+format+"\n", args...)
}

// User returns the run-unique id of a scenario user.
func (t *T) User(name string) string {
	u := t.runID + "-" + t.name + "-" + name
	t.users[u] = true
	return u
}

// Token returns a Token func for a user id.
func (t *T) Token(user string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		now := time.Now()
		return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": user, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}).SignedString([]byte(t.cfg.HS256Secret))
	}
}

// Device opens a new device (a fresh SQLite file) for a user id.
func (t *T) Device(user string, tweak ...func(*device.Config)) *device.Client {
	cfg := device.Config{
		Path:    filepath.Join(t.dir, fmt.Sprintf("device-%d.db", len(t.devices)+1)),
		BaseURL: t.cfg.BaseURL, Token: t.Token(user), Schema: t.schema, WireSchema: t.cfg.WireSchema,
	}
	if t.cfg.Verbose {
		n := len(t.devices) + 1
		cfg.Logf = func(format string, args ...any) { t.Logf("[device %d] "+format, append([]any{n}, args...)...) }
	}
	for _, f := range tweak {
		f(&cfg)
	}
	d, err := device.Open(t.ctx, cfg)
	t.Must(err)
	t.devices = append(t.devices, d)
	t.devUser = append(t.devUser, user)
	return d
}

// Exec runs app SQL on a device and counts written rows.
func (t *T) Exec(d *device.Client, query string, args ...any) {
	res, err := d.DB().ExecContext(t.ctx, query, args...)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(strings.Fields(query), " "), err)
	}
	n, _ := res.RowsAffected()
	t.rows += n
}

// Converged checks that the devices (all of one user) hold identical rows
// and, with a Verifier, that they match the server's rows of that user.
func (t *T) Converged(user string, devs ...*device.Client) {
	want, err := Dump(t.ctx, t.schema, devs[0])
	t.Must(err)
	for i, d := range devs[1:] {
		got, err := Dump(t.ctx, t.schema, d)
		t.Must(err)
		if got != want {
			t.Fatalf("device %d differs from device 1 for %s:\n--- device 1\n%s\n--- device %d\n%s", i+2, user, clip(want), i+2, clip(got))
		}
	}
	if t.cfg.Verifier != nil {
		if err := t.cfg.Verifier.Verify(t.ctx, user, t.schema, devs[0]); err != nil {
			t.Fatalf("server rows of %s: %v", user, err)
		}
	}
}

func clip(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "\n…"
	}
	return s
}

// bundles sums, over the scenario's users, the highest checkpoint any of
// the user's devices reached: the bundles committed for them.
func (t *T) bundles() int64 {
	best := map[string]int64{}
	for i, d := range t.devices {
		st, err := d.State(context.WithoutCancel(t.ctx))
		if err != nil {
			continue
		}
		best[t.devUser[i]] = max(best[t.devUser[i]], st.Checkpoint)
	}
	var total int64
	for _, v := range best {
		total += v
	}
	return total
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/syncplane/syncplane/tenant"
)

// setting is one configuration value: an environment variable with a flag
// of the same meaning that overrides it. The table below is the single
// source of truth for `serve --help`, the README table and the Helm chart.
type setting struct {
	Env     string
	Flag    string
	Default string
	Usage   string
}

var settings = []setting{
	{"SYNCPLANE_DATABASE_URL", "database-url", "", "PostgreSQL connection string of the control plane (and the default placement's tenant schemas)"},
	{"SYNCPLANE_HTTP_ADDR", "http-addr", ":8080", "address the API, sync gateway and console listen on"},
	{"SYNCPLANE_METRICS_ADDR", "metrics-addr", ":9090", "address Prometheus metrics and Go profiles (/debug/pprof/) are served on (empty disables); keep it internal"},
	{"SYNCPLANE_PUBLIC_URL", "public-url", "http://localhost:8080", "external base URL, used in printed and rendered links"},
	{"SYNCPLANE_AUTO_MIGRATE", "auto-migrate", "false", "run control-plane and tenant migrations at start (replicas take turns under a lock)"},
	{"SYNCPLANE_DEFAULT_TENANT", "default-tenant", "", "serve this tenant on the plain /sync paths without an API key (dev and testing only)"},
	{"SYNCPLANE_JWKS_ALLOW_PRIVATE", "jwks-allow-private", "false", "let tenants' JWKS URLs reach loopback and private addresses (dev only: it exposes the internal network)"},
	{"SYNCPLANE_PLANS", "plans", "", "quota plans as JSON, e.g. {\"free\":{\"requests_per_second\":20,\"request_burst\":40,...}} (default: built-in free, pro and unlimited)"},
	{"SYNCPLANE_USAGE_FLUSH_INTERVAL", "usage-flush-interval", "5s", "how often each replica writes its metered usage deltas"},
	{"SYNCPLANE_USAGE_RETENTION_DAYS", "usage-retention-days", "400", "days of hourly usage kept for billing and charts"},
	{"SYNCPLANE_CLUSTERS", "clusters", "", "extra tenant placements as name=postgres-url pairs separated by spaces"},
	{"SYNCPLANE_DB_MAX_CONNS", "db-max-conns", "20", "maximum connections per PostgreSQL pool"},
	{"SYNCPLANE_TENANT_MAX_IN_FLIGHT", "tenant-max-in-flight", "auto", "requests one tenant may have in progress per replica once the replica has as many as its pool has connections, watch streams excepted: a number, 0 for no cap, or auto (half of the pool)"},
	{"SYNCPLANE_TENANT_QUEUE_WAIT", "tenant-queue-wait", "250ms", "longest a request over its tenant's rate limit or in-flight cap waits for its turn before it is refused with 429 (0: at once)"},
	{"SYNCPLANE_TENANT_YIELD_WAIT", "tenant-yield-wait", "50ms", "longest a request paced by its tenant's rate limit waits for a moment when no other tenant's request runs on the replica before it runs anyway (0: no yielding)"},
	{"SYNCPLANE_CACHE_TTL", "cache-ttl", "30s", "longest time a cached key or tenant lives if a change notification is missed"},
	{"SYNCPLANE_SHUTDOWN_TIMEOUT", "shutdown-timeout", "25s", "how long a stopping server drains in-flight requests"},
	{"SYNCPLANE_LOG_LEVEL", "log-level", "info", "debug, info, warn or error"},
	{"SYNCPLANE_LOG_FORMAT", "log-format", "text", "text or json"},
	{"SYNCPLANE_SIGNUP", "signup", "open", "console sign-up: open, or closed (invitation links only; the first account can always sign up)"},
	{"SYNCPLANE_SESSION_SECRET", "session-secret", "", "console secret keying CSRF tokens, at least 32 bytes; replicas must share it (empty: random per process)"},
	{"SYNCPLANE_SEAL_KEYS", "seal-keys", "", "keys sealing tenants' HS256 end-user secrets in the database (AES-256-GCM): base64 of 32 random bytes (openssl rand -base64 32); during a rotation several separated by spaces, the first sealing, all opening; replicas and CLI must share them (empty: stored unsealed)"},
	{"SYNCPLANE_COOKIE_SECURE", "cookie-secure", "auto", "mark console cookies Secure: true, false, or auto (true when the public URL is https)"},
}

// config is the resolved configuration of one process.
type config struct {
	DatabaseURL        string
	HTTPAddr           string
	MetricsAddr        string
	PublicURL          string
	AutoMigrate        bool
	DefaultTenant      string
	JWKSAllowPrivate   bool
	Clusters           map[string]string
	Plans              tenant.Plans
	UsageFlushInterval time.Duration
	Signup             string // open | closed
	SessionSecret      string
	Sealer             *tenant.Sealer // nil: HS256 secrets stored unsealed
	CookieSecure       string         // true | false | auto
	UsageRetentionDays int
	DBMaxConns         int32
	TenantMaxInFlight  int // 0: no cap
	TenantQueueWait    time.Duration
	TenantYieldWait    time.Duration
	CacheTTL           time.Duration
	ShutdownTimeout    time.Duration
	LogLevel           string
	LogFormat          string
}

// flagValues binds every setting to fs, defaulting from the environment.
type flagValues map[string]*string

func bindSettings(fs *flag.FlagSet, getenv func(string) string) flagValues {
	vals := flagValues{}
	for _, s := range settings {
		v := &settingValue{val: s.Default, isBool: s.Default == "true" || s.Default == "false"}
		if e, ok := lookupEnv(getenv, s.Env); ok {
			v.val = e
		}
		fs.Var(v, s.Flag, s.Usage+" ($"+s.Env+")")
		vals[s.Env] = &v.val
	}
	return vals
}

// settingValue is a flag holding a setting's text; boolean settings may be
// given as a bare --flag.
type settingValue struct {
	val    string
	isBool bool
}

func (v *settingValue) String() string     { return v.val }
func (v *settingValue) Set(s string) error { v.val = s; return nil }
func (v *settingValue) IsBoolFlag() bool   { return v.isBool }

func lookupEnv(getenv func(string) string, k string) (string, bool) {
	if getenv == nil {
		return os.LookupEnv(k)
	}
	v := getenv(k)
	return v, v != ""
}

func (v flagValues) config() (config, error) {
	c := config{
		DatabaseURL:   *v["SYNCPLANE_DATABASE_URL"],
		HTTPAddr:      *v["SYNCPLANE_HTTP_ADDR"],
		MetricsAddr:   *v["SYNCPLANE_METRICS_ADDR"],
		PublicURL:     strings.TrimRight(*v["SYNCPLANE_PUBLIC_URL"], "/"),
		DefaultTenant: *v["SYNCPLANE_DEFAULT_TENANT"],
		LogLevel:      *v["SYNCPLANE_LOG_LEVEL"],
		LogFormat:     *v["SYNCPLANE_LOG_FORMAT"],
		Clusters:      map[string]string{},
	}
	var err error
	if c.AutoMigrate, err = strconv.ParseBool(*v["SYNCPLANE_AUTO_MIGRATE"]); err != nil {
		return c, fmt.Errorf("SYNCPLANE_AUTO_MIGRATE: want true or false, got %q", *v["SYNCPLANE_AUTO_MIGRATE"])
	}
	if c.JWKSAllowPrivate, err = strconv.ParseBool(*v["SYNCPLANE_JWKS_ALLOW_PRIVATE"]); err != nil {
		return c, fmt.Errorf("SYNCPLANE_JWKS_ALLOW_PRIVATE: want true or false, got %q", *v["SYNCPLANE_JWKS_ALLOW_PRIVATE"])
	}
	n, err := strconv.ParseInt(*v["SYNCPLANE_DB_MAX_CONNS"], 10, 32)
	if err != nil || n < 2 {
		return c, fmt.Errorf("SYNCPLANE_DB_MAX_CONNS: want an integer >= 2, got %q", *v["SYNCPLANE_DB_MAX_CONNS"])
	}
	c.DBMaxConns = int32(n)
	switch v := *v["SYNCPLANE_TENANT_MAX_IN_FLIGHT"]; v {
	case "auto":
		// Half the pool: one tenant can never hold every connection.
		c.TenantMaxInFlight = max(int(c.DBMaxConns)/2, 1)
	default:
		if c.TenantMaxInFlight, err = strconv.Atoi(v); err != nil || c.TenantMaxInFlight < 0 {
			return c, fmt.Errorf("SYNCPLANE_TENANT_MAX_IN_FLIGHT: want auto, 0 or a positive integer, got %q", v)
		}
	}
	if c.TenantQueueWait, err = time.ParseDuration(*v["SYNCPLANE_TENANT_QUEUE_WAIT"]); err != nil || c.TenantQueueWait < 0 || c.TenantQueueWait > 10*time.Second {
		return c, fmt.Errorf("SYNCPLANE_TENANT_QUEUE_WAIT: want a duration from 0 to 10s such as 250ms, got %q", *v["SYNCPLANE_TENANT_QUEUE_WAIT"])
	}
	if c.TenantYieldWait, err = time.ParseDuration(*v["SYNCPLANE_TENANT_YIELD_WAIT"]); err != nil || c.TenantYieldWait < 0 || c.TenantYieldWait > time.Second {
		return c, fmt.Errorf("SYNCPLANE_TENANT_YIELD_WAIT: want a duration from 0 to 1s such as 50ms, got %q", *v["SYNCPLANE_TENANT_YIELD_WAIT"])
	}
	if c.CacheTTL, err = parsePositiveDuration("SYNCPLANE_CACHE_TTL", *v["SYNCPLANE_CACHE_TTL"]); err != nil {
		return c, err
	}
	if c.ShutdownTimeout, err = parsePositiveDuration("SYNCPLANE_SHUTDOWN_TIMEOUT", *v["SYNCPLANE_SHUTDOWN_TIMEOUT"]); err != nil {
		return c, err
	}
	for _, pair := range strings.Fields(*v["SYNCPLANE_CLUSTERS"]) {
		name, dsn, ok := strings.Cut(pair, "=")
		if !ok || name == "" || dsn == "" {
			return c, fmt.Errorf("SYNCPLANE_CLUSTERS: want name=postgres-url pairs, got %q", pair)
		}
		c.Clusters[name] = dsn
	}
	if c.UsageFlushInterval, err = parsePositiveDuration("SYNCPLANE_USAGE_FLUSH_INTERVAL", *v["SYNCPLANE_USAGE_FLUSH_INTERVAL"]); err != nil {
		return c, err
	}
	if c.UsageRetentionDays, err = strconv.Atoi(*v["SYNCPLANE_USAGE_RETENTION_DAYS"]); err != nil || c.UsageRetentionDays < 1 {
		return c, fmt.Errorf("SYNCPLANE_USAGE_RETENTION_DAYS: want a positive number of days, got %q", *v["SYNCPLANE_USAGE_RETENTION_DAYS"])
	}
	c.Signup, c.SessionSecret, c.CookieSecure = *v["SYNCPLANE_SIGNUP"], *v["SYNCPLANE_SESSION_SECRET"], *v["SYNCPLANE_COOKIE_SECURE"]
	if c.Signup != "open" && c.Signup != "closed" {
		return c, fmt.Errorf("SYNCPLANE_SIGNUP: want open or closed, got %q", c.Signup)
	}
	if c.SessionSecret != "" && len(c.SessionSecret) < 32 {
		return c, fmt.Errorf("SYNCPLANE_SESSION_SECRET: want at least 32 bytes, got %d", len(c.SessionSecret))
	}
	if c.Sealer, err = tenant.ParseSealKeys(*v["SYNCPLANE_SEAL_KEYS"]); err != nil {
		return c, fmt.Errorf("SYNCPLANE_SEAL_KEYS: %w", err)
	}
	if _, err := strconv.ParseBool(c.CookieSecure); err != nil && c.CookieSecure != "auto" {
		return c, fmt.Errorf("SYNCPLANE_COOKIE_SECURE: want true, false or auto, got %q", c.CookieSecure)
	}
	c.Plans = tenant.DefaultPlans()
	if doc := *v["SYNCPLANE_PLANS"]; doc != "" {
		if c.Plans, err = tenant.ParsePlans(doc); err != nil {
			return c, fmt.Errorf("SYNCPLANE_PLANS: %w", err)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return c, fmt.Errorf("SYNCPLANE_LOG_LEVEL: want debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("SYNCPLANE_LOG_FORMAT: want text or json, got %q", c.LogFormat)
	}
	return c, nil
}

func parsePositiveDuration(name, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: want a positive duration such as 30s, got %q", name, s)
	}
	return d, nil
}

// printSettings writes the settings table (used by --help and docs).
func printSettings(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVIRONMENT\tFLAG\tDEFAULT\tMEANING")
	for _, s := range settings {
		def := s.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "%s\t--%s\t%s\t%s\n", s.Env, s.Flag, def, s.Usage)
	}
	tw.Flush()
}

// settingsMarkdown renders the settings as the README's Markdown table.
func settingsMarkdown() string {
	var b strings.Builder
	b.WriteString("| Environment variable | Flag | Default | Meaning |\n|---|---|---|---|\n")
	for _, s := range settings {
		def := "`" + s.Default + "`"
		if s.Default == "" {
			def = "—"
		}
		fmt.Fprintf(&b, "| `%s` | `--%s` | %s | %s |\n", s.Env, s.Flag, def, s.Usage)
	}
	return b.String()
}

// parseConfig parses a command's flags over its environment and resolves
// the configuration. When ok is false the command should exit with code
// (0 after --help, 2 for bad flags or values, reported on stderr).
func parseConfig(cmd string, fs *flag.FlagSet, vals flagValues, args []string, stderr io.Writer) (cfg config, code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, 0, false
		}
		return cfg, 2, false
	}
	cfg, err := vals.config()
	if err != nil {
		fmt.Fprintf(stderr, "syncplane %s: %s\n", cmd, err)
		return cfg, 2, false
	}
	return cfg, 0, true
}

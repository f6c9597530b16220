package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	syncx "github.com/syncplane/syncplane/sync"
	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/server"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := bindSettings(fs, nil)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: syncplane serve [flags]\n\nEvery flag can also be set with its environment variable; the flag wins.\n\n")
		printSettings(stderr)
	}
	cfg, code, ok := parseConfig("serve", fs, vals, args, stderr)
	if !ok {
		return code
	}
	log := newLogger(cfg, stderr)
	slog.SetDefault(log) // the packages' own logs (request failures, cache, jobs) in the same format and level
	if err := serve(ctx, cfg, log, nil); err != nil {
		log.Error("serve failed", "err", err)
		return 1
	}
	return 0
}

// app is one running Syncplane server: its pools, caches and HTTP engine.
type app struct {
	cfg      config
	log      *slog.Logger
	pool     *pgxpool.Pool
	clusters *tenant.Clusters
	store    *tenant.Store
	cache    *tenant.Cache
	gateway  *server.Gateway
	limiter  *server.RateLimiter
	meter    *tenant.Meter
	sync     *syncx.Handler
	engine   *gin.Engine
	registry *prometheus.Registry
	metrics  *appMetrics
	draining atomic.Bool

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// newApp connects, migrates when configured, and assembles the server.
func newApp(ctx context.Context, cfg config, log *slog.Logger) (*app, error) {
	pool, err := openPool(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, pool: pool, clusters: tenant.NewClusters(pool)}
	fail := func(err error) (*app, error) {
		a.Close()
		return nil, err
	}
	for name, dsn := range cfg.Clusters {
		if err := a.clusters.Add(ctx, name, dsn); err != nil {
			return fail(err)
		}
	}
	a.store = tenant.NewStore(pool, a.clusters)
	a.store.SetPlans(cfg.Plans)
	a.store.SetSealer(cfg.Sealer)
	if cfg.Sealer == nil {
		log.Warn("SYNCPLANE_SEAL_KEYS is not set: tenants' HS256 end-user secrets are stored unsealed in the database")
	}
	if cfg.AutoMigrate {
		if err := migrateAll(ctx, a.store, log); err != nil {
			return fail(err)
		}
	}
	a.cache = tenant.NewCache(a.store, cfg.CacheTTL)
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stop = stop
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.cache.Run(bg, 5*time.Second)
	}()

	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())
	a.metrics = newAppMetrics(a.registry, a.clusters)

	a.limiter = server.NewRateLimiter(a.store, replicaID(), 250*time.Millisecond, log)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.limiter.Run(bg)
	}()
	a.meter = tenant.NewMeter(a.store)
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		a.meter.Run(bg, cfg.UsageFlushInterval)
	}()
	go func() {
		defer a.wg.Done()
		a.sampleUsage(bg)
	}()
	gw := server.GatewayOptions{Resolver: a.cache, DefaultTenant: cfg.DefaultTenant, Limiter: a.limiter, Usage: a.meter, Log: log,
		QueueWait: cfg.TenantQueueWait, Yield: server.NewYieldLane(cfg.TenantYieldWait), StreamRoutes: syncx.StreamRoutes, Metrics: a.metrics.HTTP}
	if cfg.TenantMaxInFlight > 0 {
		gw.InFlight = server.NewInFlightLimiter(cfg.TenantMaxInFlight, int(cfg.DBMaxConns))
	}
	if cfg.JWKSAllowPrivate {
		gw.VerifierOptions = append(gw.VerifierOptions, server.WithPrivateNetworkJWKS())
	}
	a.gateway = server.NewGateway(gw)
	a.sync = syncx.NewHandler(syncx.Config{
		Pools:   func() []*pgxpool.Pool { return a.clusters.Pools() },
		Metrics: a.metrics.Sync,
		Usage:   a.meter,
		Logger:  log,
	})
	if err := a.sync.Start(bg); err != nil {
		return fail(err)
	}
	a.engine = server.NewEngine(log, server.WithMetrics(a.metrics.HTTP))
	server.MountHealth(a.engine, a.ready)
	a.gateway.Mount(a.engine, a.syncRoutes)
	a.gateway.MountSecret(a.engine, a.sync.RegisterServerWrites)
	if err := mountConsole(a); err != nil {
		return fail(err)
	}
	return a, nil
}

// syncRoutes registers the tenant-scoped routes of the sync gateway.
func (a *app) syncRoutes(public, authed gin.IRouter) { a.sync.Register(public, authed) }

// ready reports whether this replica should receive traffic.
func (a *app) ready(ctx context.Context) error {
	if a.draining.Load() {
		return errors.New("shutting down")
	}
	if err := a.pool.Ping(ctx); err != nil {
		return errors.New("database unreachable")
	}
	st, err := tenant.ControlStatus(ctx, a.pool)
	if err != nil {
		return errors.New("cannot read migration status")
	}
	if !st.Current() {
		return fmt.Errorf("control-plane migrations at version %d (dirty=%t), want %d", st.Version, st.Dirty, st.Expected)
	}
	return nil
}

// Close stops background work and closes the pools.
func (a *app) Close() {
	if a.stop != nil {
		a.stop()
	}
	a.wg.Wait()
	if a.sync != nil {
		a.sync.Close()
	}
	if a.gateway != nil {
		a.gateway.Close()
	}
	a.clusters.Close()
	a.pool.Close()
}

// serve runs the HTTP and metrics servers until ctx ends, then drains:
// readiness turns false, listeners close, in-flight requests finish (up to
// the shutdown timeout), then the pools close. listening, if set, receives
// the bound HTTP address.
func serve(ctx context.Context, cfg config, log *slog.Logger, listening chan<- string) error {
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: a.engine, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	// Shutdown waits for handlers; watch streams never end by themselves, so
	// the sync engine ends them (and refuses late requests) as draining begins.
	srv.RegisterOnShutdown(a.sync.Close)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()

	var msrv *http.Server
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("listen on %s: %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{Registry: a.registry}))
		mux.Handle("/tenant-metrics", a.metrics.tenantHandler())
		// Go profiles beside the metrics: this listener is the operators'
		// (the chart does not expose it outside the cluster), never the
		// public one.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- msrv.Serve(mln) }()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}
	log.Info("syncplane listening", "addr", ln.Addr().String(), "version", version)
	if listening != nil {
		listening <- ln.Addr().String()
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
	}
	log.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout)
	a.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if msrv != nil {
		_ = msrv.Shutdown(sctx)
	}
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	log.Info("stopped cleanly")
	return nil
}

// migrateAll runs control-plane migrations, then every tenant schema's.
func migrateAll(ctx context.Context, store *tenant.Store, log *slog.Logger) error {
	if err := tenant.MigrateControl(ctx, store.DB()); err != nil {
		return err
	}
	if err := store.MigrateAllTenants(ctx); err != nil {
		return err
	}
	log.Info("migrations are current")
	return nil
}

// replicaID names this process among the replicas: host name plus a random
// suffix, so restarts and co-located processes never share an identity.
func replicaID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// sampleUsage samples storage and active devices every few minutes (on one
// replica at a time) and applies usage retention.
func (a *app) sampleUsage(ctx context.Context) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		if _, err := a.store.SampleUsage(ctx, time.Duration(a.cfg.UsageRetentionDays)*24*time.Hour); err != nil && ctx.Err() == nil {
			a.log.Warn("usage sampling failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

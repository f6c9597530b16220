package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/syncplane/syncplane/web/server"
)

// Protocol limits and defaults (protocol 12.1).
const (
	maxBundlesPerPull          = 5000
	defaultBundlesPerPull      = 1000
	defaultRowsPerPushChunk    = 1000
	maxRowsPerPushChunk        = 5000
	defaultRowsPerBundleChunk  = 1000
	maxRowsPerBundleChunk      = 5000
	defaultRowsPerSnapshotPage = 1000
	maxRowsPerSnapshotPage     = 5000
	pruneBatch                 = 1000
	defaultRetainedBundles     = 10000
	maxSourceIDBytes           = 256
)

// Config configures a Handler. The zero value is usable.
type Config struct {
	// PushSessionTTL, SnapshotSessionTTL and InitializationLeaseTTL default
	// to 15 minutes (protocol 12.1).
	PushSessionTTL         time.Duration
	SnapshotSessionTTL     time.Duration
	InitializationLeaseTTL time.Duration
	// WatchHeartbeat is the interval of ": heartbeat" comments (default 25 s).
	WatchHeartbeat time.Duration
	// NotifyDelay is how long the notifier gathers commit events before
	// publishing them in one NOTIFY (default 5 ms).
	NotifyDelay time.Duration
	// MaxBodyBytes bounds request bodies (default 64 MiB); larger bodies get
	// 413 payload_too_large.
	MaxBodyBytes int64
	// Pools lists the pools of every cluster that holds tenant schemas; the
	// background sweeper visits them. Nil disables the sweeper.
	Pools func() []*pgxpool.Pool
	// SweepInterval is how often the sweeper runs (default 1 minute).
	SweepInterval time.Duration
	// MaxRowsPerSnapshot and MaxBytesPerSnapshot bound one snapshot session
	// (12.1; 0 = unlimited, the default). Larger snapshots are refused with
	// 403 quota_exceeded (D9) and the limits are advertised in capabilities.
	MaxRowsPerSnapshot  int64
	MaxBytesPerSnapshot int64
	// snapshotOwnTableRows is the live-row count from which a snapshot
	// session gets its own rows table (default snapshotOwnTableRows).
	snapshotOwnTableRows int64
	// snapshotFreezeParts is how many connections freeze a large snapshot
	// at once, and snapshotPartRows the fewest live rows per part (defaults
	// snapshotFreezeParts and snapshotPartRows).
	snapshotFreezeParts int
	snapshotPartRows    int64
	// WatchAllowed, when set, is the per-user/source watch policy (protocol
	// 7.1 bundle_change_watch, 7.9 403). Nil allows everyone.
	WatchAllowed func(scope *server.SyncScope, sourceID string) bool
	// Metrics, when set, receives the engine's operation counts.
	Metrics *server.SyncMetrics
	// Usage, when set, meters rows and watchers per tenant.
	Usage UsageMeter
	// Logger receives background-work failures (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) withDefaults() {
	if c.PushSessionTTL <= 0 {
		c.PushSessionTTL = 15 * time.Minute
	}
	if c.SnapshotSessionTTL <= 0 {
		c.SnapshotSessionTTL = 15 * time.Minute
	}
	if c.InitializationLeaseTTL <= 0 {
		c.InitializationLeaseTTL = 15 * time.Minute
	}
	if c.WatchHeartbeat <= 0 {
		c.WatchHeartbeat = 25 * time.Second
	}
	if c.NotifyDelay <= 0 {
		c.NotifyDelay = 5 * time.Millisecond
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 20
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Handler serves the sync protocol for every tenant. It is stateless apart
// from per-replica watch fan-out; any replica answers any request.
type Handler struct {
	cfg      Config
	inflight atomic.Int64
	draining atomic.Bool

	hubsMu gosync.Mutex
	hubs   map[*pgxpool.Pool]*hub

	bg     gosync.WaitGroup
	cancel context.CancelFunc
	// life ends at Close; watch hubs hang off it, so none outlives the
	// Handler even if created by a late server-originated write.
	life context.Context
	stop context.CancelFunc
}

// NewHandler returns a Handler.
func NewHandler(cfg Config) *Handler {
	cfg.withDefaults()
	life, stop := context.WithCancel(context.Background())
	return &Handler{cfg: cfg, hubs: map[*pgxpool.Pool]*hub{}, life: life, stop: stop}
}

// StreamRoutes are the routes Register mounts that hold their request open
// for minutes while mostly idle (the watch stream); the gateway does not
// count them towards a tenant's requests in flight.
var StreamRoutes = []string{"/sync/watch"}

// Register mounts the protocol routes: the operational /syncx endpoints on
// public and every /sync endpoint on authed (which must resolve the tenant
// and verify the end user before these handlers run).
func (h *Handler) Register(public, authed gin.IRouter) {
	public.GET("/syncx/health", server.Handle("health_failed", h.health))
	public.GET("/syncx/status", server.Handle("status_failed", h.status))

	g := authed.Group("", h.requireSource, h.track)
	g.GET("/sync/capabilities", server.Handle("capabilities_failed", h.capabilities))
	g.POST("/sync/connect", server.Handle("connect_failed", h.connect))
	g.POST("/sync/push-sessions", server.Handle("push_session_create_failed", h.createPushSession))
	g.POST("/sync/push-sessions/:push_id/chunks", server.Handle("push_chunk_failed", h.uploadChunk))
	g.POST("/sync/push-sessions/:push_id/commit", server.Handle("push_session_commit_failed", h.commitPushSession))
	g.DELETE("/sync/push-sessions/:push_id", server.Handle("push_session_delete_failed", h.deletePushSession))
	g.GET("/sync/committed-bundles/:bundle_seq/rows", server.Handle("committed_bundle_rows_failed", h.committedBundleRows))
	g.GET("/sync/pull", server.Handle("pull_failed", h.pull))
	g.GET("/sync/watch", server.Handle("bundle_change_watch_failed", h.watch))
	g.POST("/sync/snapshot-sessions", server.Handle("snapshot_session_create_failed", h.createSnapshotSession))
	g.GET("/sync/snapshot-sessions/:snapshot_id", server.Handle("snapshot_chunk_failed", h.snapshotChunk))
	g.DELETE("/sync/snapshot-sessions/:snapshot_id", server.Handle("snapshot_session_delete_failed", h.deleteSnapshotSession))
}

// Start runs background work (the session sweeper) until ctx ends or Close.
func (h *Handler) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	h.cancel = cancel
	if h.cfg.Pools != nil {
		h.bg.Add(1)
		go func() {
			defer h.bg.Done()
			h.runSweeper(ctx)
		}()
	}
	return nil
}

// Close stops background work and watch listeners and ends open watch
// streams. Requests arriving afterwards get 503 service_unavailable.
func (h *Handler) Close() {
	h.draining.Store(true)
	h.stop()
	if h.cancel != nil {
		h.cancel()
	}
	h.hubsMu.Lock()
	hubs := h.hubs
	h.hubs = map[*pgxpool.Pool]*hub{}
	h.hubsMu.Unlock()
	for _, hb := range hubs {
		hb.close()
	}
	h.bg.Wait()
}

const sourceKey = "syncplane.source_id"

// requireSource enforces the Oversync-Source-ID header (protocol 4.2).
func (h *Handler) requireSource(c *gin.Context) {
	src := strings.TrimSpace(c.GetHeader("Oversync-Source-ID"))
	if src == "" {
		server.RenderError(c, server.NewError(http.StatusBadRequest, "invalid_request", "Oversync-Source-ID header is required"))
		return
	}
	if len(src) > maxSourceIDBytes {
		server.RenderError(c, server.NewError(http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("Oversync-Source-ID header must be at most %d bytes", maxSourceIDBytes)))
		return
	}
	c.Set(sourceKey, src)
	c.Next()
}

// track counts in-flight operations and refuses new ones while draining.
func (h *Handler) track(c *gin.Context) {
	if h.draining.Load() {
		server.RenderError(c, server.NewError(http.StatusServiceUnavailable, "service_unavailable", "server is shutting down"))
		return
	}
	h.inflight.Add(1)
	defer h.inflight.Add(-1)
	c.Next()
	h.observe(c)
}

// reqCtx is what every /sync handler works with.
type reqCtx struct {
	scope  *server.SyncScope
	pool   *pgxpool.Pool
	schema string // PostgreSQL schema t_<slug>
	wire   string // wire schema name
	user   string
	source string
	cat    *catalog
}

func (h *Handler) req(c *gin.Context) (*reqCtx, error) {
	sc := server.ScopeFrom(c)
	if sc == nil || sc.Tenant == nil || sc.Pool == nil {
		return nil, errors.New("sync route without a resolved tenant scope")
	}
	if sc.UserID == "" {
		return nil, server.NewError(http.StatusUnauthorized, "authentication_failed", "no user identity")
	}
	return &reqCtx{
		scope: sc, pool: sc.Pool, schema: sc.Tenant.SchemaName(), wire: sc.Tenant.WireSchema,
		user: sc.UserID, source: c.GetString(sourceKey), cat: catalogFor(sc.Schema),
	}, nil
}

// t qualifies a metadata table of the request's tenant schema.
func (r *reqCtx) t(name string) string { return ident(r.schema, name) }

func apiErr(status int, code, format string, args ...any) *server.Error {
	return server.NewError(status, code, fmt.Sprintf(format, args...))
}

// inTx runs fn in a transaction, retrying transient conflicts (8.5).
func inTx(ctx context.Context, pool *pgxpool.Pool, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		err = pgx.BeginTxFunc(ctx, pool, opts, fn)
		if !isTransient(err) {
			return err
		}
	}
	return err
}

func isTransient(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01", "55P03":
			return true
		}
	}
	return false
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

package sync

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/web/server"
)

// featureNames are the 20 capability flags of protocol 7.1.
var featureNames = []string{
	"bundle_push", "bundle_pull", "push_session_chunking", "committed_bundle_row_fetch", "snapshot_chunking",
	"status_endpoint", "graceful_shutdown", "capabilities_endpoint", "server_checkpoint_tracking",
	"history_pruned_errors", "structured_sync_keys", "registered_write_rejection_enforced",
	"accepted_push_replay_visibility", "committed_bundle_visibility", "retained_floor_visibility",
	"retained_window_visibility", "history_pruned_visibility", "connect_lifecycle",
	"scope_initialization_leases", "bundle_change_watch",
}

func (h *Handler) features(watch bool) map[string]bool {
	f := make(map[string]bool, len(featureNames))
	for _, n := range featureNames {
		f[n] = true
	}
	f["server_checkpoint_tracking"] = false
	f["bundle_change_watch"] = watch
	return f
}

// bundleLimits are the advertised limits (12.1); zero ("unlimited")
// members are omitted.
func (h *Handler) bundleLimits() map[string]int64 {
	l := map[string]int64{
		"max_bundles_per_pull":                    maxBundlesPerPull,
		"default_rows_per_push_chunk":             defaultRowsPerPushChunk,
		"max_rows_per_push_chunk":                 maxRowsPerPushChunk,
		"push_session_ttl_seconds":                int64(h.cfg.PushSessionTTL.Seconds()),
		"default_rows_per_committed_bundle_chunk": defaultRowsPerBundleChunk,
		"max_rows_per_committed_bundle_chunk":     maxRowsPerBundleChunk,
		"default_rows_per_snapshot_chunk":         defaultRowsPerSnapshotPage,
		"max_rows_per_snapshot_chunk":             maxRowsPerSnapshotPage,
		"snapshot_session_ttl_seconds":            int64(h.cfg.SnapshotSessionTTL.Seconds()),
		"initialization_lease_ttl_seconds":        int64(h.cfg.InitializationLeaseTTL.Seconds()),
	}
	if h.cfg.MaxRowsPerSnapshot > 0 {
		l["max_rows_per_snapshot_session"] = h.cfg.MaxRowsPerSnapshot
	}
	if h.cfg.MaxBytesPerSnapshot > 0 {
		l["max_bytes_per_snapshot_session"] = h.cfg.MaxBytesPerSnapshot
	}
	return l
}

type tableSpec struct {
	Schema         string   `json:"schema"`
	Table          string   `json:"table"`
	SyncKeyColumns []string `json:"sync_key_columns"`
}

type capabilitiesResponse struct {
	ProtocolVersion      string           `json:"protocol_version"`
	SchemaVersion        int              `json:"schema_version"`
	AppName              string           `json:"app_name"`
	RegisteredTables     []string         `json:"registered_tables"`
	RegisteredTableSpecs []tableSpec      `json:"registered_table_specs"`
	Features             map[string]bool  `json:"features"`
	BundleLimits         map[string]int64 `json:"bundle_limits"`
}

// watchOffered reports whether watch is enabled for the tenant and allowed
// for this user/source (7.1 bundle_change_watch).
func (h *Handler) watchOffered(r *reqCtx) (enabled, allowed bool) {
	enabled = r.scope.Tenant.WatchEnabled
	allowed = h.cfg.WatchAllowed == nil || h.cfg.WatchAllowed(r.scope, r.source)
	return enabled, allowed
}

func (r *reqCtx) registered() ([]string, []tableSpec) {
	names := make([]string, 0, len(r.cat.tables))
	specs := make([]tableSpec, 0, len(r.cat.tables))
	for _, t := range r.cat.tables { // sorted by name; one wire schema
		names = append(names, r.wire+"."+t.name)
		specs = append(specs, tableSpec{Schema: r.wire, Table: t.name, SyncKeyColumns: []string{t.keyCol}})
	}
	return names, specs
}

// capabilities describes the protocol surface (7.1). No database access.
func (h *Handler) capabilities(c *gin.Context) error {
	r, err := h.req(c)
	if err != nil {
		return err
	}
	enabled, allowed := h.watchOffered(r)
	names, specs := r.registered()
	c.JSON(http.StatusOK, capabilitiesResponse{
		ProtocolVersion: "v1", SchemaVersion: r.scope.SchemaVersion, AppName: string(r.scope.Tenant.Slug),
		RegisteredTables: names, RegisteredTableSpecs: specs,
		Features: h.features(enabled && allowed), BundleLimits: h.bundleLimits(),
	})
	return nil
}

type statusResponse struct {
	Status                     string          `json:"status"`
	Version                    string          `json:"version"`
	AppName                    string          `json:"app_name"`
	Lifecycle                  string          `json:"lifecycle"`
	AcceptingOperations        bool            `json:"accepting_operations"`
	InflightOperations         int64           `json:"inflight_operations"`
	RegisteredTables           []string        `json:"registered_tables"`
	Features                   map[string]bool `json:"features"`
	FloorAheadCount            int64           `json:"user_state_retention_floor_ahead_count"`
	LatestBundleSeqMax         int64           `json:"latest_bundle_seq_max"`
	RetainedBundleFloorMin     int64           `json:"retained_bundle_floor_min"`
	RetainedBundleFloorMax     int64           `json:"retained_bundle_floor_max"`
	RetainedBundleWindowMin    int64           `json:"retained_bundle_window_min"`
	RetainedBundleWindowMax    int64           `json:"retained_bundle_window_max"`
	HistoryPrunedErrorCount    int64           `json:"history_pruned_error_count"`
	AcceptedPushReplayCount    int64           `json:"accepted_push_replay_count"`
	RejectedRegisteredWriteCnt int64           `json:"rejected_registered_write_count"`
	CommittedBundleCount       int64           `json:"committed_bundle_count"`
	CommittedBundleBytes       int64           `json:"committed_bundle_bytes"`
}

func (h *Handler) statusOf(c *gin.Context) (statusResponse, error) {
	sc := server.ScopeFrom(c)
	if sc == nil || sc.Tenant == nil || sc.Pool == nil {
		return statusResponse{}, errors.New("status route without a resolved tenant")
	}
	r := &reqCtx{scope: sc, pool: sc.Pool, schema: sc.Tenant.SchemaName(), wire: sc.Tenant.WireSchema, cat: catalogFor(sc.Schema)}
	names, _ := r.registered()
	st := statusResponse{
		Status: "healthy", Version: "v1", AppName: string(sc.Tenant.Slug), Lifecycle: "running",
		AcceptingOperations: !h.draining.Load(), InflightOperations: h.inflight.Load(),
		RegisteredTables: names, Features: h.features(sc.Tenant.WatchEnabled),
	}
	if h.draining.Load() {
		st.Lifecycle, st.Status = "shutting_down", "unhealthy"
	}
	err := r.pool.QueryRow(c, `SELECT coalesce(max(latest_bundle_seq), 0), coalesce(min(retained_floor), 0), coalesce(max(retained_floor), 0),
			coalesce(min(latest_bundle_seq - retained_floor), 0), coalesce(max(latest_bundle_seq - retained_floor), 0),
			count(*) FILTER (WHERE retained_floor > latest_bundle_seq),
			(SELECT count(*) FROM `+r.t("_sync_bundle")+`), (SELECT coalesce(sum(byte_count), 0)::bigint FROM `+r.t("_sync_bundle")+`)
		FROM `+r.t("_sync_scope")).Scan(&st.LatestBundleSeqMax, &st.RetainedBundleFloorMin, &st.RetainedBundleFloorMax,
		&st.RetainedBundleWindowMin, &st.RetainedBundleWindowMax, &st.FloorAheadCount, &st.CommittedBundleCount, &st.CommittedBundleBytes)
	if err != nil {
		return st, fmt.Errorf("read status: %w", err)
	}
	if st.FloorAheadCount > 0 {
		st.Status = "unhealthy"
	}
	return st, nil
}

// status always answers 200 with the status object (7.13).
func (h *Handler) status(c *gin.Context) error {
	st, err := h.statusOf(c)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, st)
	return nil
}

// health answers 200 when healthy and 503 otherwise (7.13, D8).
func (h *Handler) health(c *gin.Context) error {
	st, err := h.statusOf(c)
	if err != nil {
		server.RenderError(c, &server.Error{Status: http.StatusServiceUnavailable, Code: "service_unavailable",
			Message: "database unavailable", Err: err})
		return nil
	}
	code := http.StatusOK
	if st.Status != "healthy" {
		code = http.StatusServiceUnavailable
	}
	c.JSON(code, st)
	return nil
}

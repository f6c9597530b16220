package sync

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/jackc/pgx/v5"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/server"
)

// Quota enforcement (issue: quotas). Refusals use the envelope with a
// status clients treat as final (never 429/5xx, which they retry): 413
// payload_too_large for sizes, 403 quota_exceeded for rows, storage and
// devices; the extra member "quota" names the limit.

// activeDeviceWindow is how recently a source must have been seen to count
// as an active device.
const activeDeviceWindow = "30 days"

func quotaErr(status int, code, quota, format string, args ...any) *server.Error {
	e := apiErr(status, code, format, args...)
	e.Extra = map[string]any{"quota": quota}
	return e
}

// checkChunkQuota enforces rows per push chunk and bytes per request body.
func checkChunkQuota(scope *server.SyncScope, rows int, bodyBytes int) error {
	l := scope.Limits
	if l.MaxRowsPerChunk > 0 && int64(rows) > l.MaxRowsPerChunk {
		return quotaErr(http.StatusRequestEntityTooLarge, "payload_too_large", "max_rows_per_chunk",
			"push chunk of %d rows exceeds the limit of %d rows per chunk for tenant %s; upload smaller chunks",
			rows, l.MaxRowsPerChunk, scope.Tenant.Slug)
	}
	if l.MaxBundleBytes > 0 && int64(bodyBytes) > l.MaxBundleBytes {
		return quotaErr(http.StatusRequestEntityTooLarge, "payload_too_large", "max_bundle_bytes",
			"push chunk of %d bytes exceeds the bundle size limit of %d bytes for tenant %s",
			bodyBytes, l.MaxBundleBytes, scope.Tenant.Slug)
	}
	return nil
}

// knownDeviceSQL tells whether the caller's source is already an active
// device (one primary-key probe); deviceCountSQL counts the tenant's active
// devices, and runs only for a source that is not.
const (
	knownDeviceSQL = `SELECT EXISTS (SELECT 1 FROM %s WHERE user_id = $1 AND source_id = $2
AND state = 'active' AND last_seen_at > now() - interval '` + activeDeviceWindow + `')`
	deviceCountSQL = `SELECT count(*) FROM %s WHERE state = 'active' AND last_seen_at > now() - interval '` + activeDeviceWindow + `'`
)

// checkDeviceQuota refuses a source that is not yet an active device when
// the tenant already has its maximum of active devices. With lock, a new
// device first takes the tenant's device lock (held to the end of tx), so
// concurrent first commits of new devices cannot overshoot together; known
// devices never touch that lock, so users' commits do not queue on it.
func checkDeviceQuota(ctx context.Context, tx pgx.Tx, schema string, t *tenant.Tenant, limits tenant.Limits, user, source string, lock bool) error {
	if limits.MaxActiveDevices <= 0 {
		return nil
	}
	tbl := ident(schema, "_sync_source")
	var known bool
	if err := tx.QueryRow(ctx, fmt.Sprintf(knownDeviceSQL, tbl), user, source).Scan(&known); err != nil {
		return fmt.Errorf("look up device: %w", err)
	}
	if known {
		return nil
	}
	if lock {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, schema+":devices"); err != nil {
			return fmt.Errorf("lock device quota: %w", err)
		}
	}
	var n int64
	if err := tx.QueryRow(ctx, fmt.Sprintf(deviceCountSQL, tbl)).Scan(&n); err != nil {
		return fmt.Errorf("count devices: %w", err)
	}
	if n >= limits.MaxActiveDevices {
		return quotaErr(http.StatusForbidden, "quota_exceeded", "max_active_devices",
			"device quota of %d reached for tenant %s", limits.MaxActiveDevices, t.Slug)
	}
	return nil
}

// checkCommitQuota runs inside a commit after the bundle's rows and row
// state are written and before anything else: the bundle's size, stored
// rows and storage. liveDelta is the bundle's change in the user's live
// rows, not yet added to the counter. A bundle that does not grow the
// user's rows always passes.
func checkCommitQuota(ctx context.Context, tx pgx.Tx, sp bundleSpec, bundleBytes, liveDelta int64) error {
	l := sp.limits
	if sp.tenant == nil || l.MaxBundleBytes <= 0 && l.MaxRows <= 0 && l.MaxStorageBytes <= 0 && l.MaxActiveDevices <= 0 {
		return nil
	}
	if l.MaxBundleBytes > 0 && bundleBytes > l.MaxBundleBytes {
		return quotaErr(http.StatusRequestEntityTooLarge, "payload_too_large", "max_bundle_bytes",
			"bundle of %d bytes exceeds the limit of %d bytes per bundle for tenant %s", bundleBytes, l.MaxBundleBytes, sp.tenant.Slug)
	}
	if sp.pushID != "" { // devices only: server-originated writers are not devices
		if err := checkDeviceQuota(ctx, tx, sp.schema, sp.tenant, l, sp.user, sp.source, true); err != nil {
			return err
		}
	}
	// The tenant's totals are measured only when this commit grows the
	// user's stored rows: shrinking or same-size bundles always pass.
	if l.MaxRows <= 0 && l.MaxStorageBytes <= 0 || liveDelta <= 0 {
		return nil
	}
	var totalRows, storage int64
	if err := tx.QueryRow(ctx, `SELECT
			CASE WHEN $1 THEN (SELECT coalesce(sum(live_rows), 0)::bigint FROM `+ident(sp.schema, "_sync_scope")+`) + $4 ELSE 0 END,
			CASE WHEN $2 THEN (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
				WHERE c.relnamespace = $3::regnamespace AND c.relkind IN ('r', 'm')) ELSE 0 END`,
		l.MaxRows > 0, l.MaxStorageBytes > 0, pgxIdent(sp.schema), liveDelta).Scan(&totalRows, &storage); err != nil {
		return fmt.Errorf("measure quota use: %w", err)
	}
	if l.MaxRows > 0 && totalRows > l.MaxRows {
		return quotaErr(http.StatusForbidden, "quota_exceeded", "max_rows",
			"row quota of %d reached for tenant %s (this push would store %d rows)", l.MaxRows, sp.tenant.Slug, totalRows)
	}
	if l.MaxStorageBytes > 0 && storage > l.MaxStorageBytes {
		return quotaErr(http.StatusForbidden, "quota_exceeded", "max_storage_bytes",
			"storage quota of %d bytes reached for tenant %s", l.MaxStorageBytes, sp.tenant.Slug)
	}
	return nil
}

func pgxIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// watchStale is how old a stream's last sign of life may be before it
// stops counting toward the watchers quota (heartbeats refresh it).
const watchStale = "90 seconds"

// admitWatcher enforces the concurrent-watchers quota across replicas: it
// registers the stream in the tenant's _sync_watch_stream table (under the
// tenant's watch lock, so concurrent opens cannot overshoot) unless the
// tenant already has its maximum of live streams. touch refreshes the
// stream (call it on heartbeats); release removes it. Without a watcher
// quota nothing is recorded.
func admitWatcher(ctx context.Context, r *reqCtx) (touch func(), release func(), err error) {
	noop := func() {}
	limit := r.scope.Limits.MaxWatchers
	if limit <= 0 {
		return noop, noop, nil
	}
	tbl := r.t("_sync_watch_stream")
	id := uuid.NewString()
	err = inTx(ctx, r.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, r.schema+":watchers")
		b.Queue(`DELETE FROM ` + tbl + ` WHERE seen_at < now() - interval '` + watchStale + `'`)
		b.Queue(`SELECT count(*) FROM ` + tbl)
		br := tx.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		var n int64
		if err := br.QueryRow().Scan(&n); err != nil {
			br.Close()
			return err
		}
		if err := br.Close(); err != nil {
			return err
		}
		if n >= limit {
			// The protocol's own refusal code for watch: clients decode it,
			// stop watching and poll instead of failing (4.6).
			return quotaErr(http.StatusForbidden, "bundle_change_watch_forbidden", "max_watchers",
				"watcher quota of %d reached for tenant %s; poll with pull instead", limit, r.scope.Tenant.Slug)
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+tbl+` (stream_id, user_id) VALUES ($1, $2)`, id, r.user)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	bg := context.WithoutCancel(ctx)
	touch = func() {
		_, _ = r.pool.Exec(bg, `UPDATE `+tbl+` SET seen_at = now() WHERE stream_id = $1`, id)
	}
	release = func() {
		ctx, cancel := context.WithTimeout(bg, 5*time.Second)
		defer cancel()
		_, _ = r.pool.Exec(ctx, `DELETE FROM `+tbl+` WHERE stream_id = $1`, id)
	}
	return touch, release, nil
}

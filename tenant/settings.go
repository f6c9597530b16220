package tenant

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Settings are the tenant settings an owner or admin may change after
// creation. The slug, schema and wire schema are fixed: devices depend on
// them. Nil fields stay as they are.
type Settings struct {
	Name            *string `json:"name,omitempty"`
	WatchEnabled    *bool   `json:"watch_enabled,omitempty"`
	RetainedBundles *int    `json:"retained_bundles,omitempty"`
}

// Validate checks the settings' values.
func (s Settings) Validate() error {
	if s.Name != nil && (len(*s.Name) == 0 || len(*s.Name) > 200) {
		return &ValidationError{Field: "name", Message: "name must be 1 to 200 characters"}
	}
	if s.RetainedBundles != nil && (*s.RetainedBundles < 100 || *s.RetainedBundles > 1_000_000) {
		return &ValidationError{Field: "retained_bundles", Message: "retained_bundles must be between 100 and 1000000 bundles per user"}
	}
	return nil
}

// UpdateTenant changes a tenant's settings; every replica sees them within
// a second.
func (s *Store) UpdateTenant(ctx context.Context, slug string, in Settings, by Actor) (*Tenant, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var out *Tenant
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		t, err := scanTenant(tx.QueryRow(ctx, `UPDATE syncplane.tenants SET
				name = coalesce($2, name), watch_enabled = coalesce($3, watch_enabled),
				retained_bundles = coalesce($4, retained_bundles), updated_at = now()
			WHERE slug = $1 AND state IN ('active', 'suspended') RETURNING `+tenantColumns,
			slug, in.Name, in.WatchEnabled, in.RetainedBundles))
		if err != nil {
			return err
		}
		out = t
		return s.auditTx(ctx, tx, t.ID, by, "tenant.settings", slug, in)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("update tenant %s: %w", slug, err)
	}
	return out, err
}

// Use is what a tenant currently consumes of its quotas.
type Use struct {
	ActiveDevices int64 `json:"active_devices"` // active sources seen in the last 30 days
	Rows          int64 `json:"rows"`           // live synced rows
	StorageBytes  int64 `json:"storage_bytes"`  // size of the tenant schema
	PeakWatchers  int64 `json:"peak_watchers"`  // highest this hour, as metered
}

// CurrentUse measures a tenant's use of its quotas (a few aggregate
// queries on its schema; for display and sampling, not the request path).
func (s *Store) CurrentUse(ctx context.Context, t *Tenant) (Use, error) {
	pool, err := s.PoolFor(t)
	if err != nil {
		return Use{}, err
	}
	var u Use
	err = pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM `+pgx.Identifier{t.SchemaName(), "_sync_source"}.Sanitize()+`
			 WHERE last_seen_at > now() - interval '30 days' AND state = 'active'),
			(SELECT coalesce(sum(live_rows), 0)::bigint FROM `+pgx.Identifier{t.SchemaName(), "_sync_scope"}.Sanitize()+`),
			(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
			 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'm'))`,
		t.SchemaName()).Scan(&u.ActiveDevices, &u.Rows, &u.StorageBytes)
	if err != nil {
		return Use{}, fmt.Errorf("measure use of %s: %w", t.Slug, err)
	}
	err = s.db.QueryRow(ctx, `SELECT coalesce(max(peak_watchers), 0) FROM syncplane.usage_hourly
		WHERE tenant_id = $1 AND hour = date_trunc('hour', now())`, t.ID).Scan(&u.PeakWatchers)
	if err != nil {
		return Use{}, fmt.Errorf("measure use of %s: %w", t.Slug, err)
	}
	return u, nil
}

// NearLimit is the share of a limit at which a tenant is flagged.
const NearLimit = 0.8

// Utilization returns use/limit per quota name for the limits that are set
// (unlimited quotas are left out).
func Utilization(u Use, l Limits) map[string]float64 {
	out := map[string]float64{}
	add := func(name string, used, limit int64) {
		if limit > 0 {
			out[name] = float64(used) / float64(limit)
		}
	}
	add("active_devices", u.ActiveDevices, l.MaxActiveDevices)
	add("rows", u.Rows, l.MaxRows)
	add("storage_bytes", u.StorageBytes, l.MaxStorageBytes)
	add("watchers", u.PeakWatchers, l.MaxWatchers)
	return out
}

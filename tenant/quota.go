package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Limits are a tenant's quotas. Zero means unlimited.
type Limits struct {
	// MaxActiveDevices caps sources seen in the last 30 days.
	MaxActiveDevices int64 `json:"max_active_devices"`
	// MaxRows caps stored synced rows (live rows of all users).
	MaxRows int64 `json:"max_rows"`
	// MaxStorageBytes caps the size of the tenant schema.
	MaxStorageBytes int64 `json:"max_storage_bytes"`
	// RequestsPerSecond and RequestBurst shape the tenant's aggregate request
	// rate across all replicas (token bucket).
	RequestsPerSecond float64 `json:"requests_per_second"`
	RequestBurst      int64   `json:"request_burst"`
	// MaxBundleBytes caps the request body of one push chunk and the summed
	// payload bytes of one pushed bundle.
	MaxBundleBytes int64 `json:"max_bundle_bytes"`
	// MaxRowsPerChunk caps rows per push chunk (below the protocol's 5,000).
	MaxRowsPerChunk int64 `json:"max_rows_per_chunk"`
	// MaxWatchers caps concurrent watch streams.
	MaxWatchers int64 `json:"max_watchers"`
}

// QuotaOverride is a tenant's per-field override of its plan; nil fields
// keep the plan's value.
type QuotaOverride struct {
	MaxActiveDevices  *int64   `json:"max_active_devices,omitempty"`
	MaxRows           *int64   `json:"max_rows,omitempty"`
	MaxStorageBytes   *int64   `json:"max_storage_bytes,omitempty"`
	RequestsPerSecond *float64 `json:"requests_per_second,omitempty"`
	RequestBurst      *int64   `json:"request_burst,omitempty"`
	MaxBundleBytes    *int64   `json:"max_bundle_bytes,omitempty"`
	MaxRowsPerChunk   *int64   `json:"max_rows_per_chunk,omitempty"`
	MaxWatchers       *int64   `json:"max_watchers,omitempty"`
}

// Apply returns l with the override's set fields.
func (o QuotaOverride) Apply(l Limits) Limits {
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&l.MaxActiveDevices, o.MaxActiveDevices)
	set(&l.MaxRows, o.MaxRows)
	set(&l.MaxStorageBytes, o.MaxStorageBytes)
	if o.RequestsPerSecond != nil {
		l.RequestsPerSecond = *o.RequestsPerSecond
	}
	set(&l.RequestBurst, o.RequestBurst)
	set(&l.MaxBundleBytes, o.MaxBundleBytes)
	set(&l.MaxRowsPerChunk, o.MaxRowsPerChunk)
	set(&l.MaxWatchers, o.MaxWatchers)
	return l
}

// Validate refuses negative limits and nonsense combinations.
func (o QuotaOverride) Validate() error {
	var bad []string
	for name, v := range map[string]*int64{
		"max_active_devices": o.MaxActiveDevices, "max_rows": o.MaxRows, "max_storage_bytes": o.MaxStorageBytes,
		"request_burst": o.RequestBurst, "max_bundle_bytes": o.MaxBundleBytes, "max_rows_per_chunk": o.MaxRowsPerChunk,
		"max_watchers": o.MaxWatchers,
	} {
		if v != nil && *v < 0 {
			bad = append(bad, name+" must be 0 (unlimited) or positive")
		}
	}
	if o.RequestsPerSecond != nil && *o.RequestsPerSecond < 0 {
		bad = append(bad, "requests_per_second must be 0 (unlimited) or positive")
	}
	if o.MaxRowsPerChunk != nil && *o.MaxRowsPerChunk > 5000 {
		bad = append(bad, "max_rows_per_chunk cannot exceed the protocol's 5000")
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return &ValidationError{Field: "quotas", Message: strings.Join(bad, "; ")}
	}
	return nil
}

// Plans maps plan names to their default limits; the operator configures
// them (SYNCPLANE_PLANS), and tenants may override single limits.
type Plans map[string]Limits

// DefaultPlans are the built-in plans used when the operator sets none.
func DefaultPlans() Plans {
	return Plans{
		"free": {MaxActiveDevices: 100, MaxRows: 100_000, MaxStorageBytes: 256 << 20, RequestsPerSecond: 100,
			RequestBurst: 200, MaxBundleBytes: 16 << 20, MaxRowsPerChunk: 5000, MaxWatchers: 200},
		"pro": {MaxActiveDevices: 10_000, MaxRows: 10_000_000, MaxStorageBytes: 20 << 30, RequestsPerSecond: 2000,
			RequestBurst: 4000, MaxBundleBytes: 64 << 20, MaxRowsPerChunk: 5000, MaxWatchers: 20_000},
		"unlimited": {},
	}
}

// ParsePlans reads a JSON object of plans ({"free": {...limits}, ...}).
func ParsePlans(doc string) (Plans, error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	var p Plans
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("plans: %w", err)
	}
	if len(p) == 0 {
		return nil, errors.New("plans: define at least one plan")
	}
	return p, nil
}

// Limits returns the effective limits of a plan; an unknown plan is
// unlimited only if the operator defined no plans at all.
func (p Plans) Limits(plan string) (Limits, bool) {
	l, ok := p[plan]
	return l, ok
}

// Quota is a tenant's effective limits with where they came from.
type Quota struct {
	Plan     string
	Override QuotaOverride
	Limits   Limits
}

// Quota returns a tenant's effective quota under plans.
func (s *Store) Quota(ctx context.Context, t *Tenant, plans Plans) (*Quota, error) {
	q := &Quota{Plan: t.Plan}
	var doc []byte
	err := s.db.QueryRow(ctx, `SELECT jsonb_strip_nulls(jsonb_build_object(
			'max_active_devices', max_active_devices, 'max_rows', max_rows, 'max_storage_bytes', max_storage_bytes,
			'requests_per_second', requests_per_second, 'request_burst', request_burst,
			'max_bundle_bytes', max_bundle_bytes, 'max_rows_per_chunk', max_rows_per_chunk, 'max_watchers', max_watchers))
		FROM syncplane.quotas WHERE tenant_id = $1`, t.ID).Scan(&doc)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("read quotas: %w", err)
	default:
		if err := json.Unmarshal(doc, &q.Override); err != nil {
			return nil, fmt.Errorf("decode quotas: %w", err)
		}
	}
	base, _ := plans.Limits(t.Plan)
	q.Limits = q.Override.Apply(base)
	return q, nil
}

// SetQuota replaces a tenant's overrides (nil fields fall back to the plan)
// and, when plan is not empty, its plan.
func (s *Store) SetQuota(ctx context.Context, tenantID int64, plan string, o QuotaOverride, plans Plans, by Actor) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if plan != "" {
		if _, ok := plans[plan]; !ok {
			names := make([]string, 0, len(plans))
			for n := range plans {
				names = append(names, n)
			}
			sort.Strings(names)
			return &ValidationError{Field: "plan", Message: fmt.Sprintf("unknown plan %q; plans: %s", plan, strings.Join(names, ", "))}
		}
	}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE syncplane.tenants SET plan = coalesce(nullif($2, ''), plan), updated_at = now()
			WHERE id = $1 AND state IN ('active', 'suspended')`, tenantID, plan)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, `INSERT INTO syncplane.quotas (tenant_id, max_active_devices, max_rows, max_storage_bytes,
				requests_per_second, request_burst, max_bundle_bytes, max_rows_per_chunk, max_watchers)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (tenant_id) DO UPDATE SET max_active_devices = EXCLUDED.max_active_devices,
				max_rows = EXCLUDED.max_rows, max_storage_bytes = EXCLUDED.max_storage_bytes,
				requests_per_second = EXCLUDED.requests_per_second, request_burst = EXCLUDED.request_burst,
				max_bundle_bytes = EXCLUDED.max_bundle_bytes, max_rows_per_chunk = EXCLUDED.max_rows_per_chunk,
				max_watchers = EXCLUDED.max_watchers, updated_at = now()`,
			tenantID, o.MaxActiveDevices, o.MaxRows, o.MaxStorageBytes, o.RequestsPerSecond, o.RequestBurst,
			o.MaxBundleBytes, o.MaxRowsPerChunk, o.MaxWatchers); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, tenantID, by, "quota.set", plan, o)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("set quota: %w", err)
	}
	return err
}

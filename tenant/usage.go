package tenant

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// UsageCounts are one tenant's usage in one hour.
type UsageCounts struct {
	Requests        int64 `json:"requests"`
	BundlesPushed   int64 `json:"bundles_pushed"`
	RowsPushed      int64 `json:"rows_pushed"`
	RowsPulled      int64 `json:"rows_pulled"`
	RowsSnapshotted int64 `json:"rows_snapshotted"`
	BytesIn         int64 `json:"bytes_in"`
	BytesOut        int64 `json:"bytes_out"`
	ActiveDevices   int64 `json:"active_devices"`
	PeakWatchers    int64 `json:"peak_watchers"`
	StorageBytes    int64 `json:"storage_bytes"`
}

// Add folds o into u: counters add up, the gauges that are maxima
// (active devices, peak watchers) keep the larger value. Storage, a sampled
// level, is left to the caller.
func (u *UsageCounts) Add(o UsageCounts) {
	u.Requests += o.Requests
	u.BundlesPushed += o.BundlesPushed
	u.RowsPushed += o.RowsPushed
	u.RowsPulled += o.RowsPulled
	u.RowsSnapshotted += o.RowsSnapshotted
	u.BytesIn += o.BytesIn
	u.BytesOut += o.BytesOut
	u.ActiveDevices = max(u.ActiveDevices, o.ActiveDevices)
	u.PeakWatchers = max(u.PeakWatchers, o.PeakWatchers)
}

type usageKey struct {
	tenant int64
	hour   int64 // unix seconds of the hour's start
}

type requestKey struct {
	usageKey
	endpoint string
}

// Meter counts usage in memory and flushes it in batches: no write per
// request. Every replica adds its own deltas, so totals are exact across
// replicas; a failed flush keeps its deltas for the next one.
type Meter struct {
	store *Store
	now   func() time.Time

	mu       sync.Mutex
	counts   map[usageKey]*UsageCounts
	requests map[requestKey]int64
	watchers map[int64]int64 // open watch streams per tenant on this replica
}

// NewMeter returns a meter flushing into store.
func NewMeter(store *Store) *Meter {
	return &Meter{store: store, now: time.Now, counts: map[usageKey]*UsageCounts{},
		requests: map[requestKey]int64{}, watchers: map[int64]int64{}}
}

func (m *Meter) entry(tenantID int64) *UsageCounts {
	k := usageKey{tenantID, m.now().Truncate(time.Hour).Unix()}
	c, ok := m.counts[k]
	if !ok {
		c = &UsageCounts{}
		m.counts[k] = c
	}
	return c
}

// Request counts one request to endpoint (a route template) and its bytes.
func (m *Meter) Request(tenantID int64, endpoint string, bytesIn, bytesOut int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.entry(tenantID)
	c.Requests++
	c.BytesIn += max(bytesIn, 0)
	c.BytesOut += max(bytesOut, 0)
	m.requests[requestKey{usageKey{tenantID, m.now().Truncate(time.Hour).Unix()}, endpoint}]++
}

// Pushed counts committed bundles and their rows.
func (m *Meter) Pushed(tenantID, bundles, rows int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.entry(tenantID)
	c.BundlesPushed += bundles
	c.RowsPushed += rows
}

// Pulled counts rows served by pull and committed-bundle reads.
func (m *Meter) Pulled(tenantID, rows int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entry(tenantID).RowsPulled += rows
}

// Snapshotted counts rows served from snapshot sessions.
func (m *Meter) Snapshotted(tenantID, rows int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entry(tenantID).RowsSnapshotted += rows
}

// Watchers adjusts the open watch streams of a tenant and tracks the hour's
// peak on this replica.
func (m *Meter) Watchers(tenantID, delta int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.watchers[tenantID] += delta
	if m.watchers[tenantID] <= 0 {
		delete(m.watchers, tenantID)
	}
	c := m.entry(tenantID)
	c.PeakWatchers = max(c.PeakWatchers, m.watchers[tenantID])
}

// Run flushes every interval until ctx ends, then flushes once more.
func (m *Meter) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := m.Flush(context.WithoutCancel(ctx)); err != nil {
				slog.Warn("final usage flush failed", "err", err)
			}
			return
		case <-t.C:
			if err := m.Flush(ctx); err != nil {
				slog.Warn("usage flush failed; retrying next time", "err", err)
			}
		}
	}
}

// Flush writes the accumulated deltas in one transaction of two set-based
// statements.
func (m *Meter) Flush(ctx context.Context) error {
	m.mu.Lock()
	counts, requests := m.counts, m.requests
	m.counts, m.requests = map[usageKey]*UsageCounts{}, map[requestKey]int64{}
	// Open streams carry over into the new hour's peak.
	for id, n := range m.watchers {
		m.entry(id).PeakWatchers = n
	}
	m.mu.Unlock()
	if len(counts) == 0 && len(requests) == 0 {
		return nil
	}
	err := m.store.addUsage(ctx, counts, requests)
	if err != nil {
		m.mu.Lock()
		for k, c := range counts {
			cur, ok := m.counts[k]
			if !ok {
				m.counts[k] = c
				continue
			}
			cur.Add(*c)
		}
		for k, n := range requests {
			m.requests[k] += n
		}
		m.mu.Unlock()
	}
	return err
}

func (s *Store) addUsage(ctx context.Context, counts map[usageKey]*UsageCounts, requests map[requestKey]int64) error {
	n := len(counts)
	var (
		tenants                                = make([]int64, 0, n)
		hours                                  = make([]time.Time, 0, n)
		reqs, bundles, pushed, pulled, snapped = make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
		in, out, peak                          = make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
		rTenants                               []int64
		rHours                                 []time.Time
		rEndpoints                             []string
		rCounts                                []int64
	)
	for k, c := range counts {
		tenants = append(tenants, k.tenant)
		hours = append(hours, time.Unix(k.hour, 0).UTC())
		reqs, bundles = append(reqs, c.Requests), append(bundles, c.BundlesPushed)
		pushed, pulled, snapped = append(pushed, c.RowsPushed), append(pulled, c.RowsPulled), append(snapped, c.RowsSnapshotted)
		in, out, peak = append(in, c.BytesIn), append(out, c.BytesOut), append(peak, c.PeakWatchers)
	}
	for k, c := range requests {
		rTenants = append(rTenants, k.tenant)
		rHours = append(rHours, time.Unix(k.hour, 0).UTC())
		rEndpoints = append(rEndpoints, k.endpoint)
		rCounts = append(rCounts, c)
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO syncplane.usage_hourly AS u (tenant_id, hour, requests, bundles_pushed,
				rows_pushed, rows_pulled, rows_snapshotted, bytes_in, bytes_out, peak_watchers)
			SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::bigint[], $5::bigint[],
				$6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
			ON CONFLICT (tenant_id, hour) DO UPDATE SET
				requests = u.requests + EXCLUDED.requests,
				bundles_pushed = u.bundles_pushed + EXCLUDED.bundles_pushed,
				rows_pushed = u.rows_pushed + EXCLUDED.rows_pushed,
				rows_pulled = u.rows_pulled + EXCLUDED.rows_pulled,
				rows_snapshotted = u.rows_snapshotted + EXCLUDED.rows_snapshotted,
				bytes_in = u.bytes_in + EXCLUDED.bytes_in,
				bytes_out = u.bytes_out + EXCLUDED.bytes_out,
				peak_watchers = greatest(u.peak_watchers, EXCLUDED.peak_watchers)`,
			tenants, hours, reqs, bundles, pushed, pulled, snapped, in, out, peak); err != nil {
			return fmt.Errorf("flush usage: %w", err)
		}
		if len(rTenants) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO syncplane.usage_requests AS u (tenant_id, hour, endpoint, requests)
			SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::bigint[])
			ON CONFLICT (tenant_id, hour, endpoint) DO UPDATE SET requests = u.requests + EXCLUDED.requests`,
			rTenants, rHours, rEndpoints, rCounts); err != nil {
			return fmt.Errorf("flush request usage: %w", err)
		}
		return nil
	})
}

// UsageRow is one tenant's usage in one hour, as exported for billing.
type UsageRow struct {
	TenantID   int64            `json:"tenant_id"`
	Tenant     string           `json:"tenant"`
	Hour       time.Time        `json:"hour"`
	ByEndpoint map[string]int64 `json:"requests_by_endpoint"`
	UsageCounts
}

// Usage returns hourly usage rows in [from, to), of one tenant when
// tenantID > 0, ordered by tenant and hour.
func (s *Store) Usage(ctx context.Context, tenantID int64, from, to time.Time) ([]UsageRow, error) {
	rows, err := s.db.Query(ctx, `SELECT u.tenant_id, coalesce(t.slug, ''), u.hour, u.requests, u.bundles_pushed,
			u.rows_pushed, u.rows_pulled, u.rows_snapshotted, u.bytes_in, u.bytes_out, u.active_devices,
			u.peak_watchers, u.storage_bytes,
			coalesce((SELECT jsonb_object_agg(r.endpoint, r.requests) FROM syncplane.usage_requests r
				WHERE r.tenant_id = u.tenant_id AND r.hour = u.hour), '{}')
		FROM syncplane.usage_hourly u LEFT JOIN syncplane.tenants t ON t.id = u.tenant_id
		WHERE ($1 = 0 OR u.tenant_id = $1) AND u.hour >= $2 AND u.hour < $3
		ORDER BY u.tenant_id, u.hour`, tenantID, from, to)
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (UsageRow, error) {
		var u UsageRow
		err := r.Scan(&u.TenantID, &u.Tenant, &u.Hour, &u.Requests, &u.BundlesPushed, &u.RowsPushed,
			&u.RowsPulled, &u.RowsSnapshotted, &u.BytesIn, &u.BytesOut, &u.ActiveDevices, &u.PeakWatchers,
			&u.StorageBytes, &u.ByEndpoint)
		return u, err
	})
}

// UsageEndpoints lists the endpoints of rows, sorted (CSV columns).
func UsageEndpoints(rows []UsageRow) []string {
	set := map[string]bool{}
	for _, r := range rows {
		for e := range r.ByEndpoint {
			set[e] = true
		}
	}
	out := make([]string, 0, len(set))
	for e := range set {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// usageSamplerLock is the advisory lock that makes one replica at a time
// the usage sampler.
const usageSamplerLock = `SELECT pg_try_advisory_xact_lock(hashtextextended('syncplane.usage_sampler', 0))`

// SampleUsage records each tenant's storage bytes and active devices (sources
// seen this hour) into the current hour, and forgets usage older than
// retention. Only one replica samples at a time; the others return at once
// with ran=false.
func (s *Store) SampleUsage(ctx context.Context, retention time.Duration) (ran bool, err error) {
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, usageSamplerLock).Scan(&ran); err != nil || !ran {
			return err
		}
		tenants, err := s.ListTenants(ctx)
		if err != nil {
			return err
		}
		hour := s.now().UTC().Truncate(time.Hour)
		ids, storage, devices, err := s.sampleTenants(ctx, tenants, hour)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO syncplane.usage_hourly AS u (tenant_id, hour, storage_bytes, active_devices)
			SELECT id, $1, b, d FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS x(id, b, d)
			ON CONFLICT (tenant_id, hour) DO UPDATE SET storage_bytes = EXCLUDED.storage_bytes,
				active_devices = greatest(u.active_devices, EXCLUDED.active_devices)`, hour, ids, storage, devices); err != nil {
			return fmt.Errorf("record samples: %w", err)
		}
		cutoff := hour.Add(-retention)
		if _, err := tx.Exec(ctx, `DELETE FROM syncplane.usage_hourly WHERE hour < $1`, cutoff); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM syncplane.usage_requests WHERE hour < $1`, cutoff)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sample usage: %w", err)
	}
	return ran, nil
}

// WriteUsageCSV writes billing-ready CSV: one row per tenant per hour, with a
// requests column per endpoint.
func WriteUsageCSV(w io.Writer, rows []UsageRow) error {
	cw := csv.NewWriter(w)
	endpoints := UsageEndpoints(rows)
	head := []string{"tenant_id", "tenant", "hour", "requests", "bundles_pushed", "rows_pushed", "rows_pulled",
		"rows_snapshotted", "bytes_in", "bytes_out", "active_devices", "peak_watchers", "storage_bytes"}
	for _, e := range endpoints {
		head = append(head, "requests "+e)
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	for _, r := range rows {
		rec := []string{strconv.FormatInt(r.TenantID, 10), r.Tenant, r.Hour.UTC().Format(time.RFC3339)}
		for _, v := range []int64{r.Requests, r.BundlesPushed, r.RowsPushed, r.RowsPulled, r.RowsSnapshotted,
			r.BytesIn, r.BytesOut, r.ActiveDevices, r.PeakWatchers, r.StorageBytes} {
			rec = append(rec, strconv.FormatInt(v, 10))
		}
		for _, e := range endpoints {
			rec = append(rec, strconv.FormatInt(r.ByEndpoint[e], 10))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// sampleChunk is how many tenant schemas one active-devices statement reads.
const sampleChunk = 100

// sampleTenants measures the storage bytes and the devices seen since hour
// of every active or suspended tenant, cluster by cluster: one catalog pass
// for the storage of all of a cluster's schemas and one statement per
// sampleChunk schemas for the devices. A statement per tenant made the cost
// grow with the tenants provisioned: each scanned all of pg_class and was a
// distinct prepared statement (1,000 tenants took minutes, at every start
// and every five minutes, competing with sync traffic).
func (s *Store) sampleTenants(ctx context.Context, tenants []Tenant, hour time.Time) (ids, storage, devices []int64, err error) {
	byPool := map[*pgxpool.Pool][]int{} // indices into ids
	var schemas []string
	for _, t := range tenants {
		if t.State != StateActive && t.State != StateSuspended {
			continue
		}
		pool, err := s.PoolFor(&t)
		if err != nil {
			return nil, nil, nil, err
		}
		byPool[pool] = append(byPool[pool], len(ids))
		ids, schemas = append(ids, t.ID), append(schemas, t.SchemaName())
	}
	storage, devices = make([]int64, len(ids)), make([]int64, len(ids))
	for pool, idx := range byPool {
		names := make([]string, len(idx))
		at := make(map[string]int, len(idx))
		for i, j := range idx {
			names[i], at[schemas[j]] = schemas[j], j
		}
		rows, err := pool.Query(ctx, `SELECT n.nspname, coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
			FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
			WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'm') GROUP BY n.nspname`, names)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("sample storage: %w", err)
		}
		for rows.Next() {
			var name string
			var bytes int64
			if err := rows.Scan(&name, &bytes); err != nil {
				rows.Close()
				return nil, nil, nil, fmt.Errorf("sample storage: %w", err)
			}
			storage[at[name]] = bytes
		}
		if err := rows.Err(); err != nil {
			return nil, nil, nil, fmt.Errorf("sample storage: %w", err)
		}
		for start := 0; start < len(idx); start += sampleChunk {
			chunk := idx[start:min(start+sampleChunk, len(idx))]
			parts := make([]string, len(chunk))
			for i, j := range chunk {
				parts[i] = `SELECT ` + strconv.Itoa(j) + `, count(*) FROM ` +
					pgx.Identifier{schemas[j], "_sync_source"}.Sanitize() + ` WHERE last_seen_at >= $1`
			}
			err := countActive(ctx, pool, strings.Join(parts, "\nUNION ALL "), hour, devices)
			if isUndefinedRelation(err) {
				// A tenant deleted (or not yet provisioned) since the list
				// was read: sample the chunk one tenant at a time, skipping
				// schemas that are gone.
				for _, q := range parts {
					if err = countActive(ctx, pool, q, hour, devices); isUndefinedRelation(err) {
						err = nil
					}
					if err != nil {
						break
					}
				}
			}
			if err != nil {
				return nil, nil, nil, fmt.Errorf("sample active devices: %w", err)
			}
		}
	}
	return ids, storage, devices, nil
}

// countActive runs q (rows of tenant index and count) into devices.
func countActive(ctx context.Context, pool *pgxpool.Pool, q string, since time.Time, devices []int64) error {
	rows, err := pool.Query(ctx, q, since)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var j int
		var n int64
		if err := rows.Scan(&j, &n); err != nil {
			return err
		}
		devices[j] = n
	}
	return rows.Err()
}

// isUndefinedRelation reports a table or schema that does not exist.
func isUndefinedRelation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000")
}

package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/syncplane/syncplane/tenant"
)

// SyncData is what the console reads from a tenant's sync metadata (the
// _sync_* tables inside t_<slug>, written by the sync engine). Retire is
// its only write.
type SyncData interface {
	Sources(ctx context.Context, t *tenant.Tenant, f SourceFilter) ([]Source, error)
	// RetireSource retires a device; with replace it reserves a successor
	// the device rotates to, without it the device is shut out (revoked).
	RetireSource(ctx context.Context, t *tenant.Tenant, userID, sourceID, reason string, replace bool) (bool, error)
	Users(ctx context.Context, t *tenant.Tenant, search string, limit int) ([]string, error)
	Rows(ctx context.Context, t *tenant.Tenant, table *tenant.Table, userID string, offset, limit int) ([]json.RawMessage, error)
	Bundles(ctx context.Context, t *tenant.Tenant, userID string, beforeSeq int64, limit int) ([]Bundle, error)
	Usage(ctx context.Context, t *tenant.Tenant, days int, now time.Time) (*Usage, error)
}

// SourceFilter selects sources.
type SourceFilter struct {
	User  string // substring of the user id
	Limit int
}

// Source is one device (a source id of one user).
type Source struct {
	UserID        string
	SourceID      string
	State         string
	MaxBundleID   int64
	ReplacedBy    string
	RetireReason  string
	FirstSeen     time.Time
	LastSeen      time.Time
	BundlesPushed int64
	LastError     string
	LastErrorAt   *time.Time
}

// Bundle is one committed bundle with its first rows.
type Bundle struct {
	Seq            int64
	SourceID       string
	SourceBundleID int64
	RowCount       int
	CommittedAt    time.Time
	Rows           []BundleRow
}

// BundleRow is one row change of a bundle.
type BundleRow struct {
	Ordinal int
	Table   string
	Key     string
	Op      string
	Payload string
}

// Usage is a tenant's recent activity.
type Usage struct {
	ActiveToday  int
	Active30d    int // sources seen in the last 30 days (the device quota's measure)
	Devices      int
	Days         []DayUsage // oldest first
	StorageBytes int64
}

// DayUsage is one day of bundles and rows.
type DayUsage struct {
	Day     time.Time
	Bundles int64
	Rows    int64
}

// scopeColumn is the hidden owner column of every synced table (see
// tenant's generated DDL); hiddenColumns are all the columns the console
// leaves out of a row (the owner and the row version).
const scopeColumn = "_sync_scope_id"

var hiddenColumns = []string{scopeColumn, "_sync_row_version"}

// pgSyncData reads sync metadata with plain SQL on the tenant's cluster.
type pgSyncData struct {
	store *tenant.Store
}

func (d *pgSyncData) pool(t *tenant.Tenant) (*pgxpool.Pool, error) { return d.store.PoolFor(t) }

func ident(t *tenant.Tenant, table string) string {
	return pgx.Identifier{t.SchemaName(), table}.Sanitize()
}

func (d *pgSyncData) Sources(ctx context.Context, t *tenant.Tenant, f SourceFilter) ([]Source, error) {
	pool, err := d.pool(t)
	if err != nil {
		return nil, err
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 200
	}
	rows, err := pool.Query(ctx, `SELECT user_id, source_id, state, max_source_bundle_id, coalesce(replaced_by_source_id, ''),
		coalesce(retire_reason, ''), first_seen_at, last_seen_at, bundles_pushed, coalesce(last_error, ''), last_error_at
		FROM `+ident(t, "_sync_source")+`
		WHERE ($1 = '' OR strpos(user_id, $1) > 0)
		ORDER BY last_seen_at DESC, user_id, source_id LIMIT $2`, f.User, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Source, error) {
		var s Source
		err := r.Scan(&s.UserID, &s.SourceID, &s.State, &s.MaxBundleID, &s.ReplacedBy, &s.RetireReason,
			&s.FirstSeen, &s.LastSeen, &s.BundlesPushed, &s.LastError, &s.LastErrorAt)
		return s, err
	})
}

// RetireSource marks a device's source retired: the sync engine then
// refuses its pushes with source_retired, and the device must rotate to a
// new source id. The user's scope row is locked first, as every mutation of
// a user's sync state does (protocol 8.5).
func (d *pgSyncData) RetireSource(ctx context.Context, t *tenant.Tenant, userID, sourceID, reason string, replace bool) (bool, error) {
	pool, err := d.pool(t)
	if err != nil {
		return false, err
	}
	var changed bool
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM `+ident(t, "_sync_scope")+` WHERE user_id = $1 FOR UPDATE`, userID); err != nil {
			return err
		}
		// Protocol 10: an administrative retire records a fresh replacement,
		// reserved, so the device's rotation (which adopts
		// replaced_by_source_id) succeeds instead of stranding it.
		// A revoke (no replacement) shuts the device out: its rotation gets
		// source_retired too.
		var replacement *string
		if replace {
			r := uuid.NewString()
			replacement = &r
		}
		tag, err := tx.Exec(ctx, `UPDATE `+ident(t, "_sync_source")+` SET state = 'retired', retire_reason = $3,
				replaced_by_source_id = $4
			WHERE user_id = $1 AND source_id = $2 AND state <> 'retired'`, userID, sourceID, reason, replacement)
		if err != nil {
			return err
		}
		changed = tag.RowsAffected() == 1
		if changed && replace {
			if _, err := tx.Exec(ctx, `INSERT INTO `+ident(t, "_sync_source")+` (user_id, source_id, state)
				VALUES ($1, $2, 'reserved')`, userID, *replacement); err != nil {
				return err
			}
		}
		if !changed {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+ident(t, "_sync_source")+` WHERE user_id = $1 AND source_id = $2`,
				userID, sourceID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return tenant.ErrNotFound
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, tenant.ErrNotFound) {
		return false, fmt.Errorf("retire source: %w", err)
	}
	return changed, err
}

func (d *pgSyncData) Users(ctx context.Context, t *tenant.Tenant, search string, limit int) ([]string, error) {
	pool, err := d.pool(t)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT user_id FROM `+ident(t, "_sync_scope")+`
		WHERE ($1 = '' OR strpos(user_id, $1) > 0) ORDER BY updated_at DESC, user_id LIMIT $2`, search, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (d *pgSyncData) Rows(ctx context.Context, t *tenant.Tenant, table *tenant.Table, userID string, offset, limit int) ([]json.RawMessage, error) {
	pool, err := d.pool(t)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT to_jsonb(r) - $2::text[] FROM `+ident(t, table.Name)+` r
		WHERE `+pgx.Identifier{scopeColumn}.Sanitize()+` = $1
		ORDER BY `+pgx.Identifier{table.Key.Name}.Sanitize()+` OFFSET $3 LIMIT $4`, userID, hiddenColumns, offset, limit)
	if err != nil {
		return nil, fmt.Errorf("read rows of %s: %w", table.Name, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[json.RawMessage])
}

const bundleRowsShown = 20

func (d *pgSyncData) Bundles(ctx context.Context, t *tenant.Tenant, userID string, beforeSeq int64, limit int) ([]Bundle, error) {
	pool, err := d.pool(t)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT bundle_seq, source_id, source_bundle_id, row_count, committed_at
		FROM `+ident(t, "_sync_bundle")+` WHERE user_id = $1 AND ($2 = 0 OR bundle_seq < $2)
		ORDER BY bundle_seq DESC LIMIT $3`, userID, beforeSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("list bundles: %w", err)
	}
	bundles, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Bundle, error) {
		var b Bundle
		err := r.Scan(&b.Seq, &b.SourceID, &b.SourceBundleID, &b.RowCount, &b.CommittedAt)
		return b, err
	})
	if err != nil || len(bundles) == 0 {
		return bundles, err
	}
	seqs := make([]int64, len(bundles))
	idx := map[int64]int{}
	for i, b := range bundles {
		seqs[i] = b.Seq
		idx[b.Seq] = i
	}
	// One round-trip for the first rows of every listed bundle.
	rrows, err := pool.Query(ctx, `SELECT bundle_seq, row_ordinal, table_name, key_text, op, coalesce(payload::text, '')
		FROM `+ident(t, "_sync_bundle_row")+` WHERE user_id = $1 AND bundle_seq = ANY($2) AND row_ordinal < $3
		ORDER BY bundle_seq, row_ordinal`, userID, seqs, bundleRowsShown)
	if err != nil {
		return nil, fmt.Errorf("list bundle rows: %w", err)
	}
	defer rrows.Close()
	for rrows.Next() {
		var seq int64
		var br BundleRow
		if err := rrows.Scan(&seq, &br.Ordinal, &br.Table, &br.Key, &br.Op, &br.Payload); err != nil {
			return nil, err
		}
		i := idx[seq]
		bundles[i].Rows = append(bundles[i].Rows, br)
	}
	return bundles, rrows.Err()
}

func (d *pgSyncData) Usage(ctx context.Context, t *tenant.Tenant, days int, now time.Time) (*Usage, error) {
	pool, err := d.pool(t)
	if err != nil {
		return nil, err
	}
	u := &Usage{}
	start := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -(days - 1))
	b := &pgx.Batch{}
	today := start.AddDate(0, 0, days-1)
	b.Queue(`SELECT count(*) FILTER (WHERE last_seen_at >= $1), count(*) FILTER (WHERE last_seen_at >= $2),
		count(*) FILTER (WHERE state <> 'retired') FROM `+ident(t, "_sync_source")+`
		WHERE state <> 'reserved'`, today, now.Add(-30*24*time.Hour)). // reserved: a name awaiting its device
		QueryRow(func(r pgx.Row) error { return r.Scan(&u.ActiveToday, &u.Active30d, &u.Devices) })
	counts := map[time.Time]DayUsage{}
	b.Queue(`SELECT date_trunc('day', committed_at AT TIME ZONE 'UTC'), count(*), coalesce(sum(row_count), 0)
		FROM `+ident(t, "_sync_bundle")+` WHERE committed_at >= $1 GROUP BY 1`, start).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var day time.Time
			var du DayUsage
			if err := rows.Scan(&day, &du.Bundles, &du.Rows); err != nil {
				return err
			}
			counts[day.UTC()] = du
		}
		return rows.Err()
	})
	b.Queue(`SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`, t.SchemaName()).
		QueryRow(func(r pgx.Row) error { return r.Scan(&u.StorageBytes) })
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	for i := 0; i < days; i++ {
		day := start.AddDate(0, 0, i)
		du := counts[day]
		du.Day = day
		u.Days = append(u.Days, du)
	}
	return u, nil
}

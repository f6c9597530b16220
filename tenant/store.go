package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ControlChannel is the LISTEN/NOTIFY channel on which control-plane changes
// are announced so every replica drops its cached view of a tenant. The
// payload is "t:<tenant id>".
const ControlChannel = "syncplane_control"

// Actor says who made a change, for the audit log.
type Actor struct {
	Name       string // e.g. "cli:root", "user:ada@example.com", "key:sp_sk_ab12…"
	RemoteAddr string
}

// Store is the control-plane store. Tenant schemas are reached through
// Clusters by each tenant's placement.
type Store struct {
	db       *pgxpool.Pool
	clusters *Clusters
	now      func() time.Time
	plans    Plans
	sealer   *Sealer // nil: HS256 secrets are written unsealed

	// failpoint, when set (tests only), is called between provisioning
	// steps; an error aborts there as a crash would.
	failpoint func(step string) error
}

// NewStore returns a store over the control-plane pool.
func NewStore(db *pgxpool.Pool, clusters *Clusters) *Store {
	return &Store{db: db, clusters: clusters, now: time.Now, plans: DefaultPlans()}
}

// SetPlans replaces the quota plans (from the operator's configuration).
func (s *Store) SetPlans(p Plans) { s.plans = p }

// Plans returns the quota plans in effect.
func (s *Store) Plans() Plans { return s.plans }

// DB is the control-plane pool.
func (s *Store) DB() *pgxpool.Pool { return s.db }

// Clusters is the placement registry.
func (s *Store) Clusters() *Clusters { return s.clusters }

// PoolFor returns the pool of the cluster holding t's schema.
func (s *Store) PoolFor(t *Tenant) (*pgxpool.Pool, error) { return s.clusters.Pool(t.Placement) }

const tenantColumns = `id, slug, name, state, wire_schema, placement, plan, watch_enabled, retained_bundles, created_at, updated_at`

func scanTenant(row pgx.Row) (*Tenant, error) {
	var t Tenant
	var slug, state string
	err := row.Scan(&t.ID, &slug, &t.Name, &state, &t.WireSchema, &t.Placement, &t.Plan,
		&t.WatchEnabled, &t.RetainedBundles, &t.CreatedAt, &t.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	t.Slug, t.State = Slug(slug), State(state)
	return &t, nil
}

// Tenant returns a tenant by slug. Tenants still provisioning are not found.
func (s *Store) Tenant(ctx context.Context, slug string) (*Tenant, error) {
	t, err := scanTenant(s.db.QueryRow(ctx,
		`SELECT `+tenantColumns+` FROM syncplane.tenants WHERE slug = $1 AND state <> 'provisioning'`, slug))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("get tenant %s: %w", slug, err)
	}
	return t, err
}

// TenantByID returns a tenant by id. Tenants still provisioning are not found.
func (s *Store) TenantByID(ctx context.Context, id int64) (*Tenant, error) {
	t, err := scanTenant(s.db.QueryRow(ctx,
		`SELECT `+tenantColumns+` FROM syncplane.tenants WHERE id = $1 AND state <> 'provisioning'`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("get tenant %d: %w", id, err)
	}
	return t, err
}

// ListTenants returns every provisioned tenant ordered by slug.
func (s *Store) ListTenants(ctx context.Context) ([]Tenant, error) {
	rows, err := s.db.Query(ctx, `SELECT `+tenantColumns+` FROM syncplane.tenants WHERE state <> 'provisioning' ORDER BY slug`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// SetState suspends or resumes a tenant. Every replica sees the change within
// a second through ControlChannel.
func (s *Store) SetState(ctx context.Context, slug string, state State, by Actor) (*Tenant, error) {
	if state != StateActive && state != StateSuspended {
		return nil, &ValidationError{Field: "state", Message: fmt.Sprintf("state %q cannot be set directly", state)}
	}
	var out *Tenant
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		t, err := scanTenant(tx.QueryRow(ctx, `UPDATE syncplane.tenants SET state = $2, updated_at = now()
			WHERE slug = $1 AND state IN ('active', 'suspended') RETURNING `+tenantColumns, slug, string(state)))
		if err != nil {
			return err
		}
		out = t
		action := "tenant.resume"
		if state == StateSuspended {
			action = "tenant.suspend"
		}
		return s.auditTx(ctx, tx, t.ID, by, action, slug, nil)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("set tenant %s state: %w", slug, err)
	}
	return out, err
}

// notifyTenantTx announces a change to tenant id to every replica when tx
// commits. Control-plane changes are rare, so notifying inside the
// transaction is fine here (the sync hot path never does this).
func notifyTenantTx(ctx context.Context, tx pgx.Tx, id int64) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ControlChannel, "t:"+strconv.FormatInt(id, 10))
	return err
}

// AuditEntry is one audit-log record.
type AuditEntry struct {
	ID         int64
	At         time.Time
	TenantID   *int64
	Actor      string
	Action     string
	Target     string
	Detail     json.RawMessage
	RemoteAddr string
}

// auditTx appends to the audit log and, for tenant changes, notifies replicas.
func (s *Store) auditTx(ctx context.Context, tx pgx.Tx, tenantID int64, by Actor, action, target string, detail any) error {
	d := []byte("{}")
	if detail != nil {
		var err error
		if d, err = json.Marshal(detail); err != nil {
			return fmt.Errorf("encode audit detail: %w", err)
		}
	}
	var tid *int64
	if tenantID != 0 {
		tid = &tenantID
	}
	if _, err := tx.Exec(ctx, `INSERT INTO syncplane.audit_log (tenant_id, actor, action, target, detail, remote_addr)
		VALUES ($1, $2, $3, $4, $5, $6)`, tid, by.Name, action, target, d, by.RemoteAddr); err != nil {
		return fmt.Errorf("append audit log: %w", err)
	}
	if tenantID != 0 {
		return notifyTenantTx(ctx, tx, tenantID)
	}
	return nil
}

// AuditLog returns the newest audit entries, of one tenant when tenantID > 0.
func (s *Store) AuditLog(ctx context.Context, tenantID int64, limit int) ([]AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.db.Query(ctx, `SELECT id, at, tenant_id, actor, action, target, detail, remote_addr
		FROM syncplane.audit_log WHERE ($1 = 0 OR tenant_id = $1) ORDER BY id DESC LIMIT $2`, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.TenantID, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.RemoteAddr)
		return e, err
	})
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

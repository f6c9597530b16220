package tenant

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// NewTenant is the input for creating a tenant.
type NewTenant struct {
	Slug       string
	Name       string
	WireSchema string // default "app"
	Placement  string // default DefaultPlacement
	Plan       string // default "free"
}

// errCrash, returned by a failpoint, makes provisioning stop dead without
// cleaning up, as a process crash would.
var errCrash = errors.New("simulated crash")

func (s *Store) step(name string) error {
	if s.failpoint == nil {
		return nil
	}
	return s.failpoint(name)
}

// CreateTenant provisions a tenant: its control-plane row, its own schema
// t_<slug> on its placement's cluster, and the per-tenant migrations inside
// it. It is idempotent and crash-safe: the tenant stays invisible in state
// provisioning until every step is done, a failure cleans up, and a
// leftover from a crash is taken over and redone by the next create of the
// same slug. The caller gets either no tenant or a complete one.
func (s *Store) CreateTenant(ctx context.Context, in NewTenant, by Actor) (*Tenant, error) {
	slug, err := ParseSlug(in.Slug)
	if err != nil {
		return nil, err
	}
	if in.Name == "" {
		in.Name = string(slug)
	}
	if len(in.Name) > 200 {
		return nil, &ValidationError{Field: "name", Message: "name must be at most 200 characters"}
	}
	if in.WireSchema == "" {
		in.WireSchema = "app"
	}
	if err := ValidateWireSchema(in.WireSchema); err != nil {
		return nil, err
	}
	if in.Placement == "" {
		in.Placement = DefaultPlacement
	}
	if in.Plan == "" {
		in.Plan = "free"
	}
	if _, ok := s.plans[in.Plan]; !ok {
		return nil, &ValidationError{Field: "plan", Message: fmt.Sprintf("unknown plan %q", in.Plan)}
	}
	pool, err := s.clusters.Pool(in.Placement)
	if err != nil {
		return nil, &ValidationError{Field: "placement", Message: err.Error()}
	}

	// One creator per slug at a time, across replicas.
	lock, err := s.lockSlug(ctx, slug)
	if err != nil {
		return nil, err
	}
	defer lock.Release()

	var id int64
	var state string
	err = s.db.QueryRow(ctx, `INSERT INTO syncplane.tenants (slug, name, wire_schema, placement, plan, state)
		VALUES ($1, $2, $3, $4, $5, 'provisioning')
		ON CONFLICT (slug) DO UPDATE SET updated_at = now()
		RETURNING id, state`, string(slug), in.Name, in.WireSchema, in.Placement, in.Plan).Scan(&id, &state)
	if err != nil {
		return nil, fmt.Errorf("create tenant %s: %w", slug, err)
	}
	if State(state) != StateProvisioning {
		return nil, ErrTenantExists
	}
	// A leftover of an interrupted create is redone with this request's
	// settings.
	if _, err := s.db.Exec(ctx, `UPDATE syncplane.tenants SET name = $2, wire_schema = $3, placement = $4, plan = $5
		WHERE id = $1`, id, in.Name, in.WireSchema, in.Placement, in.Plan); err != nil {
		return nil, fmt.Errorf("create tenant %s: %w", slug, err)
	}

	t, err := s.provision(ctx, id, slug, pool, by)
	if err != nil {
		if !errors.Is(err, errCrash) {
			s.abandon(context.WithoutCancel(ctx), id, slug, pool)
		}
		return nil, fmt.Errorf("provision tenant %s: %w", slug, err)
	}
	return t, nil
}

func (s *Store) provision(ctx context.Context, id int64, slug Slug, pool *pgxpool.Pool, by Actor) (*Tenant, error) {
	if err := s.step("row"); err != nil {
		return nil, err
	}
	schema := pgx.Identifier{slug.SchemaName()}.Sanitize()
	// The schema of a never-activated tenant holds nothing worth keeping:
	// start it from scratch so a half-migrated leftover cannot linger.
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE SCHEMA `+schema)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create schema: %w", err)
	}
	if err := s.step("schema"); err != nil {
		return nil, err
	}
	if err := MigrateTenantSchema(ctx, pool, slug.SchemaName()); err != nil {
		return nil, err
	}
	if err := s.step("migrations"); err != nil {
		return nil, err
	}
	var t *Tenant
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		t, err = scanTenant(tx.QueryRow(ctx, `UPDATE syncplane.tenants SET state = 'active', updated_at = now()
			WHERE id = $1 RETURNING `+tenantColumns, id))
		if err != nil {
			return err
		}
		if err := s.auditTx(ctx, tx, id, by, "tenant.create", string(slug), map[string]string{
			"name": t.Name, "wire_schema": t.WireSchema, "placement": t.Placement}); err != nil {
			return err
		}
		return s.step("activate")
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// abandon removes what a failed create left behind (best effort; a leftover
// stays invisible and is redone by the next create of the slug).
func (s *Store) abandon(ctx context.Context, id int64, slug Slug, pool *pgxpool.Pool) {
	_, _ = pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{slug.SchemaName()}.Sanitize()+` CASCADE`)
	_, _ = s.db.Exec(ctx, `DELETE FROM syncplane.tenants WHERE id = $1 AND state = 'provisioning'`, id)
}

// DeleteTenant drops a tenant's schema and everything the control plane
// holds for it. The tenant first turns "deleting" (serving nothing, on every
// replica); an interrupted delete is finished by running it again.
func (s *Store) DeleteTenant(ctx context.Context, slug string, by Actor) error {
	sl, err := ParseSlug(slug)
	if err != nil {
		return ErrNotFound
	}
	lock, err := s.lockSlug(ctx, sl)
	if err != nil {
		return err
	}
	defer lock.Release()

	var t *Tenant
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		t, err = scanTenant(tx.QueryRow(ctx, `UPDATE syncplane.tenants SET state = 'deleting', updated_at = now()
			WHERE slug = $1 AND state <> 'provisioning' RETURNING `+tenantColumns, slug))
		if err != nil {
			return err
		}
		return notifyTenantTx(ctx, tx, t.ID)
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return err
		}
		return fmt.Errorf("delete tenant %s: %w", slug, err)
	}
	pool, err := s.clusters.Pool(t.Placement)
	if err != nil {
		return fmt.Errorf("delete tenant %s: %w", slug, err)
	}
	if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{sl.SchemaName()}.Sanitize()+` CASCADE`); err != nil {
		return fmt.Errorf("drop schema of tenant %s: %w", slug, err)
	}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM syncplane.tenants WHERE id = $1`, t.ID); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, t.ID, by, "tenant.delete", slug, nil)
	})
	if err != nil {
		return fmt.Errorf("delete tenant %s: %w", slug, err)
	}
	return nil
}

// lockSlug takes a session advisory lock serializing lifecycle changes of
// one slug across replicas, on a dedicated connection outside the pool: a
// pooled one would be held for the whole provisioning, and enough parallel
// creates would leave none for the work itself. Release closes it, which
// also drops the lock.
func (s *Store) lockSlug(ctx context.Context, slug Slug) (*slugLock, error) {
	conn, err := pgx.ConnectConfig(ctx, s.db.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("lock tenant %s: %w", slug, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended('syncplane.tenant:' || $1, 0))`, string(slug)); err != nil {
		_ = conn.Close(context.Background())
		return nil, fmt.Errorf("lock tenant %s: %w", slug, err)
	}
	return &slugLock{conn: conn}, nil
}

type slugLock struct{ conn *pgx.Conn }

// Release unlocks by closing the lock's connection.
func (l *slugLock) Release() { _ = l.conn.Close(context.Background()) }

// MigrateAllTenants runs per-tenant migrations forward in every tenant schema
// (after an upgrade adds one). Each schema has its own version and lock.
func (s *Store) MigrateAllTenants(ctx context.Context) error {
	tenants, err := s.ListTenants(ctx)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		if t.State == StateDeleting {
			continue
		}
		pool, err := s.PoolFor(&t)
		if err != nil {
			return err
		}
		if err := MigrateTenantSchema(ctx, pool, t.SchemaName()); err != nil {
			// A tenant deleted meanwhile (by another replica or operator) is
			// not an error: there is nothing left to migrate.
			if cur, lerr := s.TenantByID(ctx, t.ID); errors.Is(lerr, ErrNotFound) || lerr == nil && cur.State == StateDeleting {
				continue
			}
			return err
		}
	}
	return nil
}

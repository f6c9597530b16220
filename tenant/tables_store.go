package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TableVersion is one applied, immutable table-definition version.
type TableVersion struct {
	Version   int
	Schema    *Schema
	Breaking  bool
	AppliedBy string
	AppliedAt time.Time
}

// ApplyOptions tune ApplyTables.
type ApplyOptions struct {
	// AllowBreaking permits changes old clients cannot follow (drops,
	// new required columns, foreign-key changes).
	AllowBreaking bool
	// DryRun computes the plan without applying it.
	DryRun bool
}

// ApplyResult is the plan, and outcome, of applying a definition.
type ApplyResult struct {
	// Version is the new version when Applied, else the current one (0: none).
	Version int
	Changes []Change
	DDL     []string
	Applied bool
}

// ApplyTables validates def, diffs it against the tenant's current version
// and, when it changed, runs the generated DDL in the tenant schema and
// records it as the next immutable version. The DDL and the tenant-side
// record (_sync_catalog) commit together before the control plane records
// the version; an interrupted apply is repaired by the next one.
func (s *Store) ApplyTables(ctx context.Context, tenantID int64, def Definition, opts ApplyOptions, by Actor) (*ApplyResult, error) {
	next, err := NewSchema(def)
	if err != nil {
		return nil, err
	}
	var res *ApplyResult
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		// Serialize applies of one tenant across replicas.
		t, err := scanTenant(tx.QueryRow(ctx, `SELECT `+tenantColumns+` FROM syncplane.tenants
			WHERE id = $1 AND state IN ('active', 'suspended') FOR UPDATE`, tenantID))
		if err != nil {
			return err
		}
		pool, err := s.PoolFor(t)
		if err != nil {
			return err
		}
		if err := s.repairTableVersions(ctx, tx, t, pool); err != nil {
			return err
		}
		cur, err := currentTablesTx(ctx, tx, tenantID)
		var old *Schema
		switch {
		case err == nil:
			old = cur.Schema
		case errors.Is(err, ErrNoDefinition):
		default:
			return err
		}
		res = &ApplyResult{Version: cur.Version, Changes: Diff(old, next)}
		if len(res.Changes) == 0 {
			return nil
		}
		if res.DDL, err = MigrationDDL(t.SchemaName(), old, next, opts.AllowBreaking); err != nil {
			return err
		}
		if opts.DryRun {
			return nil
		}
		breaking := false
		for _, c := range res.Changes {
			breaking = breaking || c.Breaking
		}
		version := cur.Version + 1
		doc, err := json.Marshal(next.Definition())
		if err != nil {
			return fmt.Errorf("encode definition: %w", err)
		}
		err = pgx.BeginFunc(ctx, pool, func(ttx pgx.Tx) error {
			for _, stmt := range res.DDL {
				if _, err := ttx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("apply table definition: %w", err)
				}
			}
			_, err := ttx.Exec(ctx, `INSERT INTO `+pgx.Identifier{t.SchemaName(), "_sync_catalog"}.Sanitize()+`
				(version, definition, breaking, applied_by) VALUES ($1, $2, $3, $4)`, version, doc, breaking, by.Name)
			return err
		})
		if err != nil {
			return err
		}
		if err := s.step("tables"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO syncplane.table_versions (tenant_id, version, definition, breaking, applied_by)
			VALUES ($1, $2, $3, $4, $5)`, tenantID, version, doc, breaking, by.Name); err != nil {
			return err
		}
		res.Version, res.Applied = version, true
		return s.auditTx(ctx, tx, tenantID, by, "tables.apply", fmt.Sprintf("v%d", version),
			map[string]any{"changes": Describe(res.Changes), "breaking": breaking})
	})
	if err != nil {
		var de *DefinitionError
		if errors.Is(err, ErrNotFound) || errors.As(err, &de) {
			return nil, err
		}
		return nil, fmt.Errorf("apply tables: %w", err)
	}
	return res, nil
}

// repairTableVersions copies versions the tenant schema carries but the
// control plane lacks (an apply interrupted between its two commits).
func (s *Store) repairTableVersions(ctx context.Context, tx pgx.Tx, t *Tenant, pool *pgxpool.Pool) error {
	var have int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM syncplane.table_versions WHERE tenant_id = $1`,
		t.ID).Scan(&have); err != nil {
		return err
	}
	rows, err := pool.Query(ctx, `SELECT version, definition, breaking, applied_by, applied_at FROM `+
		pgx.Identifier{t.SchemaName(), "_sync_catalog"}.Sanitize()+` WHERE version > $1 ORDER BY version`, have)
	if err != nil {
		return fmt.Errorf("read tenant catalog: %w", err)
	}
	type entry struct {
		version   int
		doc       []byte
		breaking  bool
		by        string
		appliedAt time.Time
	}
	missing, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (entry, error) {
		var e entry
		err := r.Scan(&e.version, &e.doc, &e.breaking, &e.by, &e.appliedAt)
		return e, err
	})
	if err != nil {
		return fmt.Errorf("read tenant catalog: %w", err)
	}
	for _, e := range missing {
		if _, err := tx.Exec(ctx, `INSERT INTO syncplane.table_versions (tenant_id, version, definition, breaking, applied_by, applied_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, t.ID, e.version, e.doc, e.breaking, e.by, e.appliedAt); err != nil {
			return fmt.Errorf("repair table version %d: %w", e.version, err)
		}
	}
	return nil
}

const tableVersionColumns = `version, definition, breaking, applied_by, applied_at`

func scanTableVersion(r pgx.Row) (*TableVersion, error) {
	var v TableVersion
	var doc []byte
	if err := r.Scan(&v.Version, &doc, &v.Breaking, &v.AppliedBy, &v.AppliedAt); err != nil {
		return nil, err
	}
	var def Definition
	if err := json.Unmarshal(doc, &def); err != nil {
		return nil, fmt.Errorf("decode table version %d: %w", v.Version, err)
	}
	sch, err := NewSchema(def)
	if err != nil {
		return nil, fmt.Errorf("stored table version %d no longer validates: %w", v.Version, err)
	}
	v.Schema = sch
	return &v, nil
}

func currentTablesTx(ctx context.Context, q pgx.Tx, tenantID int64) (*TableVersion, error) {
	v, err := scanTableVersion(q.QueryRow(ctx, `SELECT `+tableVersionColumns+` FROM syncplane.table_versions
		WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1`, tenantID))
	if errors.Is(err, pgx.ErrNoRows) {
		return &TableVersion{}, ErrNoDefinition
	}
	return v, err
}

// CurrentTables returns the tenant's newest table version, ErrNoDefinition
// when none was applied.
func (s *Store) CurrentTables(ctx context.Context, tenantID int64) (*TableVersion, error) {
	v, err := scanTableVersion(s.db.QueryRow(ctx, `SELECT `+tableVersionColumns+` FROM syncplane.table_versions
		WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1`, tenantID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoDefinition
	}
	if err != nil {
		return nil, fmt.Errorf("read current tables: %w", err)
	}
	return v, nil
}

// TableVersions lists a tenant's table versions, newest first.
func (s *Store) TableVersions(ctx context.Context, tenantID int64) ([]TableVersion, error) {
	rows, err := s.db.Query(ctx, `SELECT `+tableVersionColumns+` FROM syncplane.table_versions
		WHERE tenant_id = $1 ORDER BY version DESC`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list table versions: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (TableVersion, error) {
		v, err := scanTableVersion(r)
		if err != nil {
			return TableVersion{}, err
		}
		return *v, nil
	})
}

package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/syncplane/syncplane/migrations"
)

// ControlSchema is the PostgreSQL schema of the control plane.
const ControlSchema = "syncplane"

const (
	controlMigrationsTable = "schema_migrations"
	tenantMigrationsTable  = "_sync_schema_migrations"
)

// MigrationStatus reports a migration target's version.
type MigrationStatus struct {
	Version  uint
	Dirty    bool
	Expected uint // newest version embedded in this binary
}

// Current reports whether the database is at the version this binary expects.
func (m MigrationStatus) Current() bool { return !m.Dirty && m.Version == m.Expected }

// MigrateControl runs the control-plane migrations forward. golang-migrate
// holds a PostgreSQL advisory lock while it runs, so replicas starting at
// once migrate one after another and the later ones find nothing to do.
func MigrateControl(ctx context.Context, pool *pgxpool.Pool) error {
	// Two replicas may race here; IF NOT EXISTS can still collide on the
	// catalog's unique index, which means the schema exists.
	if _, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{ControlSchema}.Sanitize()); err != nil && !isUniqueViolation(err) {
		return fmt.Errorf("create control schema: %w", err)
	}
	return runMigrations(ctx, pool, ControlSchema, controlMigrationsTable, migrations.Control(), func(m *migrate.Migrate) error {
		return m.Up()
	})
}

// ControlStatus reads the control plane's migration version.
func ControlStatus(ctx context.Context, pool *pgxpool.Pool) (MigrationStatus, error) {
	return migrationStatus(ctx, pool, ControlSchema, controlMigrationsTable, migrations.Control())
}

// MigrateTenantSchema runs the per-tenant migrations inside schema, with the
// version table inside that schema, so version and lock are per tenant.
func MigrateTenantSchema(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	return runMigrations(ctx, pool, schema, tenantMigrationsTable, migrations.Tenant(), func(m *migrate.Migrate) error {
		return m.Up()
	})
}

// TenantSchemaStatus reads a tenant schema's migration version.
func TenantSchemaStatus(ctx context.Context, pool *pgxpool.Pool, schema string) (MigrationStatus, error) {
	return migrationStatus(ctx, pool, schema, tenantMigrationsTable, migrations.Tenant())
}

// openMigrationDB opens a dedicated single-connection database handle whose
// search_path is schema. It is never shared with request traffic.
func openMigrationDB(pool *pgxpool.Pool, schema string) *sql.DB {
	cc := pool.Config().ConnConfig.Copy()
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	db := stdlib.OpenDB(*cc)
	db.SetMaxOpenConns(1)
	return db
}

func newMigrate(db *sql.DB, schema, table string, src fs.FS) (*migrate.Migrate, error) {
	driver, err := migratepgx.WithInstance(db, &migratepgx.Config{SchemaName: schema, MigrationsTable: table})
	if err != nil {
		return nil, fmt.Errorf("open migration driver: %w", err)
	}
	source, err := iofs.New(src, ".")
	if err != nil {
		return nil, fmt.Errorf("open migration source: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", source, "pgx5", driver)
	if err != nil {
		return nil, fmt.Errorf("open migrations: %w", err)
	}
	return m, nil
}

func runMigrations(ctx context.Context, pool *pgxpool.Pool, schema, table string, src fs.FS, step func(*migrate.Migrate) error) error {
	db := openMigrationDB(pool, schema)
	defer db.Close()
	m, err := newMigrate(db, schema, table, src)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	// The driver holds a *sql.Conn that db.Close would wait on forever:
	// close the migrate instance first, or every run leaks a connection.
	defer m.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			m.GracefulStop <- true
		case <-done:
		}
	}()
	if err := step(m); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	return nil
}

func migrationStatus(ctx context.Context, pool *pgxpool.Pool, schema, table string, src fs.FS) (MigrationStatus, error) {
	expected, err := newestVersion(src)
	if err != nil {
		return MigrationStatus{}, err
	}
	st := MigrationStatus{Expected: expected}
	// Read the version table directly: opening a migrate instance would
	// create the table (and the schema must exist for that).
	var exists bool
	err = pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2)`,
		schema, table).Scan(&exists)
	if err != nil {
		return st, fmt.Errorf("read migration status of %s: %w", schema, err)
	}
	if !exists {
		return st, nil
	}
	var v int64
	err = pool.QueryRow(ctx, `SELECT version, dirty FROM `+pgx.Identifier{schema, table}.Sanitize()+` LIMIT 1`).Scan(&v, &st.Dirty)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("read migration status of %s: %w", schema, err)
	}
	st.Version = uint(v)
	return st, nil
}

func newestVersion(src fs.FS) (uint, error) {
	source, err := iofs.New(src, ".")
	if err != nil {
		return 0, fmt.Errorf("open migration source: %w", err)
	}
	defer source.Close()
	v, err := source.First()
	if err != nil {
		return 0, fmt.Errorf("read migrations: %w", err)
	}
	for {
		next, err := source.Next(v)
		if err != nil {
			return v, nil // fs.ErrNotExist: v is the newest
		}
		v = next
	}
}

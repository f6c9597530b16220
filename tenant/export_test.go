package tenant

import (
	"context"

	"github.com/golang-migrate/migrate/v4"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/syncplane/syncplane/migrations"
)

// SetFailpoint makes provisioning call f between its steps (tests only).
func SetFailpoint(s *Store, f func(step string) error) { s.failpoint = f }

// ErrCrash, returned from a failpoint, stops provisioning without clean-up.
var ErrCrash = errCrash

// MigrateTenantSchemaTo migrates schema's tenant migrations up or down to
// version (tests of a migration's upgrade path).
func MigrateTenantSchemaTo(ctx context.Context, pool *pgxpool.Pool, schema string, version uint) error {
	return runMigrations(ctx, pool, schema, tenantMigrationsTable, migrations.Tenant(), func(m *migrate.Migrate) error {
		return m.Migrate(version)
	})
}

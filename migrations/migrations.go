// Package migrations embeds Syncplane's SQL migrations: the shared control
// plane (control/) and the per-tenant sync metadata (tenant/), which runs
// inside every tenant's own PostgreSQL schema.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed control/*.sql
var control embed.FS

//go:embed tenant/*.sql
var tenantFS embed.FS

// Control returns the control-plane migrations, rooted at their directory.
func Control() fs.FS { return mustSub(control, "control") }

// Tenant returns the per-tenant migrations, rooted at their directory. They
// are written against the placeholder schema name and run with search_path
// set to the tenant schema on a dedicated connection.
func Tenant() fs.FS { return mustSub(tenantFS, "tenant") }

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the directory is embedded above; this cannot fail
	}
	return sub
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/syncplane/syncplane/tenant"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := bindSettings(fs, nil)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: syncplane migrate up|status [--database-url URL]")
	}
	if len(args) == 0 || (args[0] != "up" && args[0] != "status") {
		fs.Usage()
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := vals.config()
	if err != nil {
		fmt.Fprintln(stderr, "syncplane migrate:", err)
		return 2
	}
	pool, err := openPool(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		fmt.Fprintln(stderr, "syncplane migrate:", err)
		return 1
	}
	defer pool.Close()
	clusters := tenant.NewClusters(pool)
	defer clusters.Close()
	for name, dsn := range cfg.Clusters {
		if err := clusters.Add(ctx, name, dsn); err != nil {
			fmt.Fprintln(stderr, "syncplane migrate:", err)
			return 1
		}
	}
	store := tenant.NewStore(pool, clusters)
	if args[0] == "up" {
		if err := migrateAll(ctx, store, newLogger(cfg, stderr)); err != nil {
			fmt.Fprintln(stderr, "syncplane migrate:", err)
			return 1
		}
	}
	if err := printMigrationStatus(ctx, store, stdout); err != nil {
		fmt.Fprintln(stderr, "syncplane migrate:", err)
		return 1
	}
	return 0
}

func printMigrationStatus(ctx context.Context, store *tenant.Store, w io.Writer) error {
	st, err := tenant.ControlStatus(ctx, store.DB())
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "TARGET\tVERSION\tEXPECTED\tSTATE")
	fmt.Fprintf(tw, "control plane\t%d\t%d\t%s\n", st.Version, st.Expected, migrationState(st))
	if st.Version == 0 {
		return nil
	}
	tenants, err := store.ListTenants(ctx)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		pool, err := store.PoolFor(&t)
		if err != nil {
			return err
		}
		ts, err := tenant.TenantSchemaStatus(ctx, pool, t.SchemaName())
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "tenant %s (%s)\t%d\t%d\t%s\n", t.Slug, t.SchemaName(), ts.Version, ts.Expected, migrationState(ts))
	}
	return nil
}

func migrationState(s tenant.MigrationStatus) string {
	switch {
	case s.Dirty:
		return "dirty: a migration failed halfway; fix it and force the version"
	case s.Version == s.Expected:
		return "current"
	case s.Version < s.Expected:
		return "behind: run syncplane migrate up"
	default:
		return "ahead of this binary"
	}
}

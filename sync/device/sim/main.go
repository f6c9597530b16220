package sim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
)

// Main is the `syncplane sim` command: it parses args, runs the suite and
// returns the exit code (0 all passed, 1 a scenario failed, 2 bad usage).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", os.Getenv("SYNCPLANE_SIM_URL"), "tenant base URL, http://host/k/<publishable key> (env SYNCPLANE_SIM_URL)")
	secret := fs.String("hs256-secret", os.Getenv("SYNCPLANE_SIM_HS256_SECRET"), "the tenant's HS256 end-user secret, to mint tokens (env SYNCPLANE_SIM_HS256_SECRET)")
	wire := fs.String("wire-schema", "app", "the tenant's wire schema")
	secretKey := fs.String("secret-key", os.Getenv("SYNCPLANE_SIM_SECRET_KEY"), "optional: a secret API key of the tenant, for the server-originated-writes scenario (env SYNCPLANE_SIM_SECRET_KEY)")
	dbURL := fs.String("database-url", "", "optional: PostgreSQL holding the tenant, to compare device rows with the server's")
	pgSchema := fs.String("tenant-schema", "", "the tenant's PostgreSQL schema (t_<slug>), with --database-url")
	run := fs.String("run", "", "regular expression selecting scenarios")
	large := fs.Int("large-rows", 50000, "rows of the large-push scenario")
	dir := fs.String("dir", "", "directory for device databases (default: a temporary one)")
	verbose := fs.Bool("v", false, "print device log lines")
	list := fs.Bool("list", false, "list the scenarios and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: syncplane sim --url URL --hs256-secret S [flags]\n\n"+
			"Runs the end-to-end scenario suite with real SQLite device clients. The tenant needs\n"+
			"the scenario tables (syncplane sim --print-tables) and HS256 end-user auth.\n\n")
		fs.PrintDefaults()
	}
	printTables := fs.Bool("print-tables", false, "print the table definition the scenarios need and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *printTables {
		fmt.Fprintln(stdout, Tables)
		return 0
	}
	if *list {
		for _, s := range Scenarios() {
			fmt.Fprintln(stdout, s.Name)
		}
		return 0
	}
	cfg := Config{BaseURL: *url, HS256Secret: *secret, SecretKey: *secretKey, WireSchema: *wire, Dir: *dir, LargeRows: *large, Out: stdout, Verbose: *verbose}
	if *run != "" {
		re, err := regexp.Compile(*run)
		if err != nil {
			fmt.Fprintln(stderr, "syncplane sim: --run:", err)
			return 2
		}
		cfg.Run = re
	}
	if *dbURL != "" {
		if *pgSchema == "" {
			fmt.Fprintln(stderr, "syncplane sim: --tenant-schema is required with --database-url")
			return 2
		}
		v, err := NewPGVerifier(ctx, *dbURL, *pgSchema)
		if err != nil {
			fmt.Fprintln(stderr, "syncplane sim:", err)
			return 2
		}
		defer v.Close()
		cfg.Verifier = v
	}
	if cfg.BaseURL == "" || cfg.HS256Secret == "" {
		fs.Usage()
		return 2
	}
	_, ok, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "syncplane sim:", err)
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

// Command syncplane runs the Syncplane hosted sync platform: the server
// (serve), a local all-in-one dev mode (dev), migrations and the operator
// CLI for tenants, keys, end-user auth and tables.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/syncplane/syncplane/sync/device/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: syncplane <command> [arguments]

commands:
  serve        run the server (sync gateway, API, console, metrics)
  dev          run everything locally: private PostgreSQL, demo tenant, server
  migrate      up | status: run or show control-plane and tenant migrations
  tenant       manage tenants, API keys, end-user auth and tables (tenant help)
  healthcheck  exit 0 when the local server answers /healthz (for containers)
  sim          run the device scenario suite against a Syncplane URL
  loadgen      generate load: tenants × devices, with a latency and throughput report
  version      print the version

Run "syncplane <command> --help" for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "dev":
		return runDev(ctx, rest, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, stdout, stderr)
	case "tenant":
		return runTenant(ctx, rest, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, rest, stdout, stderr)
	case "loadgen":
		return runLoadgen(ctx, rest, stdout, stderr)
	case "sim":
		return sim.Main(ctx, rest, stdout, stderr)
	case "localpg":
		return runLocalPG(ctx, rest, stdout, stderr)
	case "docs":
		if len(rest) == 1 && rest[0] == "settings" {
			fmt.Fprint(stdout, settingsMarkdown())
			return 0
		}
		fmt.Fprintln(stderr, "usage: syncplane docs settings")
		return 2
	case "version":
		fmt.Fprintln(stdout, "syncplane", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "syncplane: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// newLogger builds the process logger from the configuration.
func newLogger(cfg config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openPool connects to PostgreSQL and checks the connection.
func openPool(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	if url == "" {
		return nil, fmt.Errorf("no database: set SYNCPLANE_DATABASE_URL or --database-url")
	}
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	pc.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return pool, nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/syncplane/syncplane/tenant"
)

// demoTables is the example table set of the dev demo tenant.
const demoTables = `{"tables": [
  {"name": "users", "sync_key": "id", "columns": [
    {"name": "id", "type": "uuid"},
    {"name": "name", "type": "text"},
    {"name": "email", "type": "text", "nullable": true},
    {"name": "created_at", "type": "timestamp"}]},
  {"name": "notes", "sync_key": "id", "columns": [
    {"name": "id", "type": "uuid"},
    {"name": "user_id", "type": "uuid"},
    {"name": "title", "type": "text"},
    {"name": "body", "type": "text", "nullable": true},
    {"name": "pinned", "type": "integer", "default": 0},
    {"name": "attachment", "type": "blob", "nullable": true},
    {"name": "meta", "type": "json", "nullable": true},
    {"name": "updated_at", "type": "timestamp"}],
   "foreign_keys": [{"column": "user_id", "references": "users", "on_delete": "cascade"}],
   "indexes": [{"columns": ["user_id"]}]}
]}`

const demoSlug = "demo"

// demoCredentials are the dev demo tenant's keys, kept in the project-local
// data directory so a restart prints the same banner.
type demoCredentials struct {
	PublishableKey string `json:"publishable_key"`
	SecretKey      string `json:"secret_key"`
	HS256Secret    string `json:"hs256_secret"`
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := bindSettings(fs, nil)
	dataDir := fs.String("data-dir", ".syncplane", "project-local directory for the private PostgreSQL cluster and demo keys")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: syncplane dev [--data-dir .syncplane] [flags]\n\n"+
			"Runs Syncplane locally: without SYNCPLANE_DATABASE_URL it starts a private PostgreSQL\n"+
			"cluster under --data-dir, migrates, creates the demo tenant and serves it.\n\n")
		printSettings(stderr)
	}
	cfg, code, ok := parseConfig("dev", fs, vals, args, stderr)
	if !ok {
		return code
	}
	cfg.AutoMigrate = true
	cfg.JWKSAllowPrivate = true // a local identity provider is the normal dev setup
	if cfg.DefaultTenant == "" {
		cfg.DefaultTenant = demoSlug
	}
	log := newLogger(cfg, stderr)
	slog.SetDefault(log) // the packages' own logs (request failures, cache, jobs) in the same format and level
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		fmt.Fprintln(stderr, "syncplane dev:", err)
		return 1
	}

	if cfg.DatabaseURL == "" {
		pg, err := StartLocalPG(ctx, filepath.Join(dir, "pg"), stderr)
		if err != nil {
			fmt.Fprintln(stderr, "syncplane dev: start PostgreSQL:", err)
			return 1
		}
		defer func() {
			fmt.Fprintln(stderr, "stopping PostgreSQL…")
			if err := pg.Stop(context.WithoutCancel(ctx)); err != nil {
				fmt.Fprintln(stderr, "syncplane dev: stop PostgreSQL:", err)
			}
		}()
		if err := pg.EnsureDatabase(ctx, "syncplane"); err != nil {
			fmt.Fprintln(stderr, "syncplane dev:", err)
			return 1
		}
		cfg.DatabaseURL = pg.URL("syncplane")
	}

	if cfg.Sealer == nil {
		if cfg.Sealer, err = devSealer(dir); err != nil {
			fmt.Fprintln(stderr, "syncplane dev:", err)
			return 1
		}
	}
	creds, err := prepareDemo(ctx, cfg, dir)
	if err != nil {
		fmt.Fprintln(stderr, "syncplane dev:", err)
		return 1
	}
	listening := make(chan string, 1)
	go func() {
		select {
		case addr := <-listening:
			printBanner(stdout, cfg, addr, creds)
		case <-ctx.Done():
		}
	}()
	if err := serve(ctx, cfg, log, listening); err != nil {
		fmt.Fprintln(stderr, "syncplane dev:", err)
		return 1
	}
	return 0
}

// devSealer returns the seal key kept in dir/seal.key, made on first use:
// dev mode seals HS256 secrets as production does, without asking for
// SYNCPLANE_SEAL_KEYS.
func devSealer(dir string) (*tenant.Sealer, error) {
	path := filepath.Join(dir, "seal.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		b = []byte(tenant.NewSealKey() + "\n")
		err = os.WriteFile(path, b, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("dev seal key: %w", err)
	}
	s, err := tenant.ParseSealKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("dev seal key %s: %w", path, err)
	}
	return s, nil
}

// prepareDemo migrates and makes sure the demo tenant exists with keys, an
// HS256 end-user secret and the example tables.
func prepareDemo(ctx context.Context, cfg config, dir string) (*demoCredentials, error) {
	store, closeStore, err := openStore(ctx, cfg.DatabaseURL, cfg.Sealer)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	if err := tenant.MigrateControl(ctx, store.DB()); err != nil {
		return nil, err
	}
	actor := tenant.Actor{Name: "dev", RemoteAddr: "local"}
	t, err := store.Tenant(ctx, demoSlug)
	if errors.Is(err, tenant.ErrNotFound) {
		t, err = store.CreateTenant(ctx, tenant.NewTenant{Slug: demoSlug, Name: "Demo app", WireSchema: "app", Plan: "pro"}, actor)
	}
	if err != nil {
		return nil, fmt.Errorf("demo tenant: %w", err)
	}
	if t.State == tenant.StateSuspended {
		if _, err := store.SetState(ctx, demoSlug, tenant.StateActive, actor); err != nil {
			return nil, err
		}
	}
	def, err := tenant.ParseDefinition([]byte(demoTables))
	if err != nil {
		return nil, err
	}
	if _, err := store.ApplyTables(ctx, t.ID, def, tenant.ApplyOptions{}, actor); err != nil {
		return nil, fmt.Errorf("demo tables: %w", err)
	}

	path := filepath.Join(dir, "dev", "demo.json")
	creds, err := loadDemoCredentials(ctx, store, t, path)
	if err == nil {
		return creds, nil
	}
	// First start, or the saved keys no longer work: issue fresh ones.
	creds = &demoCredentials{}
	if creds.PublishableKey, _, err = store.CreateKey(ctx, t.ID, tenant.KeyPublishable, "dev demo app", actor); err != nil {
		return nil, err
	}
	if creds.SecretKey, _, err = store.CreateKey(ctx, t.ID, tenant.KeySecret, "dev demo backend", actor); err != nil {
		return nil, err
	}
	if creds.HS256Secret, err = tenant.GenerateHS256Secret(); err != nil {
		return nil, err
	}
	if err := store.SetAuth(ctx, t.ID, tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{creds.HS256Secret}}, actor); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(creds, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("save demo keys: %w", err)
	}
	return creds, nil
}

// loadDemoCredentials reads saved demo keys and checks they still work.
func loadDemoCredentials(ctx context.Context, store *tenant.Store, t *tenant.Tenant, path string) (*demoCredentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c demoCredentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	for _, k := range []string{c.PublishableKey, c.SecretKey} {
		rec, err := store.LookupKey(ctx, k)
		if err != nil || rec.Revoked || rec.TenantID != t.ID {
			return nil, errors.New("saved demo key no longer valid")
		}
	}
	a, _, err := store.Auth(ctx, t.ID)
	if err != nil || a.Mode != tenant.AuthHS256 || len(a.HS256Secrets) == 0 || a.HS256Secrets[0] != c.HS256Secret {
		return nil, errors.New("saved demo auth no longer valid")
	}
	return &c, nil
}

// mintDemoToken signs an end-user token for the demo tenant.
func mintDemoToken(secret, sub string, ttl time.Duration) (string, error) {
	now := time.Now()
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: sub, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}).SignedString([]byte(secret))
}

func printBanner(w io.Writer, cfg config, addr string, c *demoCredentials) {
	base := cfg.PublicURL
	if strings.HasPrefix(cfg.HTTPAddr, ":") && base == "http://localhost:8080" {
		base = "http://localhost" + cfg.HTTPAddr
	}
	token, err := mintDemoToken(c.HS256Secret, "demo-user", 30*24*time.Hour)
	if err != nil {
		token = "<mint failed: " + err.Error() + ">"
	}
	fmt.Fprintf(w, `
  Syncplane is running (dev mode, listening on %s)

  Console          %s/console  (sign up: the first account is the platform operator)
  Sync base URL    %s/k/%s
  Tenant           demo (wire schema "app"; tables users, notes)
  Publishable key  %s
  Secret key       %s
  HS256 secret     %s
  Demo user token  %s
                   (sub "demo-user", valid 30 days)

  Try it:
    curl -s -H 'Authorization: Bearer %s' \
         -H 'Oversync-Source-ID: demo-device-1' \
         %s/k/%s/sync/capabilities

  Press Ctrl-C to stop (PostgreSQL stops with it; data stays in .syncplane/).

`, addr, base, base, c.PublishableKey, c.PublishableKey, c.SecretKey, c.HS256Secret, token, token, base, c.PublishableKey)
}

// Package tenanttest gives tests a real PostgreSQL control plane and
// throw-away tenants. Tests skip when SYNCPLANE_TEST_DATABASE_URL is unset;
// the project's test command (scripts/test.sh) always sets it.
package tenanttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/syncplane/syncplane/tenant"
)

// EnvURL names the variable holding the test database URL.
const EnvURL = "SYNCPLANE_TEST_DATABASE_URL"

// Actor is the audit actor of test changes.
var Actor = tenant.Actor{Name: "test", RemoteAddr: "127.0.0.1"}

// DatabaseURL returns the test database URL or skips the test.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Skip(EnvURL + " is not set; run ./scripts/test.sh")
	}
	return u
}

// Pool connects to the test database with the control plane migrated. The
// pool's search_path is empty so unqualified runtime SQL fails loudly.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return PoolFor(t, DatabaseURL(t))
}

// PoolFor is Pool for a specific database URL.
func PoolFor(t testing.TB, dbURL string) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvURL, err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = ""
	cfg.MaxConns = 10
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect test database: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := tenant.MigrateControl(ctx, pool); err != nil {
		t.Fatalf("migrate control plane: %v", err)
	}
	return pool
}

// Store returns a control-plane store over Pool.
func Store(t testing.TB) *tenant.Store {
	t.Helper()
	pool := Pool(t)
	clusters := tenant.NewClusters(pool)
	t.Cleanup(clusters.Close) // its request shards; before the pool closes
	return tenant.NewStore(pool, clusters)
}

// RandomSlug returns a fresh, valid tenant slug with the given prefix.
func RandomSlug(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// Tenant creates a tenant with a random slug (and, when definition is not
// empty, its tables) and deletes it when the test ends.
func Tenant(t testing.TB, store *tenant.Store, definition string) *tenant.Tenant {
	t.Helper()
	ctx := context.Background()
	// Tests that need quotas set them; the rest must not trip over a plan.
	tn, err := store.CreateTenant(ctx, tenant.NewTenant{Slug: RandomSlug("t"), Plan: "unlimited"}, Actor)
	if err != nil {
		t.Fatalf("create tenant: %v", err)
	}
	t.Cleanup(func() {
		if err := store.DeleteTenant(context.Background(), string(tn.Slug), Actor); err != nil {
			t.Errorf("delete tenant %s: %v", tn.Slug, err)
		}
	})
	if definition != "" {
		ApplyTables(t, store, tn, definition)
	}
	return tn
}

// ApplyTables applies a definition document to a tenant.
func ApplyTables(t testing.TB, store *tenant.Store, tn *tenant.Tenant, definition string) *tenant.ApplyResult {
	t.Helper()
	def, err := tenant.ParseDefinition([]byte(definition))
	if err != nil {
		t.Fatalf("parse definition: %v", err)
	}
	res, err := store.ApplyTables(context.Background(), tn.ID, def, tenant.ApplyOptions{}, Actor)
	if err != nil {
		t.Fatalf("apply tables: %v", err)
	}
	return res
}

// FreshDatabase creates an empty database next to the test database and
// drops it when the test ends; it returns its URL.
func FreshDatabase(t testing.TB) string {
	t.Helper()
	base := DatabaseURL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	name := RandomSlug("sp_fresh")
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("connect: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		// Keyword/value form: replace or append dbname.
		return replaceDBName(base, name)
	}
	u.Path = "/" + name
	return u.String()
}

func replaceDBName(dsn, name string) string {
	var parts []string
	for _, f := range strings.Fields(dsn) {
		if !strings.HasPrefix(f, "dbname=") {
			parts = append(parts, f)
		}
	}
	return strings.Join(append(parts, fmt.Sprintf("dbname=%s", name)), " ")
}

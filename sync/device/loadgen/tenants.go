package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/errgroup"

	"github.com/syncplane/syncplane/tenant"
)

// Tables is the table definition the generator writes to. Tenants it
// creates get it; tenants named in a tenants file must have it applied
// (syncplane tenant tables apply <slug> --file …, see PrintTables).
const Tables = `{"tables": [
  {"name": "items", "sync_key": "id", "columns": [
    {"name": "id", "type": "uuid"},
    {"name": "title", "type": "text"},
    {"name": "body", "type": "text", "nullable": true},
    {"name": "n", "type": "integer", "default": 0},
    {"name": "score", "type": "real", "nullable": true},
    {"name": "updated_at", "type": "timestamp"}]}
]}`

// Schema returns Tables as a validated schema.
func Schema() (*tenant.Schema, error) {
	def, err := tenant.ParseDefinition([]byte(Tables))
	if err != nil {
		return nil, err
	}
	return tenant.NewSchema(def)
}

// Tenant is how the generator reaches one tenant: its publishable key and
// an HS256 end-user secret to mint tokens with.
type Tenant struct {
	Slug           string `json:"slug,omitempty"`
	PublishableKey string `json:"publishable_key"`
	HS256Secret    string `json:"hs256_secret"`
	WireSchema     string `json:"wire_schema,omitempty"` // default "app"
	// Noisy marks the tenant that floods at its rate limit (--noisy).
	Noisy bool `json:"noisy,omitempty"`
}

// TenantsFile is the JSON document of --tenants-file and --write-tenants.
type TenantsFile struct {
	Tenants []Tenant `json:"tenants"`
}

// ReadTenantsFile reads a tenants file.
func ReadTenantsFile(path string) ([]Tenant, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f TenantsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("read tenants file %s: %w", path, err)
	}
	for i, t := range f.Tenants {
		if t.PublishableKey == "" || t.HS256Secret == "" {
			return nil, fmt.Errorf("tenants file %s: tenant %d needs publishable_key and hs256_secret", path, i)
		}
	}
	return f.Tenants, nil
}

// WriteTenantsFile writes a tenants file (mode 0600: it holds secrets).
func WriteTenantsFile(path string, ts []Tenant) error {
	data, err := json.MarshalIndent(TenantsFile{Tenants: ts}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o600)
}

func (t Tenant) wire() string {
	if t.WireSchema == "" {
		return "app"
	}
	return t.WireSchema
}

// token mints an end-user token for user, valid for a day.
func (t Tenant) token(user string) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "exp": time.Now().Add(24 * time.Hour).Unix(),
	}).SignedString([]byte(t.HS256Secret))
}

// Provision describes tenants to create through the control-plane store.
type Provision struct {
	// Count tenants are created on Plan (default "unlimited").
	Count int
	Plan  string
	// NoisyRPS, when > 0, adds one more tenant flagged Noisy whose request
	// rate is limited to NoisyRPS per second (burst NoisyBurst, default
	// twice the rate).
	NoisyRPS   float64
	NoisyBurst int64
	// Prefix starts every slug (default "lg"); a random run id follows.
	Prefix string
	// Parallel creations at once (default 4).
	Parallel int
	// Progress, if set, is called after each tenant.
	Progress func()
}

var actor = tenant.Actor{Name: "cli:loadgen", RemoteAddr: "local"}

// CreateTenants creates the tenants of p with the generator's tables, a
// publishable key and an HS256 secret each. The caller deletes them with
// DeleteTenants when done.
func CreateTenants(ctx context.Context, store *tenant.Store, p Provision) ([]Tenant, error) {
	if p.Plan == "" {
		p.Plan = "unlimited"
	}
	if p.Prefix == "" {
		p.Prefix = "lg"
	}
	if p.Parallel <= 0 {
		p.Parallel = 4
	}
	def, err := tenant.ParseDefinition([]byte(Tables))
	if err != nil {
		return nil, err
	}
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	run := hex.EncodeToString(rb[:])
	n := p.Count
	if p.NoisyRPS > 0 {
		n++
	}
	out := make([]Tenant, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.Parallel)
	for i := range n {
		g.Go(func() error {
			noisy := p.NoisyRPS > 0 && i == n-1
			slug := fmt.Sprintf("%s_%s_%d", p.Prefix, run, i)
			if noisy {
				slug = fmt.Sprintf("%s_%s_noisy", p.Prefix, run)
			}
			tn, err := store.CreateTenant(gctx, tenant.NewTenant{Slug: slug, Plan: p.Plan}, actor)
			if err != nil {
				return fmt.Errorf("create tenant %s: %w", slug, err)
			}
			if _, err := store.ApplyTables(gctx, tn.ID, def, tenant.ApplyOptions{}, actor); err != nil {
				return fmt.Errorf("apply tables to %s: %w", slug, err)
			}
			pk, _, err := store.CreateKey(gctx, tn.ID, tenant.KeyPublishable, "loadgen", actor)
			if err != nil {
				return fmt.Errorf("create key for %s: %w", slug, err)
			}
			secret, err := tenant.GenerateHS256Secret()
			if err != nil {
				return err
			}
			if err := store.SetAuth(gctx, tn.ID, tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{secret}}, actor); err != nil {
				return fmt.Errorf("set auth of %s: %w", slug, err)
			}
			if noisy {
				burst := p.NoisyBurst
				if burst <= 0 {
					burst = int64(2 * p.NoisyRPS)
				}
				rps := p.NoisyRPS
				if err := store.SetQuota(gctx, tn.ID, p.Plan, tenant.QuotaOverride{RequestsPerSecond: &rps, RequestBurst: &burst},
					store.Plans(), actor); err != nil {
					return fmt.Errorf("set quota of %s: %w", slug, err)
				}
			}
			out[i] = Tenant{Slug: slug, PublishableKey: pk, HS256Secret: secret, WireSchema: tn.WireSchema, Noisy: noisy}
			if p.Progress != nil {
				p.Progress()
			}
			return nil
		})
	}
	err = g.Wait()
	if err != nil {
		// Remove what was created.
		var made []Tenant
		for _, t := range out {
			if t.Slug != "" {
				made = append(made, t)
			}
		}
		return nil, errors.Join(err, DeleteTenants(context.WithoutCancel(ctx), store, made))
	}
	return out, nil
}

// DeleteTenants deletes tenants by slug (their schemas and keys).
func DeleteTenants(ctx context.Context, store *tenant.Store, ts []Tenant) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, t := range ts {
		if t.Slug == "" {
			continue
		}
		g.Go(func() error {
			if err := store.DeleteTenant(gctx, t.Slug, actor); err != nil && !errors.Is(err, tenant.ErrNotFound) {
				return fmt.Errorf("delete tenant %s: %w", t.Slug, err)
			}
			return nil
		})
	}
	return g.Wait()
}

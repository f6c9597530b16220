// Package tenant is Syncplane's domain root: tenants, their API keys, end-user
// auth settings, table definitions and quotas, the control-plane store, and
// the provisioning of each tenant's own PostgreSQL schema.
package tenant

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Slug is a validated tenant slug: ^[a-z][a-z0-9_]{0,29}$ and not reserved.
// A Slug value is the only thing that ever becomes a tenant schema name.
type Slug string

var slugPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,29}$`)

// reservedSlugs are refused because they would read as platform paths,
// PostgreSQL internals or each other's look-alikes in URLs and logs.
var reservedSlugs = map[string]bool{
	"admin": true, "api": true, "app": true, "console": true, "default": true,
	"internal": true, "k": true, "metrics": true, "pg": true, "postgres": true,
	"public": true, "root": true, "static": true, "sync": true, "syncplane": true,
	"syncx": true, "system": true, "template0": true, "template1": true, "www": true,
}

// ParseSlug validates s as a tenant slug.
func ParseSlug(s string) (Slug, error) {
	if !slugPattern.MatchString(s) {
		return "", &ValidationError{Field: "slug", Message: fmt.Sprintf(
			"slug %q is invalid: use 1-30 characters, lowercase letters, digits and underscores, starting with a letter", s)}
	}
	if reservedSlugs[s] || len(s) >= 3 && s[:3] == "pg_" {
		return "", &ValidationError{Field: "slug", Message: fmt.Sprintf("slug %q is reserved; choose another", s)}
	}
	return Slug(s), nil
}

// SchemaName is the tenant's PostgreSQL schema, t_<slug>.
func (s Slug) SchemaName() string { return "t_" + string(s) }

// State is a tenant's lifecycle state.
type State string

// Tenant states. Provisioning and deleting tenants serve no traffic.
const (
	StateProvisioning State = "provisioning"
	StateActive       State = "active"
	StateSuspended    State = "suspended"
	StateDeleting     State = "deleting"
)

// Tenant is one app signed up on Syncplane.
type Tenant struct {
	ID         int64
	Slug       Slug
	Name       string
	State      State
	WireSchema string // schema name clients use on the wire, e.g. "app"
	Placement  string // which PostgreSQL cluster holds the tenant schema
	Plan       string
	// WatchEnabled offers GET /sync/watch to this tenant's clients.
	WatchEnabled bool
	// RetainedBundles is the per-user retained window (SYNC_PROTOCOL 8.6).
	RetainedBundles int
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// SchemaName is the tenant's PostgreSQL schema, t_<slug>.
func (t *Tenant) SchemaName() string { return t.Slug.SchemaName() }

var wireSchemaPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// ValidateWireSchema checks the schema name clients use on the wire.
func ValidateWireSchema(s string) error {
	if !wireSchemaPattern.MatchString(s) {
		return &ValidationError{Field: "wire_schema", Message: fmt.Sprintf(
			"wire schema %q is invalid: use lowercase letters, digits and underscores, starting with a letter", s)}
	}
	return nil
}

// ValidationError is bad input with a message safe to show to the person who
// sent it.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Message }

// Domain errors. Callers map them to statuses in one place.
var (
	ErrNotFound      = errors.New("not found")
	ErrTenantExists  = errors.New("tenant already exists")
	ErrNoDefinition  = errors.New("tenant has no table definition yet")
	ErrInvalidAPIKey = errors.New("invalid api key")
)

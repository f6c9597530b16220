package server

import (
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/syncplane/syncplane/tenant"
)

// SyncScope is what the gateway resolved for one sync request.
type SyncScope struct {
	Tenant *tenant.Tenant
	// Pool is the pool of the cluster holding Tenant's schema.
	Pool *pgxpool.Pool
	// Schema is the current table definition; nil when none is applied yet.
	Schema *tenant.Schema
	// SchemaVersion is the current table-definition version (0 when none).
	SchemaVersion int
	// UserID is the end-user JWT subject; empty on unauthenticated routes.
	UserID string
	// Limits are the tenant's effective quotas (zero: unlimited).
	Limits tenant.Limits
	// KeyKind is the kind of API key the request presented ("" for the dev
	// default tenant).
	KeyKind tenant.KeyKind

	auth        *tenant.AuthSettings
	authUpdated time.Time
}

const scopeKey = "syncplane.scope"

// WithScope stores s on the request (the gateway does this; tests may too).
func WithScope(c *gin.Context, s *SyncScope) { c.Set(scopeKey, s) }

// ScopeFrom returns the request's scope, or nil outside gateway routes.
func ScopeFrom(c *gin.Context) *SyncScope {
	v, ok := c.Get(scopeKey)
	if !ok {
		return nil
	}
	s, _ := v.(*SyncScope)
	return s
}

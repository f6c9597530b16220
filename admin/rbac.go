package admin

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	stringadapter "github.com/casbin/casbin/v2/persist/string-adapter"
)

// Action is something a role may be allowed to do in a tenant.
type Action string

// The actions the console and the management API check.
const (
	ActTenantRead     Action = "tenant.read"
	ActTenantSettings Action = "tenant.settings"
	ActTenantSuspend  Action = "tenant.suspend"
	ActTenantDelete   Action = "tenant.delete"
	ActKeysRead       Action = "keys.read"
	ActKeysWrite      Action = "keys.write"
	ActAuthRead       Action = "auth.read"
	ActAuthWrite      Action = "auth.write"
	ActAuthTest       Action = "auth.test"
	ActAuthMint       Action = "auth.mint"
	ActTablesRead     Action = "tables.read"
	ActTablesWrite    Action = "tables.write"
	ActMembersRead    Action = "members.read"
	ActMembersWrite   Action = "members.write"
	ActAuditRead      Action = "audit.read"
	ActDevicesRead    Action = "devices.read"
	ActDevicesWrite   Action = "devices.write"
	ActQuotaRead      Action = "quota.read"
	ActQuotaWrite     Action = "quota.write"
	ActUsageRead      Action = "usage.read"
	// ActUsageAll exports every tenant's usage (billing); it is checked for
	// the platform operator role, not a tenant membership.
	ActUsageAll Action = "usage.all"
)

// Actions lists every action, for tests and documentation.
var Actions = []Action{ActTenantRead, ActTenantSettings, ActTenantSuspend, ActTenantDelete, ActKeysRead, ActKeysWrite,
	ActAuthRead, ActAuthWrite, ActAuthTest, ActAuthMint, ActTablesRead, ActTablesWrite, ActMembersRead, ActMembersWrite,
	ActAuditRead, ActDevicesRead, ActDevicesWrite, ActQuotaRead, ActQuotaWrite, ActUsageRead, ActUsageAll}

//go:embed rbac_model.conf
var rbacModel string

//go:embed rbac_policy.csv
var rbacPolicy string

// Policy decides whether a role may perform an action. The model and the
// policy are embedded; which role a person has comes from the database.
type Policy struct {
	e *casbin.Enforcer
}

// NewPolicy loads the embedded model and policy.
func NewPolicy() (*Policy, error) {
	m, err := model.NewModelFromString(rbacModel)
	if err != nil {
		return nil, fmt.Errorf("load rbac model: %w", err)
	}
	// The string adapter reads lines separated by newlines; drop comments.
	var lines []string
	for _, l := range strings.Split(rbacPolicy, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	e, err := casbin.NewEnforcer(m, stringadapter.NewAdapter(strings.Join(lines, "\n")))
	if err != nil {
		return nil, fmt.Errorf("load rbac policy: %w", err)
	}
	return &Policy{e: e}, nil
}

// Allowed reports whether role may perform act. The empty role (no
// membership) is never allowed anything.
func (p *Policy) Allowed(role Role, act Action) bool {
	if role == "" {
		return false
	}
	ok, err := p.e.Enforce(string(role), string(act))
	return err == nil && ok
}

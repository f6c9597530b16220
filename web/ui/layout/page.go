// Package layout is the console's shell: top bar, tenant navigation and the
// frame every page renders into.
package layout

import (
	"github.com/syncplane/syncplane/web/ui/components"
)

// Page is what the shell needs from a page.
type Page struct {
	Title   string
	Tenant  *TenantNav // nil outside a tenant
	Section string     // active navigation entry, e.g. "keys"
	Flashes []components.Flash
}

// TenantNav is the tenant the page belongs to, for the side navigation.
type TenantNav struct {
	Slug  string
	Name  string
	State string
	Role  string
}

// NavItem is one entry of the tenant navigation.
type NavItem struct {
	Section string
	Label   string
	Path    string
}

// Items returns the tenant navigation entries.
func (t *TenantNav) Items() []NavItem {
	base := "/console/t/" + t.Slug
	return []NavItem{
		{"overview", "Overview", base},
		{"keys", "API keys", base + "/keys"},
		{"auth", "End-user auth", base + "/auth"},
		{"tables", "Tables", base + "/tables"},
		{"devices", "Devices", base + "/devices"},
		{"data", "Data", base + "/data"},
		{"quota", "Quotas", base + "/quota"},
		{"usage", "Usage", base + "/usage"},
		{"members", "Members", base + "/members"},
		{"audit", "Audit log", base + "/audit"},
		{"settings", "Settings", base + "/settings"},
	}
}

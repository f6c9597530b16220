// Package tenants holds the tenant list, creation, overview and settings pages.
package tenants

import (
	"time"

	"github.com/syncplane/syncplane/web/ui/components"
	"github.com/syncplane/syncplane/web/ui/layout"
)

// Row is one tenant in the list.
type Row struct {
	Slug       string
	Name       string
	State      string
	WireSchema string
	Role       string // the viewer's role; "operator" for operators without membership
	Created    time.Time
}

// ListView is the tenant list.
type ListView struct {
	Rows    []Row
	Query   string
	Sort    string
	Flashes []components.Flash
}

// NewView is the tenant creation form.
type NewView struct {
	Slug       string
	Name       string
	WireSchema string
	Errors     components.FieldErrors
}

// OverviewView is a tenant's landing page.
type OverviewView struct {
	Page          layout.Page
	WireSchema    string
	Plan          string
	Created       time.Time
	ActiveKeys    int
	TableVersion  int
	Tables        int
	AuthMode      string
	GatewayPrefix string // e.g. "http://localhost:8080/k/"
	// Usage; UsageError is set when the sync metadata could not be read.
	ActiveToday int
	Active30d   int
	Devices     int
	Storage     string
	BundleBars  []components.Bar
	RowBars     []components.Bar
	UsageError  string
	// Quotas of the tenant's plan; empty when they could not be read.
	QuotaPlan string
	Quotas    []QuotaRow
}

// QuotaRow is one limit: what is used (when known) and the cap.
type QuotaRow struct {
	Name  string
	Used  string
	Limit string // "unlimited" for zero
}

// SettingsView is a tenant's settings page.
type SettingsView struct {
	Page       layout.Page
	Slug       string
	Name       string
	State      string
	WireSchema string
	Placement  string
	Plan       string
	CanSuspend bool
	CanDelete  bool
	Errors     components.FieldErrors
}

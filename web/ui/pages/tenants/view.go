// Package tenants holds the tenant list, creation, overview, settings,
// quota and usage pages.
package tenants

import (
	"strconv"
	"time"

	"github.com/syncplane/syncplane/tenant"

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
	// NearLimit names the quotas at 80% or more of their limit; nil when
	// none are or the use was not measured in time.
	NearLimit []string
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
	Key   string // the limit's JSON name, also its form field
	Name  string
	Used  string // empty when not measured
	Limit string // "unlimited" for zero
	// Metered is set when the limit is set and its use is known; Ratio is
	// use/limit (may exceed 1), Percent the same rounded, Near ≥ 80%.
	Metered bool
	Ratio   float64
	Percent int
	Near    bool
	// PlanValue is the plan's value; Override the tenant's own, as typed in
	// the form (empty: the plan's value applies).
	PlanValue  string
	Override   string
	Overridden bool
}

// NearAny reports whether any row is near its limit.
func NearAny(rows []QuotaRow) bool {
	for _, r := range rows {
		if r.Near {
			return true
		}
	}
	return false
}

func nearPercent() string { return strconv.Itoa(int(tenant.NearLimit*100)) + "%" }

// QuotaView is a tenant's quotas page: limits with current use, and for
// platform operators the form that changes them.
type QuotaView struct {
	Page     layout.Page
	Plan     string
	Selected string // the plan selected in the form
	Plans    []string
	Rows     []QuotaRow
	UseError string    // set when the current use could not be measured
	Measured time.Time // when the use was measured
	CanWrite bool
	Errors   components.FieldErrors
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
	// WatchEnabled and RetainedBundles (as typed when the form is refused)
	// are editable by owners and admins (CanEdit).
	WatchEnabled    bool
	RetainedBundles string
	CanEdit         bool
	CanSuspend      bool
	CanDelete       bool
	Errors          components.FieldErrors
}

// UsageView is a tenant's metered usage: charts per day or per hour,
// totals for the period and export links.
type UsageView struct {
	Page       layout.Page
	By         string // "day" or "hour"
	Period     string // e.g. "2026-10-27 – 2026-11-25 (UTC)"
	Charts     []UsageChart
	Totals     []UsageTotal
	Endpoints  []UsageTotal // requests by endpoint, most first
	Empty      bool         // no usage recorded in the period
	ExportCSV  string
	ExportJSON string
}

// UsageChart is one metered figure over the period.
type UsageChart struct {
	Title  string
	TestID string
	Bars   []components.Bar
}

// UsageTotal is one figure summed over the period.
type UsageTotal struct {
	Name  string
	Value string
}

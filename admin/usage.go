package admin

import (
	"bytes"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/server"
	"github.com/syncplane/syncplane/web/ui/components"
	"github.com/syncplane/syncplane/web/ui/pages/tenants"
)

// Export ranges are whole UTC days, bounded so one export stays a bounded
// read: a tenant may export a year, the all-tenant billing export a month
// (it is one row per tenant per hour).
const (
	usageDefaultDays   = 30
	usageMaxDaysTenant = 366
	usageMaxDaysAll    = 31
	dateLayout         = "2006-01-02"
)

// usageQuery is a validated export request: [From, To) in UTC hours.
type usageQuery struct {
	From, To time.Time // To is the day after the last day asked for
	Format   string    // "json" or "csv"
}

// parseUsageQuery reads from=YYYY-MM-DD&to=YYYY-MM-DD (both days
// included; default the last 30 days up to today) and format=json|csv.
func parseUsageQuery(gc *gin.Context, now time.Time, maxDays int) (usageQuery, error) {
	today := now.UTC().Truncate(24 * time.Hour)
	q := usageQuery{Format: gc.DefaultQuery("format", "json")}
	if q.Format != "json" && q.Format != "csv" {
		return q, &tenant.ValidationError{Field: "format", Message: "format must be json or csv"}
	}
	last := today
	if s := gc.Query("to"); s != "" {
		d, err := time.Parse(dateLayout, s)
		if err != nil {
			return q, &tenant.ValidationError{Field: "to", Message: "to must be a date such as " + today.Format(dateLayout)}
		}
		last = d
	}
	first := last.AddDate(0, 0, -(min(usageDefaultDays, maxDays) - 1))
	if s := gc.Query("from"); s != "" {
		d, err := time.Parse(dateLayout, s)
		if err != nil {
			return q, &tenant.ValidationError{Field: "from", Message: "from must be a date such as " + first.Format(dateLayout)}
		}
		first = d
	}
	switch days := int(last.Sub(first).Hours()/24) + 1; {
	case days < 1:
		return q, &tenant.ValidationError{Field: "to", Message: "to must not be before from"}
	case days > maxDays:
		return q, &tenant.ValidationError{Field: "from", Message: "export at most " + strconv.Itoa(maxDays) + " days at a time"}
	}
	q.From, q.To = first, last.AddDate(0, 0, 1)
	return q, nil
}

// apiUsage is the JSON export: one row per tenant per hour.
type apiUsage struct {
	From string            `json:"from"`
	To   string            `json:"to"`
	Rows []tenant.UsageRow `json:"rows"`
}

// writeUsage answers an export in the asked format; name goes into the
// CSV file name.
func writeUsage(gc *gin.Context, q usageQuery, rows []tenant.UsageRow, name string) error {
	from, to := q.From.Format(dateLayout), q.To.AddDate(0, 0, -1).Format(dateLayout)
	if rows == nil {
		rows = []tenant.UsageRow{}
	}
	for i := range rows {
		if rows[i].ByEndpoint == nil {
			rows[i].ByEndpoint = map[string]int64{}
		}
	}
	if q.Format == "json" {
		gc.JSON(http.StatusOK, apiUsage{From: from, To: to, Rows: rows})
		return nil
	}
	var buf bytes.Buffer
	if err := tenant.WriteUsageCSV(&buf, rows); err != nil {
		return err
	}
	gc.Header("Content-Disposition", `attachment; filename="syncplane-usage-`+name+from+`-`+to+`.csv"`)
	gc.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
	return nil
}

// apiTenantUsage exports one tenant's hourly usage.
func (c *Console) apiTenantUsage(gc *gin.Context) error {
	q, err := parseUsageQuery(gc, c.now(), usageMaxDaysTenant)
	if err != nil {
		return err
	}
	t := accessFrom(gc).Tenant
	rows, err := c.store.Usage(gc.Request.Context(), t.ID, q.From, q.To)
	if err != nil {
		return err
	}
	return writeUsage(gc, q, rows, string(t.Slug)+"-")
}

// apiAllUsage exports every tenant's hourly usage: the billing export,
// for platform operators only.
func (c *Console) apiAllUsage(gc *gin.Context) error {
	p := principalFrom(gc)
	if p.Account == nil || !p.Account.Operator || !c.policy.Allowed(RoleOperator, ActUsageAll) {
		return server.NewError(http.StatusForbidden, "forbidden", "only platform operators export the usage of every tenant")
	}
	q, err := parseUsageQuery(gc, c.now(), usageMaxDaysAll)
	if err != nil {
		return err
	}
	rows, err := c.store.Usage(gc.Request.Context(), 0, q.From, q.To)
	if err != nil {
		return err
	}
	return writeUsage(gc, q, rows, "")
}

// consoleUsageExport is the same export for a signed-in member, linked from
// the usage page.
func (c *Console) consoleUsageExport(gc *gin.Context) error {
	q, err := parseUsageQuery(gc, c.now(), usageMaxDaysTenant)
	var ve *tenant.ValidationError
	if errors.As(err, &ve) {
		return &pageError{http.StatusUnprocessableEntity, "Invalid export", ve.Message}
	}
	if err != nil {
		return err
	}
	t := accessFrom(gc).Tenant
	rows, err := c.store.Usage(gc.Request.Context(), t.ID, q.From, q.To)
	if err != nil {
		return err
	}
	return writeUsage(gc, q, rows, string(t.Slug)+"-")
}

// usageBucket is the usage of one day or hour.
type usageBucket struct {
	Start time.Time
	tenant.UsageCounts
}

// bucketUsage sums one tenant's hourly rows into buckets of step from
// from to to (every bucket present, oldest first). Counters add up; active
// devices and watchers are the highest hour; storage is the latest sample.
func bucketUsage(rows []tenant.UsageRow, from, to time.Time, step time.Duration) []usageBucket {
	n := int(to.Sub(from) / step)
	out := make([]usageBucket, n)
	for i := range out {
		out[i].Start = from.Add(time.Duration(i) * step)
	}
	for _, r := range rows {
		i := int(r.Hour.Sub(from) / step)
		if r.Hour.Before(from) || i >= n {
			continue
		}
		b := &out[i].UsageCounts
		b.Add(r.UsageCounts)
		if r.StorageBytes > 0 {
			b.StorageBytes = r.StorageBytes // rows come in hour order
		}
	}
	return out
}

// usageCharts are the figures the usage page draws, in order.
var usageCharts = []struct {
	title, testid string
	bytes         bool
	value         func(u tenant.UsageCounts) int64
}{
	{"Requests", "chart-requests", false, func(u tenant.UsageCounts) int64 { return u.Requests }},
	{"Rows pushed", "chart-rows-pushed", false, func(u tenant.UsageCounts) int64 { return u.RowsPushed }},
	{"Rows pulled (including snapshots)", "chart-rows-pulled", false,
		func(u tenant.UsageCounts) int64 { return u.RowsPulled + u.RowsSnapshotted }},
	{"Bytes in", "chart-bytes-in", true, func(u tenant.UsageCounts) int64 { return u.BytesIn }},
	{"Bytes out", "chart-bytes-out", true, func(u tenant.UsageCounts) int64 { return u.BytesOut }},
	{"Active devices (highest hour)", "chart-active-devices", false, func(u tenant.UsageCounts) int64 { return u.ActiveDevices }},
	{"Peak watchers", "chart-watchers", false, func(u tenant.UsageCounts) int64 { return u.PeakWatchers }},
	{"Storage (latest sample)", "chart-storage", true, func(u tenant.UsageCounts) int64 { return u.StorageBytes }},
}

func (c *Console) usagePage(gc *gin.Context) error {
	ctx := gc.Request.Context()
	a := accessFrom(gc)
	now := c.now().UTC()
	by := gc.DefaultQuery("by", "day")
	var from, to time.Time
	step, labelFmt, tipFmt, per := 24*time.Hour, "02", "Mon 2006-01-02", "day"
	switch by {
	case "hour":
		to = now.Truncate(time.Hour).Add(time.Hour)
		from = to.Add(-48 * time.Hour)
		step, labelFmt, tipFmt, per = time.Hour, "15h", "2006-01-02 15:00", "hour"
	default:
		by = "day"
		to = now.Truncate(24*time.Hour).AddDate(0, 0, 1)
		from = to.AddDate(0, 0, -usageDefaultDays)
	}
	rows, err := c.store.Usage(ctx, a.Tenant.ID, from, to)
	if err != nil {
		return err
	}
	buckets := bucketUsage(rows, from, to, step)
	base := "/console/t/" + string(a.Tenant.Slug) + "/usage/export?from=" + from.Format(dateLayout) +
		"&to=" + to.Add(-time.Nanosecond).Format(dateLayout)
	v := tenants.UsageView{Page: c.tenantPage(gc, "Usage", "usage"), By: by, Empty: len(rows) == 0,
		Period:    from.Format("2006-01-02 15:04") + " – " + to.Format("2006-01-02 15:04") + " UTC, per " + per,
		ExportCSV: base + "&format=csv", ExportJSON: base + "&format=json"}
	for _, ch := range usageCharts {
		bars := make([]components.Bar, len(buckets))
		for i, b := range buckets {
			val := ch.value(b.UsageCounts)
			bars[i] = components.Bar{Label: b.Start.Format(labelFmt), Value: val, Tip: b.Start.Format(tipFmt)}
			if ch.bytes {
				bars[i].Text = humanBytes(val)
			}
		}
		v.Charts = append(v.Charts, tenants.UsageChart{Title: ch.title + " per " + per, TestID: ch.testid, Bars: bars})
	}
	var total tenant.UsageCounts
	endpoints := map[string]int64{}
	for _, r := range rows {
		total.Requests += r.Requests
		total.BundlesPushed += r.BundlesPushed
		total.RowsPushed += r.RowsPushed
		total.RowsPulled += r.RowsPulled
		total.RowsSnapshotted += r.RowsSnapshotted
		total.BytesIn += r.BytesIn
		total.BytesOut += r.BytesOut
		for e, n := range r.ByEndpoint {
			endpoints[e] += n
		}
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	for _, t := range []struct {
		name, value string
	}{
		{"Requests", num(total.Requests)}, {"Bundles pushed", num(total.BundlesPushed)},
		{"Rows pushed", num(total.RowsPushed)}, {"Rows pulled", num(total.RowsPulled)},
		{"Rows snapshotted", num(total.RowsSnapshotted)}, {"Bytes in", humanBytes(total.BytesIn)},
		{"Bytes out", humanBytes(total.BytesOut)},
	} {
		v.Totals = append(v.Totals, tenants.UsageTotal{Name: t.name, Value: t.value})
	}
	for e, n := range endpoints {
		v.Endpoints = append(v.Endpoints, tenants.UsageTotal{Name: e, Value: num(n)})
	}
	sort.Slice(v.Endpoints, func(i, j int) bool {
		if endpoints[v.Endpoints[i].Name] != endpoints[v.Endpoints[j].Name] {
			return endpoints[v.Endpoints[i].Name] > endpoints[v.Endpoints[j].Name]
		}
		return v.Endpoints[i].Name < v.Endpoints[j].Name
	})
	return c.render(gc, http.StatusOK, tenants.Usage(v))
}

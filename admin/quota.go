package admin

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/ui/pages/tenants"
)

// quotaKind is how a limit is written and shown.
type quotaKind int

const (
	kindCount quotaKind = iota
	kindBytes
	kindRate
)

// quotaField is one limit of tenant.Limits, in the order the console and
// the API list them. Key is its JSON name (and form field); Use, when set,
// is its name in tenant.Utilization.
type quotaField struct {
	Key   string
	Label string
	Kind  quotaKind
	Use   string
	Max   int64 // highest accepted value; 0 = no bound
	limit func(l tenant.Limits) float64
	ptr   func(o *tenant.QuotaOverride) **int64 // nil for the rate
}

var quotaFields = []quotaField{
	{Key: "max_active_devices", Label: "Active devices (30 days)", Use: "active_devices",
		limit: func(l tenant.Limits) float64 { return float64(l.MaxActiveDevices) },
		ptr:   func(o *tenant.QuotaOverride) **int64 { return &o.MaxActiveDevices }},
	{Key: "max_rows", Label: "Stored rows", Use: "rows",
		limit: func(l tenant.Limits) float64 { return float64(l.MaxRows) },
		ptr:   func(o *tenant.QuotaOverride) **int64 { return &o.MaxRows }},
	{Key: "max_storage_bytes", Label: "Storage", Kind: kindBytes, Use: "storage_bytes",
		limit: func(l tenant.Limits) float64 { return float64(l.MaxStorageBytes) },
		ptr:   func(o *tenant.QuotaOverride) **int64 { return &o.MaxStorageBytes }},
	{Key: "max_watchers", Label: "Concurrent watchers (peak this hour)", Use: "watchers",
		limit: func(l tenant.Limits) float64 { return float64(l.MaxWatchers) },
		ptr:   func(o *tenant.QuotaOverride) **int64 { return &o.MaxWatchers }},
	{Key: "requests_per_second", Label: "Requests per second", Kind: kindRate,
		limit: func(l tenant.Limits) float64 { return l.RequestsPerSecond }},
	{Key: "request_burst", Label: "Request burst",
		limit: func(l tenant.Limits) float64 { return float64(l.RequestBurst) },
		ptr:   func(o *tenant.QuotaOverride) **int64 { return &o.RequestBurst }},
	{Key: "max_bundle_bytes", Label: "Bundle size", Kind: kindBytes,
		limit: func(l tenant.Limits) float64 { return float64(l.MaxBundleBytes) },
		ptr:   func(o *tenant.QuotaOverride) **int64 { return &o.MaxBundleBytes }},
	{Key: "max_rows_per_chunk", Label: "Rows per push chunk", Max: 5000,
		limit: func(l tenant.Limits) float64 { return float64(l.MaxRowsPerChunk) },
		ptr:   func(o *tenant.QuotaOverride) **int64 { return &o.MaxRowsPerChunk }},
}

// useOf is what the tenant uses of a Utilization quota name.
func useOf(u tenant.Use, name string) int64 {
	switch name {
	case "active_devices":
		return u.ActiveDevices
	case "rows":
		return u.Rows
	case "storage_bytes":
		return u.StorageBytes
	case "watchers":
		return u.PeakWatchers
	}
	return 0
}

// text formats a value of the field; zero is unlimited.
func (f quotaField) text(v float64) string {
	switch {
	case v == 0:
		return "unlimited"
	case f.Kind == kindBytes:
		return humanBytes(int64(v))
	case f.Kind == kindRate:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatInt(int64(v), 10)
}

// override returns the field's override as form text ("" = the plan's).
func (f quotaField) override(o tenant.QuotaOverride) string {
	if f.ptr == nil {
		if o.RequestsPerSecond == nil {
			return ""
		}
		return strconv.FormatFloat(*o.RequestsPerSecond, 'f', -1, 64)
	}
	if p := *f.ptr(&o); p != nil {
		return strconv.FormatInt(*p, 10)
	}
	return ""
}

// check refuses a value out of the field's range.
func (f quotaField) check(v float64) string {
	switch {
	case v < 0 || math.IsNaN(v) || math.IsInf(v, 0):
		return "must be 0 (unlimited) or positive"
	case f.Max > 0 && v > float64(f.Max):
		return fmt.Sprintf("cannot exceed the protocol's %d", f.Max)
	}
	return ""
}

// parse reads the field from form text into o; blank keeps the plan's value.
func (f quotaField) parse(raw string, o *tenant.QuotaOverride) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ""
	}
	switch f.Kind {
	case kindRate:
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return "enter a number of requests per second: 0 for unlimited, blank for the plan's value"
		}
		if msg := f.check(v); msg != "" {
			return msg
		}
		o.RequestsPerSecond = &v
		return ""
	case kindBytes:
		v, ok := parseSize(raw)
		if !ok {
			return "enter a size such as 512MiB or 20GiB, or a number of bytes: 0 for unlimited, blank for the plan's value"
		}
		if msg := f.check(float64(v)); msg != "" {
			return msg
		}
		*f.ptr(o) = &v
		return ""
	}
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return "enter a whole number: 0 for unlimited, blank for the plan's value"
	}
	if msg := f.check(float64(v)); msg != "" {
		return msg
	}
	*f.ptr(o) = &v
	return ""
}

// checkOverride validates every set field of o, by field key.
func checkOverride(o tenant.QuotaOverride) map[string]string {
	errs := map[string]string{}
	for _, f := range quotaFields {
		var v float64
		switch {
		case f.ptr == nil && o.RequestsPerSecond != nil:
			v = *o.RequestsPerSecond
		case f.ptr != nil && *f.ptr(&o) != nil:
			v = float64(**f.ptr(&o))
		default:
			continue
		}
		if msg := f.check(v); msg != "" {
			errs[f.Key] = msg
		}
	}
	return errs
}

var sizeUnits = map[string]int64{"": 1, "b": 1, "kb": 1000, "mb": 1000 * 1000, "gb": 1000 * 1000 * 1000,
	"tb": 1000 * 1000 * 1000 * 1000, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}

// parseSize reads "123", "512MiB", "1.5 GiB" or "20GB" as bytes.
func parseSize(s string) (int64, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' && r != '-' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	mul, ok := sizeUnits[unit]
	if !ok || num == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n != 0 && (n > math.MaxInt64/mul || n < math.MinInt64/mul) {
			return 0, false
		}
		return n * mul, true
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.Abs(f*float64(mul)) >= math.MaxInt64 {
		return 0, false
	}
	return int64(math.Round(f * float64(mul))), true
}

// quotaRows lays out a tenant's limits with its use (nil when unknown).
func quotaRows(q *tenant.Quota, plans tenant.Plans, use *tenant.Use) []tenants.QuotaRow {
	planLimits, _ := plans.Limits(q.Plan)
	var util map[string]float64
	if use != nil {
		util = tenant.Utilization(*use, q.Limits)
	}
	out := make([]tenants.QuotaRow, 0, len(quotaFields))
	for _, f := range quotaFields {
		r := tenants.QuotaRow{Key: f.Key, Name: f.Label, Limit: f.text(f.limit(q.Limits)),
			PlanValue: f.text(f.limit(planLimits)), Override: f.override(q.Override)}
		r.Overridden = r.Override != ""
		if f.Use != "" && use != nil {
			n := useOf(*use, f.Use)
			r.Used = f.text(float64(n))
			if n == 0 {
				r.Used = "0"
			}
			if ratio, ok := util[f.Use]; ok {
				r.Metered, r.Ratio = true, ratio
				r.Percent = int(math.Round(ratio * 100))
				r.Near = ratio >= tenant.NearLimit
			}
		}
		out = append(out, r)
	}
	return out
}

// nearLimit names the quotas at or past tenant.NearLimit, sorted.
func nearLimit(util map[string]float64) []string {
	out := []string{}
	for name, r := range util {
		if r >= tenant.NearLimit {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func planNames(p tenant.Plans) []string {
	out := make([]string, 0, len(p))
	for n := range p {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// useCache remembers tenants' current use (tenant.Store.CurrentUse) for a
// while: measuring runs aggregate queries over the tenant schema, too
// costly for every page view and for a tenant list. Concurrent requests for
// one tenant share one measurement; at most cap measurements run at once.
// Entries live ttl; a caller may ask for a fresher one (get's maxAge).
type useCache struct {
	store *tenant.Store
	ttl   time.Duration
	sem   chan struct{}
	now   func() time.Time

	mu sync.Mutex
	m  map[int64]*useEntry
}

type useEntry struct {
	done chan struct{} // closed when use and err are set
	at   time.Time
	use  tenant.Use
	err  error
}

// useCacheMax bounds the remembered tenants; past it, stale entries go.
const useCacheMax = 10_000

func newUseCache(store *tenant.Store, ttl time.Duration, concurrency int) *useCache {
	return &useCache{store: store, ttl: ttl, sem: make(chan struct{}, concurrency), now: time.Now, m: map[int64]*useEntry{}}
}

// get returns t's use, measured at most maxAge (at most ttl) ago, waiting
// for a measurement until ctx ends. A measurement outlives the request that
// started it (up to a timeout), so a later request finds it done.
func (c *useCache) get(ctx context.Context, t *tenant.Tenant, maxAge time.Duration) (tenant.Use, time.Time, error) {
	maxAge = min(maxAge, c.ttl)
	c.mu.Lock()
	e := c.m[t.ID]
	if e != nil {
		select {
		case <-e.done:
			if c.now().Sub(e.at) > maxAge {
				e = nil
			}
		default: // in flight
		}
	}
	if e == nil {
		if len(c.m) >= useCacheMax {
			c.sweepLocked()
		}
		e = &useEntry{done: make(chan struct{})}
		c.m[t.ID] = e
		tc := *t
		go c.measure(context.WithoutCancel(ctx), &tc, e)
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.use, e.at, e.err
	case <-ctx.Done():
		return tenant.Use{}, time.Time{}, ctx.Err()
	}
}

func (c *useCache) measure(ctx context.Context, t *tenant.Tenant, e *useEntry) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case c.sem <- struct{}{}:
		e.use, e.err = c.store.CurrentUse(ctx, t)
		<-c.sem
	case <-ctx.Done():
		e.err = ctx.Err()
	}
	e.at = c.now()
	close(e.done)
	if e.err != nil {
		// Failures are not remembered: the next request tries again.
		c.mu.Lock()
		if c.m[t.ID] == e {
			delete(c.m, t.ID)
		}
		c.mu.Unlock()
	}
}

// forget drops t's entry, e.g. after its quota changed.
func (c *useCache) forget(tenantID int64) {
	c.mu.Lock()
	delete(c.m, tenantID)
	c.mu.Unlock()
}

// sweepLocked drops finished stale entries. Caller holds c.mu.
func (c *useCache) sweepLocked() {
	for id, e := range c.m {
		select {
		case <-e.done:
			if c.now().Sub(e.at) > c.ttl {
				delete(c.m, id)
			}
		default:
		}
	}
}

package admin_test

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/admin"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// seedUsage records two hours of metered usage for a tenant, 26 hours
// apart, and returns the requests they count.
func seedUsage(t *testing.T, h *harness, tenantID int64) int64 {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Hour)
	var total int64
	for _, r := range []struct {
		hour                                       time.Time
		requests, pushed, pulled, in, out, storage int64
	}{
		{now.Add(-26 * time.Hour), 30, 100, 40, 5000, 9000, 1 << 20},
		{now, 12, 7, 3, 700, 800, 2 << 20},
	} {
		_, err := h.store.DB().Exec(ctx, `INSERT INTO syncplane.usage_hourly (tenant_id, hour, requests, bundles_pushed,
				rows_pushed, rows_pulled, rows_snapshotted, bytes_in, bytes_out, active_devices, peak_watchers, storage_bytes)
			VALUES ($1, $2, $3, 2, $4, $5, 1, $6, $7, 3, 1, $8)`,
			tenantID, r.hour, r.requests, r.pushed, r.pulled, r.in, r.out, r.storage)
		require.NoError(t, err)
		_, err = h.store.DB().Exec(ctx, `INSERT INTO syncplane.usage_requests (tenant_id, hour, endpoint, requests)
			VALUES ($1, $2, 'POST /sync/push', $3 - 2), ($1, $2, 'GET /sync/pull', 2)`, tenantID, r.hour, r.requests)
		require.NoError(t, err)
		total += r.requests
	}
	return total
}

// getRaw fetches a console path with the client's session, keeping headers.
func (c *client) getRaw(path string) (*http.Response, string) {
	c.h.t.Helper()
	resp, err := c.hc.Get(c.h.srv.URL + path)
	require.NoError(c.h.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.h.t, err)
	return resp, string(b)
}

func TestUsagePages(t *testing.T) {
	h := newHarness(t)
	owner := h.signup()
	slug := owner.newTenant("usage")
	base := "/console/t/" + slug

	p := owner.get(base + "/usage")
	require.Equal(t, http.StatusOK, p.Status)
	require.Equal(t, 1, p.testid("usage-empty").Length())

	seedUsage(t, h, mustTenantID(t, h, slug))
	viewer := h.signup()
	require.NoError(t, h.console.Accounts().AddMember(context.Background(), mustTenantID(t, h, slug),
		mustAccountID(t, h, viewer.Email), admin.RoleViewer, testActor))

	p = viewer.get(base + "/usage")
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.Equal(t, 0, p.testid("usage-empty").Length())
	require.Contains(t, p.text("usage-period"), "per day")
	for _, id := range []string{"chart-requests", "chart-rows-pushed", "chart-rows-pulled", "chart-bytes-in", "chart-bytes-out",
		"chart-active-devices", "chart-watchers", "chart-storage"} {
		require.Equal(t, 30, p.testid(id).Find("rect").Length(), id)
	}
	totals := p.testid("usage-totals").Text()
	require.Contains(t, totals, "42")  // requests
	require.Contains(t, totals, "107") // rows pushed
	require.Contains(t, p.text("usage-endpoints"), "POST /sync/push")
	require.Contains(t, p.testid("chart-storage").Text(), "MiB", "byte charts show sizes")

	p = viewer.get(base + "/usage?by=hour")
	require.Contains(t, p.text("usage-period"), "per hour")
	require.Equal(t, 48, p.testid("chart-requests").Find("rect").Length())
	bars := p.testid("chart-requests").Find("title").Map(func(_ int, s *goquerySelection) string { return s.Text() })
	require.Contains(t, strings.Join(bars, "\n"), ": 12")
	require.Contains(t, strings.Join(bars, "\n"), ": 30")

	// The export links download CSV and JSON with the session.
	href, _ := p.testid("usage-export-csv").Attr("href")
	resp, body := viewer.getRaw(href)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Content-Disposition"), `filename="syncplane-usage-`+slug+`-`)
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Equal(t, []string{"tenant_id", "tenant", "hour"}, recs[0][:3])
	href, _ = p.testid("usage-export-json").Attr("href")
	resp, body = viewer.getRaw(href)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `"requests_by_endpoint"`)
	resp, _ = viewer.getRaw(base + "/usage/export?format=xml")
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)

	stranger := h.signup()
	require.Equal(t, http.StatusNotFound, stranger.get(base+"/usage").Status)
	resp, _ = stranger.getRaw(base + "/usage/export?format=csv")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestUsageAPI(t *testing.T) {
	h := newHarness(t)
	api := newAPIClient(t, h)
	_, owner := h.accountWithToken(t)
	slug := tenanttest.RandomSlug("apiusage")
	t.Cleanup(func() { _ = h.store.DeleteTenant(context.Background(), slug, tenanttest.Actor) })
	require.Equal(t, http.StatusCreated, api.call(owner, "POST", "/tenants", map[string]any{"slug": slug}).Status)
	tid := mustTenantID(t, h, slug)
	total := seedUsage(t, h, tid)
	secret := api.call(owner, "POST", "/tenants/"+slug+"/keys", map[string]any{"kind": "secret"}).str("secret")
	_, stranger := h.accountWithToken(t)
	op := h.operatorToken(t)
	path := "/tenants/" + slug + "/usage"

	// JSON: one row per hour with its requests by endpoint.
	r := api.call(owner, "GET", path, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	rows := r.Body["rows"].([]any)
	require.Len(t, rows, 2)
	var sum float64
	for _, row := range rows {
		m := row.(map[string]any)
		require.Equal(t, slug, m["tenant"])
		sum += m["requests"].(float64)
		require.EqualValues(t, 2, m["requests_by_endpoint"].(map[string]any)["GET /sync/pull"])
	}
	require.EqualValues(t, total, sum)
	require.Equal(t, time.Now().UTC().Format("2006-01-02"), r.str("to"))

	// CSV for billing, as a download.
	today := time.Now().UTC().Format("2006-01-02")
	weekAgo := time.Now().UTC().AddDate(0, 0, -7).Format("2006-01-02")
	r = api.call(secret, "GET", path+"?format=csv&from="+weekAgo+"&to="+today, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.Equal(t, "text/csv; charset=utf-8", r.Header.Get("Content-Type"))
	require.Equal(t, `attachment; filename="syncplane-usage-`+slug+`-`+weekAgo+`-`+today+`.csv"`, r.Header.Get("Content-Disposition"))
	recs, err := csv.NewReader(strings.NewReader(string(r.Raw))).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Contains(t, recs[0], "requests POST /sync/push")

	// A range outside the data is empty, not an error.
	r = api.call(owner, "GET", path+"?from=2020-01-01&to=2020-01-31", nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Empty(t, r.Body["rows"])

	// Bad input names the parameter.
	for q, field := range map[string]string{
		"?from=yesterday":                  "from",
		"?to=2026-13-01":                   "to",
		"?from=2026-02-01&to=2026-01-01":   "to",
		"?from=2020-01-01&to=2026-01-01":   "from",
		"?format=xml":                      "format",
		"?format=csv&from=2026-01-01&to=x": "to",
	} {
		r = api.call(owner, "GET", path+q, nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, q)
		require.Equal(t, field, r.str("field"), q)
	}
	require.Equal(t, http.StatusNotFound, api.call(stranger, "GET", path, nil).Status)
	require.Equal(t, http.StatusUnauthorized, api.call("", "GET", path, nil).Status)

	// Every tenant's usage: platform operators only.
	for name, tok := range map[string]string{"owner": owner, "secret key": secret, "stranger": stranger} {
		r = api.call(tok, "GET", "/usage", nil)
		require.Equal(t, http.StatusForbidden, r.Status, name)
	}
	require.Equal(t, http.StatusUnauthorized, api.call("", "GET", "/usage", nil).Status)
	r = api.call(op, "GET", "/usage", nil)
	require.Equal(t, http.StatusOK, r.Status)
	var mine int
	for _, row := range r.Body["rows"].([]any) {
		if row.(map[string]any)["tenant"] == slug {
			mine++
		}
	}
	require.Equal(t, 2, mine)
	r = api.call(op, "GET", "/usage?format=csv", nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Contains(t, r.Header.Get("Content-Disposition"), `filename="syncplane-usage-`)
	require.Contains(t, string(r.Raw), ","+slug+",")
	r = api.call(op, "GET", "/usage?from=2026-01-01&to=2026-03-01", nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	require.Contains(t, r.str("message"), "31 days")
}

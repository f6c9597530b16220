package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/admin"
	"github.com/syncplane/syncplane/tenant"
)

// operator signs up an account and makes it a platform operator.
func (h *harness) operator() *client {
	h.t.Helper()
	c := h.signup()
	require.NoError(h.t, h.console.Accounts().SetOperator(context.Background(), mustAccountID(h.t, h, c.Email), true))
	return c
}

func quotaRow(p *page, key string) *goquerySelection {
	return p.Doc.Find(`[data-testid="quota-row"][data-quota="` + key + `"]`)
}

func cell(s *goquerySelection, id string) string {
	return s.Find(`[data-testid="` + id + `"]`).Text()
}

func TestQuotaPages(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	owner := h.signup()
	slug := owner.newTenant("quota")
	base := "/console/t/" + slug
	tid := mustTenantID(t, h, slug)

	// Two devices against a limit of two: at the limit, flagged.
	seedSync(t, h, slug)
	two := int64(2)
	require.NoError(t, h.store.SetQuota(ctx, tid, "", tenant.QuotaOverride{MaxActiveDevices: &two}, h.store.Plans(), testActor))

	p := owner.get(base + "/quota")
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.Equal(t, "free", p.text("quota-plan"))
	require.Equal(t, 8, p.testid("quota-row").Length())
	dev := quotaRow(p, "max_active_devices")
	require.Equal(t, "2", cell(dev, "quota-used"))
	require.Equal(t, "2", cell(dev, "quota-limit"))
	require.Equal(t, "100%", cell(dev, "quota-percent"))
	require.Equal(t, "near limit", cell(dev, "quota-near"))
	require.Equal(t, 1, dev.Find(`meter[data-testid="quota-meter"]`).Length())
	require.Equal(t, 1, dev.Find(`[data-testid="quota-overridden"]`).Length())
	rows := quotaRow(p, "max_rows")
	require.Equal(t, "0", cell(rows, "quota-used"))
	require.Equal(t, "100000", cell(rows, "quota-limit"))
	require.Empty(t, cell(rows, "quota-near"))
	require.Equal(t, "5000", cell(quotaRow(p, "max_rows_per_chunk"), "quota-limit"))
	require.Empty(t, quotaRow(p, "max_bundle_bytes").Find("meter").Nodes, "per-request limits have no bar")
	require.Equal(t, 1, p.testid("quota-near-warning").Length())
	// Tenant members read; only operators get the form.
	require.Equal(t, 1, p.testid("quota-readonly").Length())
	require.Equal(t, 0, p.testid("quota-form").Length())

	// The flag shows on the overview and the tenant list too.
	p = owner.get(base)
	require.Equal(t, 1, p.testid("quota-near-warning").Length())
	require.Equal(t, "near limit", cell(quotaRow(p, "max_active_devices"), "quota-near"))
	p = owner.get("/console/tenants?q=" + slug)
	require.Contains(t, p.text("tenant-near-limit"), "active devices")

	// Refusals: the owner, a viewer and a stranger cannot change quotas.
	p = owner.post(base+"/quota", url.Values{"plan": {"pro"}})
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Contains(t, p.Body, "does not allow", "refused by the role, not by CSRF")
	viewer := h.signup()
	require.NoError(t, h.console.Accounts().AddMember(ctx, tid, mustAccountID(t, h, viewer.Email), admin.RoleViewer, testActor))
	p = viewer.get(base + "/quota")
	require.Equal(t, http.StatusOK, p.Status)
	require.Equal(t, 0, p.testid("quota-form").Length())
	p = viewer.post(base+"/quota", url.Values{"plan": {"pro"}})
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Contains(t, p.Body, "does not allow")
	stranger := h.signup()
	require.Equal(t, http.StatusNotFound, stranger.get(base+"/quota").Status)
	require.Equal(t, http.StatusNotFound, stranger.post(base+"/quota", url.Values{"plan": {"pro"}}).Status)

	// A platform operator edits; bad input is refused next to each field
	// and what was typed stays in the form.
	op := h.operator()
	p = op.get(base + "/quota")
	require.Equal(t, 1, p.testid("quota-form").Length())
	v, _ := p.testid("quota-input-max_active_devices").Attr("value")
	require.Equal(t, "2", v)
	p = op.post(base+"/quota", url.Values{"plan": {"gold"}, "max_rows": {"lots"}, "max_storage_bytes": {"-1"},
		"max_rows_per_chunk": {"6000"}, "requests_per_second": {"fast"}, "max_watchers": {"10"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.text("error-plan"), "free, pro, unlimited")
	require.Contains(t, p.text("error-max_rows"), "whole number")
	require.Contains(t, p.text("error-max_storage_bytes"), "positive")
	require.Contains(t, p.text("error-max_rows_per_chunk"), "5000")
	require.Contains(t, p.text("error-requests_per_second"), "requests per second")
	require.Empty(t, p.text("error-max_watchers"))
	v, _ = p.testid("quota-input-max_rows").Attr("value")
	require.Equal(t, "lots", v)
	q, err := h.store.Quota(ctx, &tenant.Tenant{ID: tid, Plan: "free"}, h.store.Plans())
	require.NoError(t, err)
	require.Equal(t, int64(2), q.Limits.MaxActiveDevices, "nothing of a refused form is saved")

	// Plan pro, 1 GiB of storage, unlimited rows; devices back to the plan.
	p = op.post(base+"/quota", url.Values{"plan": {"pro"}, "max_storage_bytes": {"1GiB"}, "max_rows": {"0"}, "max_active_devices": {""}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	p = op.get(base + "/quota")
	require.Contains(t, p.text("flash-ok"), "pro plan")
	require.Equal(t, "pro", p.text("quota-plan"))
	require.Equal(t, "1.0 GiB", cell(quotaRow(p, "max_storage_bytes"), "quota-limit"))
	require.Equal(t, "unlimited", cell(quotaRow(p, "max_rows"), "quota-limit"))
	require.Equal(t, "10000", cell(quotaRow(p, "max_active_devices"), "quota-limit"))
	require.Equal(t, 0, p.testid("quota-near").Length())
	require.Equal(t, 0, p.testid("quota-near-warning").Length())
	require.Equal(t, 0, owner.get("/console/tenants?q="+slug).testid("tenant-near-limit").Length())
	tn, err := h.store.Tenant(ctx, slug)
	require.NoError(t, err)
	q, err = h.store.Quota(ctx, tn, h.store.Plans())
	require.NoError(t, err)
	require.Equal(t, "pro", q.Plan)
	require.Equal(t, int64(1<<30), *q.Override.MaxStorageBytes)
	require.Equal(t, int64(0), *q.Override.MaxRows)
	require.Nil(t, q.Override.MaxActiveDevices)

	// The change is audited with the operator's name.
	p = owner.get(base + "/audit?action=quota.set")
	require.Equal(t, 2, p.testid("audit-row").Length())
	require.Contains(t, p.testid("audit-row").First().Text(), "user:"+op.Email)
}

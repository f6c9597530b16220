package admin_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/admin"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// operatorToken creates a platform operator with an access token.
func (h *harness) operatorToken(t *testing.T) string {
	t.Helper()
	email, tok := h.accountWithToken(t)
	require.NoError(t, h.console.Accounts().SetOperator(context.Background(), mustAccountID(t, h, email), true))
	return tok
}

func TestQuotaAPI(t *testing.T) {
	h := newHarness(t)
	api := newAPIClient(t, h)
	ctx := context.Background()
	_, owner := h.accountWithToken(t)
	slug := tenanttest.RandomSlug("apiquota")
	t.Cleanup(func() { _ = h.store.DeleteTenant(context.Background(), slug, tenanttest.Actor) })
	require.Equal(t, http.StatusCreated, api.call(owner, "POST", "/tenants", map[string]any{"slug": slug}).Status)
	tid := mustTenantID(t, h, slug)
	viewerEmail, viewer := h.accountWithToken(t)
	require.NoError(t, h.console.Accounts().AddMember(ctx, tid, mustAccountID(t, h, viewerEmail), admin.RoleViewer, testActor))
	secret := api.call(owner, "POST", "/tenants/"+slug+"/keys", map[string]any{"kind": "secret"}).str("secret")
	_, stranger := h.accountWithToken(t)
	op := h.operatorToken(t)
	path := "/tenants/" + slug + "/quota"
	seedSync(t, h, slug)

	// Every member reads limits, overrides, use and utilization.
	r := api.call(viewer, "GET", path, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.Equal(t, "free", r.str("plan"))
	require.ElementsMatch(t, []any{"free", "pro", "unlimited"}, r.Body["plans"])
	require.EqualValues(t, 100_000, r.Body["limits"].(map[string]any)["max_rows"])
	require.Empty(t, r.Body["overrides"])
	require.EqualValues(t, 2, r.Body["use"].(map[string]any)["active_devices"])
	require.InDelta(t, 0.02, r.Body["utilization"].(map[string]any)["active_devices"], 1e-9)
	require.Empty(t, r.Body["near_limit"])
	require.Equal(t, http.StatusOK, api.call(secret, "GET", path, nil).Status)

	// Only platform operators change quotas.
	change := map[string]any{"plan": "pro", "overrides": map[string]any{"max_active_devices": 2, "max_rows": 0}}
	for name, tok := range map[string]string{"viewer": viewer, "owner": owner, "secret key": secret} {
		r = api.call(tok, "PUT", path, change)
		require.Equal(t, http.StatusForbidden, r.Status, "%s: %s", name, r.Raw)
		require.Equal(t, "forbidden", r.str("error"))
	}
	require.Equal(t, http.StatusNotFound, api.call(stranger, "PUT", path, change).Status)
	require.Equal(t, http.StatusUnauthorized, api.call("", "PUT", path, change).Status)

	// Bad input names every refused field.
	r = api.call(op, "PUT", path, map[string]any{"plan": "gold",
		"overrides": map[string]any{"max_rows": -1, "max_rows_per_chunk": 6000, "requests_per_second": 10}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Raw))
	require.Equal(t, "plan", r.str("field"))
	var paths []string
	for _, p := range r.Body["problems"].([]any) {
		paths = append(paths, p.(map[string]any)["path"].(string))
	}
	require.Equal(t, []string{"plan", "overrides.max_rows", "overrides.max_rows_per_chunk"}, paths)
	r = api.call(op, "PUT", path, map[string]any{"overrides": map[string]any{"max_rows": "many"}})
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Contains(t, r.str("message"), "max_rows")
	r = api.call(op, "PUT", path, map[string]any{"overrides": map[string]any{"max_cats": 1}})
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Equal(t, "free", api.call(viewer, "GET", path, nil).str("plan"), "nothing of a refused change is saved")

	// The operator moves the tenant to pro with two overrides.
	r = api.call(op, "PUT", path, change)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.Equal(t, "pro", r.str("plan"))
	limits := r.Body["limits"].(map[string]any)
	require.EqualValues(t, 2, limits["max_active_devices"])
	require.EqualValues(t, 0, limits["max_rows"])
	require.EqualValues(t, 20<<30, limits["max_storage_bytes"])
	require.EqualValues(t, 10_000_000, r.Body["plan_limits"].(map[string]any)["max_rows"])
	require.Equal(t, map[string]any{"max_active_devices": 2.0, "max_rows": 0.0}, r.Body["overrides"])
	require.Equal(t, []any{"active_devices"}, r.Body["near_limit"])
	require.EqualValues(t, 1, r.Body["utilization"].(map[string]any)["active_devices"])

	// Overrides are replaced as a whole; the plan is kept when left out.
	r = api.call(op, "PUT", path, map[string]any{"overrides": map[string]any{"requests_per_second": 12.5}})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.Equal(t, "pro", r.str("plan"))
	require.Equal(t, map[string]any{"requests_per_second": 12.5}, r.Body["overrides"])
	require.EqualValues(t, 10_000, r.Body["limits"].(map[string]any)["max_active_devices"])
	r = api.call(owner, "GET", "/tenants/"+slug+"/audit?action=quota.set", nil)
	require.Len(t, r.Body["entries"], 2)
}

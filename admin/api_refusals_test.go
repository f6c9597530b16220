package admin_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// TestAPIRefusals: every tenant route of the management API answers 401
// without credentials, 404 to an account with no relation to the tenant
// and 403 to a viewer for every write; all validated against the OpenAPI
// document.
func TestAPIRefusals(t *testing.T) {
	h := newHarness(t)
	api := newAPIClient(t, h)
	_, owner := h.accountWithToken(t)
	slug := tenanttest.RandomSlug("apiref")
	t.Cleanup(func() { _ = h.store.DeleteTenant(context.Background(), slug, tenanttest.Actor) })
	require.Equal(t, http.StatusCreated, api.call(owner, "POST", "/tenants", map[string]any{"slug": slug}).Status)
	viewerEmail, viewer := h.accountWithToken(t)
	require.NoError(t, h.console.Accounts().AddMember(context.Background(), mustTenantID(t, h, slug),
		mustAccountID(t, h, viewerEmail), "viewer", testActor))
	_, stranger := h.accountWithToken(t)
	base := "/tenants/" + slug
	def := map[string]any{"tables": []any{map[string]any{"name": "t", "sync_key": "id", "columns": []any{map[string]any{"name": "id", "type": "text"}}}}}

	type route struct {
		method, path string
		body         any
		viewerOK     bool
	}
	routes := []route{
		{"GET", base, nil, true},
		{"GET", base + "/keys", nil, true},
		{"GET", base + "/tables/versions", nil, true},
		{"GET", base + "/members", nil, true},
		{"GET", base + "/audit", nil, true},
		{"GET", base + "/devices", nil, true},
		{"GET", base + "/quota", nil, true},
		{"GET", base + "/usage", nil, true},
		{"POST", base + "/auth/test", map[string]any{"token": "x"}, true},
		{"DELETE", base, nil, false},
		{"PATCH", base, map[string]any{"name": "Renamed"}, false},
		{"POST", base + "/suspend", nil, false},
		{"POST", base + "/resume", nil, false},
		{"POST", base + "/keys", map[string]any{"kind": "secret"}, false},
		{"DELETE", base + "/keys/1", nil, false},
		{"PUT", base + "/auth", map[string]any{"mode": "hs256", "hs256_secrets": []string{hsSecret}}, false},
		{"POST", base + "/tables", map[string]any{"definition": def}, false},
		{"PUT", base + "/members/1", map[string]any{"role": "viewer"}, false},
		{"DELETE", base + "/members/1", nil, false},
		{"POST", base + "/invitations", map[string]any{"email": "a@example.com", "role": "viewer"}, false},
		{"POST", base + "/devices/retire", map[string]any{"user_id": "u", "source_id": "s"}, false},
		{"POST", base + "/devices/revoke", map[string]any{"user_id": "u", "source_id": "s"}, false},
		{"PUT", base + "/quota", map[string]any{"plan": "pro"}, false},
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			require.Equal(t, http.StatusUnauthorized, api.call("", r.method, r.path, r.body).Status)
			require.Equal(t, http.StatusNotFound, api.call(stranger, r.method, r.path, r.body).Status)
			st := api.call(viewer, r.method, r.path, r.body).Status
			if r.viewerOK {
				require.NotEqual(t, http.StatusForbidden, st)
				require.Less(t, st, 500)
			} else {
				require.Equal(t, http.StatusForbidden, st)
			}
		})
	}
	r := api.call(owner, "GET", base, nil)
	require.Equal(t, "active", r.str("state"))
}
